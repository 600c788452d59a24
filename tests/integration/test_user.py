# SPDX-License-Identifier: LGPL-2.1-or-later
# `vmbroker user add`: generated or given passwords, stored only as argon2id hashes.
import re

import harness


class UserAdd(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.cfg = self.config()
        self.migrate(self.cfg)

    def add(self, *args, input=None):
        return self.vmb('user', 'add', *args, config=self.cfg, input=input)

    def user_row(self, name):
        rows = self.db.psql(f"SELECT role, password_hash, disabled FROM users WHERE username = '{name}'")
        return rows[0] if rows else None

    def test_generated_password_is_printed_and_hashed(self):
        r = self.add('alice', '--role', 'admin')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('created user alice (role admin)', r.stdout)
        m = re.search(r'^password: ([A-Za-z0-9]+)$', r.stdout, re.M)
        self.assertTrue(m, r.stdout)
        password = m.group(1)
        self.assertEqual(len(password), 24)
        role, hashed, disabled = self.user_row('alice')
        self.assertEqual((role, disabled), ('admin', 'f'))
        self.assertTrue(hashed.startswith('$argon2id$'), hashed)
        self.assertNotIn(password, self.db.dump())

    def test_generated_passwords_differ(self):
        pw = []
        for name in ('u1', 'u2'):
            r = self.add(name)
            self.assertEqual(r.returncode, 0, r.stderr)
            pw.append(re.search(r'^password: (\S+)$', r.stdout, re.M).group(1))
        self.assertNotEqual(pw[0], pw[1])
        self.assertNotEqual(self.user_row('u1')[1], self.user_row('u2')[1])

    def test_password_stdin_reads_one_line(self):
        password = 'correct horse battery staple'
        r = self.add('bob', '--password-stdin', input=password + '\nsecond line ignored\n')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('created user bob', r.stdout)
        self.assertNotIn('password:', r.stdout)
        self.assertNotIn(password, r.stdout + r.stderr)
        _, hashed, _ = self.user_row('bob')
        self.assertTrue(hashed.startswith('$argon2id$'), hashed)
        dump = self.db.dump()
        self.assertNotIn(password, dump)
        self.assertNotIn('second line ignored', dump)

    def test_default_role_and_each_role(self):
        self.assertEqual(self.add('plain').returncode, 0)
        self.assertEqual(self.user_row('plain')[0], 'user')
        for role in ('admin', 'user', 'service'):
            r = self.add(f'r-{role}', '--role', role)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(f'(role {role})', r.stdout)
            self.assertEqual(self.user_row(f'r-{role}')[0], role)

    def test_unknown_role_is_refused(self):
        r = self.add('carol', '--role', 'emperor')
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('emperor', r.stderr)
        self.assertIsNone(self.user_row('carol'))

    def test_duplicate_user_fails_with_one_line(self):
        self.assertEqual(self.add('dave').returncode, 0)
        before = self.user_row('dave')
        r = self.add('dave')
        self.assertFailsWithOneLine(r, 'dave')
        self.assertEqual(self.user_row('dave'), before)

    def test_invalid_names_are_refused(self):
        for name in ('Alice', '-dash', '.dot', 'has space', 'ümlaut', 'a' * 65, 'semi;colon'):
            with self.subTest(name=name):
                r = self.add(name)
                self.assertNotEqual(r.returncode, 0, r.stdout)
                self.assertTrue(harness.one_line(r.stderr), 'says why on stderr')
        self.assertEqual(self.db.scalar('SELECT count(*) FROM users'), '0')

    def test_longest_valid_name_is_accepted(self):
        name = 'a' + 'b.c_d-' * 10 + 'xyz'
        self.assertEqual(len(name), 64)
        r = self.add(name)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_empty_password_on_stdin_is_refused(self):
        r = self.add('erin', '--password-stdin', input='\n')
        self.assertNotEqual(r.returncode, 0)
        self.assertIsNone(self.user_row('erin'))

    def test_cli_passwords_log_in(self):
        # The hash the command line stores is the one the server verifies.
        r = self.add('frank')
        self.assertEqual(r.returncode, 0, r.stderr)
        generated = re.search(r'^password: (\S+)$', r.stdout, re.M).group(1)
        r = self.add('grace', '--password-stdin', input='pässwörd with spaces\n')
        self.assertEqual(r.returncode, 0, r.stderr)
        b = self.serve()
        for user, password in (('frank', generated), ('grace', 'pässwörd with spaces')):
            status, _, data = b.request('POST', '/api/v1/auth/login',
                                        {'username': user, 'password': password})
            self.assertEqual(status, 200, data)
        status, hdrs, _ = b.request('POST', '/api/v1/auth/login',
                                    {'username': 'frank', 'password': generated + 'x'})
        self.assertEqual(status, 401)
        self.assertTrue(hdrs['content-type'].startswith('application/problem+json'), hdrs)


if __name__ == '__main__':
    harness.main()
