# SPDX-License-Identifier: LGPL-2.1-or-later
# Snapshots on the real stack: a running guest with a qcow2 disk is snapshotted (an ordinary
# libvirt snapshot with vmbroker's description), a pattern written to its disk afterwards is
# gone after the revert while the console keeps its ports and password, the bounds in number
# and in host bytes, per VM and per user, answer 429 and 507, a stopped and restarted VM
# (other ports) still reverts, and a deleted VM leaves none behind. Disk contents are read inside the running
# QEMU with its `qemu-io` monitor command, whose output goes to the domain's log.
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PROBE = os.environ['VMB_CONSOLE_PROBE']


virsh = harness.virsh


class Snapshots(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.templates = os.path.join(self.workdir, 'templates')
        os.makedirs(self.templates)
        with open(os.path.join(harness.SRC, 'templates', 'memtest.json')) as f:
            memtest = json.load(f)
        for name, fields in (('memtest', {}), ('disk', {'disk_gib': 1, 'boot': ['cdrom', 'hd']}),
                             ('bigdisk', {'disk_gib': 1, 'memory_mib': 1024,
                                          'boot': ['cdrom', 'hd']}),
                             ('hugemem', {'disk_gib': 1, 'memory_mib': 2048,
                                          'boot': ['cdrom', 'hd']})):
            with open(os.path.join(self.templates, name + '.json'), 'w') as f:
                json.dump({**memtest, **fields}, f)
        overrides = {'templates': {'dir': self.templates},
                     'libvirt': {'stop_timeout_s': '2'},
                     'limits': {'max_running_per_user': '3', 'snapshots_per_vm': '3',
                                'snapshots_per_user': '3', 'snapshot_disk_gib': '2',
                                'snapshot_gib_per_user': '1'}}
        self.migrate(self.config(**overrides))
        self.broker = self.serve(**overrides)
        self.origin = f'http://{self.broker.host}:{self.broker.port}'
        self.prefix = self.broker.sections['libvirt']['name_prefix']
        self.addCleanup(harness.remove_domains, self.prefix)
        self.alice = self.bearer_user('alice', self.broker.config)
        self.bob = self.bearer_user('bob', self.broker.config)

    def call(self, method, path, body=None, who=None, want=None):
        return self.api(method, path, body, who or self.alice, want)

    def create(self, template):
        made = self.call('POST', '/api/v1/vms', {'template': template}, want=201)
        vm = made['vm']
        self.addCleanup(self.broker.request, 'DELETE', f'/api/v1/vms/{vm["id"]}',
                        headers=self.alice)
        return vm

    def snap(self, vm, name, want=201):
        return self.call('POST', f'/api/v1/vms/{vm["id"]}/snapshots', {'name': name},
                         want=want)

    def names(self, vm):
        return [s['name'] for s in self.call('GET', f'/api/v1/vms/{vm["id"]}/snapshots',
                                             want=200)]

    def qemu_io(self, vm, command):
        return harness.qemu_io(self, vm['name'], command)

    def graphics(self, vm):
        xml = virsh('dumpxml', '--security-info', vm['name']).stdout
        g = re.search(r"<graphics type='vnc'[^>]*>", xml).group(0)
        return {k: re.search(f"{k}='([^']*)'", g).group(1) for k in ('port', 'websocket',
                                                                     'passwd')}

    def test_snapshot_and_revert_bring_the_disk_back_and_keep_the_console(self):
        vm = self.create('disk')
        self.assertEqual(self.names(vm), [])
        before = self.graphics(vm)
        made = self.snap(vm, 'clean')
        self.assertEqual(made['name'], 'clean')
        listed = virsh('snapshot-list', vm['name'], '--name').stdout.split()
        self.assertEqual(listed, ['clean'])
        info = virsh('snapshot-dumpxml', vm['name'], 'clean').stdout
        self.assertIn(f'vmbroker: snapshot \'clean\' of VM {vm["id"]} (owner alice)',
                      info.replace('&apos;', "'"))
        [s] = self.call('GET', f'/api/v1/vms/{vm["id"]}/snapshots', want=200)
        self.assertEqual((s['name'], s['state']), ('clean', 'running'))

        self.assertIn('wrote 4096/4096', self.qemu_io(vm, 'write -P 0xab 0 4k'))
        self.assertNotIn('verification failed', self.qemu_io(vm, 'read -P 0xab 0 4k'))
        back = self.call('POST', f'/api/v1/vms/{vm["id"]}/snapshots/clean/revert',
                            want=200)
        self.assertEqual((back['state'], back['vnc_port'], back['ws_port']),
                         ('running', vm['vnc_port'], vm['ws_port']))
        self.assertNotIn('verification failed', self.qemu_io(vm, 'read -P 0 0 4k'))
        self.assertIn('verification failed', self.qemu_io(vm, 'read -P 0xab 0 4k'))
        self.assertEqual(self.graphics(vm), before)
        # The console the student had works as before: same port, same password.
        t = self.call('POST', f'/api/v1/vms/{vm["id"]}/console', want=201)
        probe = subprocess.run([PROBE, self.broker.host, str(self.broker.port), t['ws_path'],
                                self.origin, before['passwd']], capture_output=True,
                               text=True, timeout=120)
        self.assertEqual(json.loads(probe.stdout)['status'], 101, probe.stdout)
        self.assertGreater(json.loads(probe.stdout)['width'], 0, probe.stdout)
        actions = [r[0] for r in self.db.psql(
            "SELECT action FROM audit_log WHERE action LIKE 'vm.snapshot.%' ORDER BY id")]
        self.assertEqual(actions, ['vm.snapshot.create', 'vm.snapshot.revert'])

    def test_bounds_refusals_and_cleanup(self):
        one, two = self.create('disk'), self.create('disk')
        self.snap(one, 'a')
        self.call('POST', f'/api/v1/vms/{one["id"]}/snapshots', who=self.alice, want=201)
        self.snap(one, 'c')
        self.assertIn('limits.snapshots_per_vm', self.snap(one, 'd', want=429)['detail'])
        self.assertIn('limits.snapshots_per_user', self.snap(two, 'x', want=429)['detail'])
        self.call('DELETE', f'/api/v1/vms/{one["id"]}/snapshots/c', want=204)
        self.assertEqual(len(self.names(one)), 2)
        self.snap(two, 'x')
        self.assertEqual(self.names(two), ['x'])

        self.snap(one, 'Bad Name', want=400)
        self.call('POST', f'/api/v1/vms/{one["id"]}/snapshots/nope/revert', want=404)
        self.call('DELETE', f'/api/v1/vms/{one["id"]}/snapshots/nope', want=404)
        self.call('GET', f'/api/v1/vms/{one["id"]}/snapshots', who=self.bob, want=404)
        self.call('POST', f'/api/v1/vms/{one["id"]}/snapshots', {'name': 'e'}, who=self.bob,
                  want=404)
        diskless = self.create('memtest')
        self.assertIn('no disk', self.snap(diskless, 'e', want=409)['detail'])

        # A stopped VM keeps its disk and the snapshots in it; started again with other
        # ports and another VNC password, it reverts and keeps those.
        self.call('POST', f'/api/v1/vms/{two["id"]}/stop', want=202)
        self.wait_state(two, 'stopped')
        self.assertEqual(self.names(two), ['x'])
        self.assertIn('while it runs', self.snap(two, 'y', want=409)['detail'])
        self.call('POST', f'/api/v1/vms/{two["id"]}/start', want=200)
        console = self.graphics(two)
        self.call('POST', f'/api/v1/vms/{two["id"]}/snapshots/x/revert', want=200)
        self.assertEqual(self.graphics(two), console)
        # A deleted VM leaves no snapshot and no domain behind.
        self.call('DELETE', f'/api/v1/vms/{one["id"]}', want=204)
        self.assertNotIn(one['name'], virsh('list', '--all', '--name').stdout.split())
        self.call('DELETE', f'/api/v1/vms/{diskless["id"]}', want=204)

        # Sizes: 1 GiB of memory (saved with the snapshot) fits a VM's 2 GiB but passes the
        # user's 1 GiB; 2 GiB passes the VM's.
        big = self.create('bigdisk')
        self.assertIn('limits.snapshot_gib_per_user', self.snap(big, 'z', want=507)['detail'])
        self.call('DELETE', f'/api/v1/vms/{big["id"]}', want=204)
        huge = self.create('hugemem')
        self.assertIn('limits.snapshot_disk_gib', self.snap(huge, 'z', want=507)['detail'])

    def wait_state(self, vm, state):
        deadline = time.monotonic() + harness.WAIT_S
        while time.monotonic() < deadline:
            if self.call('GET', f'/api/v1/vms/{vm["id"]}', want=200)['state'] == state:
                return
            time.sleep(0.3)
        self.fail(f'VM never {state}')


if __name__ == '__main__':
    harness.main()
