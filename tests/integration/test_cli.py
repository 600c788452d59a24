# SPDX-License-Identifier: LGPL-2.1-or-later
# The command line itself: version, --help of every subcommand, usage errors.
import json
import os
import re
import xml.etree.ElementTree as ET

import harness

DEFAULT_CONFIG = '/etc/vmbroker/vmbroker.conf'
VM_ID = '1234abcd-0000-4000-8000-000000000000'

SUBCOMMANDS = [
    ['serve'], ['migrate'], ['user', 'add'], ['user', 'list'], ['token', 'create'],
    ['token', 'list'], ['vm', 'list'], ['vm', 'stop'], ['audit'], ['version'],
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


class TemplateWithoutDatabase(harness.TestCase):
    """`template list` and `template render` read files only: they run with no config at all
    and with a config that names no database."""

    def render(self, name, config=None):
        r = harness.run(['template', 'render', name, '--owner', 'alice', '--vm-id', VM_ID],
                        config=config)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, '')
        return ET.fromstring(r.stdout)

    def test_no_config_file_at_all(self):
        # harness.run passes no --config and no VMBROKER_* variable: defaults alone.
        self.assertFalse(os.path.exists(DEFAULT_CONFIG),
                         f'{DEFAULT_CONFIG} exists: this test needs a machine without it')
        r = harness.run(['template', 'list'])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, '')
        names = [line.split()[0] for line in r.stdout.splitlines()[1:]]
        self.assertIn('memtest', names)
        self.assertIn('debian-overlay', names)

        dom = self.render('memtest')
        # libvirt.domain_type's default is auto: render guesses from /dev/kvm.
        kvm = os.access('/dev/kvm', os.R_OK | os.W_OK)
        self.assertEqual(dom.get('type'), 'kvm' if kvm else 'qemu')
        self.assertEqual(dom.findtext('name'), 'vmbroker-alice-1234abcd')  # the default prefix
        self.assertEqual(dom.findtext('memory'), '256')
        ns = {'v': 'https://vmbroker.dev/xmlns/domain/1'}
        self.assertEqual(dom.findtext('metadata/v:instance/v:template', namespaces=ns), 'memtest')
        self.assertEqual(dom.findtext('metadata/v:instance/v:vm-id', namespaces=ns), VM_ID)

    def test_config_without_database_url(self):
        # The config's own templates.dir and name_prefix are used.
        templates = os.path.join(self.workdir, 'lab-templates')
        os.makedirs(templates)
        with open(os.path.join(harness.SRC, 'templates', 'memtest.json'), encoding='utf-8') as f:
            lab = json.load(f)
        lab.update(memory_mib=384, description='memtest for the lab')
        with open(os.path.join(templates, 'lab.json'), 'w', encoding='utf-8') as f:
            json.dump(lab, f)
        cfg = self.config(database={'url': None}, templates={'dir': templates},
                          libvirt={'name_prefix': 'lab-', 'domain_type': 'kvm'})

        r = harness.run(['template', 'list'], config=cfg)
        self.assertEqual(r.returncode, 0, r.stderr)
        rows = r.stdout.splitlines()[1:]
        self.assertEqual(len(rows), 1, r.stdout)
        self.assertRegex(rows[0], r'^lab\s+iso\s+384MiB\s+1\s+-\s+memtest for the lab$')

        dom = self.render('lab', config=cfg)
        self.assertEqual(dom.get('type'), 'kvm')  # libvirt.domain_type, whatever the host has
        self.assertEqual(dom.findtext('name'), 'lab-alice-1234abcd')
        self.assertEqual(dom.findtext('memory'), '384')
        self.assertIn('template lab', dom.findtext('description'))

    def test_commands_that_use_the_database_still_require_it(self):
        cfg = self.config(database={'url': None})
        for args in [('serve',), ('migrate',), ('user', 'add', 'alice'),
                     ('token', 'create', 'alice'), ('user', 'list'), ('token', 'revoke', 'x'),
                     ('vm', 'list'), ('vm', 'stop', 'x'), ('audit',)]:
            with self.subTest(args=args):
                self.assertFailsWithOneLine(harness.run(args, config=cfg),
                                            'database.url is required')
            with self.subTest(args=args, config=None):
                self.assertFalse(os.path.exists(DEFAULT_CONFIG))
                self.assertFailsWithOneLine(harness.run(args), 'database.url is required')


if __name__ == '__main__':
    harness.main()
