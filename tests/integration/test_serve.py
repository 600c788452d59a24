# SPDX-License-Identifier: LGPL-2.1-or-later
# `vmbroker serve`: liveness, readiness following PostgreSQL, request log, and a clean exit on
# SIGTERM/SIGINT that still completes the request in flight.
import http.client
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time

import harness


class Serve(harness.TestCase):
    def test_healthz(self):
        b = self.serve()
        status, hdrs, data = b.request('GET', '/healthz')
        self.assertEqual(status, 200)
        self.assertTrue(hdrs['content-type'].startswith('application/json'), hdrs)
        self.assertEqual(json.loads(data), {'status': 'ok'})

    def test_logs_where_it_listens(self):
        b = self.serve()
        self.assertIn(f'listening on http://127.0.0.1:{b.port}', b.log())

    def test_readyz_with_database_and_libvirt_up(self):
        b = self.serve()
        status, hdrs, body = b.get_json('/readyz')
        self.assertEqual(status, 200, body)
        self.assertEqual(body['status'], 'ready')
        self.assertIn(body['checks'].pop('guest_network'), ('active', 'inactive', 'absent'))
        self.assertEqual(body['checks'], {'database': 'ok', 'libvirt': 'ok', 'accelerator': 'ok',
                                          'hosts': {'local': 'ok'}})
        self.assertIn(body['accelerator']['accelerator'], ('kvm', 'qemu'))

    def test_unknown_path_is_a_problem_404(self):
        b = self.serve()
        status, hdrs, data = b.request('GET', '/no/such/path')
        self.assertEqual(status, 404)
        self.assertTrue(hdrs['content-type'].startswith('application/problem+json'), hdrs)
        problem = json.loads(data)
        self.assertEqual(problem['status'], 404)
        for field in ('type', 'title', 'detail'):
            self.assertIn(field, problem)

    def test_routes_match_whole_segments(self):
        b = self.serve()
        cases = [
            ('GET', '/api/v1/vms', 401),          # the route; no credentials
            ('GET', '/api/v1/vms/', 404),         # one more (empty) segment
            ('GET', '/api/v1/vmsx', 404),
            ('GET', '/api/v1', 404),
            ('PATCH', '/api/v1/vms', 405),
            ('GET', '/api/v1/vms/x/stop', 405),   # only POST there
            ('POST', '/api/v1/vms/x/stop', 401),
            ('POST', '/api/v1/vms//stop', 404),   # {id} needs a non-empty segment
            ('POST', '/api/v1/vms/x/stop/more', 404),
            ('GET', '/ui/css/app.css', 200),      # /ui/* takes the rest, slashes and all
            ('GET', '/ui', 404),
        ]
        for method, path, want in cases:
            with self.subTest(method=method, path=path):
                status, hdrs, _ = b.request(method, path)
                self.assertEqual(status, want)
                if want >= 400:
                    self.assertTrue(hdrs['content-type'].startswith('application/problem+json'))

    def test_one_log_line_per_request_without_query_string(self):
        b = self.serve()
        status, _, _ = b.request('GET', '/healthz?secret=hunter2xyz')
        self.assertEqual(status, 200)
        status, _, _ = b.request('GET', '/no/such/path')
        self.assertEqual(status, 404)
        b.signal(signal.SIGTERM)
        self.assertEqual(b.wait(), 0)
        log = b.log()
        self.assertNotIn('hunter2xyz', log)
        lines = [l for l in log.splitlines() if 'GET' in l and '/healthz' in l
                 and re.search(r'\b200\b', l)]
        # wait_healthy() polled /healthz too: at least our request and one poll.
        self.assertGreaterEqual(len(lines), 2, log)
        self.assertTrue(any('GET' in l and '/no/such/path' in l and re.search(r'\b404\b', l)
                            for l in log.splitlines()), log)

    def test_polling_is_logged_once_per_connection(self):
        b = self.serve()
        before = len(b.log().splitlines())
        conn = http.client.HTTPConnection(b.host, b.port, timeout=60)
        for _ in range(5):
            conn.request('GET', '/metrics')  # loopback may read it; wait_healthy() does not
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
        conn.request('GET', '/no/such/poll')
        r = conn.getresponse()
        r.read()
        self.assertEqual(r.status, 404)
        conn.close()
        b.signal(signal.SIGTERM)
        self.assertEqual(b.wait(), 0)
        log = b.log().splitlines()[before:]
        polls = [l for l in log if 'GET /metrics' in l]
        self.assertEqual(len(polls), 1, log)  # five reads on one connection: one line
        self.assertTrue(any('/no/such/poll' in l and re.search(r'\b404\b', l) for l in log), log)

    def test_readyz_follows_postgresql(self):
        pg = harness.PrivateCluster(self, port=5489)
        db = pg.create_database(self, 'ready')
        b = self.serve(db=db)
        status, _, body = b.get_json('/readyz')
        self.assertEqual(status, 200, body)

        pg.stop()
        status, hdrs, data = b.request('GET', '/readyz')
        self.assertEqual(status, 503, data)
        self.assertTrue(hdrs['content-type'].startswith('application/problem+json'), hdrs)
        problem = json.loads(data)
        self.assertEqual(problem['status'], 503)
        for field in ('type', 'title', 'detail'):
            self.assertIn(field, problem)
        self.assertIn('database', problem['detail'])
        problem['checks'].pop('guest_network')
        self.assertEqual(problem['checks'], {'database': 'down', 'libvirt': 'ok',
                                             'accelerator': 'ok', 'hosts': {'local': 'ok'}})
        # Liveness does not depend on the database.
        self.assertEqual(b.request('GET', '/healthz')[0], 200)

        pg.start()
        deadline = time.monotonic() + harness.WAIT_S
        while True:
            status, _, body = b.get_json('/readyz')
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(status, 200, body)
        body['checks'].pop('guest_network')
        self.assertEqual(body['checks'], {'database': 'ok', 'libvirt': 'ok', 'accelerator': 'ok',
                                          'hosts': {'local': 'ok'}})

    def in_flight_then_signal(self, sig):
        b = self.serve()
        s = socket.create_connection(('127.0.0.1', b.port), timeout=30)
        self.addCleanup(s.close)
        s.sendall(b'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\n\r\n')
        time.sleep(0.3)  # the server has the headers: the request is in flight
        b.signal(sig)
        time.sleep(0.3)  # the signal has arrived while the request waits for its body
        s.sendall(b'ping')
        resp = http.client.HTTPResponse(s)
        resp.begin()
        body = resp.read()
        self.assertEqual(resp.status, 200, body)
        self.assertEqual(resp.version, 11)
        self.assertEqual(json.loads(body), {'status': 'ok'})
        self.assertEqual(b.wait(), 0, b.log())

    def test_sigterm_completes_the_request_in_flight_and_exits_0(self):
        self.in_flight_then_signal(signal.SIGTERM)

    def test_sigint_completes_the_request_in_flight_and_exits_0(self):
        self.in_flight_then_signal(signal.SIGINT)

    def test_sigterm_when_idle_exits_0_and_stops_listening(self):
        b = self.serve()
        b.signal(signal.SIGTERM)
        self.assertEqual(b.wait(), 0, b.log())
        with self.assertRaises(OSError):
            socket.create_connection(('127.0.0.1', b.port), timeout=5).close()

    def test_port_in_use_fails_with_one_line(self):
        with socket.socket() as s:
            s.bind(('127.0.0.1', 0))
            s.listen()
            port = s.getsockname()[1]
            self.migrate()
            # serve defines its storage pools before it finds the port taken.
            prefix = f'vmbt{secrets.token_hex(3)}-'
            self.addCleanup(harness.remove_pools, prefix)
            cfg = self.config(http={'listen': f'127.0.0.1:{port}'},
                              libvirt={'name_prefix': prefix})
            r = harness.run(['serve'], config=cfg, timeout=harness.WAIT_S)
            # serve may log before it fails; the failure itself is its last line.
            self.assertEqual(r.returncode, 1, r.stderr)
            last = harness.one_line(r.stderr)[-1]
            self.assertIn(str(port), last)

    def test_sd_notify_watchdog_and_sighup(self):
        self.migrate()
        sock_path = os.path.join(self.workdir, 'notify.sock')
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(listener.close)
        listener.bind(sock_path)
        listener.settimeout(harness.WAIT_S)
        b = self.serve(env={'NOTIFY_SOCKET': sock_path, 'WATCHDOG_USEC': '2000000'})

        def next_message():
            return listener.recv(4096).decode()

        ready = next_message()
        self.assertIn('READY=1', ready.splitlines())
        self.assertIn(f'STATUS=serving on port {b.port}', ready)
        # WATCHDOG_USEC 2 s: a ping every second.
        self.assertEqual(next_message(), 'WATCHDOG=1')
        self.assertEqual(next_message(), 'WATCHDOG=1')

        # SIGHUP rereads the file: log.level applies at once, the rest is named.
        sections = dict(b.sections)
        sections['log'] = {'level': 'warning'}
        sections['http'] = {**sections['http'], 'threads': '3'}
        harness.write_config(b.config, sections)
        b.signal(signal.SIGHUP)
        deadline = time.monotonic() + harness.WAIT_S
        while 'SIGHUP: reread' not in b.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        line = [l for l in b.log().splitlines() if 'SIGHUP: reread' in l][0]
        self.assertIn('log.level info -> warning', line)
        self.assertIn('applied at the next restart: http.threads', line)
        b.request('GET', '/after-reload')  # a 404: its access-log line is info
        # A bad file changes nothing and says so.
        with open(b.config, 'a', encoding='utf-8') as f:
            f.write('[nonsense]\nx = 1\n')
        b.signal(signal.SIGHUP)
        while 'kept the running configuration' not in b.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertIn('unknown section [nonsense]', b.log())
        # info lines (the access log) stopped at the reload.
        b.signal(signal.SIGTERM)
        self.assertEqual(b.wait(), 0)
        self.assertIn('GET /healthz', b.log())  # info before the reload
        self.assertNotIn('/after-reload', b.log())
        messages = []
        while 'STOPPING=1' not in ''.join(messages):
            messages.append(next_message())

    def test_journal_format(self):
        self.migrate()
        port = harness.free_port()
        # The harness opens (and truncates) this file for the broker's stderr: same inode.
        log_path = os.path.join(self.workdir, f'serve-{port}.log')
        open(log_path, 'w').close()
        st = os.stat(log_path)
        b = self.serve(env={'JOURNAL_STREAM': f'{st.st_dev}:{st.st_ino}'},
                       http={'listen': f'127.0.0.1:{port}'})
        lines = harness.one_line(b.log())
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, r'^<[3467]>')
        self.assertTrue(any(l.startswith('<6>vmbroker ') and 'listening on' in l for l in lines))
        # Another stream's numbers (stderr redirected since): the plain format.
        b2 = self.serve(env={'JOURNAL_STREAM': f'{st.st_dev}:{st.st_ino + 1}'})
        self.assertRegex(harness.one_line(b2.log())[0], r'^\d{4}-\d\d-\d\dT')

    def test_postgresql_notices_reach_the_log(self):
        # A WARNING: the connection that ran the migrations keeps client_min_messages at
        # warning, and may be the one the login gets.
        self.migrate()
        r = self.vmb('user', 'add', 'alice', '--password-stdin', input='alice password 1\n')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.db.psql("CREATE FUNCTION say_hello() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$ BEGIN RAISE WARNING 'hello from a trigger'; RETURN NEW; END $$; "
                     "CREATE TRIGGER say_hello AFTER INSERT ON sessions "
                     "FOR EACH ROW EXECUTE FUNCTION say_hello()")
        b = self.serve()
        status, _, _ = b.request('POST', '/api/v1/auth/login',
                                 {'username': 'alice', 'password': 'alice password 1'})
        self.assertEqual(status, 200)
        deadline = time.monotonic() + harness.WAIT_S
        while 'hello from a trigger' not in b.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        lines = [l for l in b.log().splitlines() if 'hello from a trigger' in l]
        self.assertTrue(lines, b.log())
        line = lines[0]
        self.assertRegex(line, r'^\d{4}-\d\d-\d\dT\S+ warning postgresql: WARNING: ')

    def test_root_needs_allow_root(self):
        # A database that does not answer: as anyone but root, serve stops there instead.
        cfg = self.config(database={'url': 'host=/nonexistent dbname=none'})
        cmd = [harness.VMBROKER, '--config', cfg, 'serve']
        r = subprocess.run(cmd, capture_output=True, text=True, env=harness.clean_env(),
                           stdin=subprocess.DEVNULL, timeout=harness.WAIT_S)
        if os.geteuid() == 0:
            self.assertFailsWithOneLine(r, 'refusing to run as root', '--allow-root')
        else:
            self.assertNotEqual(r.returncode, 0)
            self.assertNotIn('refusing to run as root', r.stderr)


if __name__ == '__main__':
    harness.main()
