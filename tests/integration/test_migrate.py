# SPDX-License-Identifier: LGPL-2.1-or-later
# Migrations: applied once, idempotent, safe when two processes race, and a schema newer than
# the binary is refused.
import re
import subprocess

import harness

VERSIONS = harness.migration_versions()
LATEST = VERSIONS[-1]


def parse(stdout):
    m = re.search(r'schema at version (\d+) \(applied (\d+)\)', stdout)
    assert m, f'no "schema at version N (applied M)" in {stdout!r}'
    return int(m.group(1)), int(m.group(2))


class Migrate(harness.TestCase):
    def rows(self):
        return self.db.psql('SELECT version, name, applied_at FROM schema_migrations ORDER BY version')

    def test_first_run_applies_every_file(self):
        r = self.migrate()
        self.assertEqual(parse(r.stdout), (LATEST, len(VERSIONS)))
        self.assertEqual([int(v) for v, _, _ in self.rows()], VERSIONS)
        # The tables of the first migration are there.
        self.assertEqual(self.db.scalar("SELECT to_regclass('users') IS NOT NULL"), 't')

    def test_second_run_is_a_no_op(self):
        self.migrate()
        before = self.rows()
        r = self.migrate()
        self.assertEqual(parse(r.stdout), (LATEST, 0))
        self.assertEqual(self.rows(), before)

    def test_two_concurrent_migrations_apply_each_file_once(self):
        cfg = self.config()
        procs = [subprocess.Popen([harness.VMBROKER, '--config', cfg, 'migrate'],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  stdin=subprocess.DEVNULL, env=harness.clean_env())
                 for _ in range(2)]
        outs = [p.communicate(timeout=harness.WAIT_S) for p in procs]
        for p, (out, err) in zip(procs, outs):
            self.assertEqual(p.returncode, 0, err)
        results = [parse(out) for out, _ in outs]
        self.assertEqual([v for v, _ in results], [LATEST, LATEST])
        # Between them they applied every file exactly once.
        self.assertEqual(sorted(a for _, a in results), [0, len(VERSIONS)])
        self.assertEqual([int(v) for v, _, _ in self.rows()], VERSIONS)

    def test_newer_schema_is_refused_by_serve(self):
        self.migrate()
        self.db.psql("INSERT INTO schema_migrations (version, name) VALUES (9999, 'future')")
        b = self.serve(wait=False)
        code = b.wait()
        log = b.log()
        self.assertNotEqual(code, 0, log)
        self.assertRegex(log, r'vmbroker: database schema is at version 9999, newer than this '
                              rf'vmbroker knows \({LATEST}\)')
        # It did not touch the schema.
        self.assertEqual(self.db.scalar('SELECT max(version) FROM schema_migrations'), '9999')

    def test_newer_schema_is_refused_by_migrate(self):
        self.migrate()
        self.db.psql("INSERT INTO schema_migrations (version, name) VALUES (9999, 'future')")
        r = self.vmb('migrate')
        self.assertFailsWithOneLine(r, '9999', f'({LATEST})')

    def test_serve_applies_pending_migrations(self):
        b = self.serve()
        self.assertEqual(self.db.scalar('SELECT max(version) FROM schema_migrations'), str(LATEST))
        b.kill()
        r = self.migrate()
        self.assertEqual(parse(r.stdout), (LATEST, 0))

    def test_unreachable_database_fails_with_one_line(self):
        cfg = self.config(database={'url': 'host=/nonexistent-socket-dir dbname=x'})
        self.assertFailsWithOneLine(self.vmb('migrate', config=cfg))


if __name__ == '__main__':
    harness.main()
