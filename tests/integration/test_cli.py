# SPDX-License-Identifier: LGPL-2.1-or-later
# The command line itself: version, --help of every subcommand, usage errors.
import os
import re

import harness

SUBCOMMANDS = [
    ['serve'], ['migrate'], ['user', 'add'], ['token', 'create'], ['version'],
]


class Cli(harness.TestCase):
    def test_version_prints_the_version(self):
        r = harness.run(['version'])
        self.assertEqual(r.returncode, 0, r.stderr)
        expected = os.environ.get('VMB_VERSION')
        self.assertRegex(r.stdout, r'^vmbroker \d+\.\d+\.\d+')
        if expected:
            self.assertIn(expected, r.stdout)

    def test_each_subcommand_help_prints_usage_and_exits_0(self):
        # --help needs no config and no database: it must work with neither.
        for sub in SUBCOMMANDS:
            with self.subTest(sub=' '.join(sub)):
                r = harness.run(sub + ['--help'])
                self.assertEqual(r.returncode, 0, f'{sub}: {r.stderr}')
                self.assertRegex(r.stdout.lower(), r'usage')
                self.assertIn(sub[0], r.stdout)

    def test_help_after_config_option_also_works(self):
        r = harness.run(['--config', '/nonexistent/vmbroker.ini', 'migrate', '--help'])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('usage', r.stdout.lower())

    def test_no_subcommand_is_a_usage_error(self):
        r = harness.run([])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertTrue(r.stderr.strip(), 'a usage error says something on stderr')

    def test_unknown_subcommand_is_a_usage_error(self):
        r = harness.run(['frobnicate'])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn('frobnicate', r.stderr)

    def test_unknown_option_is_a_usage_error(self):
        r = harness.run(['user', 'add', 'alice', '--colour', 'blue'], config=self.config())
        self.assertEqual(r.returncode, 2, r.stderr)

    def test_missing_config_file_fails_with_one_line(self):
        r = harness.run(['--config', os.path.join(self.workdir, 'nope.ini'), 'migrate'])
        self.assertFailsWithOneLine(r, 'nope.ini')

    def test_user_add_without_name_is_a_usage_error(self):
        r = harness.run(['user', 'add'], config=self.config())
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertTrue(re.search(r'\S', r.stderr))


if __name__ == '__main__':
    harness.main()
