# SPDX-License-Identifier: LGPL-2.1-or-later
# Console sessions on a real guest: a console_url's page ticket starts an HttpOnly,
# SameSite=Strict cookie scoped to that VM's console paths; the cookie alone opens the console
# page again (a reload, a second tab, a reconnect), opens nothing else, and ends when idle,
# when the VM's consoles are withdrawn, when one of the user's tokens is revoked and when the
# user is disabled. Also: the stock noVNC page's password for the owner, and a stop's words.
import json
import os
import re
import subprocess
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PASSWORD = 'a good password'
NO_VM = '00000000-0000-4000-8000-000000000000'


def routes():
    """(method, path) of every route the daemon serves, read from its route table."""
    with open(os.path.join(harness.SRC, 'broker', 'api', 'api-routes.c')) as f:
        return re.findall(r'\{ "([A-Z]+)", "([^"]+)"', f.read())


class ConsoleSession(harness.TestCase):
    def start(self):
        self.migrate(self.config())
        self.broker = self.serve(libvirt={'stop_timeout_s': '2'})
        self.origin = f'http://{self.broker.host}:{self.broker.port}'
        self.prefix = self.broker.sections['libvirt']['name_prefix']
        self.addCleanup(self.remove_domains)

    def remove_domains(self):
        for name in subprocess.run(['virsh', '-q', '-c', 'qemu:///system', 'list', '--all',
                                    '--name'], capture_output=True, text=True).stdout.split():
            if name.startswith(self.prefix):
                subprocess.run(['virsh', '-c', 'qemu:///system', 'destroy', name],
                               capture_output=True)
                subprocess.run(['virsh', '-c', 'qemu:///system', 'undefine', name,
                                '--remove-all-storage'], capture_output=True)

    def user(self, name, role='user', token_name='t'):
        r = self.vmb('user', 'add', name, '--role', role, '--password-stdin',
                     input=PASSWORD + '\n', config=self.broker.config)
        self.assertEqual(r.returncode, 0, r.stderr)
        return self.token(name, token_name)

    def token(self, name, token_name):
        r = self.vmb('token', 'create', name, '--name', token_name, config=self.broker.config)
        self.assertEqual(r.returncode, 0, r.stderr)
        return {'Authorization': 'Bearer ' + r.stdout.strip()}

    def page_ticket(self, url):
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).fragment))['ticket']

    def link(self, auth, vm_id):
        status, _, data = self.broker.request('POST', f'/api/v1/vms/{vm_id}/console',
                                              headers=auth)
        self.assertEqual(status, 201, data)
        return json.loads(data)['console_url']

    def redeem(self, vm_id, console_url):
        """The page's first call: the ticket for {password, ws_path} and the cookie."""
        status, headers, data = self.broker.request(
            'POST', f'/api/v1/vms/{vm_id}/console/session',
            {'ticket': self.page_ticket(console_url)}, headers={'Origin': self.origin})
        self.assertEqual(status, 200, data)
        cookie = headers.get('set-cookie', '')
        self.assertTrue(cookie.startswith('vmb_console='), cookie)
        return cookie

    def again(self, vm_id, cookie, origin=True):
        """A reload: the cookie alone. Returns (status, headers, body)."""
        headers = {'Cookie': cookie.split(';')[0]}
        if origin:
            headers['Origin'] = self.origin
        status, h, data = self.broker.request('POST', f'/api/v1/vms/{vm_id}/console/session',
                                              {}, headers=headers)
        return status, h, json.loads(data) if data else None

    def test_the_cookie_reopens_only_its_console_and_ends_with_access(self):
        self.start()
        admin = self.user('root', 'admin')
        alice = self.user('alice', token_name='first')
        second = self.token('alice', 'second')
        status, _, data = self.broker.request('POST', '/api/v1/vms', {'template': 'memtest'},
                                              headers=alice)
        self.assertEqual(status, 201, data)
        made = json.loads(data)
        vm = made['vm']
        self.addCleanup(self.broker.request, 'DELETE', f'/api/v1/vms/{vm["id"]}', headers=admin)

        cookie = self.redeem(vm['id'], made['console_url'])
        attrs = [a.strip() for a in cookie.split(';')]
        self.assertIn('HttpOnly', attrs)
        self.assertIn('SameSite=Strict', attrs)
        self.assertIn(f'Path=/api/v1/vms/{vm["id"]}/console', attrs)
        self.assertIn('Max-Age=43200', attrs)  # console.session_max_s: hours, not seconds

        # A reload, twice: each answer has a fresh password-bearing session and ws ticket.
        paths = set()
        for _ in range(2):
            status, _, body = self.again(vm['id'], cookie)
            self.assertEqual(status, 200, body)
            self.assertTrue(body['password'])
            self.assertEqual(body['vm']['id'], vm['id'])
            paths.add(body['ws_path'])
        self.assertEqual(len(paths), 2)
        # Cross-site: refused, though the cookie is good.
        self.assertEqual(self.again(vm['id'], cookie, origin=False)[0], 403)
        # Another VM's console: not this cookie's.
        self.assertEqual(self.again(NO_VM, cookie)[0], 401)

        # Nothing else opens with it, under its own name or as the sign-in cookie.
        value = cookie.split(';')[0].split('=', 1)[1]
        public = {'/healthz', '/readyz', '/metrics', '/', '/ui/*', '/novnc/*',
                  '/api/v1/auth/login', '/api/v1/auth/signup',
                  '/api/v1/vms/{id}/console/session', '/api/v1/vms/{id}/console/ws'}
        checked = 0
        for method, path in routes():
            if path in public:
                continue
            real = path.replace('{id}', vm['id']).replace('{name}', 'x.iso')
            for jar in (f'vmb_console={value}', f'vmb_session={value}'):
                with self.subTest(route=f'{method} {path}', cookie=jar.split('=')[0]):
                    status, _, body = self.broker.request(
                        method, real, b'{}' if method in ('POST', 'PUT') else None,
                        headers={'Cookie': jar, 'Origin': self.origin,
                                 'Content-Type': 'application/json'})
                    self.assertIn(status, (401, 404), body)
                    checked += 1
        self.assertGreater(checked, 30)
        self.assertEqual(self.get_state(alice, vm['id']), 'running')

        # Idle for longer than console.session_idle_s: over, and the cookie is cleared.
        self.db.psql("UPDATE console_sessions SET last_seen_at = now() - interval '3 hours'")
        status, headers, body = self.again(vm['id'], cookie)
        self.assertEqual(status, 401, body)
        self.assertIn('Max-Age=0', headers.get('set-cookie', ''))

        # The owner (or the portal acting for them) withdraws the VM's consoles.
        cookie = self.redeem(vm['id'], self.link(alice, vm['id']))
        status, _, body = self.broker.request(
            'DELETE', f'/api/v1/vms/{vm["id"]}/console/sessions', headers=alice)
        self.assertEqual(status, 204, body)
        self.assertEqual(self.again(vm['id'], cookie)[0], 401)

        # One of the user's tokens is revoked.
        cookie = self.redeem(vm['id'], self.link(alice, vm['id']))
        self.assertEqual(self.again(vm['id'], cookie)[0], 200)
        _, _, tokens = self.broker.get_json('/api/v1/tokens', headers=alice)
        sid = [t['id'] for t in tokens if t['name'] == 'second'][0]
        status, _, body = self.broker.request('DELETE', f'/api/v1/tokens/{sid}', headers=second)
        self.assertEqual(status, 204, body)
        self.assertEqual(self.again(vm['id'], cookie)[0], 401)

        # The user is disabled.
        cookie = self.redeem(vm['id'], self.link(alice, vm['id']))
        _, _, users = self.broker.get_json('/api/v1/users', headers=admin)
        uid = [u['id'] for u in users if u['username'] == 'alice'][0]
        status, _, body = self.broker.request('POST', f'/api/v1/users/{uid}/disable', {},
                                              headers=admin)
        self.assertEqual(status, 204, body)
        self.assertEqual(self.again(vm['id'], cookie)[0], 401)

    def test_the_owner_sees_the_vnc_password_next_to_novnc_url(self):
        self.start()
        admin = self.user('root', 'admin')
        portal = self.user('portal', 'service')
        status, _, data = self.broker.request('POST', '/api/v1/vms',
                                              {'template': 'memtest', 'owner': 'alice'},
                                              headers=portal)
        self.assertEqual(status, 201, data)
        made = json.loads(data)
        vm = made['vm']
        self.addCleanup(self.broker.request, 'DELETE', f'/api/v1/vms/{vm["id"]}', headers=admin)
        self.assertNotIn('vnc_password', made)  # the portal hands on console_url
        alice = self.token('alice', 'own')
        # The password the console page gets is the one the stock page asks for.
        cookie = self.redeem(vm['id'], made['console_url'])
        page_password = self.again(vm['id'], cookie)[2]['password']
        for who, auth in (('owner', alice), ('admin', admin)):
            with self.subTest(who):
                status, _, data = self.broker.request('POST', f'/api/v1/vms/{vm["id"]}/console',
                                                      headers=auth)
                self.assertEqual(status, 201, data)
                got = json.loads(data)
                self.assertEqual(got['vnc_password'], page_password)
                self.assertIn('/novnc/vnc.html#path=', got['novnc_url'])
                self.assertNotIn(page_password, got['novnc_url'])
        status, _, data = self.broker.request('POST', f'/api/v1/vms/{vm["id"]}/console',
                                              headers=portal)
        self.assertEqual(status, 201, data)
        self.assertNotIn('vnc_password', json.loads(data))

    def test_a_stop_says_who_stopped_it(self):
        self.start()
        root = self.user('root', 'admin')
        other = self.user('carol', 'admin')
        portal = self.user('portal', 'service')
        # A service account sees (and stops) only users' VMs: the portal's is a student's.
        cases = ((root, {}, 'stopped by its owner'),  # an admin stopping their own VM
                 (other, {}, 'stopped by an administrator (carol)'),
                 (portal, {'owner': 'student'},
                  'stopped by the course portal (service account portal)'))
        for auth, owner, words in cases:
            with self.subTest(words):
                status, _, data = self.broker.request('POST', '/api/v1/vms',
                                                      {'template': 'memtest', **owner},
                                                      headers=portal if owner else root)
                self.assertEqual(status, 201, data)
                vm = json.loads(data)['vm']
                self.addCleanup(self.broker.request, 'DELETE', f'/api/v1/vms/{vm["id"]}',
                                headers=root)
                status, _, data = self.broker.request('POST', f'/api/v1/vms/{vm["id"]}/stop',
                                                      headers=auth)
                self.assertEqual(status, 202, data)
                self.assertEqual(json.loads(data)['state_reason'], words)

    def get_state(self, auth, vm_id):
        status, _, vm = self.broker.get_json(f'/api/v1/vms/{vm_id}', headers=auth)
        self.assertEqual(status, 200, vm)
        return vm['state']


if __name__ == '__main__':
    harness.main()
