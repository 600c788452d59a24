# SPDX-License-Identifier: LGPL-2.1-or-later
# The read cache of `vmbroker serve` (bearer-token checks and GET /api/v1/vms answered from
# memory) seen from outside: /metrics counts its hits, each caller gets the list it may see,
# the broker's own writes are read back at once, other processes' changes (psql) arrive by
# NOTIFY within a deadline while a last_used_at stamp alone does not, a cached token still
# expires, nothing stale outlives a lost LISTEN connection, and database.cache_entries = 0
# turns the cache off. VM rows are inserted with SQL: no guest boots here.
import contextlib
import hashlib
import json
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

# How long another process's change may take to reach the broker: PostgreSQL delivers a
# notification in milliseconds; the rest is room for a loaded machine.
NOTIFY_WAIT_S = 10

USERS = (('admin', 'admin'), ('alice', 'user'), ('bob', 'user'), ('portal', 'service'))


class ReadCache(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.cfg = self.config()
        self.migrate(self.cfg)
        self.tokens = {}
        for name, role in USERS:
            r = self.vmb('user', 'add', name, '--role', role, config=self.cfg)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.tokens[name] = self.new_token(name)
        self.vm_count = 0

    def new_token(self, user, *args):
        r = self.vmb('token', 'create', user, *args, config=self.cfg)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.strip()

    def token_id(self, who):
        digest = hashlib.sha256(self.tokens.get(who, who).encode()).hexdigest()
        return self.db.scalar(f"SELECT id FROM api_tokens WHERE secret_hash = '{digest}'")

    def user_id(self, name):
        return self.db.scalar(f"SELECT id FROM users WHERE username = '{name}'")

    def start(self, **overrides):
        self.broker = self.serve(**overrides)
        if overrides.get('database', {}).get('cache_entries') != '0':
            # The listener connects on its own thread: until then every lookup misses.
            self.eventually(lambda: self.metrics()['listening'] == 1, 'the cache listening')
        return self.broker

    # --- reading ---

    def auth(self, who):
        return {'Authorization': f'Bearer {self.tokens.get(who, who)}'}

    def get(self, who, path='/api/v1/vms'):
        status, _, body = self.broker.request('GET', path, headers=self.auth(who))
        return status, body

    def ids(self, who, path='/api/v1/vms'):
        status, body = self.get(who, path)
        self.assertEqual(status, 200, body)
        return [vm['id'] for vm in json.loads(body)]

    def db_ids(self, owner=None):
        where = f"WHERE u.username = '{owner}'" if owner else ''
        return [r[0] for r in self.db.psql(
            'SELECT v.id FROM vms v JOIN users u ON u.id = v.owner_id '
            f'{where} ORDER BY v.created_at, v.id')]

    def metrics(self):
        status, _, body = self.broker.request('GET', '/metrics')
        self.assertEqual(status, 200, body)
        text = body.decode()

        def value(series):
            m = re.search('^' + re.escape(series) + r' (\S+)$', text, re.M)
            self.assertIsNotNone(m, f'{series} missing from /metrics:\n{text}')
            return int(float(m.group(1)))
        return {'hit': value('vmbroker_cache_lookups_total{result="hit"}'),
                'miss': value('vmbroker_cache_lookups_total{result="miss"}'),
                'listening': value('vmbroker_cache_listening')}

    def cached(self, who, path='/api/v1/vms'):
        """GETs PATH as WHO until the token check and the list both came from memory, so
        both are cached now (notifications of earlier changes may still have been on their
        way); returns the body."""
        deadline = time.monotonic() + NOTIFY_WAIT_S
        while True:
            before = self.metrics()
            status, body = self.get(who, path)
            after = self.metrics()
            self.assertEqual(status, 200, body)
            if (after['hit'] - before['hit'], after['miss'] - before['miss']) == (2, 0):
                return body
            if time.monotonic() > deadline:
                self.fail(f'GET {path} as {who} never answered from the cache')
            time.sleep(0.05)

    def eventually(self, check, what):
        """CHECK() turns true within NOTIFY_WAIT_S: how long another process's change may
        take to reach the broker."""
        deadline = time.monotonic() + NOTIFY_WAIT_S
        while not check():
            if time.monotonic() > deadline:
                self.fail(f'not within {NOTIFY_WAIT_S} s: {what}')
            time.sleep(0.05)

    # --- changing ---

    def add_vm(self, owner):
        """A stopped VM row of OWNER, as another process would insert it: no domain, no
        ports, so neither libvirt nor the reaper has anything to do with it."""
        self.vm_count += 1
        prefix = self.broker.sections['libvirt']['name_prefix']
        return self.db.scalar(
            'INSERT INTO vms (name, owner_id, template_name, template_version, host_id, state,'
            ' stopped_at)'
            f" SELECT '{prefix}{owner}-{self.vm_count}', u.id, t.name, t.version, h.id,"
            "        'stopped', now()"
            ' FROM users u, hosts h,'
            '      (SELECT name, version FROM templates ORDER BY name LIMIT 1) t'
            f" WHERE u.username = '{owner}' AND h.name = 'local' RETURNING id")

    def listener_pid(self):
        rows = self.db.psql("SELECT pid FROM pg_stat_activity WHERE application_name = "
                            "'vmbroker-listen:vmbroker_changed'"
                            " AND datname = current_database()")
        return [int(r[0]) for r in rows]

    @contextlib.contextmanager
    def notifications_held(self):
        """Stops the broker's LISTEN backend, so no notification reaches the broker until
        the block ends: what the broker reads back then cannot have come from one."""
        (pid,) = self.listener_pid()
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)

    # --- tests ---

    def test_repeated_checks_and_lists_are_answered_from_memory(self):
        self.start()
        self.add_vm('alice')
        self.add_vm('bob')
        self.add_vm('alice')
        # Restarted, so no notification of the inserts is still on its way and the counts
        # below are exact.
        self.broker.kill()
        self.start()
        asks = {
            ('admin', '/api/v1/vms'): self.db_ids(),
            ('alice', '/api/v1/vms'): self.db_ids('alice'),
            ('bob', '/api/v1/vms'): self.db_ids('bob'),
            ('portal', '/api/v1/vms?owner=alice'): self.db_ids('alice'),
            ('portal', '/api/v1/vms?owner=bob'): self.db_ids('bob'),
        }
        self.assertEqual(len(self.db_ids()), 3)
        rounds = 4
        bodies = {ask: set() for ask in asks}
        before = self.metrics()
        for _ in range(rounds):
            for who, path in asks:
                status, body = self.get(who, path)
                self.assertEqual(status, 200, body)
                bodies[(who, path)].add(body)
        after = self.metrics()
        # Callers that see different lists never get each other's.
        for ask, want in asks.items():
            with self.subTest(ask=ask):
                self.assertEqual(len(bodies[ask]), 1, bodies[ask])
                self.assertEqual([vm['id'] for vm in json.loads(next(iter(bodies[ask])))],
                                 want)
        # Only the first round reads PostgreSQL: four tokens and five lists (portal's
        # second request finds its token cached).
        lookups = 2 * len(asks) * rounds
        self.assertEqual(after['miss'] - before['miss'], 9)
        self.assertEqual(after['hit'] - before['hit'], lookups - 9)
        self.assertEqual(after['listening'], 1)

    def test_an_owner_no_user_can_have_is_never_a_cache_key(self):
        self.start()
        self.cached('portal', '/api/v1/vms?owner=alice')
        for owner in ('x' * 4000, 'Alice', 'a%20b'):
            with self.subTest(owner=owner[:10]):
                for _ in range(2):
                    before = self.metrics()
                    status, body = self.get('portal', f'/api/v1/vms?owner={owner}')
                    after = self.metrics()
                    self.assertEqual(status, 200, body)
                    self.assertEqual(json.loads(body), [])
                    # The token check is the only lookup: the list is neither looked up
                    # nor kept.
                    self.assertEqual((after['hit'] - before['hit'],
                                      after['miss'] - before['miss']), (1, 0))

    def test_the_brokers_own_writes_are_read_back_at_once(self):
        self.start()
        keep, gone = self.add_vm('alice'), self.add_vm('alice')
        self.cached('admin')
        self.cached('alice')
        # With notifications held back, only the broker's count of its own changes can
        # drop what it cached: each answer below must be right at once, no polling.
        with self.notifications_held():
            status, _, body = self.broker.request('DELETE', f'/api/v1/vms/{gone}',
                                                  headers=self.auth('admin'))
            self.assertEqual(status, 204, body)
            self.assertEqual(self.ids('admin'), [keep])
            self.assertEqual(self.ids('alice'), [keep])

            self.cached('alice')
            status, _, body = self.broker.request(
                'DELETE', f'/api/v1/tokens/{self.token_id("alice")}', headers=self.auth('alice'))
            self.assertEqual(status, 204, body)
            self.assertEqual(self.get('alice')[0], 401)

            self.cached('bob')
            status, _, body = self.broker.request(
                'POST', f'/api/v1/users/{self.user_id("bob")}/disable', headers=self.auth('admin'))
            self.assertEqual(status, 204, body)
            self.assertEqual(self.get('bob')[0], 401)
            status, _, body = self.broker.request(
                'POST', f'/api/v1/users/{self.user_id("bob")}/enable', headers=self.auth('admin'))
            self.assertEqual(status, 204, body)
            self.assertEqual(self.get('bob')[0], 200)

    def test_a_token_revoked_elsewhere_stops_working(self):
        self.start()
        self.cached('alice')
        revoke = f"UPDATE api_tokens SET revoked_at = now() WHERE id = '{self.token_id('alice')}'"
        with self.notifications_held():
            self.db.psql(revoke)
            # Told nothing yet, the broker answers from memory: it is the notification
            # below, not a read of PostgreSQL, that ends the token.
            self.assertEqual(self.get('alice')[0], 200)
        self.eventually(lambda: self.get('alice')[0] == 401, 'the revoked token refused')
        # Only the token went: its user is fine.
        self.assertEqual(self.ids(self.new_token('alice')), [])

    def test_a_user_disabled_or_promoted_elsewhere_is_seen(self):
        self.start()
        mine, theirs = self.add_vm('alice'), self.add_vm('bob')
        self.assertEqual(json.loads(self.cached('alice'))[0]['id'], mine)
        # A new role changes what the cached token check says and which list is shown.
        self.db.psql("UPDATE users SET role = 'admin' WHERE username = 'alice'")
        self.eventually(lambda: self.ids('alice') == [mine, theirs], "alice's list as admin")
        self.cached('bob')
        self.db.psql("UPDATE users SET disabled = true WHERE username = 'bob'")
        self.eventually(lambda: self.get('bob')[0] == 401, "disabled bob's token refused")
        self.assertEqual(self.get('alice')[0], 200)

    def test_vm_rows_changed_elsewhere_show_in_the_list(self):
        self.start()
        first = self.add_vm('alice')
        self.cached('admin')
        self.cached('alice')
        second = self.add_vm('alice')
        self.eventually(lambda: self.ids('admin') == [first, second], 'the inserted VM listed')
        self.eventually(lambda: self.ids('alice') == [first, second],
                        "the inserted VM in alice's list")

        def reason():
            vm = [v for v in json.loads(self.get('admin')[1]) if v['id'] == first][0]
            return vm['state_reason']
        self.cached('admin')
        self.db.psql(f"UPDATE vms SET state_reason = 'stopped by psql' WHERE id = '{first}'")
        self.eventually(lambda: reason() == 'stopped by psql', 'the updated VM listed')

        self.cached('admin')
        self.db.psql(f"DELETE FROM vms WHERE id = '{second}'")
        self.eventually(lambda: self.ids('admin') == [first], 'the deleted VM gone')
        self.assertEqual(self.ids('admin'), self.db_ids())

    def test_a_last_used_stamp_alone_leaves_the_cache_alone(self):
        self.start()
        tid = self.token_id('alice')
        self.cached('alice')
        # The trigger's column list, seen by a session listening itself: nothing for the
        # stamp, a notification for a column a token check depends on.
        self.assertEqual(self.db.psql("LISTEN vmbroker_changed; UPDATE api_tokens"
                                      f" SET last_used_at = now() WHERE id = '{tid}'"), [])
        # ...and by the broker: a notification takes milliseconds, so by now one would have
        # emptied the cache and the requests below would miss.
        time.sleep(1)
        before = self.metrics()
        for _ in range(5):
            self.assertEqual(self.get('alice')[0], 200)
        after = self.metrics()
        self.assertEqual((after['hit'] - before['hit'], after['miss'] - before['miss']), (10, 0))
        # The same wait does see a change that notifies.
        rows = self.db.psql(
            f"LISTEN vmbroker_changed; UPDATE api_tokens SET expires_at = NULL WHERE id = '{tid}'")
        self.assertEqual(len(rows), 1, rows)
        self.assertIn('"vmbroker_changed"', rows[0][0])
        time.sleep(1)
        before = self.metrics()
        self.assertEqual(self.get('alice')[0], 200)
        after = self.metrics()
        self.assertEqual(after['miss'] - before['miss'], 2)

    def test_a_cached_token_expires_on_time(self):
        self.start()
        token = self.new_token('alice', '--expires-in', '4')
        self.cached(token)
        # Expiry changes nothing in the database, so nothing notifies: the cache itself
        # must stop serving the token.
        expires = float(self.db.scalar('SELECT extract(epoch FROM expires_at) FROM api_tokens'
                                       f" WHERE id = '{self.token_id(token)}'"))
        time.sleep(max(0.0, expires + 1 - time.time()))
        self.assertEqual(self.get(token)[0], 401)

    def test_nothing_stale_survives_a_lost_listen_connection(self):
        self.start()
        self.cached('alice')
        (old_pid,) = self.listener_pid()
        self.assertEqual(self.db.psql(
            f'SELECT pg_terminate_backend({old_pid}, {harness.WAIT_S * 1000})'), [['t']])
        # Committed while the broker is not listening: no notification will ever tell it.
        self.db.psql("UPDATE users SET disabled = true WHERE username = 'alice'")
        self.assertEqual(self.get('alice')[0], 401)
        self.eventually(lambda: self.metrics()['listening'] == 1, 'the listener back')
        self.assertNotEqual(self.listener_pid(), [old_pid])
        self.assertEqual(self.get('alice')[0], 401)
        # Listening for real again: cached anew, and told of the next change.
        self.cached('bob')
        self.db.psql("UPDATE users SET disabled = true WHERE username = 'bob'")
        self.eventually(lambda: self.get('bob')[0] == 401, "disabled bob's token refused")
        self.eventually(lambda: 'listener: listening on vmbroker_changed again'
                        in self.broker.log(), 'the log telling the listener is back')
        self.assertIn('listener: lost the connection to PostgreSQL', self.broker.log())

    def test_cache_entries_0_reads_postgresql_every_time(self):
        self.start(database={'cache_entries': '0'})
        vm = self.add_vm('alice')
        before = self.metrics()
        for _ in range(5):
            self.assertEqual(self.ids('alice'), [vm])
            self.assertEqual(self.ids('admin'), [vm])
        after = self.metrics()
        self.assertEqual(after['hit'], 0)
        self.assertEqual(after['miss'] - before['miss'], 20)
        self.assertEqual(after['listening'], 0)
        self.assertEqual(self.listener_pid(), [])
        self.db.psql('UPDATE api_tokens SET revoked_at = now()'
                     f" WHERE id = '{self.token_id('alice')}'")
        self.assertEqual(self.get('alice')[0], 401)
        self.db.psql(f"DELETE FROM vms WHERE id = '{vm}'")
        self.assertEqual(self.ids('admin'), [])


if __name__ == '__main__':
    harness.main()
