# SPDX-License-Identifier: LGPL-2.1-or-later
# Two brokers on one database: broker A runs a stop (memtest ignores ACPI, so the stop holds
# its operation for its whole grace) and freezes (SIGSTOP) — its heartbeat stops. Broker B
# takes the operation over once the heartbeat is stale, reconciles the VM and finishes the
# stop; A, thawed, cannot record an end for an operation that is no longer its own.
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults  # noqa: E402
import harness  # noqa: E402


class Takeover(faults.FaultCase):
    def test_a_stalled_brokers_operation_is_taken_over_by_another(self):
        a = self.start(libvirt={'stop_timeout_s': '60'},
                       operations={'instance': 'broker-a', 'stale_s': '3'})
        admin = self.user('root')
        vm = self.create(admin)
        status, stopping = self.api('POST', f'/api/v1/vms/{vm["id"]}/stop', auth=admin)
        self.assertEqual(status, 202, stopping)
        op_id = stopping['operation']['id']
        self.assertRegex(op_id, r'^[0-9a-f-]{36}$')

        def op_row():
            return self.db.psql("SELECT state, broker, attempts, step FROM operations"
                                f" WHERE id = '{op_id}'")[0]

        self.wait_for('broker-a to run the stop',
                      lambda: op_row()[:2] == ['running', 'broker-a'] and 'ACPI' in op_row()[3])
        a.proc.send_signal(signal.SIGSTOP)
        self.addCleanup(lambda: a.proc.poll() is None and a.proc.send_signal(signal.SIGCONT))

        sections = {k: dict(v) for k, v in self.sections.items()}
        sections['http']['listen'] = f'127.0.0.1:{harness.free_port()}'
        sections['operations']['instance'] = 'broker-b'
        b = harness.Broker(self, sections, self.workdir)
        t0 = time.monotonic()
        self.wait_for('broker-b to finish the stop', lambda: op_row()[0] == 'succeeded')
        # Taken once the heartbeat was stale, long before A's 60 s grace would have ended.
        self.assertLess(time.monotonic() - t0, 30)
        self.assertEqual(op_row()[:3], ['succeeded', 'broker-b', '2'])
        rows = self.assert_agree()
        self.assertEqual(rows[vm['name']]['state'], 'stopped')
        self.assertIn(f'operation {op_id}: taken over (attempt 2)', b.log())

        # A wakes up: its stop finds the VM off, and the end it tries to record is refused.
        a.proc.send_signal(signal.SIGCONT)
        self.wait_for('broker-a to give up the operation',
                      lambda: f'operation {op_id}: recording its end' in a.log(), 120)
        self.assertEqual(op_row()[:3], ['succeeded', 'broker-b', '2'])


if __name__ == '__main__':
    faults.main()
