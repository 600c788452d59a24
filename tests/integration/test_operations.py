# SPDX-License-Identifier: LGPL-2.1-or-later
# Operations against the real binary, PostgreSQL, libvirtd and memtest guests (which ignore
# ACPI, so a stop holds its operation for libvirt.stop_timeout_s): a request that conflicts
# with a VM's operation answers 409 at once carrying it, nobody else waits meanwhile, the
# rows record kinds, steps and ends, `Prefer: respond-async` answers 202, and the per-user
# cap answers 429.
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_api_vms import UUID_RE, VmCase  # noqa: E402

# The stop's grace: long against every bound below, so that "answered in time" cannot be
# "answered once the stop was over".
STOP_S = 20
# "Did not wait for the stop": generous for a loaded two-core machine, small against STOP_S.
QUICK_S = 1.5


class Operations(VmCase):
    def timed(self, method, path, body=None, who='alice', headers=None):
        t0 = time.monotonic()
        status, hdrs, out = self.api(method, path, body, who=who, headers=headers)
        return time.monotonic() - t0, status, out

    def wait_operation(self, op_id, who='alice'):
        end = time.monotonic() + harness.WAIT_S
        while time.monotonic() < end:
            status, _, op = self.api('GET', f'/api/v1/operations/{op_id}', who=who)
            self.assertEqual(status, 200, op)
            if op['finished_at']:
                return op
            time.sleep(0.1)
        self.fail(f'operation {op_id} did not end')

    def test_requests_on_a_busy_vm_conflict_at_once_and_nobody_waits(self):
        self.start(libvirt={'stop_timeout_s': str(STOP_S)})
        _, out = self.create()
        vm = out['vm']
        status, _, stopping = self.api('POST', f'/api/v1/vms/{vm["id"]}/stop')
        self.assertEqual(status, 202, stopping)
        self.assertEqual(stopping['state'], 'stopping')
        stop_op = stopping['operation']
        self.assertEqual((stop_op['kind'], stop_op['vm_id']), ('stop', vm['id']))

        # 40 starts at once while bob lists and probes health in a loop.
        results, others, done = [], [], threading.Event()

        def start_one():
            results.append(self.timed('POST', f'/api/v1/vms/{vm["id"]}/start'))

        def bystander():
            while not done.is_set():
                t0 = time.monotonic()
                s1, _, _ = self.broker.request('GET', '/healthz')
                s2, _, _ = self.api('GET', '/api/v1/vms', who='bob')
                others.append((time.monotonic() - t0, s1, s2))

        watcher = threading.Thread(target=bystander)
        watcher.start()
        starters = [threading.Thread(target=start_one) for _ in range(40)]
        t0 = time.monotonic()
        for t in starters:
            t.start()
        for t in starters:
            t.join()
        elapsed = time.monotonic() - t0
        done.set()
        watcher.join()

        self.assertLess(elapsed, STOP_S / 2, 'the starts waited for the stop')
        self.assertEqual(len(results), 40)
        for took, status, body in results:
            self.assertEqual(status, 409, body)
            self.assertEqual(body['operation']['id'], stop_op['id'])
            self.assertIn(body['operation']['state'], ('queued', 'running'))
            self.assertLess(took, QUICK_S * 4)
        self.assertTrue(others)
        for took, s1, s2 in others:
            self.assertEqual((s1, s2), (200, 200))
            self.assertLess(took, QUICK_S)

        # Meanwhile the stop says what it does; then it ends, and a start works again.
        status, _, now = self.api('GET', f'/api/v1/operations/{stop_op["id"]}')
        self.assertEqual(status, 200, now)
        self.assertEqual(now['state'], 'running')
        self.assertIn('ACPI', now['step'])
        ended = self.wait_operation(stop_op['id'])
        self.assertEqual((ended['state'], ended['error']), ('succeeded', None))
        self.assertEqual(self.get_vm(vm['id'])['state'], 'stopped')
        status, _, running = self.api('POST', f'/api/v1/vms/{vm["id"]}/start')
        self.assertEqual((status, running['state']), (200, 'running'), running)

    def test_rows_record_each_operation_and_who_may_read_them(self):
        self.start()
        _, out = self.create()
        vm = out['vm']
        status, _, reboot = self.api('POST', f'/api/v1/vms/{vm["id"]}/reboot')
        self.assertEqual(status, 202, reboot)
        status, _, ops = self.api('GET', f'/api/v1/vms/{vm["id"]}/operations')
        self.assertEqual(status, 200, ops)
        self.assertEqual([(o['kind'], o['state']) for o in ops],
                         [('reboot', 'succeeded'), ('create', 'succeeded')])
        for o in ops:
            self.assertRegex(o['id'], UUID_RE)
            self.assertEqual((o['vm_id'], o['progress'], o['error']), (vm['id'], 100, None))
            self.assertTrue(o['created_at'] <= o['started_at'] <= o['finished_at'], o)
        # bob sees neither alice's VM's operations nor one of them by id; root sees both.
        status, _, _ = self.api('GET', f'/api/v1/vms/{vm["id"]}/operations', who='bob')
        self.assertEqual(status, 404)
        self.problem(self.broker_request_as('bob', f'/api/v1/operations/{ops[0]["id"]}'), 404)
        status, _, op = self.api('GET', f'/api/v1/operations/{ops[0]["id"]}', who='root')
        self.assertEqual((status, op['kind']), (200, 'reboot'))
        # A reboot of a stopped VM conflicts at once without an operation.
        status, _, _ = self.api('POST', f'/api/v1/vms/{vm["id"]}/stop')
        self.assertEqual(status, 202)
        ended = self.wait_operation(self.api('GET', f'/api/v1/vms/{vm["id"]}/operations')[2][0]
                                    ['id'])
        self.assertEqual(ended['kind'], 'stop')
        p = self.problem(self.broker_request_as('alice', f'/api/v1/vms/{vm["id"]}/reboot',
                                                'POST'), 409)
        self.assertNotIn('operation', p)

    def broker_request_as(self, who, path, method='GET'):
        return self.broker.request(method, path, None,
                                   headers={'Authorization': f'Bearer {self.tokens[who]}'})

    def test_prefer_respond_async_answers_at_once_with_the_operation(self):
        self.start()
        status, hdrs, out = self.api('POST', '/api/v1/vms', {'template': 'memtest'},
                                     headers={'Prefer': 'respond-async'})
        self.assertEqual(status, 202, out)
        self.assertEqual(out['vm']['state'], 'creating')
        self.assertEqual(hdrs['location'], f'/api/v1/vms/{out["vm"]["id"]}')
        op = out['operation']
        self.assertEqual((op['kind'], op['vm_id']), ('create', out['vm']['id']))
        ended = self.wait_operation(op['id'])
        self.assertEqual(ended['state'], 'succeeded', ended)
        self.assertEqual(self.get_vm(out['vm']['id'])['state'], 'running')
        # The delete, too, need not wait.
        status, _, out2 = self.api('DELETE', f'/api/v1/vms/{out["vm"]["id"]}',
                                   headers={'Prefer': 'respond-async'})
        self.assertEqual(status, 202, out2)
        self.assertEqual(self.wait_operation(out2['operation']['id'])['state'], 'succeeded')
        status, _, _ = self.api('GET', f'/api/v1/vms/{out["vm"]["id"]}')
        self.assertEqual(status, 404)

    def test_a_user_over_the_operation_cap_gets_429(self):
        self.start(libvirt={'stop_timeout_s': str(STOP_S)},
                   operations={'max_per_user': '1'})
        _, out = self.create()
        status, _, _ = self.api('POST', f'/api/v1/vms/{out["vm"]["id"]}/stop')
        self.assertEqual(status, 202)
        # The stop is alice's one operation: her next create is refused, untouched.
        p = self.problem(self.broker.request(
            'POST', '/api/v1/vms', {'template': 'memtest'},
            headers={'Authorization': f'Bearer {self.tokens["alice"]}'}), 429)
        self.assertIn('operations', p['detail'])
        self.assertEqual(self.db.scalar("SELECT count(*) FROM vms WHERE state = 'creating'"),
                         '0')
        # bob is not held back by alice's cap, nor an admin by any.
        self.assertEqual(self.api('POST', '/api/v1/vms', {'template': 'memtest'},
                                  who='bob')[0], 201)


if __name__ == '__main__':
    harness.main()
