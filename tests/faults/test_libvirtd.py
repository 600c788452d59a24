# SPDX-License-Identifier: LGPL-2.1-or-later
# Losing libvirtd: /readyz says so, operations that need libvirt answer 503, guests keep
# running; once libvirtd is back vmbroker reconnects (with backoff), re-registers its
# callbacks and resyncs: a guest that died meanwhile is stopped, and events flow again.
# The shared libvirtd is restarted once (briefly) and always started again.
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults  # noqa: E402
from faults import virsh  # noqa: E402


class Libvirtd(faults.FaultCase):
    def test_libvirtd_restart(self):
        # A long interval: what repairs the dead guest below is the reconnect's resync.
        self.start(libvirt={'sync_interval_s': '3600'})
        self.admin = self.user('root')
        alive = self.create(self.admin, 'memtest')
        dies = self.create(self.admin, 'memtest-disk')
        alive_pid, dies_pid = self.qemu_pid(alive['name']), self.qemu_pid(dies['name'])
        try:
            faults.stop_libvirtd()
            status, ready = self.api('GET', '/readyz')
            self.assertEqual((status, ready['checks']['libvirt']), (503, 'down'), ready)
            status, got = self.api('POST', '/api/v1/vms', {'template': 'memtest'}, self.admin)
            self.assertEqual(status, 503, got)
            status, got = self.api('POST', f'/api/v1/vms/{alive["id"]}/stop', auth=self.admin)
            self.assertEqual(status, 503, got)
            # Reads need PostgreSQL only.
            self.assertEqual(self.get_vm(self.admin, alive['id'])['state'], 'running')
            # A guest dies while nobody watches.
            os.kill(dies_pid, signal.SIGKILL)
        finally:
            faults.start_libvirtd()
        self.wait_for('/readyz', lambda: self.api('GET', '/readyz')[0] == 200)
        got = self.wait_state(self.admin, dies['id'], 'stopped')
        self.assertEqual(got['state_reason'], 'shut off outside vmbroker')
        os.kill(alive_pid, 0)  # the other guest kept running throughout
        self.assertEqual(self.get_vm(self.admin, alive['id'])['state'], 'running')
        self.assertGreaterEqual(self.metric('vmbroker_libvirt_reconnects_total'), 1)
        # The callbacks are registered again.
        virsh('destroy', alive['name'], check=True)
        got = self.wait_state(self.admin, alive['id'], 'stopped')
        self.assertEqual(got['state_reason'], 'destroyed outside vmbroker')
        self.assertNotIn('creating', [r['state'] for r in self.assert_agree().values()])
        # Nothing a failed create or stop started is left: all VMs are accounted for.
        self.assertEqual(set(self.assert_agree()), {alive['name'], dies['name']})


if __name__ == '__main__':
    faults.main()
