# SPDX-License-Identifier: LGPL-2.1-or-later
# Persistent disks on the real stack: a persistent overlay template's disk is listed with its
# sizes and VM, keeps what the guest wrote across a stop and start, refuses a delete or reset
# while its VM runs, comes back empty after a reset, is another user's business to nobody,
# is deleted, and one more over limits.disk_gib_per_user answers 507. The guest's disk is
# written and read inside its QEMU (harness.qemu_io).
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

MIB = 1 << 20


class Disks(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.templates = os.path.join(self.workdir, 'templates')
        os.makedirs(self.templates)
        overlay = {'kind': 'overlay', 'base_format': 'qcow2', 'persistent': True,
                   'memory_mib': 256, 'vcpus': 1, 'video': 'vga', 'disk_bus': 'virtio',
                   'network': 'none', 'boot': ['hd']}
        for name, base in (('keep', 'tiny.qcow2'), ('huge', 'huge.qcow2')):
            with open(os.path.join(self.templates, name + '.json'), 'w') as f:
                json.dump({**overlay, 'base_image': base}, f)
        overrides = {'templates': {'dir': self.templates},
                     'libvirt': {'stop_timeout_s': '2'},
                     'limits': {'max_running_per_user': '3', 'disk_gib_per_user': '2'}}
        self.migrate(self.config(**overrides))
        self.broker = self.serve(**overrides)
        base = os.path.join(self.broker.sections['storage']['dir'], 'base')
        os.makedirs(base, exist_ok=True)
        for name, size in (('tiny.qcow2', '64M'), ('huge.qcow2', '3G')):
            subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2',
                            os.path.join(base, name), size], check=True)
        self.prefix = self.broker.sections['libvirt']['name_prefix']
        self.addCleanup(harness.remove_domains, self.prefix)
        self.alice = self.bearer_user('alice', self.broker.config)
        self.bob = self.bearer_user('bob', self.broker.config)

    def call(self, method, path, body=None, who=None, want=None):
        return self.api(method, path, body, who or self.alice, want)

    def power(self, vm, action, state):
        self.call('POST', f'/api/v1/vms/{vm["id"]}/{action}',
                  want=202 if action == 'stop' else 200)
        deadline = time.monotonic() + harness.WAIT_S
        while self.call('GET', f'/api/v1/vms/{vm["id"]}', want=200)['state'] != state:
            self.assertLess(time.monotonic(), deadline, f'VM never {state}')
            time.sleep(0.3)

    def test_a_persistent_disk_is_listed_kept_reset_and_deleted(self):
        vm = self.call('POST', '/api/v1/vms', {'template': 'keep'}, want=201)['vm']
        [disk] = self.call('GET', '/api/v1/disks', want=200)
        self.assertEqual((disk['id'], disk['owner'], disk['template'], disk['vm_id']),
                         ('keep@alice', 'alice', 'keep', vm['id']))
        self.assertEqual(disk['capacity_bytes'], 64 * MIB)
        self.assertGreater(disk['allocation_bytes'], 0)
        self.assertEqual(self.call('GET', '/api/v1/disks', who=self.bob, want=200), [])
        self.call('DELETE', '/api/v1/disks/keep@alice', who=self.bob, want=404)
        self.assertIn('stop it first', self.call('DELETE', '/api/v1/disks/keep@alice',
                                                 want=409)['detail'])
        self.call('POST', '/api/v1/disks/keep@alice/reset', want=409)

        self.assertIn('wrote 4096/4096', harness.qemu_io(self, vm['name'], 'write -P 0xab 0 4k'))
        self.power(vm, 'stop', 'stopped')
        self.power(vm, 'start', 'running')
        self.assertNotIn('verification failed',
                         harness.qemu_io(self, vm['name'], 'read -P 0xab 0 4k'))
        self.power(vm, 'stop', 'stopped')

        self.call('POST', '/api/v1/disks/keep@alice/reset', want=204)
        self.power(vm, 'start', 'running')
        self.assertNotIn('verification failed', harness.qemu_io(self, vm['name'], 'read -P 0 0 4k'))
        self.power(vm, 'stop', 'stopped')

        self.call('DELETE', '/api/v1/disks/keep@alice', want=204)
        self.assertEqual(self.call('GET', '/api/v1/disks', want=200), [])
        self.call('DELETE', '/api/v1/disks/keep@alice', want=404)
        actions = [r[0] for r in self.db.psql(
            "SELECT action || ' ' || object_id FROM audit_log WHERE object_kind = 'disk'"
            " ORDER BY id")]
        self.assertEqual(actions, ['disk.reset keep@alice', 'disk.delete keep@alice'])

    def test_a_disk_over_the_quota_is_refused(self):
        self.call('POST', '/api/v1/vms', {'template': 'keep'}, want=201)
        problem = self.call('POST', '/api/v1/vms', {'template': 'huge'}, want=507)
        self.assertIn('limits.disk_gib_per_user', problem['detail'])
        self.assertEqual([d['id'] for d in self.call('GET', '/api/v1/disks', want=200)],
                         ['keep@alice'])


if __name__ == '__main__':
    harness.main()
