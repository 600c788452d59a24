# SPDX-License-Identifier: LGPL-2.1-or-later
# The console on real QEMU guests: the page ticket buys the VNC password, the websocket is
# spliced to QEMU (RFB, VNC authentication, a framebuffer update), every refusal happens
# before QEMU is contacted, connections are tracked and leak no fd, and the reaper stops idle
# and over-age VMs. The browser's side is tests/integration/console-probe.c.
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PROBE = os.environ['VMB_CONSOLE_PROBE']
PASSWORD = 'a good password'


def virsh(*args):
    return subprocess.run(['virsh', '-q', '-c', 'qemu:///system', *args],
                          capture_output=True, text=True, timeout=60)


class Console(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.templates = os.path.join(self.workdir, 'templates')
        shutil.copytree(os.path.join(harness.SRC, 'templates'), self.templates)

    def template(self, name, **fields):
        with open(os.path.join(harness.SRC, 'templates', 'memtest.json')) as f:
            t = json.load(f)
        t.update(fields)
        with open(os.path.join(self.templates, name + '.json'), 'w') as f:
            json.dump(t, f)

    def start(self, **overrides):
        overrides.setdefault('templates', {})['dir'] = self.templates
        overrides.setdefault('libvirt', {})['stop_timeout_s'] = '2'
        self.migrate(self.config(**{k: v for k, v in overrides.items()}))
        self.broker = self.serve(**overrides)
        self.origin = f'http://{self.broker.host}:{self.broker.port}'
        self.prefix = self.broker.sections['libvirt']['name_prefix']
        self.addCleanup(self.remove_domains)
        return self.broker

    def remove_domains(self):
        for name in virsh('list', '--all', '--name').stdout.split():
            if name.startswith(self.prefix):
                virsh('destroy', name)
                virsh('undefine', name, '--remove-all-storage')

    def user(self, name, role='user'):
        r = self.vmb('user', 'add', name, '--role', role, '--password-stdin',
                     input=PASSWORD + '\n', config=self.broker.config)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.vmb('token', 'create', name, config=self.broker.config)
        self.assertEqual(r.returncode, 0, r.stderr)
        return {'Authorization': 'Bearer ' + r.stdout.strip()}

    def create(self, auth, template='memtest', **body):
        status, _, data = self.broker.request('POST', '/api/v1/vms',
                                              {'template': template, **body}, headers=auth)
        self.assertEqual(status, 201, data)
        made = json.loads(data)
        self.addCleanup(self.delete_quietly, auth, made['vm']['id'])
        return made

    def delete_quietly(self, auth, vm_id):
        """Deletes through the broker of the moment; one a test restarted may have stopped
        first (remove_domains cleans up after it)."""
        try:
            self.broker.request('DELETE', f'/api/v1/vms/{vm_id}', headers=auth)
        except OSError:
            pass

    def fragment(self, url):
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).fragment))

    def session(self, vm_id, page_ticket):
        status, _, data = self.broker.request('POST', f'/api/v1/vms/{vm_id}/console/session',
                                              {'ticket': page_ticket})
        return status, json.loads(data)

    def ws_ticket(self, auth, vm_id):
        status, _, data = self.broker.request('POST', f'/api/v1/vms/{vm_id}/console',
                                              headers=auth)
        self.assertEqual(status, 201, data)
        return json.loads(data)

    def probe(self, path, origin=None, password=None, hold=0):
        args = [PROBE, self.broker.host, str(self.broker.port), path, origin or self.origin]
        if password:
            args += [password, str(hold)]
        r = subprocess.run(args, capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def qemu_connections(self, ws_port):
        r = subprocess.run(['ss', '-Htn', 'state', 'established', f'( dport = :{ws_port} )'],
                           capture_output=True, text=True, timeout=30)
        return len([l for l in r.stdout.splitlines() if l.strip()])

    def wait_for(self, what, fn, deadline_s=120):
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            value = fn()
            if value:
                return value
            time.sleep(0.5)
        self.fail(f'timed out waiting for {what}')

    def get_vm(self, auth, vm_id):
        status, _, vm = self.broker.get_json(f'/api/v1/vms/{vm_id}', headers=auth)
        self.assertEqual(status, 200, vm)
        return vm

    # --- tests ---

    def test_portal_student_reaches_the_console_through_the_proxy(self):
        self.start()
        portal = self.user('portal', 'service')
        made = self.create(portal, owner='student1')
        vm = made['vm']
        frag = self.fragment(made['console_url'])
        self.assertEqual(frag['vm'], vm['id'])
        # The student has no account to sign in with: the ticket is enough, once.
        status, s = self.session(vm['id'], frag['ticket'])
        self.assertEqual(status, 200, s)
        self.assertTrue(s['password'])
        self.assertNotIn(s['password'], made['console_url'] + made['novnc_url'])
        got = self.probe(s['ws_path'], password=s['password'])
        self.assertEqual(got['status'], 101, got)
        self.assertTrue(got['accept_ok'], got)
        self.assertEqual(got['rfb'], 'RFB 003.008')
        self.assertEqual(got['error'], '', got)
        self.assertGreater(got['width'] * got['height'], 0)
        self.assertEqual(got['update_bytes'], got['width'] * got['height'] * 4)
        # Both tickets are spent.
        status, _ = self.session(vm['id'], frag['ticket'])
        self.assertEqual(status, 401)
        self.assertEqual(self.probe(s['ws_path'])['status'], 401)
        # The novnc_url's ticket opens the websocket (the stock page asks for the password).
        path = urllib.parse.unquote(self.fragment(made['novnc_url'])['path'])
        got = self.probe('/' + path)
        self.assertEqual((got['status'], got['rfb']), (101, 'RFB 003.008'), got)

    def test_refusals_happen_before_qemu_is_contacted(self):
        self.start()
        alice, bob = self.user('alice'), self.user('bob')
        vm = self.create(alice)['vm']
        port = vm['ws_port']
        ticket = self.ws_ticket(alice, vm['id'])
        self.assertEqual(self.probe(ticket['ws_path'])['status'], 101)
        self.wait_for('the first console to end', lambda: self.qemu_connections(port) == 0)
        cases = []
        # replayed
        cases.append(('replayed', ticket['ws_path'], {}, 401))
        # expired
        t = self.ws_ticket(alice, vm['id'])
        h = subprocess.run(['python3', '-c', 'import hashlib,sys;print(hashlib.sha256('
                            'sys.argv[1].encode()).hexdigest())', t['ticket']],
                           capture_output=True, text=True).stdout.strip()
        self.db.psql("UPDATE console_tickets SET created_at = now() - interval '3 minutes', "
                     f"expires_at = now() - interval '2 minutes' WHERE secret_hash = '{h}'")
        cases.append(('expired', t['ws_path'], {}, 401))
        # another user's, presented with Bob's credentials
        cases.append(('another user', self.ws_ticket(alice, vm['id'])['ws_path'],
                      {'auth': bob}, 403))
        # a foreign Origin, and no Origin without a bearer token
        cases.append(('foreign origin', self.ws_ticket(alice, vm['id'])['ws_path'],
                      {'origin': 'https://evil.example'}, 403))
        cases.append(('no origin', self.ws_ticket(alice, vm['id'])['ws_path'],
                      {'origin': '-'}, 403))
        # a page ticket is not a websocket ticket
        page = self.fragment(self.ws_ticket(alice, vm['id'])['console_url'])['ticket']
        cases.append(('page ticket', f'/api/v1/vms/{vm["id"]}/console/ws?ticket={page}', {},
                      401))
        # another VM's id
        cases.append(('other vm', self.ws_ticket(alice, vm['id'])['ws_path'].replace(
            vm['id'], '00000000-0000-4000-8000-000000000000'), {}, 401))
        for name, path, how, want in cases:
            with self.subTest(name):
                if 'auth' in how:
                    got = self.raw_upgrade(path, how['auth'])
                else:
                    got = self.probe(path, origin=how.get('origin'))['status']
                self.assertEqual(got, want)
                self.assertEqual(self.qemu_connections(port), 0)
        # a stopped VM
        t = self.ws_ticket(alice, vm['id'])
        status, _, _ = self.broker.request('POST', f'/api/v1/vms/{vm["id"]}/stop', headers=alice)
        self.assertEqual(status, 202)
        self.wait_for('stopped', lambda: self.get_vm(alice, vm['id'])['state'] == 'stopped')
        self.assertEqual(self.probe(t['ws_path'])['status'], 409)

    def raw_upgrade(self, path, headers):
        s = socket.create_connection((self.broker.host, self.broker.port), timeout=30)
        with s:
            req = (f'GET {path} HTTP/1.1\r\nHost: {self.broker.host}\r\nUpgrade: websocket\r\n'
                   'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
                   f'Sec-WebSocket-Version: 13\r\nOrigin: {self.origin}\r\n')
            req += ''.join(f'{k}: {v}\r\n' for k, v in headers.items()) + '\r\n'
            s.sendall(req.encode())
            return int(s.recv(4096).split(b' ', 2)[1])

    def test_connections_are_tracked_and_audited(self):
        self.start()
        alice = self.user('alice')
        made = self.create(alice)
        vm = made['vm']
        _, s = self.session(vm['id'], self.fragment(made['console_url'])['ticket'])
        args = [PROBE, self.broker.host, str(self.broker.port), s['ws_path'], self.origin,
                s['password'], '4']
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        self.addCleanup(proc.kill)
        self.wait_for('one connection', lambda: self.get_vm(alice, vm['id'])['console']
                      ['connections'] == 1)
        self.assertIsNotNone(self.get_vm(alice, vm['id'])['console']['last_activity_at'])
        held = self.wait_for('the open connection in the history',
                             lambda: self.history(alice, vm['id']))
        self.assertEqual([(c['user'], c['remote_addr'], c['closed_at'], c['reason'])
                          for c in held], [('alice', '127.0.0.1', None, None)])
        out, _ = proc.communicate(timeout=120)
        self.assertEqual(json.loads(out)['status'], 101)
        self.wait_for('no connection', lambda: self.get_vm(alice, vm['id'])['console']
                      ['connections'] == 0)
        # A second session: the history lists both, newest first, with their bytes.
        self.assertEqual(self.probe(self.ws_ticket(alice, vm['id'])['ws_path'],
                                    password=s['password'])['status'], 101)
        def both_closed():
            got = self.history(alice, vm['id'])
            return got if len(got) == 2 and all(c['closed_at'] for c in got) else None
        conns = self.wait_for('both connections closed', both_closed)
        self.assertEqual(conns[1]['id'], held[0]['id'])
        self.assertGreater(conns[0]['opened_at'], conns[1]['opened_at'])
        for c in conns:
            self.assertEqual((c['user'], c['remote_addr'], c['reason']),
                             ('alice', '127.0.0.1', 'closed'))
            self.assertGreater(c['bytes_in'], 0)  # the RFB handshake
            self.assertGreater(c['bytes_out'], c['bytes_in'])  # and a framebuffer
            self.assertGreaterEqual(c['closed_at'], c['opened_at'])
        bob = self.user('bob')
        status, _, _ = self.broker.request('GET', f'/api/v1/vms/{vm["id"]}/connections',
                                           headers=bob)
        self.assertEqual(status, 404)
        audit = self.db.psql(
            "SELECT a.action, u.username, host(a.remote_addr), a.detail->>'connection'"
            f" FROM audit_log a LEFT JOIN users u ON u.id = a.actor_id"
            f" WHERE a.object_id = '{vm['id']}' AND a.action LIKE 'console.%' ORDER BY a.id")
        self.assertEqual(sorted(r[0] for r in audit), ['console.connect'] * 2 +
                         ['console.disconnect'] * 2)
        self.assertEqual({(r[1], r[2]) for r in audit}, {('alice', '127.0.0.1')})
        self.assertEqual({r[3] for r in audit}, {c['id'] for c in conns})
        _, _, metrics = self.broker.request('GET', '/metrics')
        self.assertRegex(metrics.decode(), r'vmbroker_console_connects_total [1-9]')

    def history(self, auth, vm_id):
        status, _, data = self.broker.request('GET', f'/api/v1/vms/{vm_id}/connections',
                                              headers=auth)
        self.assertEqual(status, 200, data)
        return json.loads(data)

    def open_consoles(self, paths):
        """Opens a websocket per path, all at once, and checks every 101; returns them."""
        socks = self.send_upgrades(paths)
        for s in socks:
            head = b''
            while b'\r\n\r\n' not in head:
                chunk = s.recv(1)
                self.assertTrue(chunk, 'the broker closed a console before its 101')
                head += chunk
            self.assertTrue(head.startswith(b'HTTP/1.1 101'), head)
        return socks

    def send_upgrades(self, paths):
        """Sends a websocket request per path, all at once, without reading; returns them."""
        socks = []
        for path in paths:
            s = socket.create_connection((self.broker.host, self.broker.port), timeout=60)
            socks.append(s)
            s.sendall((f'GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n'
                       'Connection: Upgrade\r\nSec-WebSocket-Key: '
                       'dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n'
                       f'Origin: {self.origin}\r\n\r\n').encode())
        return socks

    def test_a_qemu_that_never_answers_holds_no_http_worker(self):
        # A socket that listens and never accepts stands in for a hung QEMU: twelve consoles
        # of its VM wait in the relay's queue, not on the broker's two HTTP threads, so other
        # requests answer at once meanwhile; each console then ends with a 503: the first
        # ones after 10 s of their own handshake, the others after 30 s in the queue.
        self.start(http={'threads': '2'})
        admin = self.user('root', 'admin')
        vm = self.create(admin)['vm']
        hung = socket.socket()
        hung.bind(('127.0.0.1', 0))
        hung.listen(1)
        self.addCleanup(hung.close)
        # The port lease triggers are off for this one session's change: the hung port is
        # nobody's lease.
        point = ("SET session_replication_role = replica; "
                 "UPDATE vms SET ws_port = {} WHERE id = '" + vm['id'] + "'")
        self.db.psql(point.format(hung.getsockname()[1]))
        self.addCleanup(self.db.psql, point.format(vm['ws_port']))
        paths = [self.ws_ticket(admin, vm['id'])['ws_path'] for _ in range(12)]
        started = time.monotonic()
        socks = self.send_upgrades(paths)
        slowest, answered = 0.0, 0
        while time.monotonic() - started < 6:
            for path in ('/healthz', '/api/v1/vms'):
                t0 = time.monotonic()
                status, _, data = self.broker.request('GET', path, headers=admin, timeout=30)
                slowest = max(slowest, time.monotonic() - t0)
                self.assertEqual(status, 200, data)
                answered += 1
        self.assertLess(slowest, 0.5, f'{answered} requests')
        for s in socks:
            head = b''
            while b'\r\n\r\n' not in head:
                chunk = s.recv(4096)
                self.assertTrue(chunk, 'the broker closed a console without an answer')
                head += chunk
            s.close()
            self.assertTrue(head.startswith(b'HTTP/1.1 503'), head)
            self.assertIn(b'application/problem+json', head)
        self.assertLess(time.monotonic() - started, 45)
        # The VM's real console still opens.
        self.db.psql(point.format(vm['ws_port']))
        self.open_consoles([self.ws_ticket(admin, vm['id'])['ws_path']])[0].close()

    def test_200_concurrent_consoles_leave_no_fd_behind(self):
        self.start(http={'per_ip_connections': '400', 'max_connections': '1000'})
        admin = self.user('root', 'admin')
        vm = self.create(admin)['vm']
        pid = self.broker.proc.pid
        fds = lambda: len(os.listdir(f'/proc/{pid}/fd'))  # noqa: E731

        def broker_sockets(side, port):
            """The broker's TCP sockets with this local (sport) or remote (dport) port."""
            r = subprocess.run(['ss', '-Htnp', f'( {side} = :{port} )'], capture_output=True,
                               text=True, timeout=30)
            return len([l for l in r.stdout.splitlines() if f'pid={pid},' in l])
        counts = []
        # Two rounds: after each, the broker holds no socket of a console, neither the
        # browser's side nor QEMU's, and the second round ends about where the first did (the
        # database pool may still grow by a connection or two; a leak per console would show
        # as hundreds).
        for _ in range(2):
            paths = [self.ws_ticket(admin, vm['id'])['ws_path'] for _ in range(200)]
            base = fds()
            socks = self.open_consoles(paths)
            self.assertGreaterEqual(fds(), base + 200)
            self.wait_for('200 consoles counted', lambda: self.get_vm(admin, vm['id'])
                          ['console']['connections'] == 200)
            for s in socks:
                s.close()
            self.wait_for('no console counted', lambda: self.get_vm(admin, vm['id'])
                          ['console']['connections'] == 0)
            self.wait_for('the consoles\' fds to close', lambda: fds() < base + 10)
            self.wait_for('no client socket left', lambda: broker_sockets(
                'sport', self.broker.port) == 0)
            self.assertEqual(broker_sockets('dport', vm['ws_port']), 0)
            time.sleep(1)
            counts.append(fds())
        self.assertLess(abs(counts[1] - counts[0]), 10, f'fds after each round: {counts}')

    def test_reaper_stops_an_idle_vm_and_frees_its_ports(self):
        self.template('memtest-idle', idle_timeout_s=5, max_lifetime_s=0)
        self.start(console={'reaper_interval_s': '1'})
        alice = self.user('alice')
        vm = self.create(alice, 'memtest-idle')['vm']
        got = self.wait_for('the reaper', lambda: (lambda v: v if v['state'] == 'stopped'
                                                   else None)(self.get_vm(alice, vm['id'])))
        self.assertRegex(got['state_reason'], r'idle for 5 s')
        self.assertIsNone(got['vnc_port'])
        self.assertEqual(self.db.scalar(
            f"SELECT count(*) FROM port_leases WHERE vm_id = '{vm['id']}'"), '0')
        self.assertEqual(virsh('domstate', vm['name']).stdout.strip(), 'shut off')
        self.assertIn('vm.reap', [r[0] for r in self.db.psql(
            f"SELECT action FROM audit_log WHERE object_id = '{vm['id']}'")])

    def test_reaper_enforces_the_max_lifetime_even_with_a_console_open(self):
        self.template('memtest-short', idle_timeout_s=0, max_lifetime_s=6)
        self.start(console={'reaper_interval_s': '1'})
        alice = self.user('alice')
        made = self.create(alice, 'memtest-short')
        vm = made['vm']
        _, s = self.session(vm['id'], self.fragment(made['console_url'])['ticket'])
        proc = subprocess.Popen([PROBE, self.broker.host, str(self.broker.port), s['ws_path'],
                                 self.origin, s['password'], '60'], stdout=subprocess.PIPE)
        self.addCleanup(proc.kill)
        got = self.wait_for('the reaper', lambda: (lambda v: v if v['state'] == 'stopped'
                                                   else None)(self.get_vm(alice, vm['id'])))
        self.assertRegex(got['state_reason'], r'maximum lifetime of 6 s')
        # The stop closes the console, with the reason on the VM.
        out, _ = proc.communicate(timeout=120)
        self.assertTrue(json.loads(out)['peer_closed'], out)
        self.assertRegex(self.get_vm(alice, vm['id'])['console']['closed_reason'] or '',
                         r'maximum lifetime of 6 s')

    def hold_console(self, auth, vm_id, seconds=60):
        """A viewer that stays connected (authenticated) until the broker closes it."""
        s = self.ws_ticket(auth, vm_id)
        _, page = self.session(vm_id, self.fragment(s['console_url'])['ticket'])
        proc = subprocess.Popen([PROBE, self.broker.host, str(self.broker.port),
                                 page['ws_path'], self.origin, page['password'], str(seconds)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(proc.kill)
        return proc

    def wait_holding(self, proc):
        """Waits until the viewer PROC has its first whole screen and only holds on: a close
        before that would cut its handshake short (a slow guest on a loaded machine)."""
        ready, _, _ = select.select([proc.stderr], [], [], harness.WAIT_S)
        self.assertTrue(ready, 'the viewer never got its first screen')
        self.assertEqual(proc.stderr.readline().strip(), 'holding')

    def connections(self, auth, vm_id):
        return self.get_vm(auth, vm_id)['console']['connections']

    def test_viewers_share_a_console_unless_the_template_is_exclusive(self):
        self.template('memtest-exclusive', console_exclusive=True)
        self.start()
        alice = self.user('alice')
        shared = self.create(alice)['vm']
        first = self.hold_console(alice, shared['id'])
        self.wait_for('the first viewer', lambda: self.connections(alice, shared['id']) == 1)
        self.wait_holding(first)
        second = self.hold_console(alice, shared['id'], seconds=3)
        out, _ = second.communicate(timeout=120)
        self.assertFalse(json.loads(out)['peer_closed'], out)
        self.assertIsNone(first.poll(), 'a shared console closed its first viewer')
        self.assertIsNone(self.get_vm(alice, shared['id'])['console']['closed_reason'])

        bob = self.user('bob')
        exclusive = self.create(bob, 'memtest-exclusive')['vm']
        older = self.hold_console(bob, exclusive['id'])
        self.wait_for('the older viewer', lambda: self.connections(bob, exclusive['id']) == 1)
        self.wait_holding(older)
        newer = self.hold_console(bob, exclusive['id'])
        out, _ = older.communicate(timeout=120)
        got = json.loads(out)
        self.assertEqual(got['error'], '', got)
        self.assertTrue(got['peer_closed'], got)
        self.assertIsNone(newer.poll(), 'the newer viewer was closed too')
        vm = self.wait_for('the reason on the VM', lambda: (lambda v: v if v['console']
                           ['closed_reason'] else None)(self.get_vm(bob, exclusive['id'])))
        self.assertEqual(vm['console']['closed_reason'], 'another viewer opened this console')
        self.assertIsNotNone(vm['console']['closed_at'])
        self.wait_for('one viewer left', lambda: self.connections(bob, exclusive['id']) == 1)
        self.assertIn('console.close', [r[0] for r in self.db.psql(
            f"SELECT action FROM audit_log WHERE object_id = '{exclusive['id']}'")])

    def test_a_stop_closes_the_console_with_its_reason(self):
        self.start()
        alice = self.user('alice')
        vm = self.create(alice)['vm']
        viewer = self.hold_console(alice, vm['id'], seconds=120)
        self.wait_for('the viewer', lambda: self.connections(alice, vm['id']) == 1)
        status, _, body = self.broker.request('POST', f'/api/v1/vms/{vm["id"]}/stop',
                                              headers=alice)
        self.assertEqual(status, 202, body)
        out, _ = viewer.communicate(timeout=120)
        self.assertTrue(json.loads(out)['peer_closed'], out)
        got = self.wait_for('the VM stopped', lambda: (lambda v: v if v['state'] == 'stopped'
                                                       else None)(self.get_vm(alice, vm['id'])))
        self.assertEqual(got['console']['closed_reason'], got['state_reason'])
        self.assertEqual(got['console']['connections'], 0)
        closed = self.wait_for('the connection closed in the history', lambda: [
            c for c in self.history(alice, vm['id']) if c['closed_at']])
        self.assertEqual([c['reason'] for c in closed], [got['state_reason']])

    def test_a_connection_its_broker_lost_is_closed_when_the_vm_stops(self):
        self.start()
        alice = self.user('alice')
        vm = self.create(alice)['vm']
        viewer = self.hold_console(alice, vm['id'], seconds=120)
        self.wait_for('the open connection', lambda: self.history(alice, vm['id']))
        self.broker.signal(signal.SIGKILL)  # no chance to write the close
        self.broker.wait()
        viewer.communicate(timeout=120)
        self.broker = harness.Broker(self, self.broker.sections, self.workdir)
        [lost] = self.history(alice, vm['id'])
        self.assertIsNone(lost['closed_at'])
        status, _, body = self.broker.request('POST', f'/api/v1/vms/{vm["id"]}/stop',
                                              headers=alice)
        self.assertEqual(status, 202, body)
        got = self.wait_for('the VM stopped', lambda: (lambda v: v if v['state'] == 'stopped'
                                                       else None)(self.get_vm(alice, vm['id'])))
        [closed] = self.history(alice, vm['id'])
        self.assertEqual((closed['id'], closed['reason']), (lost['id'], got['state_reason']))
        self.assertIsNotNone(closed['closed_at'])
        self.assertEqual(got['console']['connections'], 0)


if __name__ == '__main__':
    harness.main()
