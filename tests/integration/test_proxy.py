# SPDX-License-Identifier: LGPL-2.1-or-later
# http.trusted_proxies behind a real nginx (contrib/nginx/vmbroker.conf, self-signed TLS):
# the client address nginx passes on is the one login throttling, the sessions table and the
# access log see, only when nginx is trusted; a client's own X-Forwarded-For never counts.
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import nginx  # noqa: E402

PASSWORD = 'correct horse battery'


class Proxy(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.migrate()
        for name in ('alice', 'bob'):
            r = self.vmb('user', 'add', name, '--password-stdin', input=PASSWORD + '\n')
            self.assertEqual(r.returncode, 0, r.stderr)

    def start(self, trusted):
        port = harness.free_port()
        overrides = {'auth': {'login_failures_per_addr': '3', 'login_window_s': '300'}}
        if trusted is not None:
            overrides['http'] = {'listen': f'127.0.0.1:{port}', 'trusted_proxies': trusted}
        else:
            overrides['http'] = {'listen': f'127.0.0.1:{port}'}
        self.broker = self.serve(**overrides)
        self.nginx = nginx.Nginx(self, self.workdir, self.broker.port)

    def login(self, client, username='bob', password='wrong', headers=None):
        status, hdrs, body = self.nginx.request(
            'POST', '/api/v1/auth/login', {'username': username, 'password': password},
            headers=headers, client=client)
        return status, hdrs, body

    def wait_access(self, path, count):
        """The addr= of PATH's access-log lines, once there are COUNT of them."""
        deadline = time.monotonic() + harness.WAIT_S
        while time.monotonic() < deadline:
            addrs = nginx.access_addrs(self.broker.log(), path)
            if len(addrs) >= count:
                return addrs
            time.sleep(0.1)
        self.fail(f'fewer than {count} log lines for {path}:\n' + self.broker.log())

    def test_client_address_through_trusted_nginx(self):
        self.start('127.0.0.1, ::1')
        # A client's own X-Forwarded-For is only a hop nginx appends to: not believed.
        spoof = {'X-Forwarded-For': '198.51.100.9'}
        for _ in range(3):
            status, _, body = self.login('127.0.0.23', headers=spoof)
            self.assertEqual(status, 401, body)
        status, hdrs, body = self.login('127.0.0.23')
        self.assertEqual(status, 429, body)
        self.assertIn('retry-after', hdrs)
        # Another client behind the same nginx is not throttled with the first.
        status, _, body = self.login('127.0.0.24')
        self.assertEqual(status, 401, body)
        status, hdrs, body = self.login('127.0.0.24', 'alice', PASSWORD)
        self.assertEqual(status, 200, body)
        # nginx said https (X-Forwarded-Proto), so the cookie is Secure though public_url is
        # http://.
        self.assertIn('; Secure', hdrs['set-cookie'])
        self.assertEqual(self.db.scalar(
            "SELECT string_agg(host(remote_addr), ',') FROM sessions"), '127.0.0.24')
        addrs = self.wait_access('/api/v1/auth/login', 6)
        self.assertEqual(addrs, ['127.0.0.23'] * 4 + ['127.0.0.24'] * 2)
        self.assertNotIn('198.51.100.9', self.broker.log())
        # A client that reaches vmbroker directly is not a proxy: its header is ignored.
        before = len(nginx.access_addrs(self.broker.log(), '/healthz'))
        status, _ = nginx.direct(self.broker, 'GET', '/healthz', client='127.0.0.25',
                                 headers={'X-Forwarded-For': '127.0.0.24',
                                          'X-Forwarded-Proto': 'https'})
        self.assertEqual(status, 200)
        self.assertEqual(self.wait_access('/healthz', before + 1)[before], '127.0.0.25')

    def test_untrusted_nginx_is_the_client(self):
        self.start(None)
        for _ in range(3):
            status, _, body = self.login('127.0.0.23')
            self.assertEqual(status, 401, body)
        # Without trusted_proxies every browser shares nginx's address (and its throttle).
        status, hdrs, body = self.login('127.0.0.24', 'alice', PASSWORD)
        self.assertEqual(status, 429, body)
        self.assertEqual(self.wait_access('/api/v1/auth/login', 4), ['127.0.0.1'] * 4)

    def test_nginx_site(self):
        self.start('127.0.0.1')
        # /metrics is not served through nginx (scrape vmbroker's own address).
        status, _, body = self.nginx.request('GET', '/metrics')
        self.assertEqual(status, 404)
        self.assertNotIn(b'vmbroker_', body)
        status, _ = nginx.direct(self.broker, 'GET', '/metrics')
        self.assertEqual(status, 200)
        # Plain http is sent to https.
        conn = nginx.http.client.HTTPConnection('127.0.0.1', self.nginx.http_port, timeout=30)
        conn.request('GET', '/ui/')
        r = conn.getresponse()
        self.assertEqual(r.status, 301)
        self.assertTrue(r.getheader('Location').startswith('https://'))
        conn.close()
        # A JSON body over nginx's limit stops at nginx with 413.
        status, _, _ = self.nginx.request('POST', '/api/v1/auth/login',
                                          json.dumps({'p': 'x' * 70000}).encode(),
                                          {'Content-Type': 'application/json'})
        self.assertEqual(status, 413)


if __name__ == '__main__':
    harness.main()
