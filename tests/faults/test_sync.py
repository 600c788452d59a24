# SPDX-License-Identifier: LGPL-2.1-or-later
# The periodic sync alone (libvirt.events = false, as if every event were missed) brings
# PostgreSQL in line with libvirt: a guest destroyed by hand is stopped, a stopped VM that an
# admin starts by hand is flagged `error` for a decision.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults  # noqa: E402
from faults import virsh  # noqa: E402


class Sync(faults.FaultCase):
    def test_periodic_sync_catches_what_events_missed(self):
        self.start(libvirt={'events': 'false', 'sync_interval_s': '1'})
        self.admin = self.user('root')
        vm = self.create(self.admin, 'memtest-disk')
        virsh('destroy', vm['name'], check=True)
        got = self.wait_state(self.admin, vm['id'], 'stopped')
        self.assertEqual(got['state_reason'], 'destroyed outside vmbroker')
        self.assertEqual(self.metric('vmbroker_libvirt_events_total'), 0)
        self.assert_agree()
        status, _ = self.api('DELETE', f'/api/v1/vms/{vm["id"]}', auth=self.admin)
        self.assertEqual(status, 204)
        # Without a disk (the one above is dropped with the stop), so virsh can start it.
        vm = self.create(self.admin, 'memtest')
        virsh('destroy', vm['name'], check=True)
        self.wait_state(self.admin, vm['id'], 'stopped')
        virsh('start', vm['name'], check=True)
        got = self.wait_state(self.admin, vm['id'], 'error')
        self.assertIn('running outside vmbroker', got['state_reason'])
        self.assert_agree(allow_error=True)
        status, _ = self.api('DELETE', f'/api/v1/vms/{vm["id"]}', auth=self.admin)
        self.assertEqual(status, 204)
        self.assertEqual(self.assert_agree(), {})


if __name__ == '__main__':
    faults.main()
