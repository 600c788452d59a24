# SPDX-License-Identifier: LGPL-2.1-or-later
# Base images on the real stack: an admin uploads a qcow2 (and a raw one, its format taken
# from the name) that libvirt's base pool then holds; qemu-img refuses one with a backing
# file, one with an external data file, one that is not what it claims, one too large, and
# no refused upload leaves a file; users may not upload or list; an overlay template on the
# uploaded image boots; an image a template names, or a disk is an overlay of, is not deleted;
# `vmbroker image list --json` says what the API says.
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

MIB = 1 << 20


def qemu_img(*args):
    subprocess.run(['qemu-img', *args], check=True, capture_output=True)


class Images(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.templates = os.path.join(self.workdir, 'templates')
        os.makedirs(self.templates)
        self.template_file = os.path.join(self.templates, 'fromimg.json')
        with open(self.template_file, 'w') as f:
            json.dump({'kind': 'overlay', 'base_image': 'good.qcow2', 'base_format': 'qcow2',
                       'memory_mib': 256, 'vcpus': 1, 'video': 'vga', 'disk_bus': 'virtio',
                       'network': 'none', 'boot': ['hd']}, f)
        overrides = {'templates': {'dir': self.templates},
                     'storage': {'max_image_bytes': str(48 * MIB)}}
        self.migrate(self.config(**overrides))
        self.broker = self.serve(**overrides)
        self.prefix = self.broker.sections['libvirt']['name_prefix']
        self.addCleanup(harness.remove_domains, self.prefix)
        self.root = self.bearer_user('root', self.broker.config, role='admin')
        self.alice = self.bearer_user('alice', self.broker.config)
        self.files = os.path.join(self.workdir, 'files')
        os.makedirs(self.files)

    def file(self, name, *create):
        path = os.path.join(self.files, name)
        if create:
            qemu_img('create', '-q', *create[:-1], path, create[-1])
        return path

    def bytes_file(self, name, data):
        path = os.path.join(self.files, name)
        with open(path, 'wb') as f:
            f.write(data)
        return path

    def upload(self, name, path, who=None, query='', ctype='application/octet-stream'):
        with open(path, 'rb') as f:
            data = f.read()
        status, _, body = self.broker.raw_request(
            'PUT', f'/api/v1/images/{name}{query}', data,
            {'Content-Type': ctype, 'Content-Length': str(len(data)),
             **(who or self.root)})
        return status, json.loads(body) if body else None

    def uploads_left(self):
        d = os.path.join(self.broker.sections['storage']['dir'], 'uploads')
        return os.listdir(d) if os.path.isdir(d) else []

    def test_uploads_are_checked_listed_booted_and_deleted_when_unused(self):
        good = self.file('good.qcow2', '-f', 'qcow2', '32M')
        status, img = self.upload('good.qcow2', good)
        self.assertEqual(status, 201, img)
        self.assertEqual((img['name'], img['format'], img['capacity_bytes']),
                         ('good.qcow2', 'qcow2', 32 * MIB))
        pool = f'{self.prefix}base'
        self.assertIn('good.qcow2', harness.virsh('vol-list', pool).stdout)
        self.assertEqual(self.upload('good.qcow2', good)[0], 409)

        refused = {
            'backed.qcow2': (self.file('backed.qcow2', '-f', 'qcow2', '-F', 'qcow2', '-b', good,
                                       '32M'), 422, 'backing file'),
            'data.qcow2': (self.file('data.qcow2', '-f', 'qcow2', '-o',
                                     f'data_file={self.files}/data.raw', '32M'), 422,
                           'external file'),
            'fake.qcow2': (self.bytes_file('fake.qcow2', harness.small_iso(self, 'fake')), 422,
                           'cannot be read as a qcow2'),
            'big.qcow2': (self.file('big.qcow2', '-f', 'qcow2', '64M'), 413, 'virtual size'),
        }
        for name, (path, want, words) in refused.items():
            with self.subTest(name=name):
                status, problem = self.upload(name, path)
                self.assertEqual(status, want, problem)
                self.assertIn(words, problem['detail'])
        self.assertEqual(self.upload('x.qcow2', good, who=self.alice)[0], 403)
        self.assertEqual(self.upload('x.qcow2', good, ctype='text/plain')[0], 415)
        self.assertEqual(self.upload('noformat', good)[0], 400)
        self.assertEqual(self.uploads_left(), [])

        raw = os.path.join(self.files, 'disk.img')
        with open(raw, 'wb') as f:
            f.truncate(4 * MIB)
        self.assertEqual(self.upload('disk.img', raw)[1]['format'], 'raw')

        listed = self.api('GET', '/api/v1/images', auth=self.root, want=200)
        self.assertEqual([(i['name'], i['format'], i['templates']) for i in listed],
                         [('disk.img', 'raw', []), ('good.qcow2', 'qcow2', ['fromimg'])])
        self.api('GET', '/api/v1/images', auth=self.alice, want=403)
        r = self.vmb('image', 'list', '--json', config=self.broker.config)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([i['name'] for i in json.loads(r.stdout)], ['disk.img', 'good.qcow2'])

        # The uploaded image boots an overlay template.
        vm = self.api('POST', '/api/v1/vms', {'template': 'fromimg'}, auth=self.alice,
                      want=201)['vm']
        self.assertEqual(vm['state'], 'running')
        self.assertIn('fromimg', self.api('DELETE', '/api/v1/images/good.qcow2', auth=self.root,
                                          want=409)['detail'])
        # Without its template, the image still backs the VM's disk.
        os.unlink(self.template_file)
        self.broker.signal(signal.SIGHUP)
        deadline = time.monotonic() + harness.WAIT_S
        while 'removed: fromimg' not in self.broker.log():
            self.assertLess(time.monotonic(), deadline, 'SIGHUP did not drop the template')
            time.sleep(0.1)
        self.assertIn('overlays of good.qcow2', self.api(
            'DELETE', '/api/v1/images/good.qcow2', auth=self.root, want=409)['detail'])
        self.api('DELETE', f'/api/v1/vms/{vm["id"]}', auth=self.alice, want=204)
        self.api('DELETE', '/api/v1/images/good.qcow2', auth=self.root, want=204)
        self.api('DELETE', '/api/v1/images/good.qcow2', auth=self.root, want=404)
        self.api('DELETE', '/api/v1/images/disk.img', auth=self.alice, want=403)
        self.assertEqual([i['name'] for i in self.api('GET', '/api/v1/images', auth=self.root,
                                                      want=200)], ['disk.img'])
        actions = [r[0] for r in self.db.psql(
            "SELECT action || ' ' || object_id FROM audit_log WHERE object_kind = 'image'"
            " ORDER BY id")]
        self.assertEqual(actions, ['image.upload good.qcow2', 'image.upload disk.img',
                                   'image.delete good.qcow2'])


if __name__ == '__main__':
    harness.main()
