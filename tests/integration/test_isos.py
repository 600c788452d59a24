# SPDX-License-Identifier: LGPL-2.1-or-later
# ISO uploads end to end: a real ISO is stored once per content and boots; everything else
# (not an ISO, a qcow2, empty, truncated, too large, over quota, bad names, a client that
# leaves mid-stream, a full disk) gets its status and leaves no file and no row behind.
import hashlib
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

MEMTEST = '/usr/lib/memtest86+/memtest86+x64.iso'
PASSWORD = 'a good password'


def virsh(*args):
    return subprocess.run(['virsh', '-q', '-c', 'qemu:///system', *args],
                          capture_output=True, text=True, timeout=60)


class Isos(harness.TestCase):
    def start(self, **overrides):
        overrides.setdefault('libvirt', {})['stop_timeout_s'] = '2'
        self.migrate(self.config(**overrides))
        self.broker = self.serve(**overrides)
        self.storage = self.broker.sections['storage']['dir']
        self.prefix = self.broker.sections['libvirt']['name_prefix']
        self.addCleanup(self.remove_libvirt_objects)
        return self.broker

    def remove_libvirt_objects(self):
        for name in virsh('list', '--all', '--name').stdout.split():
            if name.startswith(self.prefix):
                virsh('destroy', name)
                virsh('undefine', name, '--remove-all-storage')
        for kind in ('isos', 'base', 'disks'):
            virsh('pool-destroy', self.prefix + kind)
            virsh('pool-undefine', self.prefix + kind)

    def user(self, name, role='user'):
        r = self.vmb('user', 'add', name, '--role', role, '--password-stdin',
                     input=PASSWORD + '\n', config=self.broker.config)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.vmb('token', 'create', name, config=self.broker.config)
        return {'Authorization': 'Bearer ' + r.stdout.strip()}

    def upload(self, auth, name, data, ctype='application/octet-stream'):
        return self.broker.raw_request('PUT', f'/api/v1/isos/{name}', data,
                                       {'Content-Type': ctype, **auth})

    def files(self):
        """Every file under storage.dir's isos/ and uploads/ folders."""
        out = []
        for sub in ('isos', 'uploads'):
            d = os.path.join(self.storage, sub)
            if os.path.isdir(d):
                out += [os.path.join(sub, f) for f in os.listdir(d)]
        return sorted(out)

    def assertNothingLeft(self, before_files, before_rows='0'):
        self.assertEqual(self.files(), before_files)
        self.assertEqual(self.db.scalar('SELECT count(*) FROM isos'), before_rows)

    def test_real_iso_is_stored_once_per_content_and_boots(self):
        self.start()
        alice, bob, admin = self.user('alice'), self.user('bob'), self.user('root', 'admin')
        data = open(MEMTEST, 'rb').read()
        status, hdrs, body = self.upload(alice, 'memtest%20x64', data)
        self.assertEqual(status, 201, body)
        iso = json.loads(body)
        self.assertEqual(iso['sha256'], hashlib.sha256(data).hexdigest())
        self.assertEqual((iso['size'], iso['name'], iso['public']), (len(data), 'memtest x64',
                                                                     False))
        stored = f'{self.prefix}iso-{iso["sha256"]}.iso'
        self.assertEqual(self.files(), [os.path.join('isos', stored)])
        self.assertIn(stored, virsh('vol-list', self.prefix + 'isos').stdout)
        # The same bytes again: the same ISO. Bob's copy: his own row, the same file.
        status, _, again = self.upload(alice, 'again', data)
        self.assertEqual((status, json.loads(again)['id']), (200, iso['id']))
        status, _, bobs = self.upload(bob, 'mine', data)
        self.assertEqual(status, 201)
        self.assertNotEqual(json.loads(bobs)['id'], iso['id'])
        self.assertEqual(len(self.files()), 1)
        # Private ISOs stay private; an admin's upload is everyone's.
        _, _, listed = self.broker.get_json('/api/v1/isos', headers=bob)
        self.assertEqual([i['name'] for i in listed], ['mine'])
        status, _, pub = self.upload(admin, 'course', harness.small_iso(self, 'course'))
        self.assertEqual(status, 201)
        self.assertTrue(json.loads(pub)['public'])
        _, _, listed = self.broker.get_json('/api/v1/isos', headers=bob)
        self.assertEqual(sorted(i['name'] for i in listed), ['course', 'mine'])
        # Boot it with a blank disk; the ISO cannot go while the VM uses it.
        status, _, made = self.broker.request('POST', '/api/v1/vms', {
            'template': 'iso-blank-disk', 'iso': iso['id']}, headers=alice)
        self.assertEqual(status, 201, made)
        vm = json.loads(made)['vm']
        self.assertEqual(vm['state'], 'running')
        disk = f'{vm["name"]}-disk0.qcow2'
        self.assertIn(disk, virsh('vol-list', self.prefix + 'disks').stdout)
        self.assertIn(stored, virsh('dumpxml', vm['name']).stdout)
        status, _, _ = self.broker.request('DELETE', f'/api/v1/isos/{iso["id"]}', headers=alice)
        self.assertEqual(status, 409)
        status, _, _ = self.broker.request('DELETE', f'/api/v1/vms/{vm["id"]}', headers=alice)
        self.assertEqual(status, 204)
        self.assertNotIn(disk, virsh('vol-list', self.prefix + 'disks').stdout)
        # Alice's row goes; Bob's keeps the file; the last one takes it.
        for who, i in ((alice, iso['id']), (bob, json.loads(bobs)['id'])):
            status, _, _ = self.broker.request('DELETE', f'/api/v1/isos/{i}', headers=who)
            self.assertEqual(status, 204)
        self.assertNotIn(os.path.join('isos', stored), self.files())

    def test_iso_by_name_own_first_then_shared_and_ambiguous_is_422(self):
        self.start()
        alice, bob, admin = self.user('alice'), self.user('bob'), self.user('root', 'admin')
        ids = {}
        for who, label, name, tag in ((alice, 'alice', 'course', 'a1'),
                                      (admin, 'shared', 'course', 's1'),
                                      (admin, 'twin1', 'twins', 't1'),
                                      (admin, 'twin2', 'twins', 't2')):
            status, _, body = self.upload(who, name, harness.small_iso(self, tag))
            self.assertEqual(status, 201, body)
            ids[label] = json.loads(body)['id']

        def create(auth, iso):
            status, _, body = self.broker.request('POST', '/api/v1/vms', {
                'template': 'iso-blank-disk', 'iso': iso}, headers=auth)
            made = json.loads(body)
            if status == 201:
                self.addCleanup(self.broker.request, 'DELETE',
                                f'/api/v1/vms/{made["vm"]["id"]}', headers=admin)
            return status, made

        # Alice's own 'course' wins over the shared one; Bob has none, so his is the shared.
        status, made = create(alice, 'course')
        self.assertEqual(status, 201, made)
        self.assertEqual(made['vm']['iso'], ids['alice'])
        status, made = create(bob, 'course')
        self.assertEqual(status, 201, made)
        self.assertEqual(made['vm']['iso'], ids['shared'])
        # Two shared ISOs of one name: ambiguous, said so; the id still works.
        status, made = create(bob, 'twins')
        self.assertEqual(status, 422, made)
        self.assertIn("2 ISOs are named 'twins'", made['detail'])
        self.assertIn('id', made['detail'])
        # Neither an id nor a name: the answer says what 'iso' takes.
        status, made = create(bob, 'debian-installer.iso')
        self.assertEqual(status, 422, made)
        self.assertIn('id or the name', made['detail'])

    def test_what_is_not_a_bootable_iso_is_refused_and_leaves_nothing(self):
        self.start()
        alice = self.user('alice')
        before = self.files()
        memtest = open(MEMTEST, 'rb').read()
        qcow2 = os.path.join(self.workdir, 'disk.qcow2')
        subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', qcow2, '1G'], check=True)
        not_bootable = bytearray(memtest)
        not_bootable[17 * 2048:18 * 2048] = b'\0' * 2048  # no El Torito record
        not_bootable[510:512] = b'\0\0'                   # no MBR
        cases = {
            'random': (os.urandom(100_000), 'not an ISO'),
            'qcow2': (open(qcow2, 'rb').read(), 'qcow2'),
            'empty': (b'', 'empty'),
            'truncated': (memtest[:200_000], 'truncated'),
            'short': (memtest[:20_000], 'too short'),
            'not-bootable': (bytes(not_bootable), 'does not boot'),
        }
        for name, (data, why) in cases.items():
            with self.subTest(name):
                status, hdrs, body = self.upload(alice, name + '.iso', data)
                self.assertEqual(status, 422, body)
                self.assertEqual(hdrs['content-type'], 'application/problem+json')
                self.assertIn(why, json.loads(body)['detail'])
                self.assertNothingLeft(before)
        status, _, _ = self.upload(alice, 'x.iso', memtest, ctype='text/plain')
        self.assertEqual(status, 415)
        self.assertNothingLeft(before)

    def test_names_are_labels_and_bad_ones_are_refused(self):
        self.start()
        alice = self.user('alice')
        before = self.files()
        data = harness.small_iso(self, 'names')
        for name, want in (('..%2F..%2Fetc%2Fpasswd', 404), ('.hidden', 400),
                           ('a%01b', 400), ('x' * 201, 400), ('%2e%2e', 400)):
            with self.subTest(name):
                status, _, _ = self.upload(alice, name, data)
                self.assertEqual(status, want)
                self.assertNothingLeft(before)
        self.assertFalse(os.path.exists('/etc/passwd.iso'))
        status, _, body = self.upload(alice, 'Ubuntu%2022.04%20%3Cdesktop%3E%20%26%20%22more%22', data)
        self.assertEqual(status, 201, body)
        self.assertEqual(json.loads(body)['name'], 'Ubuntu 22.04 <desktop> & "more"')

    def test_size_cap_and_quota(self):
        self.start(storage={'max_iso_bytes': str(7 << 20), 'user_quota_bytes': str(7 << 20)})
        alice, admin = self.user('alice'), self.user('root', 'admin')
        before = self.files()
        big = os.urandom(8 << 20)
        status, _, body = self.upload(alice, 'big', big)
        self.assertEqual(status, 413, body)
        self.assertNothingLeft(before)
        # Chunked, without a declared length: refused while streaming.
        status = self.chunked_upload(alice, 'big-chunked', big)
        self.assertEqual(status, 413)
        time.sleep(0.5)
        self.assertNothingLeft(before)
        status, _, _ = self.upload(alice, 'memtest', open(MEMTEST, 'rb').read())
        self.assertEqual(status, 201)
        rows = '1'
        status, _, body = self.upload(alice, 'second',
                                      harness.small_iso(self, 'quota') + b'\0' * (1 << 20))
        self.assertEqual(status, 413, body)
        self.assertIn('quota', json.loads(body)['detail'])
        self.assertEqual(self.db.scalar('SELECT count(*) FROM isos'), rows)
        # Admins have no quota (the size cap still holds).
        status, _, _ = self.upload(admin, 'course', harness.small_iso(self, 'admin'))
        self.assertEqual(status, 201)

    def chunked_upload(self, auth, name, data):
        with socket.create_connection((self.broker.host, self.broker.port), timeout=60) as s:
            head = (f'PUT /api/v1/isos/{name} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n'
                    'Content-Type: application/octet-stream\r\nConnection: close\r\n')
            head += ''.join(f'{k}: {v}\r\n' for k, v in auth.items()) + '\r\n'
            s.sendall(head.encode())
            try:
                for i in range(0, len(data), 65536):
                    piece = data[i:i + 65536]
                    s.sendall(b'%x\r\n' % len(piece) + piece + b'\r\n')
                s.sendall(b'0\r\n\r\n')
            except (BrokenPipeError, ConnectionResetError):
                pass
            reply = b''
            try:
                while chunk := s.recv(65536):
                    reply += chunk
            except ConnectionResetError:
                pass
        return int(reply.split(b' ', 2)[1])

    def test_a_client_that_leaves_mid_stream_leaves_nothing(self):
        self.start()
        alice = self.user('alice')
        before = self.files()
        with socket.create_connection((self.broker.host, self.broker.port), timeout=60) as s:
            head = ('PUT /api/v1/isos/gone HTTP/1.1\r\nHost: x\r\nContent-Length: 6193152\r\n'
                    'Content-Type: application/octet-stream\r\n')
            head += ''.join(f'{k}: {v}\r\n' for k, v in alice.items()) + '\r\n'
            s.sendall(head.encode() + open(MEMTEST, 'rb').read()[:2_000_000])
            deadline = time.monotonic() + 30
            uploads = os.path.join(self.storage, 'uploads')
            while not (os.path.isdir(uploads) and os.listdir(uploads)):
                self.assertLess(time.monotonic(), deadline, 'the upload never started')
                time.sleep(0.05)
        deadline = time.monotonic() + 60
        while self.files() != before and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertNothingLeft(before)

    def test_a_full_disk_is_507_and_leaves_nothing(self):
        if os.geteuid() != 0:
            self.fail('this test mounts a small tmpfs and needs root (as CI runs)')
        mnt = harness.mkdtemp('vmbt-full-')
        self.addCleanup(os.rmdir, mnt)  # after the unmount below (cleanups run last first)
        subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=3m,mode=0755', 'tmpfs', mnt],
                       check=True)
        self.addCleanup(subprocess.run, ['umount', '-l', mnt])
        self.start(storage={'dir': mnt})
        alice = self.user('alice')
        before = self.files()
        status, hdrs, body = self.upload(alice, 'memtest', open(MEMTEST, 'rb').read())
        self.assertEqual(status, 507, body)
        self.assertNotIn(mnt, body.decode())  # no internals
        self.assertNothingLeft(before)
        # Space comes back: a small one fits.
        status, _, _ = self.upload(alice, 'small', harness.small_iso(self, 'fits'))
        self.assertEqual(status, 201)


if __name__ == '__main__':
    harness.main()
