# SPDX-License-Identifier: LGPL-2.1-or-later
# Config parsing: every bad value is refused at start with one line naming section.key and the
# value (and the variable, for VMBROKER_* overrides), exit 1; env overrides apply over the file.
import os

import harness


class Config(harness.TestCase):
    def bad(self, section, key, value, *needles, args=('migrate',)):
        cfg = self.config(**{section: {key: value}})
        r = self.vmb(*args, config=cfg)
        return self.assertFailsWithOneLine(r, f'{section}.{key}', str(value), *needles)

    # --- port ranges ---

    def test_reversed_port_range(self):
        self.bad('console', 'vnc_ports', '5999-5900')

    def test_port_range_not_a_range(self):
        self.bad('console', 'vnc_ports', 'abc')
        self.bad('console', 'ws_ports', 'abc')

    def test_port_range_including_zero(self):
        self.bad('console', 'vnc_ports', '0-10')

    def test_port_range_beyond_65535(self):
        self.bad('console', 'ws_ports', '70000-70001')

    def test_overlapping_vnc_and_ws_ranges(self):
        cfg = self.config(console={'vnc_ports': '6000-6099', 'ws_ports': '6050-6149'})
        line = self.assertFailsWithOneLine(self.vmb('migrate', config=cfg))
        self.assertTrue('console.vnc_ports' in line or 'console.ws_ports' in line, line)
        self.assertTrue('6000-6099' in line or '6050-6149' in line, line)

    # --- other values ---

    def test_templates_dir_missing(self):
        self.bad('templates', 'dir', os.path.join(self.workdir, 'no-such-dir'))

    def test_templates_dir_is_a_file(self):
        path = os.path.join(self.workdir, 'a-file')
        with open(path, 'w') as f:
            f.write('not a folder\n')
        self.bad('templates', 'dir', path)

    def test_unparseable_database_url(self):
        # libpq's own parser refuses these (it accepts `host=x port=` with an empty port).
        for url in ['host=x port', "host='x", 'postgresql://[bad']:
            with self.subTest(url=url):
                self.bad('database', 'url', url)

    def test_missing_database_url(self):
        cfg = self.config(database={'url': None})
        self.assertFailsWithOneLine(self.vmb('migrate', config=cfg), 'database.url')

    def test_template_commands_check_a_database_url_they_do_not_need(self):
        # database.url may be left out for them, but one that is given is still checked.
        self.bad('database', 'url', "host='x", args=('template', 'list'))
        r = self.vmb('template', 'list', env={'VMBROKER_DATABASE_URL': "host='x"})
        self.assertFailsWithOneLine(r, 'VMBROKER_DATABASE_URL', 'database.url')

    def test_bad_listen_address(self):
        self.bad('http', 'listen', 'nonsense')
        self.bad('http', 'listen', '127.0.0.1:99999')

    def test_bad_trusted_proxies(self):
        self.bad('http', 'trusted_proxies', '127.0.0.1, nginx', "'nginx' is not an IPv4")
        self.bad('http', 'trusted_proxies', '10.0.0.0/33', "'10.0.0.0/33'")
        cfg = self.config(http={'trusted_proxies': '127.0.0.1 ::1, 10.0.0.0/8,fd00::/8'})
        r = self.vmb('migrate', config=cfg)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_bad_numbers_and_booleans(self):
        self.bad('limits', 'max_running_per_user', 'many')
        self.bad('http', 'max_body_bytes', 'big')
        self.bad('auth', 'signup', 'perhaps')

    def test_bad_escapes(self):
        # GKeyFile's escapes: a lone or unknown one is refused, never read as "not set"; a URL
        # with a space is refused whatever GLib's URL parser makes of it.
        self.bad('http', 'public_url', 'https://vm.example.org\\', 'lone')
        self.bad('log', 'level', 'in\\qfo', "unknown escape '\\q'")
        self.bad('http', 'public_url', 'https://vm.example org', 'spaces')

    def test_bad_log_level(self):
        self.bad('log', 'level', 'loud')

    def test_unknown_key_in_a_section(self):
        # The key is what is wrong here, so the line need name only the key.
        cfg = self.config(http={'colour': 'blue'})
        self.assertFailsWithOneLine(self.vmb('migrate', config=cfg), 'http.colour')

    def test_unknown_section(self):
        cfg = self.config(frobnicator={'speed': '3'})
        self.assertFailsWithOneLine(self.vmb('migrate', config=cfg), 'frobnicator')

    def test_every_documented_key_is_accepted(self):
        cfg = self.config(
            http={'public_url': 'http://127.0.0.1:1/', 'max_connections': '64',
                  'per_ip_connections': '16', 'connection_timeout_s': '30',
                  'max_body_bytes': '1048576', 'shutdown_timeout_s': '10'},
            database={'pool_size': '4', 'statement_timeout_ms': '5000'},
            console={'port_cooldown_s': '5'},
            limits={'max_running_per_user': '2'},
            auth={'signup': 'false'},
            log={'level': 'debug'})
        r = self.vmb('migrate', config=cfg)
        self.assertEqual(r.returncode, 0, r.stderr)

    # --- every subcommand that reads the config checks it ---

    def test_every_config_reading_subcommand_checks(self):
        for args in [('serve',), ('migrate',), ('user', 'add', 'alice'),
                     ('token', 'create', 'alice'), ('template', 'list'),
                     ('template', 'render', 'memtest')]:
            with self.subTest(args=args):
                self.bad('console', 'vnc_ports', '5999-5900', args=args)

    def test_template_commands_check_every_other_key_without_database_url(self):
        for args in [('template', 'list'), ('template', 'render', 'memtest')]:
            with self.subTest(args=args):
                cfg = self.config(database={'url': None}, console={'vnc_ports': '5999-5900'})
                self.assertFailsWithOneLine(self.vmb(*args, config=cfg), 'console.vnc_ports',
                                            '5999-5900')
                r = self.vmb(*args, config=self.config(database={'url': None}),
                             env={'VMBROKER_LOG_LEVEL': 'loud'})
                self.assertFailsWithOneLine(r, 'log.level', 'loud')

    # --- environment overrides ---

    def test_invalid_env_override_names_the_variable(self):
        r = self.vmb('migrate', env={'VMBROKER_CONSOLE_VNC_PORTS': 'abc'})
        self.assertFailsWithOneLine(r, 'VMBROKER_CONSOLE_VNC_PORTS', 'console.vnc_ports', 'abc')

    def test_unknown_env_variable(self):
        r = self.vmb('migrate', env={'VMBROKER_HTTP_COLOUR': 'blue'})
        self.assertFailsWithOneLine(r, 'VMBROKER_HTTP_COLOUR')

    def test_env_override_fixes_a_bad_file_value(self):
        cfg = self.config(console={'vnc_ports': 'abc'})
        self.assertNotEqual(self.vmb('migrate', config=cfg).returncode, 0)
        r = self.vmb('migrate', config=cfg, env={'VMBROKER_CONSOLE_VNC_PORTS': '31000-31009'})
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_database_url_from_env_alone(self):
        cfg = self.config(database={'url': None})
        r = self.vmb('migrate', config=cfg, env={'VMBROKER_DATABASE_URL': self.db.conninfo})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.db.scalar('SELECT count(*) > 0 FROM schema_migrations'), 't')

    def test_env_override_wins_over_file_value(self):
        # The file names one database, the variable another: only the variable's is migrated.
        other = self.cluster.create_database(self, 'other')
        cfg = self.config(database={'url': self.db.conninfo})
        r = self.vmb('migrate', config=cfg, env={'VMBROKER_DATABASE_URL': other.conninfo})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(other.scalar("SELECT to_regclass('schema_migrations') IS NOT NULL"), 't')
        self.assertEqual(self.db.scalar("SELECT to_regclass('schema_migrations') IS NOT NULL"), 'f')


if __name__ == '__main__':
    harness.main()
