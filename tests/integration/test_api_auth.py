# SPDX-License-Identifier: LGPL-2.1-or-later
# The authentication half of the HTTP API against the real binary and PostgreSQL: logins and
# their cookies, CSRF, logout, signup, /me, API tokens, throttling, and hostile input that
# must end as a clean 4xx with nothing changed in the database.
import hashlib
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PASSWORD = 'correct horse battery'


class Auth(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.migrate()
        r = self.vmb('user', 'add', 'alice', '--password-stdin', input=PASSWORD + '\n')
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.vmb('user', 'add', 'bob', '--password-stdin', input=PASSWORD + '\n')
        self.assertEqual(r.returncode, 0, r.stderr)

    def start(self, **overrides):
        self.broker = self.serve(**overrides)
        self.origin = f'http://{self.broker.host}:{self.broker.port}'
        return self.broker

    def login(self, username='alice', password=PASSWORD):
        status, hdrs, body = self.broker.request(
            'POST', '/api/v1/auth/login', {'username': username, 'password': password})
        return status, hdrs, json.loads(body)

    def session(self, username='alice'):
        status, hdrs, body = self.login(username)
        self.assertEqual(status, 200, body)
        cookie = hdrs['set-cookie'].split(';', 1)[0]
        return cookie, body['csrf_token']

    def token(self, cookie, csrf, **body):
        status, _, data = self.broker.request(
            'POST', '/api/v1/tokens', {'name': 'test', **body},
            headers={'Cookie': cookie, 'X-CSRF-Token': csrf, 'Origin': self.origin})
        self.assertEqual(status, 201, data)
        return json.loads(data)

    def problem(self, status_hdrs_body, status):
        s, hdrs, body = status_hdrs_body
        self.assertEqual(s, status, body)
        self.assertEqual(hdrs['content-type'], 'application/problem+json')
        p = json.loads(body)
        for k in ('type', 'title', 'status', 'detail'):
            self.assertIn(k, p)
        self.assertEqual(p['status'], status)
        return p

    def test_login_sets_a_strict_httponly_cookie_and_a_new_session_each_time(self):
        self.start()
        status, hdrs, body = self.login()
        self.assertEqual(status, 200)
        self.assertEqual(body['user']['username'], 'alice')
        self.assertEqual(body['user']['role'], 'user')
        self.assertTrue(body['csrf_token'])
        cookie = hdrs['set-cookie']
        self.assertTrue(cookie.startswith('vmb_session='), cookie)
        self.assertIn('HttpOnly', cookie)
        self.assertIn('SameSite=Strict', cookie)
        self.assertNotIn('Secure', cookie)
        _, hdrs2, _ = self.login()
        self.assertNotEqual(cookie.split(';')[0], hdrs2['set-cookie'].split(';')[0])
        # Only digests are stored.
        secret = cookie.split(';')[0].split('=', 1)[1]
        rows = self.db.psql('SELECT secret_hash, csrf_hash FROM sessions')
        self.assertEqual(len(rows), 2)
        self.assertIn([hashlib.sha256(secret.encode()).hexdigest()], [[r[0]] for r in rows])
        self.assertNotIn(secret, self.db.dump())
        self.assertNotIn(body['csrf_token'], self.db.dump())

    def test_https_public_url_gives_secure_host_cookie(self):
        self.start(http={'public_url': 'https://vmbroker.example'})
        _, hdrs, _ = self.login()
        cookie = hdrs['set-cookie']
        self.assertTrue(cookie.startswith('__Host-vmb_session='), cookie)
        self.assertIn('Secure', cookie)
        self.assertIn('Path=/', cookie)

    def test_wrong_password_and_unknown_user_are_the_same_401(self):
        self.start()
        a = self.problem(self.broker.request('POST', '/api/v1/auth/login',
                                             {'username': 'alice', 'password': 'nope'}), 401)
        b = self.problem(self.broker.request('POST', '/api/v1/auth/login',
                                             {'username': 'nobody', 'password': 'nope'}), 401)
        self.assertEqual(a['detail'], b['detail'])

    def test_me_with_cookie_and_with_token(self):
        self.start()
        cookie, csrf = self.session()
        status, _, me = self.broker.get_json('/api/v1/me', headers={'Cookie': cookie})
        self.assertEqual((status, me['username'], me['auth']), (200, 'alice', 'session'))
        tok = self.token(cookie, csrf)['token']
        status, _, me = self.broker.get_json('/api/v1/me',
                                             headers={'Authorization': f'Bearer {tok}'})
        self.assertEqual((status, me['username'], me['auth']), (200, 'alice', 'token'))
        p = self.problem(self.broker.request('GET', '/api/v1/me'), 401)
        self.assertIn('Sign in', p['detail'])

    def test_csrf_rule_for_cookie_requests(self):
        self.start()
        cookie, csrf = self.session()
        body = {'name': 'x'}
        self.problem(self.broker.request('POST', '/api/v1/tokens', body,
                                         headers={'Cookie': cookie, 'Origin': self.origin}), 403)
        self.problem(self.broker.request('POST', '/api/v1/tokens', body,
                                         headers={'Cookie': cookie, 'Origin': self.origin,
                                                  'X-CSRF-Token': 'wrong'}), 403)
        self.problem(self.broker.request('POST', '/api/v1/tokens', body,
                                         headers={'Cookie': cookie, 'X-CSRF-Token': csrf,
                                                  'Origin': 'https://evil.example'}), 403)
        self.problem(self.broker.request('POST', '/api/v1/tokens', body,
                                         headers={'Cookie': cookie, 'X-CSRF-Token': csrf}), 403)
        self.assertEqual(self.db.scalar('SELECT count(*) FROM api_tokens'), '0')
        status, _, _ = self.broker.request('POST', '/api/v1/tokens', body,
                                           headers={'Cookie': cookie, 'X-CSRF-Token': csrf,
                                                    'Sec-Fetch-Site': 'same-origin'})
        self.assertEqual(status, 201)
        # A bearer token needs no CSRF header: it is not sent by browsers on their own.
        tok = self.token(cookie, csrf)['token']
        status, _, _ = self.broker.request('POST', '/api/v1/tokens', body,
                                           headers={'Authorization': f'Bearer {tok}'})
        self.assertEqual(status, 201)

    def test_logout_ends_the_session(self):
        self.start()
        cookie, csrf = self.session()
        status, hdrs, _ = self.broker.request('POST', '/api/v1/auth/logout', headers={
            'Cookie': cookie, 'X-CSRF-Token': csrf, 'Origin': self.origin})
        self.assertEqual(status, 204)
        self.assertIn('Max-Age=0', hdrs['set-cookie'])
        self.problem(self.broker.request('GET', '/api/v1/me', headers={'Cookie': cookie}), 401)
        self.assertEqual(self.db.scalar('SELECT count(*) FROM sessions'), '0')

    def test_expired_and_idle_sessions_are_refused(self):
        self.start()
        cookie, _ = self.session()
        self.db.psql("UPDATE sessions SET last_seen_at = now() - interval '3 hours'")
        self.problem(self.broker.request('GET', '/api/v1/me', headers={'Cookie': cookie}), 401)
        cookie, _ = self.session()
        self.db.psql("UPDATE sessions SET expires_at = now() - interval '1 second'")
        self.problem(self.broker.request('GET', '/api/v1/me', headers={'Cookie': cookie}), 401)

    def test_disabled_user_cannot_sign_in_or_use_tokens(self):
        self.start()
        cookie, csrf = self.session()
        tok = self.token(cookie, csrf)['token']
        self.db.psql("UPDATE users SET disabled = true WHERE username = 'alice'")
        self.problem(self.broker.request('POST', '/api/v1/auth/login',
                                         {'username': 'alice', 'password': PASSWORD}), 401)
        self.problem(self.broker.request('GET', '/api/v1/me',
                                         headers={'Authorization': f'Bearer {tok}'}), 401)
        self.problem(self.broker.request('GET', '/api/v1/me', headers={'Cookie': cookie}), 401)

    def test_signup_closed_by_default_and_open_when_configured(self):
        self.start()
        self.problem(self.broker.request('POST', '/api/v1/auth/signup',
                                         {'username': 'carol', 'password': 'long enough'}), 403)
        self.broker.kill()
        self.start(auth={'signup': 'true'})
        status, _, body = self.broker.request('POST', '/api/v1/auth/signup',
                                              {'username': 'carol', 'password': 'long enough'})
        self.assertEqual(status, 201, body)
        self.assertEqual(self.db.scalar("SELECT role FROM users WHERE username = 'carol'"),
                         'user')
        self.problem(self.broker.request('POST', '/api/v1/auth/signup',
                                         {'username': 'carol', 'password': 'long enough'}), 409)
        self.problem(self.broker.request('POST', '/api/v1/auth/signup',
                                         {'username': 'Carol!', 'password': 'long enough'}), 400)
        self.problem(self.broker.request('POST', '/api/v1/auth/signup',
                                         {'username': 'dave', 'password': 'short'}), 400)
        status, _, _ = self.broker.request('POST', '/api/v1/auth/login',
                                           {'username': 'carol', 'password': 'long enough'})
        self.assertEqual(status, 200)

    def test_tokens_listed_without_secret_revoked_and_expired(self):
        self.start()
        cookie, csrf = self.session()
        made = self.token(cookie, csrf, name='portal', expires_in=3600)
        self.assertTrue(made['token'].startswith('vmb_'))
        auth = {'Authorization': f'Bearer {made["token"]}'}
        status, _, listed = self.broker.get_json('/api/v1/tokens', headers=auth)
        self.assertEqual(status, 200)
        self.assertEqual([t['name'] for t in listed], ['portal'])
        self.assertNotIn(made['token'], json.dumps(listed))
        self.assertIsNotNone(listed[0]['expires_at'])
        # Bob cannot see or revoke Alice's token: 404, not 403.
        bob_cookie, bob_csrf = self.session('bob')
        bob = {'Authorization': f'Bearer {self.token(bob_cookie, bob_csrf)["token"]}'}
        self.problem(self.broker.request('DELETE', f'/api/v1/tokens/{made["id"]}',
                                         headers=bob), 404)
        status, _, _ = self.broker.request('GET', '/api/v1/me', headers=auth)
        self.assertEqual(status, 200)
        status, _, _ = self.broker.request('DELETE', f'/api/v1/tokens/{made["id"]}',
                                           headers=auth)
        self.assertEqual(status, 204)
        self.problem(self.broker.request('GET', '/api/v1/me', headers=auth), 401)
        # Expiry, by moving the row's clock.
        other = self.token(cookie, csrf, expires_in=60)
        self.db.psql("UPDATE api_tokens SET created_at = now() - interval '2 hours', "
                     "expires_at = now() - interval '1 hour' WHERE id = '%s'" % other['id'])
        self.problem(self.broker.request(
            'GET', '/api/v1/me', headers={'Authorization': f'Bearer {other["token"]}'}), 401)
        self.problem(self.broker.request('GET', '/api/v1/me',
                                         headers={'Authorization': 'Basic abc'}), 401)

    def test_failed_logins_are_throttled_with_retry_after(self):
        self.start(auth={'login_failures_per_user': '3', 'login_window_s': '120'})
        for _ in range(3):
            self.problem(self.broker.request('POST', '/api/v1/auth/login',
                                             {'username': 'alice', 'password': 'x'}), 401)
        r = self.broker.request('POST', '/api/v1/auth/login',
                                {'username': 'alice', 'password': PASSWORD})
        self.problem(r, 429)
        self.assertGreater(int(r[1]['retry-after']), 0)
        # Another user is not throttled by Alice's failures.
        status, _, _ = self.login('bob')
        self.assertEqual(status, 200)

    def test_logins_waiting_for_a_hashing_slot_hold_no_database_connection(self):
        # Slow hashes (carol's are made with 16 passes), one at a time, two pooled
        # connections: six logins at once queue for the hashing slot, and a request that
        # needs the database still answers at once, because no login waits with a
        # connection in hand.
        slow = self.config(name='slow.ini', auth={'argon2_iterations': '16'})
        r = self.vmb('user', 'add', 'carol', '--password-stdin', input=PASSWORD + '\n',
                     config=slow)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.start(database={'pool_size': '2'}, auth={'max_hashing': '1'})
        cookie, _ = self.session('bob')
        t0 = time.monotonic()
        self.assertEqual(self.login('carol')[0], 200)
        one_hash = time.monotonic() - t0
        results = []
        logins = [threading.Thread(target=lambda: results.append(self.login('carol')[0]))
                  for _ in range(6)]
        for t in logins:
            t.start()
        time.sleep(one_hash / 2)
        slowest = 0.0
        answered = 0
        while any(t.is_alive() for t in logins) and answered < 20:
            t0 = time.monotonic()
            status, _, _ = self.broker.get_json('/api/v1/me', headers={'Cookie': cookie})
            slowest = max(slowest, time.monotonic() - t0)
            self.assertEqual(status, 200)
            answered += 1
        for t in logins:
            t.join()
        self.assertGreaterEqual(answered, 3, f'one hash took {one_hash:.2f} s')
        self.assertLess(slowest, max(0.25, one_hash / 2),
                        f'a request waited {slowest:.2f} s; one hash takes {one_hash:.2f} s')
        self.assertEqual(sorted(results), [200] * 6)

    def test_hostile_input_is_a_clean_4xx_and_changes_nothing(self):
        self.start(http={'max_body_bytes': '65536'})
        # The audit log records refused logins: it is checked on its own below.
        def dump():  # without the audit log's rows and its id sequence's position
            return [line for line in self.db.dump(exclude_data=('audit_log',)).splitlines()
                    if 'audit_log_id_seq' not in line]
        before = dump()
        audited = int(self.db.scalar('SELECT count(*) FROM audit_log'))
        cases = [
            (b'{"username": "alice", "password": ', 'application/json', 400),
            (b'[1, 2]', 'application/json', 400),
            (b'{"username": 5, "password": "x"}', 'application/json', 400),
            (b'{"username": "alice"}', 'application/json', 400),
            (json.dumps({'username': 'a' * (1 << 20), 'password': 'x'}).encode(),
             'application/json', 413),
            (b'{"username": "al\x00ice", "password": "x"}', 'application/json', 400),
            (b'{"username": "alice", "password": "x"}', 'text/plain', 415),
            (b'\xff\xfe{}', 'application/json', 400),
            (b'[' * 100 + b']' * 100, 'application/json', 400),
        ]
        for body, ctype, want in cases:
            with self.subTest(body=body[:40], ctype=ctype):
                self.problem(self.broker.raw_request('POST', '/api/v1/auth/login', body,
                                                     {'Content-Type': ctype}), want)
        for name, want in (("'; DROP TABLE users; --", 401), ('<x/>', 401),
                           ('alice\x00', 400)):
            with self.subTest(name=name):
                self.problem(self.broker.request('POST', '/api/v1/auth/login',
                                                 {'username': name, 'password': 'x'}), want)
        after = dump()
        self.assertEqual(before, after)
        self.assertEqual(self.db.scalar('SELECT count(*) FROM users'), '2')
        # The two names that reached the password check are refused logins in the audit log,
        # without the hostile name itself (only valid user names are kept).
        rows = self.db.psql(f"SELECT action, object_id IS NULL, detail->>'username',"
                            f" detail->>'reason' FROM audit_log WHERE id > {audited}"
                            " ORDER BY id")
        self.assertEqual(rows, [['auth.login_failed', 't', '', 'unknown user']] * 2)
        # The process still serves.
        status, _, _ = self.broker.request('GET', '/healthz')
        self.assertEqual(status, 200)

    def test_admins_list_disable_and_enable_users(self):
        self.start()
        for name, role in (('root', 'admin'), ('portal', 'service')):
            r = self.vmb('user', 'add', name, '--role', role, '--password-stdin',
                         input=PASSWORD + '\n')
            self.assertEqual(r.returncode, 0, r.stderr)
        tokens = {}
        for name in ('root', 'portal', 'alice', 'bob'):
            cookie, csrf = self.session(name)
            tokens[name] = {'Authorization': 'Bearer ' + self.token(cookie, csrf)['token']}
        status, _, users = self.broker.get_json('/api/v1/users', headers=tokens['root'])
        self.assertEqual(status, 200)
        self.assertEqual([u['username'] for u in users], ['alice', 'bob', 'portal', 'root'])
        self.assertTrue(all(set(u) == {'id', 'username', 'role', 'disabled'} for u in users))
        for who in ('alice', 'portal'):
            self.problem(self.broker.request('GET', '/api/v1/users', headers=tokens[who]), 403)
        ids = {u['username']: u['id'] for u in users}
        self.problem(self.broker.request('POST', f'/api/v1/users/{ids["bob"]}/disable',
                                         headers=tokens['alice']), 403)
        bob_cookie, _ = self.session('bob')
        status, _, _ = self.broker.request('POST', f'/api/v1/users/{ids["bob"]}/disable',
                                           headers=tokens['root'])
        self.assertEqual(status, 204)
        self.problem(self.broker.request('GET', '/api/v1/me', headers=tokens['bob']), 401)
        self.problem(self.broker.request('GET', '/api/v1/me', headers={'Cookie': bob_cookie}),
                     401)
        self.problem(self.broker.request('POST', '/api/v1/auth/login',
                                         {'username': 'bob', 'password': PASSWORD}), 401)
        status, _, _ = self.broker.request('POST', f'/api/v1/users/{ids["bob"]}/enable',
                                           headers=tokens['root'])
        self.assertEqual(status, 204)
        status, _, _ = self.broker.request('GET', '/api/v1/me', headers=tokens['bob'])
        self.assertEqual(status, 200)
        self.problem(self.broker.request('POST', f'/api/v1/users/{ids["root"]}/disable',
                                         headers=tokens['root']), 409)
        self.problem(self.broker.request('POST', '/api/v1/users/nope/disable',
                                         headers=tokens['root']), 404)


if __name__ == '__main__':
    harness.main()
