# SPDX-License-Identifier: LGPL-2.1-or-later
# Issue 14's hardening on the real binary and PostgreSQL: log lines a client cannot forge,
# login throttling an attacker cannot turn against the victim, what a service account may do,
# tokens that never outlive their parent, who may read /metrics, the noVNC CSP, and the
# deadline for a request head.
import http.client
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PASSWORD = 'correct horse battery'


def request_from(broker, source, method, path, body=None, headers=None):
    """Like Broker.request, from the local address SOURCE (127.0.0.x: all reach loopback)."""
    conn = http.client.HTTPConnection(broker.host, broker.port, timeout=60,
                                      source_address=(source, 0))
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = {'Content-Type': 'application/json', **(headers or {})}
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        conn.close()


class Hardening(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.migrate()
        for name, role in (('alice', 'user'), ('admin', 'admin')):
            r = self.vmb('user', 'add', name, '--role', role, '--password-stdin',
                         input=PASSWORD + '\n')
            self.assertEqual(r.returncode, 0, r.stderr)

    def start(self, **overrides):
        self.broker = self.serve(**overrides)
        self.origin = f'http://{self.broker.host}:{self.broker.port}'
        return self.broker

    def log_lines_after(self, mark):
        return self.broker.log()[mark:].splitlines()

    # --- log hygiene ---

    def test_a_newline_in_the_path_does_not_forge_a_log_line(self):
        b = self.start()
        mark = len(b.log())
        forged = '2026-01-01T00:00:00.000Z info http GET /api/v1/me 200 0.1ms user=admin'
        path = '/nothing%0a' + forged.replace(' ', '%20') + '%0d%1b[2J'
        status, _, _ = b.request('GET', path)
        self.assertEqual(status, 404)
        deadline = time.monotonic() + harness.WAIT_S
        while time.monotonic() < deadline:
            lines = [l for l in self.log_lines_after(mark) if '/nothing' in l]
            if lines:
                break
            time.sleep(0.1)
        self.assertEqual(len(lines), 1, lines)
        self.assertIn('/nothing\\x0a2026-01-01T00:00:00.000Z\\x20info', lines[0])
        self.assertIn('\\x0d\\x1b[2J 404 ', lines[0])
        for line in self.log_lines_after(mark):
            self.assertFalse(line.startswith('2026-01-01T00:00:00.000Z'), line)
            self.assertNotIn('\x1b', line)
            self.assertNotIn('\r', line)

    # --- throttling ---

    def login_from(self, source, username, password):
        return request_from(self.broker, source, 'POST', '/api/v1/auth/login',
                            {'username': username, 'password': password})

    def test_a_burst_against_a_user_never_locks_out_other_addresses(self):
        self.start(auth={'login_failures_per_user': '3', 'login_failures_per_addr': '5',
                         'login_window_s': '300'})
        for _ in range(3):
            status, _, _ = self.login_from('127.0.0.2', 'admin', 'wrong')
            self.assertEqual(status, 401)
        # The attacker's address is slowed, even with the right password ...
        status, hdrs, _ = self.login_from('127.0.0.2', 'admin', PASSWORD)
        self.assertEqual(status, 429)
        self.assertGreater(int(hdrs['retry-after']), 0)
        # ... while the victim signs in from an address without failures, again and again,
        # as the attack goes on.
        for _ in range(3):
            status, _, body = self.login_from('127.0.0.1', 'admin', PASSWORD)
            self.assertEqual(status, 200, body)
            self.assertEqual(self.login_from('127.0.0.2', 'admin', 'wrong')[0], 429)
        # Spreading over users: the attacker's address is refused for every user past the
        # per-address bound (3 + 2 failures), others are not.
        for _ in range(2):
            self.assertEqual(self.login_from('127.0.0.2', 'alice', 'wrong')[0], 401)
        self.assertEqual(self.login_from('127.0.0.2', 'alice', PASSWORD)[0], 429)
        self.assertEqual(self.login_from('127.0.0.3', 'alice', PASSWORD)[0], 200)
        # A third address with failures of its own for alice does not disturb admin there.
        self.assertEqual(self.login_from('127.0.0.3', 'alice', 'wrong')[0], 401)
        self.assertEqual(self.login_from('127.0.0.3', 'admin', PASSWORD)[0], 200)

    def test_signup_is_throttled_per_address(self):
        self.start(auth={'signup': 'true', 'signups_per_addr': '2', 'login_window_s': '300'})

        def signup(source, name):
            return request_from(self.broker, source, 'POST', '/api/v1/auth/signup',
                                {'username': name, 'password': 'long enough'})
        self.assertEqual(signup('127.0.0.2', 'carol')[0], 201)
        self.assertEqual(signup('127.0.0.2', 'carol')[0], 409)  # refused, but counted
        status, hdrs, _ = signup('127.0.0.2', 'dave')
        self.assertEqual(status, 429)
        self.assertGreater(int(hdrs['retry-after']), 0)
        self.assertEqual(self.db.scalar("SELECT count(*) FROM users WHERE username = 'dave'"),
                         '0')
        self.assertEqual(signup('127.0.0.3', 'dave')[0], 201)

    # --- authorization ---

    def session(self, username):
        status, hdrs, body = self.broker.request(
            'POST', '/api/v1/auth/login', {'username': username, 'password': PASSWORD})
        self.assertEqual(status, 200, body)
        return {'Cookie': hdrs['set-cookie'].split(';', 1)[0],
                'X-CSRF-Token': json.loads(body)['csrf_token'], 'Origin': self.origin}

    def mint(self, auth, **body):
        status, _, data = self.broker.request('POST', '/api/v1/tokens', {'name': 't', **body},
                                              headers=auth)
        self.assertEqual(status, 201, data)
        return json.loads(data)

    def expires_epoch(self, token_id):
        return float(self.db.scalar(
            f"SELECT extract(epoch FROM expires_at) FROM api_tokens WHERE id = '{token_id}'"))

    def test_a_token_never_outlives_the_token_or_session_it_was_minted_with(self):
        self.start()
        # Through a token of 60 s: a child asking for no end, or for a day, ends with it.
        r = self.vmb('token', 'create', 'alice', '--expires-in', '60')
        self.assertEqual(r.returncode, 0, r.stderr)
        parent = {'Authorization': 'Bearer ' + r.stdout.strip()}
        parent_end = float(self.db.scalar(
            "SELECT extract(epoch FROM expires_at) FROM api_tokens WHERE name = 'cli'"))
        for body in ({}, {'expires_in': 86400}):
            child = self.mint(parent, **body)
            self.assertIsNotNone(child['expires_in'])
            self.assertLessEqual(child['expires_in'], 60)
            self.assertLessEqual(self.expires_epoch(child['id']), parent_end)
            # ... and a grandchild too.
            grandchild = self.mint({'Authorization': 'Bearer ' + child['token']})
            self.assertLessEqual(self.expires_epoch(grandchild['id']), parent_end)
        # A shorter life than the parent's is kept as asked.
        self.assertEqual(self.mint(parent, expires_in=5)['expires_in'], 5)
        # Through a session: never past the session's absolute end.
        cookie = self.session('alice')
        session_end = float(self.db.scalar(
            'SELECT max(extract(epoch FROM expires_at)) FROM sessions'))
        for body in ({}, {'expires_in': 10 * 365 * 86400}):
            child = self.mint(cookie, **body)
            self.assertIsNotNone(child['expires_in'])
            self.assertLessEqual(self.expires_epoch(child['id']), session_end)
        # A token without end mints tokens without end.
        r = self.vmb('token', 'create', 'alice')
        self.assertEqual(r.returncode, 0, r.stderr)
        child = self.mint({'Authorization': 'Bearer ' + r.stdout.strip()})
        self.assertIsNone(child['expires_in'])
        self.assertIsNone(self.db.scalar(
            f"SELECT expires_at FROM api_tokens WHERE id = '{child['id']}'") or None)

    def test_revoking_a_token_revokes_the_tokens_minted_with_it(self):
        self.start()

        def bearer(args):
            r = self.vmb('token', 'create', 'alice', *args)
            self.assertEqual(r.returncode, 0, r.stderr)
            return {'Authorization': 'Bearer ' + r.stdout.strip()}

        def status(auth):
            return self.broker.request('GET', '/api/v1/tokens', headers=auth)[0]

        parent = bearer(['--name', 'parent'])
        child = self.mint(parent)
        grandchild = self.mint({'Authorization': 'Bearer ' + child['token']})
        unrelated = bearer(['--name', 'other'])
        through_session = self.mint(self.session('alice'))
        parent_id = self.db.scalar("SELECT id FROM api_tokens WHERE name = 'parent'")
        got, _, body = self.broker.request('DELETE', f'/api/v1/tokens/{parent_id}',
                                           headers=unrelated)
        self.assertEqual(got, 204, body)
        for name, token in (('child', child), ('grandchild', grandchild)):
            self.assertEqual(status({'Authorization': 'Bearer ' + token['token']}), 401, name)
        self.assertEqual(status(parent), 401)
        self.assertEqual(status(unrelated), 200)
        self.assertEqual(status({'Authorization': 'Bearer ' + through_session['token']}), 200)
        # Revoking a child leaves its parent alone.
        second = self.mint(unrelated)
        got, _, body = self.broker.request('DELETE', f"/api/v1/tokens/{second['id']}",
                                           headers=unrelated)
        self.assertEqual(got, 204, body)
        self.assertEqual(status(unrelated), 200)

    def test_a_service_account_acts_only_for_enabled_users(self):
        r = self.vmb('user', 'add', 'portal', '--role', 'service', '--password-stdin',
                     input=PASSWORD + '\n')
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.vmb('user', 'add', 'robot', '--role', 'service', '--password-stdin',
                     input=PASSWORD + '\n')
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.vmb('user', 'add', 'gone', '--password-stdin', input=PASSWORD + '\n')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.db.psql("UPDATE users SET disabled = true WHERE username = 'gone'")
        r = self.vmb('token', 'create', 'portal')
        self.assertEqual(r.returncode, 0, r.stderr)
        portal = {'Authorization': 'Bearer ' + r.stdout.strip()}
        self.start()
        before = self.db.psql('SELECT username, role, disabled FROM users ORDER BY username')

        def create(owner):
            # memtest takes no ISO: a create that passes the owner check stops at 422 there,
            # before any guest is made.
            return self.broker.request('POST', '/api/v1/vms',
                                       {'template': 'memtest', 'owner': owner,
                                        'iso': '00000000-0000-0000-0000-000000000000'},
                                       headers=portal)
        for owner in ('admin', 'robot', 'gone'):
            status, hdrs, body = create(owner)
            self.assertEqual(status, 403, (owner, body))
            self.assertEqual(hdrs['content-type'], 'application/problem+json')
        self.assertEqual(self.db.psql('SELECT username, role, disabled FROM users '
                                      'ORDER BY username'), before)
        # An enabled student, and a new one (made on the spot, role user), pass the check.
        self.assertEqual(create('alice')[0], 422)
        self.assertEqual(create('newstudent')[0], 422)
        self.assertEqual(self.db.psql("SELECT role, disabled FROM users "
                                      "WHERE username = 'newstudent'"), [['user', 'f']])
        self.assertEqual(self.db.psql('SELECT name, state FROM vms'), [])

    def test_a_user_holds_a_bounded_number_of_working_tokens(self):
        self.start()
        r = self.vmb('token', 'create', 'alice')
        self.assertEqual(r.returncode, 0, r.stderr)
        auth = {'Authorization': 'Bearer ' + r.stdout.strip()}
        minted = [self.mint(auth) for _ in range(99)]  # with the command line's: 100
        status, hdrs, body = self.broker.request('POST', '/api/v1/tokens', {'name': 't'},
                                                 headers=auth)
        self.assertEqual(status, 429, body)
        self.assertEqual(hdrs['content-type'], 'application/problem+json')
        self.assertEqual(self.db.scalar('SELECT count(*) FROM api_tokens'), '100')
        # A revoked token frees its place; the command line is not bound.
        status, _, body = self.broker.request('DELETE', f"/api/v1/tokens/{minted[0]['id']}",
                                              headers=auth)
        self.assertEqual(status, 204, body)
        self.mint(auth)
        self.assertEqual(self.vmb('token', 'create', 'alice').returncode, 0)

    def test_a_service_account_sees_only_the_vms_of_users(self):
        r = self.vmb('user', 'add', 'portal', '--role', 'service', '--password-stdin',
                     input=PASSWORD + '\n')
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.vmb('token', 'create', 'portal')
        self.assertEqual(r.returncode, 0, r.stderr)
        portal = {'Authorization': 'Bearer ' + r.stdout.strip()}
        self.start()
        status, _, mine = self.admin_api('POST', '/api/v1/vms', {'template': 'memtest'})
        self.assertEqual(status, 201, mine)
        admins = mine['vm']['id']
        self.addCleanup(self.admin_api, 'DELETE', f'/api/v1/vms/{admins}')
        status, _, body = self.broker.request('POST', '/api/v1/vms',
                                              {'template': 'memtest', 'owner': 'student'},
                                              headers=portal)
        self.assertEqual(status, 201, body)
        students = json.loads(body)['vm']['id']
        self.addCleanup(self.admin_api, 'DELETE', f'/api/v1/vms/{students}')

        def as_portal(method, path):
            status, _, data = self.broker.request(method, path, headers=portal)
            return status, json.loads(data) if data else None

        for path in ('/api/v1/vms', '/api/v1/vms?owner=admin', '/api/v1/vms?owner=student'):
            status, listed = as_portal('GET', path)
            self.assertEqual(status, 200, listed)
            self.assertNotIn(admins, [v['id'] for v in listed], path)
        self.assertIn(students, [v['id'] for v in as_portal('GET', '/api/v1/vms')[1]])
        # The admin's VM is not there for it, whatever it tries; nothing changed.
        for method, path in (('GET', ''), ('GET', '/operations'), ('POST', '/stop'),
                             ('POST', '/reboot'), ('POST', '/console'), ('DELETE', '')):
            status, body = as_portal(method, f'/api/v1/vms/{admins}{path}')
            self.assertEqual(status, 404, (method, path, body))
        self.assertEqual(self.db.scalar(f"SELECT state FROM vms WHERE id = '{admins}'"),
                         'running')
        # ... while the admin still sees both.
        status, _, listed = self.admin_api('GET', '/api/v1/vms')
        self.assertEqual({admins, students} - {v['id'] for v in listed}, set())

    # --- what only the operator sees ---

    def test_metrics_and_readyz_detail_only_for_allowed_addresses_and_admin_tokens(self):
        r = self.vmb('token', 'create', 'admin')
        self.assertEqual(r.returncode, 0, r.stderr)
        admin = {'Authorization': 'Bearer ' + r.stdout.strip()}
        r = self.vmb('token', 'create', 'alice')
        self.assertEqual(r.returncode, 0, r.stderr)
        alice = {'Authorization': 'Bearer ' + r.stdout.strip()}
        b = self.start(http={'metrics_allow': '127.0.0.1, 10.0.0.0/8'})
        # The allowed address reads both.
        status, _, data = request_from(b, '127.0.0.1', 'GET', '/metrics')
        self.assertEqual(status, 200)
        self.assertIn(b'vmbroker_http_requests_total', data)
        status, _, data = request_from(b, '127.0.0.1', 'GET', '/readyz')
        ready_status = status
        self.assertIn('checks', json.loads(data))
        # Another address: 403 for metrics, the bare status for readyz, healthz as before.
        status, hdrs, data = request_from(b, '127.0.0.2', 'GET', '/metrics')
        self.assertEqual(status, 403)
        self.assertEqual(hdrs['content-type'], 'application/problem+json')
        self.assertNotIn(b'vmbroker_', data)
        status, _, data = request_from(b, '127.0.0.2', 'GET', '/readyz')
        self.assertEqual(status, ready_status)
        body = json.loads(data)
        self.assertNotIn('checks', body)
        self.assertNotIn('accelerator', body)
        self.assertEqual(request_from(b, '127.0.0.2', 'GET', '/healthz')[0], 200)
        # A user's token does not open them; an admin's does.
        self.assertEqual(request_from(b, '127.0.0.2', 'GET', '/metrics', headers=alice)[0], 403)
        status, _, data = request_from(b, '127.0.0.2', 'GET', '/metrics', headers=admin)
        self.assertEqual(status, 200)
        self.assertIn(b'vmbroker_http_requests_total', data)
        status, _, data = request_from(b, '127.0.0.2', 'GET', '/readyz', headers=admin)
        self.assertIn('checks', json.loads(data))

    def test_a_bad_metrics_allow_is_refused_at_start(self):
        for value, needle in (('localhost', "'localhost' is not an IPv4 or IPv6 address"),
                              ('10.0.0.0/40', "'10.0.0.0/40'")):
            cfg = self.config(http={'metrics_allow': value})
            r = self.vmb('migrate', config=cfg)
            self.assertFailsWithOneLine(r, 'http.metrics_allow', needle)

    def test_every_novnc_answer_limits_connect_src_to_our_origin(self):
        b = self.start()
        for path in ('/novnc/vnc.html', '/novnc/app/ui.js', '/novnc/no-such-file'):
            status, hdrs, _ = b.request('GET', path)
            self.assertIn(status, (200, 404), path)
            csp = hdrs.get('content-security-policy', '')
            directives = {d.split()[0]: d.split()[1:] for d in csp.split(';') if d.strip()}
            self.assertEqual(directives.get('connect-src'),
                             ["'self'", self.origin, 'ws://' + self.origin.split('://')[1]],
                             (path, csp))
            self.assertEqual(directives.get('frame-ancestors'), ["'none'"], path)

    # --- connection deadlines ---

    def trickle(self, head, body=b'', step=0.25, limit_s=harness.WAIT_S):
        """Sends HEAD at once, then BODY a byte every STEP seconds, until the server closes
        the connection or LIMIT_S passes. Returns (closed, seconds, bytes of BODY sent)."""
        s = socket.create_connection((self.broker.host, self.broker.port), timeout=limit_s)
        self.addCleanup(s.close)
        s.sendall(head)
        s.settimeout(step)
        start, sent = time.monotonic(), 0
        while time.monotonic() - start < limit_s:
            try:
                if s.recv(65536) == b'':
                    return True, time.monotonic() - start, sent
            except socket.timeout:
                pass
            except ConnectionResetError:
                return True, time.monotonic() - start, sent
            try:
                s.send(body[sent:sent + 1] if body else b'X')
                sent += 1
            except (BrokenPipeError, ConnectionResetError):
                return True, time.monotonic() - start, sent
        return False, time.monotonic() - start, sent

    def test_a_slow_head_is_dropped_by_the_deadline(self):
        # The idle timeout (60 s) never fires for a client that sends a byte every 0.25 s:
        # only the head deadline can end it.
        b = self.start(http={'head_timeout_s': '2', 'connection_timeout_s': '60'})
        closed, secs, _ = self.trickle(b'GET /healthz HTTP/1.1\r\nX-Slow: ', limit_s=30)
        self.assertTrue(closed, f'still open after {secs:.0f} s')
        self.assertEqual(b.request('GET', '/healthz')[0], 200)
        # A client that is merely idle after a request gets the same deadline for its next.
        s = socket.create_connection((b.host, b.port), timeout=30)
        self.addCleanup(s.close)
        s.sendall(b'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
        self.assertIn(b' 200 ', s.recv(65536))
        s.settimeout(30)
        self.assertEqual(s.recv(65536), b'')

    def test_a_slow_body_is_dropped_below_the_minimum_rate(self):
        b = self.start(http={'min_body_rate': '100', 'head_timeout_s': '60',
                             'connection_timeout_s': '60'})
        head = (b'POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\n'
                b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n')
        closed, secs, sent = self.trickle(head, body=b' ' * 1000, limit_s=40)
        self.assertTrue(closed, f'still open after {secs:.0f} s')
        self.assertLess(sent, 1000)

    def test_what_is_discarded_after_an_early_answer_is_bounded(self):
        # An upload refused midway (past storage.max_iso_bytes, unannounced as it is chunked)
        # has its answer held until the body is read, so that the client sees it rather
        # than a reset: but only so much more is read.
        r = self.vmb('token', 'create', 'alice')
        self.assertEqual(r.returncode, 0, r.stderr)
        b = self.start(http={'discard_max_bytes': '1048576'},
                       storage={'max_iso_bytes': '1048576'})
        s = socket.create_connection((b.host, b.port), timeout=60)
        self.addCleanup(s.close)
        s.sendall(b'PUT /api/v1/isos/junk.iso HTTP/1.1\r\nHost: x\r\n'
                  b'Authorization: Bearer ' + r.stdout.strip().encode() + b'\r\n'
                  b'Content-Type: application/octet-stream\r\n'
                  b'Transfer-Encoding: chunked\r\n\r\n')
        chunk = b'10000\r\n' + b'\0' * 65536 + b'\r\n'
        sent, refused = 0, False
        try:
            while sent < 1024 * 1024 * 1024:
                s.sendall(chunk)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            refused = True
        self.assertTrue(refused, 'the server read 1 GiB of an upload it had refused')
        self.assertLess(sent, 64 * 1024 * 1024)
        self.assertEqual(self.db.scalar('SELECT count(*) FROM isos'), '0')
    # --- domain names and disks ---

    def admin_bearer(self):
        if not hasattr(self, 'admin_token'):
            r = self.vmb('token', 'create', 'admin')
            self.assertEqual(r.returncode, 0, r.stderr)
            self.admin_token = r.stdout.strip()
        return {'Authorization': 'Bearer ' + self.admin_token}

    def admin_api(self, method, path, body=None):
        status, hdrs, data = self.broker.request(method, path, body,
                                                 headers=self.admin_bearer())
        return status, hdrs, json.loads(data) if data else None

    def test_domain_names_never_collide_across_owners(self):
        b = self.start()
        prefix = b.sections['libvirt']['name_prefix']
        made = []
        for owner, name in (('a-b', 'c'), ('a', 'b-c')):
            status, _, out = self.admin_api('POST', '/api/v1/vms',
                                            {'template': 'memtest', 'owner': owner,
                                             'name': name})
            self.assertEqual(status, 201, out)
            made.append(out['vm'])
            self.addCleanup(self.admin_api, 'DELETE', f"/api/v1/vms/{out['vm']['id']}")
        self.assertEqual([vm['name'] for vm in made], [prefix + 'a--b-c', prefix + 'a-b-c'])
        for vm in made:
            r = subprocess.run(['virsh', '-q', '-c', 'qemu:///system', 'domstate', vm['name']],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.stdout.strip(), 'running', r.stderr)
        for vm in made:
            status, _, body = self.admin_api('DELETE', f"/api/v1/vms/{vm['id']}")
            self.assertEqual(status, 204, body)

    def test_a_create_never_boots_a_disk_it_did_not_make(self):
        b = self.start()
        prefix = b.sections['libvirt']['name_prefix']
        with open('/usr/lib/memtest86+/memtest86+x64.iso', 'rb') as f:
            status, _, data = b.request('PUT', '/api/v1/isos/course.iso', f.read(), headers={
                **self.admin_bearer(), 'Content-Type': 'application/octet-stream'})
        self.assertIn(status, (200, 201), data)
        iso = json.loads(data)['id']
        # A disk left where alice's VM "box" would put its own, holding someone's data.
        vol = prefix + 'alice-box-disk0.qcow2'
        r = subprocess.run(['virsh', '-q', '-c', 'qemu:///system', 'vol-create-as',
                            prefix + 'disks', vol, '1M', '--format', 'qcow2'],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        status, hdrs, out = self.admin_api('POST', '/api/v1/vms',
                                           {'template': 'iso-blank-disk', 'iso': iso,
                                            'owner': 'alice', 'name': 'box'})
        self.assertEqual(status, 409, out)
        self.assertEqual(hdrs['content-type'], 'application/problem+json')
        self.assertNotIn(vol, out['detail'])
        self.assertEqual(self.db.scalar('SELECT count(*) FROM vms'), '0')
        r = subprocess.run(['virsh', '-q', '-c', 'qemu:///system', 'vol-info', '--pool',
                            prefix + 'disks', vol], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, 'the left-over disk was removed: ' + r.stderr)
        r = subprocess.run(['virsh', '-q', '-c', 'qemu:///system', 'dominfo',
                            prefix + 'alice-box'], capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0, 'a domain was left behind')
        subprocess.run(['virsh', '-q', '-c', 'qemu:///system', 'vol-delete', '--pool',
                        prefix + 'disks', vol], capture_output=True, timeout=60)

    # --- quotas ---

    def read_answer(self, s):
        data = b''
        try:
            while b'\r\n\r\n' not in data and (chunk := s.recv(65536)):
                data += chunk
        except ConnectionResetError:
            pass
        return int(data.split(b' ', 2)[1]) if data.startswith(b'HTTP/') else None

    def test_uploads_side_by_side_cannot_pass_the_quota(self):
        with open('/usr/lib/memtest86+/memtest86+x64.iso', 'rb') as f:
            iso = f.read()
        r = self.vmb('token', 'create', 'alice')
        self.assertEqual(r.returncode, 0, r.stderr)
        bearer = r.stdout.strip().encode()
        # Room for one of them, not two.
        b = self.start(storage={'user_quota_bytes': str(len(iso) * 3 // 2)})
        socks = []
        for name in (b'one.iso', b'two.iso'):
            s = socket.create_connection((b.host, b.port), timeout=120)
            self.addCleanup(s.close)
            # Both heads are in before either body: each reads the quota at its start.
            s.sendall(b'PUT /api/v1/isos/' + name + b' HTTP/1.1\r\nHost: x\r\n'
                      b'Authorization: Bearer ' + bearer + b'\r\n'
                      b'Content-Type: application/octet-stream\r\n'
                      b'Content-Length: %d\r\nConnection: close\r\n\r\n' % len(iso))
            socks.append(s)
        time.sleep(1)  # both heads handled: a guard for the test, not a measurement
        statuses = []
        for s in socks:
            try:
                s.sendall(iso)
            except (BrokenPipeError, ConnectionResetError):
                pass
            statuses.append(self.read_answer(s))
        self.assertEqual(sorted(statuses), [201, 413], statuses)
        self.assertEqual(self.db.scalar("SELECT count(*) FROM isos"), '1')
        # The refused upload gave back nothing it did not have; the finished one's
        # reservation is gone too: deleting the ISO makes room for another.
        iso_id = self.db.scalar('SELECT id FROM isos')
        status, _, _ = b.request('DELETE', f'/api/v1/isos/{iso_id}',
                                 headers={'Authorization': 'Bearer ' + bearer.decode()})
        self.assertEqual(status, 204)
        status, _, body = b.request('PUT', '/api/v1/isos/three.iso', iso, headers={
            'Authorization': 'Bearer ' + bearer.decode(),
            'Content-Type': 'application/octet-stream'})
        self.assertEqual(status, 201, body)

    def test_a_cancelled_upload_gives_its_reservation_back(self):
        with open('/usr/lib/memtest86+/memtest86+x64.iso', 'rb') as f:
            iso = f.read()
        r = self.vmb('token', 'create', 'alice')
        self.assertEqual(r.returncode, 0, r.stderr)
        auth = {'Authorization': 'Bearer ' + r.stdout.strip(),
                'Content-Type': 'application/octet-stream'}
        b = self.start(storage={'user_quota_bytes': str(len(iso) * 3 // 2)})
        s = socket.create_connection((b.host, b.port), timeout=60)
        s.sendall(b'PUT /api/v1/isos/gone.iso HTTP/1.1\r\nHost: x\r\n'
                  b'Authorization: ' + auth['Authorization'].encode() + b'\r\n'
                  b'Content-Type: application/octet-stream\r\n'
                  b'Content-Length: %d\r\n\r\n' % len(iso) + iso[:100000])
        time.sleep(1)
        # While it is open, its share is held ...
        status, _, _ = b.raw_request('PUT', '/api/v1/isos/meanwhile.iso', iso, auth)
        self.assertEqual(status, 413)
        s.close()  # ... and given back when the client leaves.
        deadline = time.monotonic() + harness.WAIT_S
        while time.monotonic() < deadline:
            status, _, body = b.raw_request('PUT', '/api/v1/isos/after.iso', iso, auth)
            if status != 413:
                break
            time.sleep(0.2)
        self.assertEqual(status, 201, body)

    # --- consoles end with the access they were opened through ---

    def hold_console(self, auth, vm_id):
        """A viewer on a console minted through AUTH, holding until the broker closes it."""
        status, _, data = self.broker.request('POST', f'/api/v1/vms/{vm_id}/console',
                                              headers=auth)
        self.assertEqual(status, 201, data)
        url = json.loads(data)['console_url']
        ticket = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).fragment))['ticket']
        status, _, data = self.broker.request('POST', f'/api/v1/vms/{vm_id}/console/session',
                                              {'ticket': ticket})
        self.assertEqual(status, 200, data)
        page = json.loads(data)
        proc = subprocess.Popen([os.environ['VMB_CONSOLE_PROBE'], self.broker.host,
                                 str(self.broker.port), page['ws_path'], self.origin,
                                 page['password'], '300'],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(proc.kill)
        ready, _, _ = select.select([proc.stderr], [], [], harness.WAIT_S)
        self.assertTrue(ready, 'the viewer never got its first screen')
        self.assertEqual(proc.stderr.readline().strip(), 'holding')
        return proc

    def assertClosedByBroker(self, proc, what):
        out, _ = proc.communicate(timeout=harness.WAIT_S)
        self.assertTrue(json.loads(out)['peer_closed'], f'{what}: {out}')

    def test_consoles_end_with_the_access_they_were_opened_through(self):
        r = self.vmb('token', 'create', 'alice')
        self.assertEqual(r.returncode, 0, r.stderr)
        kept = {'Authorization': 'Bearer ' + r.stdout.strip()}
        b = self.start()
        status, _, data = b.request('POST', '/api/v1/vms', {'template': 'memtest'},
                                    headers=kept)
        self.assertEqual(status, 201, data)
        vm = json.loads(data)['vm']
        self.addCleanup(self.admin_api, 'DELETE', f"/api/v1/vms/{vm['id']}")
        control = self.hold_console(kept, vm['id'])

        # Through a session, ended by logout.
        cookie = self.session('alice')
        viewer = self.hold_console(cookie, vm['id'])
        status, _, _ = b.request('POST', '/api/v1/auth/logout', headers=cookie)
        self.assertEqual(status, 204)
        self.assertClosedByBroker(viewer, 'logout')

        # Through a token, ended by its revocation.
        other = self.mint(kept, name='other')
        viewer = self.hold_console({'Authorization': 'Bearer ' + other['token']}, vm['id'])
        status, _, _ = b.request('DELETE', f"/api/v1/tokens/{other['id']}", headers=kept)
        self.assertEqual(status, 204)
        self.assertClosedByBroker(viewer, 'revocation')
        self.assertIsNone(control.poll(), 'a console of a live token was closed')

        # The user disabled: every console of theirs ends.
        alice_id = self.db.scalar("SELECT id FROM users WHERE username = 'alice'")
        status, _, body = self.admin_api('POST', f'/api/v1/users/{alice_id}/disable')
        self.assertEqual(status, 204, body)
        self.assertClosedByBroker(control, 'disable')

    # --- the host memory budget ---

    def wait_vm_state(self, vm_id, state):
        deadline = time.monotonic() + harness.WAIT_S
        while True:
            status, _, vm = self.admin_api('GET', f'/api/v1/vms/{vm_id}')
            self.assertEqual(status, 200, vm)
            if vm['state'] == state or time.monotonic() > deadline:
                self.assertEqual(vm['state'], state, vm)
                return vm
            time.sleep(0.2)

    def test_concurrent_starts_never_overshoot_the_memory_budget(self):
        # Room for one memtest guest (256 MiB), two stopped ones asking at once.
        self.start(limits={'host_memory_mib': '256'}, libvirt={'stop_timeout_s': '1'})
        vms = []
        for name in ('one', 'two'):
            status, _, out = self.admin_api('POST', '/api/v1/vms',
                                            {'template': 'memtest', 'name': name})
            self.assertEqual(status, 201, out)
            vm = out['vm']
            vms.append(vm)
            self.addCleanup(self.admin_api, 'DELETE', f"/api/v1/vms/{vm['id']}")
            status, _, out = self.admin_api('POST', f"/api/v1/vms/{vm['id']}/stop")
            self.assertEqual(status, 202, out)
            self.wait_vm_state(vm['id'], 'stopped')
        results = [None, None]

        def start(i):
            results[i] = self.admin_api('POST', f"/api/v1/vms/{vms[i]['id']}/start")
        threads = [threading.Thread(target=start, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        statuses = sorted(r[0] for r in results)
        self.assertEqual(statuses, [200, 503], results)
        states = sorted(self.admin_api('GET', f"/api/v1/vms/{vm['id']}")[2]['state']
                        for vm in vms)
        self.assertEqual(states, ['running', 'stopped'])
        self.assertEqual(self.db.scalar("SELECT count(*) FROM port_leases "
                                        "WHERE vm_id IS NOT NULL"), '2')


if __name__ == '__main__':
    harness.main()
