# SPDX-License-Identifier: LGPL-2.1-or-later
# `vmbroker token create`: the token alone on stdout, stored only as its SHA-256.
import hashlib
import re

import harness

TOKEN_RE = re.compile(r'^vmb_[A-Za-z0-9_-]{43}$')


class TokenCreate(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.cfg = self.config()
        self.migrate(self.cfg)
        r = self.vmb('user', 'add', 'portal', '--role', 'service', config=self.cfg)
        self.assertEqual(r.returncode, 0, r.stderr)

    def create(self, *args):
        return self.vmb('token', 'create', *args, config=self.cfg)

    def test_prints_the_token_alone_and_stores_its_sha256(self):
        r = self.create('portal', '--name', 'course portal')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.endswith('\n'))
        token = r.stdout[:-1]
        self.assertRegex(token, TOKEN_RE)
        rows = self.db.psql('SELECT t.name, t.secret_hash, t.expires_at, u.username'
                            ' FROM api_tokens t JOIN users u ON u.id = t.user_id')
        self.assertEqual(len(rows), 1)
        name, secret_hash, expires_at, user = rows[0]
        self.assertEqual((name, user), ('course portal', 'portal'))
        self.assertEqual(secret_hash, hashlib.sha256(token.encode()).hexdigest())
        self.assertEqual(expires_at, '')  # no --expires-in: never expires
        dump = self.db.dump()
        self.assertNotIn(token, dump)
        self.assertNotIn(token[4:], dump)

    def test_tokens_are_unique(self):
        tokens = set()
        for _ in range(3):
            r = self.create('portal')
            self.assertEqual(r.returncode, 0, r.stderr)
            tokens.add(r.stdout.strip())
        self.assertEqual(len(tokens), 3)
        self.assertEqual(self.db.scalar('SELECT count(DISTINCT secret_hash) FROM api_tokens'), '3')

    def test_unknown_user_fails_with_one_line(self):
        r = self.create('nobody')
        self.assertFailsWithOneLine(r, 'nobody')
        self.assertEqual(r.stdout, '')
        self.assertEqual(self.db.scalar('SELECT count(*) FROM api_tokens'), '0')

    def test_expires_in_sets_expires_at(self):
        r = self.create('portal', '--expires-in', '3600')
        self.assertEqual(r.returncode, 0, r.stderr)
        # Compared with the row's own created_at, so no clock of this test is involved.
        seconds = float(self.db.scalar(
            'SELECT extract(epoch FROM expires_at - created_at) FROM api_tokens'))
        self.assertAlmostEqual(seconds, 3600, delta=60)

    def test_bad_expires_in_is_refused(self):
        for value in ('soon', '-5', '12abc'):
            with self.subTest(value=value):
                r = self.create('portal', '--expires-in', value)
                self.assertNotEqual(r.returncode, 0, r.stdout)
                self.assertEqual(r.stdout, '')
        self.assertEqual(self.db.scalar('SELECT count(*) FROM api_tokens'), '0')

    def test_cli_token_authenticates(self):
        r = self.create('portal')
        self.assertEqual(r.returncode, 0, r.stderr)
        token = r.stdout.strip()
        b = self.serve()
        status, _, me = b.get_json('/api/v1/me', headers={'Authorization': f'Bearer {token}'})
        self.assertEqual(status, 200, me)
        self.assertEqual((me['username'], me['role']), ('portal', 'service'))
        bad = token[:-1] + ('A' if token[-1] != 'A' else 'B')
        status, _, _ = b.request('GET', '/api/v1/me', headers={'Authorization': f'Bearer {bad}'})
        self.assertEqual(status, 401)


if __name__ == '__main__':
    harness.main()
