# SPDX-License-Identifier: LGPL-2.1-or-later
# Start-up reconciliation and restarts: stopping vmbroker leaves guests running and the next
# start picks them up (consoles included); what changed in libvirt while vmbroker was down
# is repaired before it serves; domains without a row are adopted as `error` or destroyed.
import json
import os
import signal
import subprocess
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults  # noqa: E402
from faults import virsh  # noqa: E402

PROBE = os.environ.get('VMB_CONSOLE_PROBE')


class Startup(faults.FaultCase):
    def console_works(self, vm):
        status, made = self.api('POST', f'/api/v1/vms/{vm["id"]}/console', auth=self.admin)
        self.assertEqual(status, 201, made)
        frag = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(made['console_url']).fragment))
        status, s = self.api('POST', f'/api/v1/vms/{vm["id"]}/console/session',
                             {'ticket': frag['ticket']})
        self.assertEqual(status, 200, s)
        origin = f'http://{self.broker.host}:{self.broker.port}'
        r = subprocess.run([PROBE, self.broker.host, str(self.broker.port), s['ws_path'],
                            origin, s['password']], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        got = json.loads(r.stdout)
        self.assertEqual((got['status'], got['rfb'], got['error']), (101, 'RFB 003.008', ''),
                         got)

    def test_stopping_vmbroker_leaves_guests_running(self):
        self.start()
        self.admin = self.user('root')
        vm = self.create(self.admin, 'memtest-disk')
        self.console_works(vm)
        for how in (signal.SIGTERM, signal.SIGKILL):
            with self.subTest(signal=how.name):
                self.stop_broker(how)
                self.assertEqual(self.domstate(vm['name']), 'running')
                self.start()
                got = self.get_vm(self.admin, vm['id'])
                self.assertEqual((got['state'], got['vnc_port']), ('running', vm['vnc_port']))
                self.console_works(vm)
                self.assert_agree()

    def test_changes_while_down_are_repaired_before_serving(self):
        self.start()
        self.admin = self.user('root')
        off = self.create(self.admin, 'memtest-disk')
        gone = self.create(self.admin, 'memtest-disk')
        self.broker.kill()
        virsh('destroy', off['name'], check=True)
        virsh('destroy', gone['name'], check=True)
        virsh('undefine', gone['name'], check=True)
        self.start()
        # No waiting: the broker reconciled before it answered its first request.
        rows = self.assert_agree()
        self.assertEqual((rows[off['name']]['state'], rows[off['name']]['reason']),
                         ('stopped', 'destroyed outside vmbroker'))
        self.assertEqual((rows[gone['name']]['state'], rows[gone['name']]['reason']),
                         ('stopped', 'domain undefined outside vmbroker'))
        for vm in (off, gone):
            self.assertEqual(self.db.scalar(
                f"SELECT count(*) FROM port_leases WHERE vm_id = '{vm['id']}'"), '0')
        self.assertEqual(virsh('vol-list', self.prefix + 'disks').stdout.strip(), '')

    def forget_row(self, vm):
        self.db.psql(f"UPDATE port_leases SET vm_id = NULL, leased_at = NULL, "
                     f"released_at = now() WHERE vm_id = '{vm['id']}'; "
                     f"DELETE FROM console_tickets WHERE vm_id = '{vm['id']}'; "
                     f"DELETE FROM vms WHERE id = '{vm['id']}'")

    def test_domain_without_row_is_adopted_as_error(self):
        self.start()
        self.admin = self.user('root')
        vm = self.create(self.admin, 'memtest-disk')
        self.broker.kill()
        self.forget_row(vm)
        self.start()
        rows = self.assert_agree(allow_error=True)
        row = rows[vm['name']]
        self.assertEqual((row['id'], row['state'], row['ports']), (vm['id'], 'error', set()))
        self.assertIn('adopted', row['reason'])
        self.assertEqual(self.domstate(vm['name']), 'running')
        # The admin decides: a delete removes domain and disk.
        status, _ = self.api('DELETE', f'/api/v1/vms/{vm["id"]}', auth=self.admin)
        self.assertEqual(status, 204)
        self.assertIsNone(self.domstate(vm['name']))
        self.assertEqual(self.assert_agree(), {})

    def test_domain_without_row_is_destroyed_when_configured(self):
        self.start(libvirt={'adopt_orphans': 'destroy'})
        self.admin = self.user('root')
        vm = self.create(self.admin, 'memtest-disk')
        self.broker.kill()
        self.forget_row(vm)
        self.start()
        self.assertIsNone(self.domstate(vm['name']))
        self.assertEqual(self.assert_agree(), {})


if __name__ == '__main__':
    faults.main()
