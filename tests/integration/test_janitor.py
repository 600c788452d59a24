# SPDX-License-Identifier: LGPL-2.1-or-later
# The janitor against the real binary and PostgreSQL: console tickets that expired over a
# minute ago and sessions past their end or idle timeout are deleted on its clock; live ones
# stay. Rows are written with SQL, as they would be left behind by earlier brokers.
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

HASH = "encode(sha256(gen_random_bytes(8)), 'hex')"


class Janitor(harness.TestCase):

    def setUp(self):
        super().setUp()
        self.migrate()
        r = self.vmb('user', 'add', 'alice')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.db.psql('CREATE EXTENSION IF NOT EXISTS pgcrypto')

    def session(self, label, expires, last_seen):
        return self.db.scalar(
            'INSERT INTO sessions (secret_hash, csrf_hash, user_id, expires_at, last_seen_at,'
            f" created_at) SELECT {HASH}, {HASH}, id, now() + interval '{expires}',"
            f" now() - interval '{last_seen}', now() - interval '2 days'"
            f" FROM users WHERE username = 'alice' RETURNING '{label}'")

    def ticket(self, vm_id, label, created_ago):
        return self.db.scalar(
            'INSERT INTO console_tickets (secret_hash, user_id, vm_id, purpose, created_at,'
            f" expires_at) SELECT {HASH}, u.id, '{vm_id}', 'page',"
            f" now() - interval '{created_ago}', now() - interval '{created_ago}'"
            " + interval '60 seconds'"
            f" FROM users u WHERE username = 'alice' RETURNING '{label}'")

    def test_expired_tickets_and_sessions_go_live_ones_stay(self):
        broker = self.serve(database={'janitor_interval_s': '1'},
                            auth={'session_idle_s': '3600'})
        prefix = broker.sections['libvirt']['name_prefix']
        vm_id = self.db.scalar(
            'INSERT INTO vms (name, owner_id, template_name, template_version, host_id, state,'
            f" stopped_at) SELECT '{prefix}alice-1', u.id, t.name, t.version, h.id, 'stopped',"
            ' now() FROM users u, hosts h, (SELECT name, version FROM templates ORDER BY name'
            " LIMIT 1) t WHERE u.username = 'alice' AND h.name = 'local' RETURNING id")
        self.session('ended', '-1 minute', '1 minute')
        self.session('idle', '1 day', '2 hours')
        self.session('live', '1 day', '1 minute')
        self.ticket(vm_id, 'old', '10 minutes')
        self.ticket(vm_id, 'just expired', '90 seconds')  # expired 30 s ago: kept a minute
        self.ticket(vm_id, 'live', '10 seconds')
        deadline = time.monotonic() + harness.WAIT_S
        # A pass may fall between the inserts: wait for the end state, whatever the passes.
        while (self.db.scalar('SELECT count(*) FROM sessions'),
               self.db.scalar('SELECT count(*) FROM console_tickets')) != ('1', '2'):
            self.assertLess(time.monotonic(), deadline, broker.log())
            time.sleep(0.2)
        self.assertEqual(self.db.scalar(
            "SELECT count(*) FROM sessions WHERE last_seen_at > now() - interval '5 minutes'"),
            '1')
        self.assertEqual(self.db.scalar(
            "SELECT count(*) FROM console_tickets WHERE created_at < now() - interval '5 min'"),
            '0')
        deleted = [l for l in broker.log().splitlines() if 'janitor: deleted' in l]
        self.assertTrue(deleted, broker.log())


if __name__ == '__main__':
    harness.main()
