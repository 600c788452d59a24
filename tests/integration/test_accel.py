# SPDX-License-Identifier: LGPL-2.1-or-later
# The accelerator on the real stack: what `auto` decides on this host (KVM only where a probe
# guest reaches 64-bit mode under it), that the decision is visible in readyz, /metrics, the
# vm object and one log line, that a VM's domain really has that type, and that `kvm` forced
# on a host that cannot run it answers 503 with the reason instead of failing guests. Where
# the host has a /dev/kvm, it is made root-only for a moment (as on a machine without udev)
# and the broker must fall back to TCG and say how to fix it.
import json
import os
import re
import stat
import sys
import time
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_api_vms import VmCase, virsh  # noqa: E402

ACCEL_LOG = re.compile(r'accelerator: ')


def domain_type(name):
    r = virsh('dumpxml', name, check=True)
    return ET.fromstring(r.stdout).get('type')


class AccelTest(VmCase):

    def decided_readyz(self):
        """(status, body) of /readyz once the accelerator is decided (at start, or as soon
        as libvirt answers: another test may be restarting the shared libvirtd)."""
        deadline = time.monotonic() + harness.WAIT_S
        while True:
            status, _, body = self.broker.get_json('/readyz')
            if body['checks'].get('accelerator') != 'undecided':
                return status, body
            self.assertLess(time.monotonic(), deadline, body)
            time.sleep(0.2)

    def readyz(self, expect=200):
        status, body = self.decided_readyz()
        self.assertEqual(status, expect, body)
        return body

    def decision_lines(self):
        return [l for l in self.broker.log().splitlines() if ACCEL_LOG.search(l)]

    def assert_decided_auto(self):
        """The auto decision, checked against the host; returns it."""
        acc = self.readyz()['accelerator']
        self.assertEqual(acc['mode'], 'auto')
        self.assertIn(acc['accelerator'], ('kvm', 'qemu'))
        self.assertTrue(acc['finding'])
        for word in ('/usr/', 'libvirt:', 'error:'):
            self.assertNotIn(word, acc['finding'])
        if not os.path.exists('/dev/kvm'):
            self.assertEqual(acc['accelerator'], 'qemu', acc)
            self.assertIn('no KVM', acc['finding'])
        if acc['accelerator'] == 'qemu':
            self.assertTrue(acc['fix'], acc)
        return acc

    def test_auto_uses_what_works_here_and_says_so(self):
        self.start()
        acc = self.assert_decided_auto()
        _, vm = self.create()
        vm = vm['vm']
        self.assertEqual(vm['accelerator'], acc['accelerator'])
        self.assertEqual(domain_type(vm['name']), acc['accelerator'])
        self.assertEqual(self.get_vm(vm['id'])['accelerator'], acc['accelerator'])
        status, _, data = self.broker.request('GET', '/metrics')
        self.assertEqual(status, 200)
        self.assertIn(f'vmbroker_accelerator_info{{accelerator="{acc["accelerator"]}",'
                      f'mode="auto"}} 1\n', data.decode())
        self.delete(vm['id'])
        # A second create does not decide (or log) again.
        _, again = self.create()
        self.delete(again['vm']['id'])
        lines = self.decision_lines()
        self.assertEqual(len(lines), 1, lines)
        if acc['accelerator'] == 'qemu':
            self.assertIn('WARN', lines[0].upper())
            self.assertIn('TCG', lines[0])
            self.assertIn('fix: ', lines[0])

    def test_root_only_dev_kvm_means_tcg(self):
        """/dev/kvm as a machine without udev leaves it: QEMU (libvirt-qemu) may not open it."""
        if os.path.exists('/dev/kvm'):
            st = os.stat('/dev/kvm')
            self.addCleanup(os.chown, '/dev/kvm', st.st_uid, st.st_gid)
            self.addCleanup(os.chmod, '/dev/kvm', stat.S_IMODE(st.st_mode))
            os.chown('/dev/kvm', 0, 0)
            os.chmod('/dev/kvm', 0o600)
        self.start()
        acc = self.assert_decided_auto()
        self.assertEqual(acc['accelerator'], 'qemu', acc)
        if os.path.exists('/dev/kvm'):
            self.assertTrue('/dev/kvm' in acc['fix'] or 'no KVM' in acc['finding'], acc)
        _, vm = self.create()
        self.assertEqual(vm['vm']['accelerator'], 'qemu')
        self.assertEqual(domain_type(vm['vm']['name']), 'qemu')
        self.delete(vm['vm']['id'])

    def test_forced_kvm_where_it_cannot_run(self):
        """`kvm` forced: 503 with the reason where KVM is unusable, KVM guests where it is."""
        self.start(libvirt={'domain_type': 'kvm'})
        status, body = self.decided_readyz()
        acc = body['accelerator']
        self.assertEqual(acc['mode'], 'kvm')
        if acc['accelerator'] == 'kvm':
            self.assertEqual(status, 200, body)
            _, vm = self.create()
            self.assertEqual(domain_type(vm['vm']['name']), 'kvm')
            self.delete(vm['vm']['id'])
            return
        self.assertIsNone(acc['accelerator'])
        self.assertEqual(status, 503, body)
        self.assertEqual(body['checks']['accelerator'], 'unusable')
        self.assertIn('accelerator', body['detail'])
        resp = self.api('POST', '/api/v1/vms', {'template': 'memtest'})
        p = self.problem(resp, 503)
        self.assertIn('KVM only', p['detail'])
        self.assertTrue(p['type'].endswith('host-unsuitable'), p)
        # Nothing was made: no row, no domain, no lease.
        self.assertEqual(self.db.scalar('SELECT count(*) FROM vms'), '0')
        self.assertEqual(self.db.scalar('SELECT count(*) FROM port_leases WHERE vm_id IS NOT '
                                        'NULL'), '0')
        self.assertEqual([l for l in virsh('list', '--all', '--name').stdout.split()
                          if l.startswith(self.prefix)], [])
        lines = self.decision_lines()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn('creates answer 503', lines[0])


if __name__ == '__main__':
    harness.main()
