# SPDX-License-Identifier: LGPL-2.1-or-later
# Guest network isolation on a real guest (tests/fixtures/make-netprobe-iso): a guest on the
# default ("isolated") network tries, at boot, the broker's HTTP port, another running VM's
# VNC and websocket ports and a port this test listens on, all at its gateway (the host), and
# a peer in a network namespace that plays "outside". The first four must be refused, the
# peer reached. One guest boot under TCG: slow, so this is the only one.
import json
import os
import re
import secrets
import select
import shutil
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PASSWORD = 'a good password'
MAKE_ISO = os.path.join(harness.SRC, 'tests', 'fixtures', 'make-netprobe-iso')
# The outside peer's program: port 80 accepts and closes, port 81 prints the guest's report.
PEER = r'''
import socket, sys, threading
def serve(port, report):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('0.0.0.0', port)); s.listen(16)
    while True:
        c, _ = s.accept()
        if report:
            c.settimeout(10)
            data = b''
            while not data.endswith(b'\n'):
                chunk = c.recv(4096)
                if not chunk:
                    break
                data += chunk
            print(data.decode(errors='replace').strip(), flush=True)
        c.close()
threading.Thread(target=serve, args=(80, False), daemon=True).start()
print('READY', flush=True)
serve(81, True)
'''


def run(*args, check=True):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=120)
    if check and r.returncode != 0:
        raise RuntimeError(f'{" ".join(args)} failed: {r.stderr.strip()}')
    return r


def virsh(*args, check=False):
    return run('virsh', '-q', '-c', 'qemu:///system', *args, check=check)


class Isolation(harness.TestCase):
    def setUp(self):
        super().setUp()
        tag = secrets.token_hex(2)
        n = int(tag, 16) % 200 + 20
        self.net_name = f'vmbtnet{tag}'
        self.subnet = f'10.213.{n}.0/24'
        self.peer_ip = f'10.214.{n}.2'
        self.outside(f'vmbt-out-{tag}', f'vo{tag}h', f'vo{tag}n', f'10.214.{n}.1')

    def outside(self, ns, host_if, ns_if, host_ip):
        """A namespace behind a veth pair, reached from the host by routing: "outside"."""
        run('ip', 'netns', 'add', ns)
        self.addCleanup(run, 'ip', 'netns', 'del', ns, check=False)
        run('ip', 'link', 'add', host_if, 'type', 'veth', 'peer', 'name', ns_if)
        self.addCleanup(run, 'ip', 'link', 'del', host_if, check=False)
        run('ip', 'link', 'set', ns_if, 'netns', ns)
        run('ip', 'addr', 'add', f'{host_ip}/30', 'dev', host_if)
        run('ip', 'link', 'set', host_if, 'up')
        run('ip', 'netns', 'exec', ns, 'ip', 'addr', 'add', f'{self.peer_ip}/30', 'dev', ns_if)
        run('ip', 'netns', 'exec', ns, 'ip', 'link', 'set', ns_if, 'up')
        run('ip', 'netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up')
        run('ip', 'netns', 'exec', ns, 'ip', 'route', 'add', 'default', 'via', host_ip)
        self.peer = subprocess.Popen(['ip', 'netns', 'exec', ns, '/usr/bin/python3', '-c', PEER],
                                     stdout=subprocess.PIPE, text=True)
        self.addCleanup(self.peer.wait, 10)
        self.addCleanup(self.peer.kill)
        self.assertEqual(self.peer.stdout.readline().strip(), 'READY')

    def remove_libvirt_objects(self):
        for name in virsh('list', '--all', '--name').stdout.split():
            if name.startswith(self.prefix):
                virsh('destroy', name)
                virsh('undefine', name, '--remove-all-storage')
        virsh('net-destroy', self.net_name)
        virsh('net-undefine', self.net_name)
        virsh('nwfilter-undefine', self.net_name)

    def user_token(self, name):
        r = self.vmb('user', 'add', name, '--password-stdin', input=PASSWORD + '\n',
                     config=self.broker.config)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.vmb('token', 'create', name, config=self.broker.config)
        self.assertEqual(r.returncode, 0, r.stderr)
        return {'Authorization': 'Bearer ' + r.stdout.strip()}

    def network_state(self):
        status, _, body = self.broker.get_json('/readyz')
        self.assertEqual(status, 200, body)
        return body['checks']['guest_network']

    def create(self, auth, template):
        status, _, data = self.broker.request('POST', '/api/v1/vms', {'template': template},
                                              headers=auth, timeout=300)
        self.assertEqual(status, 201, data)
        return json.loads(data)['vm']

    def test_guest_reaches_outside_only(self):
        # A listener on the host's loopback, and on every other address of the host too: the
        # guest must not reach it through its gateway either.
        listener = socket.create_server(('0.0.0.0', 0))
        self.addCleanup(listener.close)
        loop_port = listener.getsockname()[1]
        templates = os.path.join(self.workdir, 'templates')
        shutil.copytree(os.path.join(harness.SRC, 'templates'), templates)
        # The ISO is made once the other VM's ports are known; the template names it before.
        iso = os.path.join(self.workdir, 'storage', 'netprobe.iso')
        with open(os.path.join(templates, 'netprobe.json'), 'w') as f:
            json.dump({'kind': 'iso', 'iso_path': iso, 'memory_mib': 256, 'vcpus': 1,
                       'video': 'vga', 'boot': ['cdrom'], 'idle_timeout_s': 0,
                       'max_lifetime_s': 0}, f)
        http_port = harness.free_port()
        overrides = {'templates': {'dir': templates}, 'libvirt': {'stop_timeout_s': '2'},
                     'guests': {'network': self.net_name, 'subnet': self.subnet}}
        self.migrate(self.config(http_port=http_port, **overrides))
        self.broker = self.serve(http_port=http_port, **overrides)
        self.prefix = self.broker.sections['libvirt']['name_prefix']
        self.addCleanup(self.remove_libvirt_objects)
        auth = self.user_token('alice')
        self.assertEqual(self.network_state(), 'absent')
        other = self.create(auth, 'memtest')

        run(MAKE_ISO, iso,
            f'broker:{http_port},vnc:{other["vnc_port"]},ws:{other["ws_port"]},loop:{loop_port}',
            f'peer:{self.peer_ip}:80', f'{self.peer_ip}:81')
        probe = self.create(self.user_token('bob'), 'netprobe')  # another user's guest
        xml = virsh('dumpxml', probe['name']).stdout
        self.assertIn(f"<filterref filter='{self.net_name}'", xml)
        self.assertEqual(self.network_state(), 'active')

        # The guest boots under TCG on busy cores: minutes. A guard, not a measurement.
        ready, _, _ = select.select([self.peer.stdout], [], [], 600)
        self.assertTrue(ready, 'the guest sent no report within 600 s')
        report = self.peer.stdout.readline().strip()
        print('guest:', report, file=sys.stderr)
        results = dict(re.findall(r'(\w+)=(\S+)', report))
        self.assertTrue(report.startswith('RESULTS'), report)
        self.assertEqual(
            {k: results.get(k) for k in ('broker', 'vnc', 'ws', 'loop', 'peer')},
            {'broker': 'refused', 'vnc': 'refused', 'ws': 'refused', 'loop': 'refused',
             'peer': 'reached'}, report)
        listener.settimeout(0)
        with self.assertRaises(BlockingIOError):
            listener.accept()
        virsh('net-destroy', self.net_name)
        self.assertEqual(self.network_state(), 'inactive')


if __name__ == '__main__':
    harness.main()
