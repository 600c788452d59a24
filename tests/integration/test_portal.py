# SPDX-License-Identifier: LGPL-2.1-or-later
# The course portal's flow against the real binary, PostgreSQL and libvirtd: a service token
# creates a VM for a new student, the student's links open the console once, and the
# metrics count the spawn and the route. (Split from test_api_vms.py, whose VmCase it uses.)
import base64
import hashlib
import json
import os
import re
import socket
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_api_vms import VmCase, fragment_params, sha256  # noqa: E402


class Portal(VmCase):
    def test_service_account_creates_a_vm_for_a_new_student(self):
        self.start()
        self.assertIsNone(self.user_id('student1'))
        _, out = self.create(who='portal', owner='student1')
        t1 = time.time()
        vm = out['vm']
        self.assertEqual((vm['owner'], vm['state']), ('student1', 'running'))
        rows = self.db.psql("SELECT role, password_hash IS NULL, disabled FROM users "
                            "WHERE username = 'student1'")
        self.assertEqual(rows, [['user', 't', 'f']])
        student = self.user_id('student1')
        for url in (out['console_url'], out['novnc_url']):
            params = fragment_params(url)
            if 'ticket' in params:
                t = params['ticket'][0]
            else:
                path = params['path'][0]
                t = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)['ticket'][0]
            row = self.db.psql(
                "SELECT user_id, vm_id, used_at IS NULL, "
                "expires_at <= created_at + interval '60 seconds', "
                "extract(epoch FROM expires_at) "
                f"FROM console_tickets WHERE secret_hash = '{sha256(t)}'")
            self.assertEqual(len(row), 1, url)
            self.assertEqual(row[0][:4], [student, vm['id'], 't', 't'])
            self.assertLessEqual(float(row[0][4]), t1 + 60)
        self.assertEqual(self.db.scalar(
            f"SELECT owner_id FROM vms WHERE id = '{vm['id']}'"), student)
        # A second create for the same student hits the student's limit, not the portal's.
        p = self.problem(self.broker.request('POST', '/api/v1/vms',
                                             {'template': 'memtest', 'owner': 'student1'},
                                             headers={'Authorization':
                                                      f'Bearer {self.tokens["portal"]}'}), 409)
        self.assertEqual([v['id'] for v in p['running']], [vm['id']])
        self.assertEqual(self.db.scalar("SELECT count(*) FROM users WHERE username = 'student1'"),
                         '1')

    def upgrade(self, path):
        """A browser's websocket upgrade with our Origin and no credentials: (status,
        headers, the key sent)."""
        key = base64.b64encode(os.urandom(16)).decode()
        origin = f'http://{self.broker.host}:{self.broker.port}'
        with socket.create_connection((self.broker.host, self.broker.port), timeout=60) as s:
            s.sendall((f'GET {path} HTTP/1.1\r\nHost: {self.broker.host}:{self.broker.port}\r\n'
                       'Upgrade: websocket\r\nConnection: Upgrade\r\n'
                       f'Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n'
                       f'Origin: {origin}\r\n\r\n').encode())
            data = b''
            while b'\r\n\r\n' not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        head = data.partition(b'\r\n\r\n')[0].decode('latin-1').split('\r\n')
        hdrs = {k.strip().lower(): v.strip() for k, _, v in
                (line.partition(':') for line in head[1:])}
        return int(head[0].split()[1]), hdrs, key

    def test_the_students_links_open_the_console_once(self):
        self.start()
        _, out = self.create(who='portal', owner='student1')
        vm = out['vm']
        # noVNC's link: its websocket ticket opens the console once, with no account.
        path = '/' + fragment_params(out['novnc_url'])['path'][0]
        status, hdrs, key = self.upgrade(path)
        self.assertEqual(status, 101, hdrs)
        accept = base64.b64encode(hashlib.sha1(
            (key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').encode()).digest()).decode()
        self.assertEqual(hdrs.get('sec-websocket-accept'), accept)
        status, hdrs, _ = self.upgrade(path)
        self.assertIn(status, (401, 403), hdrs)
        # The console page's ticket is redeemed once for the VNC password and a websocket
        # ticket, which opens the console once too.
        page = fragment_params(out['console_url'])['ticket'][0]
        session = f'/api/v1/vms/{vm["id"]}/console/session'
        status, _, data = self.broker.request('POST', session, {'ticket': page})
        self.assertEqual(status, 200, data)
        redeemed = json.loads(data)
        self.assertTrue(redeemed['password'])
        self.assertEqual(redeemed['vm']['id'], vm['id'])
        status, _, _ = self.upgrade(redeemed['ws_path'])
        self.assertEqual(status, 101)
        status, _, _ = self.upgrade(redeemed['ws_path'])
        self.assertIn(status, (401, 403))
        self.problem(self.broker.request('POST', session, {'ticket': page}), 401)
        self.assertEqual(self.db.scalar(
            f"SELECT count(*) FROM console_tickets WHERE vm_id = '{vm['id']}' "
            "AND used_at IS NULL AND user_id <> "
            "(SELECT id FROM users WHERE username = 'student1')"), '0')

    def test_metrics_count_the_spawn_and_the_route(self):
        self.start()
        self.create()
        status, hdrs, data = self.broker.request('GET', '/metrics')
        self.assertEqual(status, 200)
        text = data.decode()
        m = re.search(r'^vmbroker_vm_spawn_seconds_count(?:\{[^}]*\})? (\S+)$', text, re.M)
        self.assertIsNotNone(m, text)
        self.assertGreaterEqual(float(m.group(1)), 1)
        routes = [l for l in text.splitlines() if l.startswith('vmbroker_http_requests_total{')
                  and 'route="/api/v1/vms"' in l]
        self.assertTrue(routes, text)
        self.assertTrue(any('method="POST"' in l and 'status="201"' in l for l in routes), routes)
        # State read at scrape time: one VM running, one port of each kind taken.
        self.assertIn('vmbroker_vms{state="running"} 1\n', text)
        self.assertIn('vmbroker_vms{state="stopped"} 0\n', text)
        for kind, ports in (('vnc', self.vnc_ports), ('ws', self.ws_ports)):
            self.assertIn(f'vmbroker_ports_free{{kind="{kind}"}} {len(ports) - 1}\n', text)


if __name__ == '__main__':
    harness.main()
