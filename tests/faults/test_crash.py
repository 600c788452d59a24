# SPDX-License-Identifier: LGPL-2.1-or-later
# Crash safety: vmbroker SIGKILLs itself (VMB_CRASH_AT) at every step of a create, delete,
# stop and start; the next start takes the operation back, reconciles the VM and finishes
# or undoes it: no orphan domain, volume or lease, no operation left behind, and rows,
# `virsh list --all`, `virsh vol-list` and the leases agree.
import http.client
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults  # noqa: E402


class Crash(faults.FaultCase):
    def setUp(self):
        super().setUp()
        self.start()
        self.admin = self.user('root')

    def crash_during(self, point, method, path, body=None):
        """Restarts the broker to crash at POINT, makes the request, restarts it normally."""
        self.broker.kill()
        self.start_crashing(point)
        try:
            status, data = self.api(method, path, body, self.admin)
        except (http.client.HTTPException, ConnectionError):
            status, data = None, None
        # A stop answers (202) before its job reaches the point: wait for the process.
        self.assertEqual(self.broker.proc.wait(timeout=120), -9,
                         f'no crash at {point}: {status} {data}\n{self.broker.log()}')
        self.start()
        self.wait_operations_idle()
        # Each operation ran to an end exactly once more at most: none is left queued or
        # running, and none ran on a third attempt.
        self.assertEqual(self.db.scalar('SELECT count(*) FROM operations WHERE attempts > 2'),
                         '0')

    def vm_ids(self):
        return {r['id'] for r in self.rows().values()}

    def test_create_crashes(self):
        for point in ('create:after-insert', 'create:after-disk', 'create:after-define',
                      'create:after-start', 'create:after-running'):
            with self.subTest(point):
                before = self.vm_ids()
                self.crash_during(point, 'POST', '/api/v1/vms', {'template': 'memtest-disk'})
                rows = self.assert_agree()
                new = [r for r in rows.values() if r['id'] not in before]
                # Cut short in the request (the operation still queued), the create is
                # finished by the next broker; cut short in its worker, it is undone, or
                # finished once the VM ran.
                if point in ('create:after-insert', 'create:after-running'):
                    self.assertEqual([r['state'] for r in new], ['running'])
                    status, _ = self.api('DELETE', f'/api/v1/vms/{new[0]["id"]}',
                                         auth=self.admin)
                    self.assertEqual(status, 204)
                else:
                    self.assertEqual(new, [], 'a create cut short leaves no row')
                self.assert_agree()
                self.assertEqual(self.db.scalar(
                    'SELECT count(*) FROM port_leases WHERE vm_id IS NOT NULL'), '0')

    def test_delete_crashes(self):
        for point in ('delete:after-destroy', 'delete:after-undefine'):
            with self.subTest(point):
                vm = self.create(self.admin, 'memtest-disk')
                self.crash_during(point, 'DELETE', f'/api/v1/vms/{vm["id"]}')
                # The next broker finished the delete.
                self.assertNotIn(vm['name'], self.assert_agree())
                self.assertRegex(vm['id'], r'^[0-9a-f-]{36}$')
                self.assertEqual(self.db.scalar(
                    "SELECT state || ' ' || attempts FROM operations"
                    f" WHERE vm_id = '{vm['id']}' AND kind = 'delete'"), 'succeeded 2')

    def test_stop_and_start_crashes(self):
        # Each stop point finds the VM running, each start point finds it stopped.
        vm = self.create(self.admin, 'memtest-disk')
        for point in ('stop:after-stopping', 'stop:after-destroy'):
            with self.subTest(point):
                self.crash_during(point, 'POST', f'/api/v1/vms/{vm["id"]}/stop')
                self.assertEqual(self.assert_agree()[vm['name']]['state'], 'stopped')
                status, got = self.api('POST', f'/api/v1/vms/{vm["id"]}/start', auth=self.admin)
                self.assertEqual(status, 200, got)
                self.assert_agree()
        status, got = self.api('POST', f'/api/v1/vms/{vm["id"]}/stop', auth=self.admin)
        self.assertEqual(status, 202, got)
        self.wait_state(self.admin, vm['id'], 'stopped')
        for point in ('start:after-lease', 'start:after-define'):
            with self.subTest(point):
                self.crash_during(point, 'POST', f'/api/v1/vms/{vm["id"]}/start')
                # The next broker reconciled the VM (stopped) and ran the start again.
                self.assertEqual(self.assert_agree()[vm['name']]['state'], 'running')
                status, got = self.api('POST', f'/api/v1/vms/{vm["id"]}/stop', auth=self.admin)
                self.assertEqual(status, 202, got)
                self.wait_state(self.admin, vm['id'], 'stopped')

    def test_every_operation_kind_at_claim_and_before_its_end(self):
        # A crash right after a worker claimed the operation, and right before it recorded
        # the end: the next broker takes it back (attempt 2), reconciles the VM and ends the
        # operation as the VM then is. A create whose guest had not run is undone (failed,
        # no row); every other kind is finished.
        kinds = (('stop', 'POST', '/api/v1/vms/{id}/stop', 'stopped'),
                 ('start', 'POST', '/api/v1/vms/{id}/start', 'running'),
                 ('reboot', 'POST', '/api/v1/vms/{id}/reboot', 'running'),
                 ('delete', 'DELETE', '/api/v1/vms/{id}', None))
        for point in ('op:after-claim', 'op:before-finish'):
            with self.subTest(point=point, kind='create'):
                self.crash_during(point, 'POST', '/api/v1/vms', {'template': 'memtest-disk'})
                rows = self.assert_agree()
                op = self.last_operation('create')
                if point == 'op:after-claim':
                    self.assertEqual((rows, op), ({}, ['failed', '2']))
                    vm = self.create(self.admin, 'memtest-disk')['id']
                else:
                    self.assertEqual(op, ['succeeded', '2'])
                    self.assertEqual([r['state'] for r in rows.values()], ['running'])
                    vm = next(iter(rows.values()))['id']
            for kind, method, path, state in kinds:
                with self.subTest(point=point, kind=kind):
                    self.crash_during(point, method, path.format(id=vm))
                    self.assertEqual(self.last_operation(kind), ['succeeded', '2'])
                    rows = self.assert_agree()
                    self.assertEqual([r['state'] for r in rows.values()],
                                     [state] if state else [])

    def last_operation(self, kind):
        """[state, attempts] of the newest operation of KIND."""
        return self.db.psql("SELECT state, attempts FROM operations"
                            f" WHERE kind = '{kind}' ORDER BY created_at DESC LIMIT 1")[0]

if __name__ == '__main__':
    faults.main()
