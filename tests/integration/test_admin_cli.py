# SPDX-License-Identifier: LGPL-2.1-or-later
# The admin's command line (vm, user, token and audit verbs) and the audit log it shares with
# GET /api/v1/audit, on the real binary, PostgreSQL, libvirtd and one memtest guest. Every
# verb runs with --json and the test parses what it prints; the exit codes are README's.
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PASSWORD = 'correct horse battery'
EXIT_USAGE, EXIT_NOT_FOUND = 2, 3


def virsh(*args):
    return subprocess.run(['virsh', '-c', 'qemu:///system', *args], capture_output=True,
                          text=True, timeout=harness.WAIT_S)


class AdminCliBase(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.cfg = self.config(libvirt={'stop_timeout_s': '2'})
        self.migrate(self.cfg)
        for name, role in (('alice', 'user'), ('root', 'admin')):
            r = self.vmb('user', 'add', name, '--role', role, '--password-stdin',
                         config=self.cfg, input=PASSWORD + '\n')
            self.assertEqual(r.returncode, 0, r.stderr)

    def cli(self, *args, code=0, input=None):
        """Runs vmbroker ARGS --json; returns the parsed JSON on stdout (exit CODE)."""
        r = self.vmb(*args, '--json', config=self.cfg, input=input)
        self.assertEqual(r.returncode, code, f'{args}: {r.stderr}')
        if code:
            errors = [l for l in r.stderr.splitlines() if l.startswith('vmbroker: ')]
            self.assertEqual(len(errors), 1, r.stderr)
            return None
        # Log lines (the accelerator's warning on a start under TCG) may be there, errors not.
        self.assertFalse([l for l in r.stderr.splitlines() if l.startswith('vmbroker:')],
                         r.stderr)
        return json.loads(r.stdout)

    def audit(self, *args):
        return self.cli('audit', *args)['items']


class UsersTokensAudit(AdminCliBase):
    def test_user_verbs(self):
        users = {u['username']: u for u in self.cli('user', 'list')}
        self.assertEqual(set(users), {'alice', 'root'})
        self.assertEqual((users['alice']['role'], users['alice']['disabled']), ('user', False))

        out = self.cli('user', 'disable', 'alice')
        self.assertEqual((out['username'], out['disabled']), ('alice', True))
        self.assertEqual(self.db.scalar("SELECT disabled FROM users WHERE username = 'alice'"),
                         't')
        self.assertTrue({u['username']: u for u in self.cli('user', 'list')}['alice']
                        ['disabled'])
        out = self.cli('user', 'enable', 'alice')
        self.assertFalse(out['disabled'])

        before = self.db.scalar("SELECT password_hash FROM users WHERE username = 'alice'")
        out = self.cli('user', 'passwd', 'alice')
        self.assertGreaterEqual(len(out['password']), 16)
        generated = out['password']
        after = self.db.scalar("SELECT password_hash FROM users WHERE username = 'alice'")
        self.assertNotEqual(before, after)
        self.assertTrue(after.startswith('$argon2id$'))
        self.assertNotIn(generated, after)
        out = self.cli('user', 'passwd', 'alice', '--password-stdin', input='n3w pass\n')
        self.assertNotIn('password', out)

        added = self.cli('user', 'add', 'carol', '--role', 'service')
        self.assertEqual((added['username'], added['role']), ('carol', 'service'))
        self.assertIn('password', added)

        self.cli('user', 'disable', 'nobody', code=EXIT_NOT_FOUND)
        self.cli('user', 'frob', 'alice', code=EXIT_USAGE)
        self.cli('user', 'disable', code=EXIT_USAGE)

        # Each change is in the audit log as the command line's, newest first.
        rows = self.audit('--user', 'alice')
        self.assertEqual([r['action'] for r in rows],
                         ['user.password', 'user.password', 'user.enable', 'user.disable',
                          'user.create'])
        for r in rows:
            self.assertIsNone(r['actor'])
            self.assertRegex(r['origin'], r'^cli:\S+$')
            self.assertEqual(r['object_kind'], 'user')
        self.assertEqual(rows[0]['object_id'], users['alice']['id'])
        # No password, nor its hash, in the log.
        dump = json.dumps(self.audit('--limit', '500'))
        self.assertNotIn(generated, dump)
        self.assertNotIn('argon2', dump)

    def test_token_verbs(self):
        made = self.cli('token', 'create', 'alice', '--name', 'ci')
        self.assertTrue(made['token'].startswith('vmb_'))
        self.cli('token', 'create', 'root')
        every = self.cli('token', 'list')
        self.assertEqual(sorted(t['user'] for t in every), ['alice', 'root'])
        mine = self.cli('token', 'list', 'alice')
        self.assertEqual([(t['id'], t['name'], t['user'], t['revoked']) for t in mine],
                         [(made['id'], 'ci', 'alice', False)])
        self.assertNotIn(made['token'], json.dumps(every))

        out = self.cli('token', 'revoke', made['id'])
        self.assertEqual(out, {'id': made['id'], 'revoked': True})
        self.assertTrue(self.cli('token', 'list', 'alice')[0]['revoked'])
        self.cli('token', 'revoke', '00000000-0000-4000-8000-000000000000', code=EXIT_NOT_FOUND)
        self.cli('token', 'list', 'nobody', code=EXIT_NOT_FOUND)
        self.cli('token', 'revoke', code=EXIT_USAGE)

        rows = self.audit('--action', 'token.')
        self.assertEqual([(r['action'], r['object_id']) for r in rows][-1],
                         ('token.create', made['id']))
        self.assertEqual(rows[0]['action'], 'token.revoke')
        self.assertEqual(rows[0]['object_id'], made['id'])

        # The revoked token no longer works against the daemon.
        broker = self.serve()
        status, _, _ = broker.request('GET', '/api/v1/me',
                                      headers={'Authorization': f'Bearer {made["token"]}'})
        self.assertEqual(status, 401)

    def test_audit_paging_and_filters_on_the_cli_and_the_api(self):
        broker = self.serve()
        root = self.cli('token', 'create', 'root')['token']
        alice = self.cli('token', 'create', 'alice')['token']

        def login(user, password):
            return broker.request('POST', '/api/v1/auth/login',
                                  {'username': user, 'password': password})[0]
        self.assertEqual(login('alice', PASSWORD), 200)
        self.assertEqual(login('alice', 'wrong password'), 401)
        self.assertEqual(login('ghost', 'wrong password'), 401)

        def get(path, token=root):
            status, _, body = broker.request('GET', path,
                                             headers={'Authorization': f'Bearer {token}'})
            return status, json.loads(body)

        status, page = get('/api/v1/audit?user=alice')
        self.assertEqual(status, 200, page)
        actions = [r['action'] for r in page['items']]
        self.assertEqual(actions, ['auth.login_failed', 'auth.login', 'user.create'])
        failed, ok = page['items'][0], page['items'][1]
        self.assertEqual((failed['actor'], failed['detail']['reason'], failed['remote_addr']),
                         (None, 'wrong password', '127.0.0.1'))
        self.assertEqual((ok['actor'], ok['origin'], ok['remote_addr']),
                         ('alice', None, '127.0.0.1'))
        status, page = get('/api/v1/audit?action=auth.login_failed')
        ghost = [r for r in page['items'] if r['detail'].get('username') == 'ghost']
        self.assertEqual(len(ghost), 1)
        self.assertIsNone(ghost[0]['object_id'])
        self.assertEqual(ghost[0]['detail']['reason'], 'unknown user')

        # Paging: pages of 2 cover every row once, newest first, on both sides.
        status, whole = get('/api/v1/audit?limit=500')
        self.assertIsNone(whole['next_cursor'])
        ids = [r['id'] for r in whole['items']]
        self.assertGreaterEqual(len(ids), 7)
        self.assertEqual(ids, sorted(ids, reverse=True))
        for fetch in ('api', 'cli'):
            seen, cursor = [], None
            while True:
                if fetch == 'api':
                    q = '/api/v1/audit?limit=2' + (f'&cursor={cursor}' if cursor else '')
                    status, page = get(q)
                    self.assertEqual(status, 200, page)
                else:
                    page = self.cli('audit', '--limit', '2',
                                    *(['--cursor', cursor] if cursor else []))
                self.assertLessEqual(len(page['items']), 2)
                seen += [r['id'] for r in page['items']]
                cursor = page['next_cursor']
                if not cursor:
                    break
            self.assertEqual(seen, ids, fetch)

        # Time filters: everything is after an hour ago, nothing after now + 1 day.
        self.assertEqual(len(self.audit('--since', '1h', '--limit', '500')), len(ids))
        status, page = get('/api/v1/audit?since=2999-01-01T00:00:00Z')
        self.assertEqual((status, page['items']), (200, []))
        status, page = get('/api/v1/audit?until=2000-01-01')
        self.assertEqual((status, page['items']), (200, []))

        # Admins only; malformed filters are 400 problems.
        status, body = get('/api/v1/audit', token=alice)
        self.assertEqual(status, 403, body)
        status, _, _ = broker.request('GET', '/api/v1/audit')
        self.assertEqual(status, 401)
        for q in ('since=yesterday', 'limit=0', 'limit=501', 'cursor=zzz', 'vm=not-a-uuid',
                  "user=Robert'); DROP TABLE users;--", 'action=VM.STOP'):
            status, body = get('/api/v1/audit?' + q.replace(' ', '%20'))
            self.assertEqual(status, 400, q)
            self.assertEqual(body['status'], 400)
        self.cli('audit', '--since', 'yesterday', code=1)
        self.cli('audit', 'extra', code=EXIT_USAGE)


class VmVerbs(AdminCliBase):
    """One memtest guest, created through the API, then driven from the command line."""

    def test_every_vm_verb(self):
        broker = harness.Broker(self, harness.base_config(
            self.db, self.workdir, libvirt={'stop_timeout_s': '2'}), self.workdir)
        self.cfg = broker.config  # the CLI and the daemon share the config
        prefix = broker.sections['libvirt']['name_prefix']
        self.addCleanup(self.remove_domains, prefix)
        token = self.cli('token', 'create', 'alice')['token']
        status, _, body = broker.request('POST', '/api/v1/vms', {'template': 'memtest'},
                                         headers={'Authorization': f'Bearer {token}'})
        self.assertEqual(status, 201, body)
        vm = json.loads(body)['vm']

        listed = self.cli('vm', 'list')
        self.assertEqual([(v['id'], v['state']) for v in listed], [(vm['id'], 'running')])
        self.assertEqual(len(self.cli('vm', 'list', '--owner', 'alice')), 1)
        self.assertEqual(self.cli('vm', 'list', '--owner', 'root'), [])
        self.assertEqual(len(self.cli('vm', 'list', '--state', 'running')), 1)
        self.assertEqual(self.cli('vm', 'list', '--state', 'stopped'), [])
        self.cli('vm', 'list', '--state', 'sideways', code=EXIT_USAGE)
        # Reading needs no account: vmbroker-cli is made by the first operation only.
        self.assertNotIn('vmbroker-cli', [u['username'] for u in self.cli('user', 'list')])

        shown = self.cli('vm', 'show', vm['name'])
        self.assertEqual((shown['id'], shown['owner'], shown['template']),
                         (vm['id'], 'alice', 'memtest'))
        self.assertEqual(self.cli('vm', 'show', vm['name'][len(prefix):])['id'], vm['id'])

        stopped = self.cli('vm', 'stop', vm['id'])
        self.assertEqual(stopped['state'], 'stopped')
        self.assertIn('shut off', virsh('domstate', vm['name']).stdout)
        started = self.cli('vm', 'start', vm['name'])
        self.assertEqual(started['state'], 'running')
        self.assertIn('running', virsh('domstate', vm['name']).stdout)
        self.cli('vm', 'start', vm['id'], code=4)  # already running: a conflict
        rebooted = self.cli('vm', 'reboot', vm['id'])
        self.assertEqual((rebooted['id'], rebooted['state']), (vm['id'], 'running'))

        # The daemon sees what the command line did.
        status, _, body = broker.request('GET', f'/api/v1/vms/{vm["id"]}',
                                         headers={'Authorization': f'Bearer {token}'})
        self.assertEqual((status, json.loads(body)['state']), (200, 'running'))

        out = self.cli('vm', 'delete', vm['id'])
        self.assertEqual((out['id'], out['deleted']), (vm['id'], True))
        self.assertNotEqual(virsh('domstate', vm['name']).returncode, 0)
        self.cli('vm', 'show', vm['id'], code=EXIT_NOT_FOUND)
        self.cli('vm', 'stop', 'no-such-vm', code=EXIT_NOT_FOUND)
        self.cli('vm', 'frob', vm['id'], code=EXIT_USAGE)

        # Every VM action is the command line's account's, as the API's are their callers'.
        # The stop's row is written by the command line itself (origin cli:USER); those of
        # start, reboot and delete by the broker that ran the operation. The daemon's
        # reconciler may add rows of its own (vm.sync, no actor).
        rows = self.audit('--vm', vm['id'])
        mine = [r for r in rows if r['actor'] == 'vmbroker-cli']
        self.assertEqual([r['action'] for r in mine],
                         ['vm.delete', 'vm.reboot', 'vm.start', 'vm.stop'])
        self.assertRegex(mine[3]['origin'], r'^cli:\S+$')
        self.assertEqual((rows[-1]['action'], rows[-1]['actor'], rows[-1]['origin']),
                         ('vm.create', 'alice', None))
        self.assertEqual({r['action'] for r in rows if not r['actor']} - {'vm.sync'}, set())
        cli = {u['username']: u for u in self.cli('user', 'list')}['vmbroker-cli']
        self.assertEqual((cli['role'], cli['disabled']), ('admin', False))
        self.assertIsNone(self.db.scalar(
            "SELECT password_hash FROM users WHERE username = 'vmbroker-cli'"))

    def test_without_a_broker_the_operation_waits_in_the_queue(self):
        token = self.cli('token', 'create', 'alice')['token']
        broker = harness.Broker(self, harness.base_config(
            self.db, self.workdir, libvirt={'stop_timeout_s': '2'}), self.workdir)
        self.cfg = broker.config
        self.addCleanup(self.remove_domains, broker.sections['libvirt']['name_prefix'])
        status, _, body = broker.request('POST', '/api/v1/vms', {'template': 'memtest'},
                                         headers={'Authorization': f'Bearer {token}'})
        self.assertEqual(status, 201, body)
        vm = json.loads(body)['vm']
        broker.kill()
        r = self.vmb('vm', 'reboot', vm['id'], '--timeout', '2', config=self.cfg)
        self.assertEqual(r.returncode, 5, r.stderr)
        self.assertIn('vmbroker serve', r.stderr)
        # Queued, it conflicts with the next one at once; --no-wait prints it.
        queued = self.cli('vm', 'stop', vm['id'], code=4)
        self.assertIsNone(queued)
        ops = self.db.psql(f"SELECT kind, state FROM operations WHERE vm_id = '{vm['id']}'"
                           " ORDER BY created_at")
        self.assertEqual(ops[-1], ['reboot', 'queued'])
        # A broker started again carries it out; then the VM is deleted from here.
        harness.Broker(self, broker.sections, self.workdir)
        deadline = time.monotonic() + harness.WAIT_S
        while self.db.scalar(f"SELECT state FROM operations WHERE vm_id = '{vm['id']}'"
                             " AND kind = 'reboot'") in ('queued', 'running'):
            self.assertLess(time.monotonic(), deadline, 'the restarted broker ran no reboot')
            time.sleep(0.2)
        out = self.cli('vm', 'delete', vm['id'], '--no-wait')
        self.assertEqual(out['operation']['kind'], 'delete')
        self.assertIn(out['operation']['state'], ('queued', 'running', 'succeeded'))

    @staticmethod
    def remove_domains(prefix):
        for name in virsh('list', '--all', '--name').stdout.split():
            if name.startswith(prefix):
                virsh('destroy', name)
                virsh('undefine', name, '--remove-all-storage')


if __name__ == '__main__':
    harness.main()
