# SPDX-License-Identifier: LGPL-2.1-or-later
# contrib/quickstart end to end, in a state folder of the test's own: the first run creates
# admin and prints its password, the second reuses everything; both end up serving.
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
import http.client

import harness


class Quickstart(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.state = os.path.join(self.workdir, 'state')
        self.addCleanup(shutil.rmtree, self.state, True)
        # A libvirt prefix of the test's own, so its pools can go without touching others'.
        self.prefix = f'vmbt{secrets.token_hex(3)}-'
        self.addCleanup(harness.remove_pools, self.prefix)
        self.addCleanup(subprocess.run, [os.path.join(harness.SRC, 'contrib', 'pg-private'),
                                         'stop', os.path.join(self.state, 'pg')])

    def run_quickstart(self):
        port = harness.free_port()
        out = open(os.path.join(self.workdir, f'qs-{port}.out'), 'w+')
        err = open(os.path.join(self.workdir, f'qs-{port}.err'), 'w+')
        self.addCleanup(out.close)
        self.addCleanup(err.close)
        env = harness.clean_env({'VMB_STATE_DIR': self.state,
                                 'VMBROKER_HTTP_LISTEN': f'127.0.0.1:{port}',
                                 'VMBROKER_LIBVIRT_NAME_PREFIX': self.prefix})
        if os.environ.get('VMB_BUILD_ROOT'):
            env['VMB_BUILD_DIR'] = os.environ['VMB_BUILD_ROOT']
        p = subprocess.Popen([os.path.join(harness.SRC, 'contrib', 'quickstart')],
                             stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env)

        def stop():
            if p.poll() is None:
                p.kill()
                p.wait()
        self.addCleanup(stop)
        deadline = time.monotonic() + 300
        while True:
            self.assertIsNone(p.poll(), self.read(err))
            try:
                c = http.client.HTTPConnection('127.0.0.1', port, timeout=5)
                c.request('GET', '/healthz')
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            self.assertLess(time.monotonic(), deadline, self.read(err))
            time.sleep(0.2)
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(timeout=harness.WAIT_S), 0, self.read(err))
        return self.read(out), self.read(err)

    @staticmethod
    def read(f):
        f.flush()
        with open(f.name) as g:
            return g.read()

    def test_first_run_creates_admin_second_reuses(self):
        out, err = self.run_quickstart()
        m = re.search(r'password: ([A-Za-z0-9]{24})\b', out)
        self.assertTrue(m, out + err)
        pw_file = os.path.join(self.state, 'admin-password')
        self.assertEqual(os.stat(pw_file).st_mode & 0o777, 0o600)
        with open(pw_file) as f:
            self.assertEqual(f.read().strip(), m.group(1))
        self.assertIn('http://127.0.0.1:', err)

        conf = os.path.join(self.state, 'vmbroker.conf')
        with open(conf) as f:
            first_conf = f.read()
        out2, err2 = self.run_quickstart()
        self.assertNotIn('password:', out2)
        self.assertIn('admin exists', err2)
        self.assertIn(pw_file, err2)
        self.assertIn('applied 0', out2 + err2)
        with open(conf) as f:
            self.assertEqual(f.read(), first_conf)
        with open(pw_file) as f:
            self.assertEqual(f.read().strip(), m.group(1))

        # One admin, in the quickstart's own cluster, hashed.
        pg = harness.Cluster(os.path.join(self.state, 'pg', 'socket'), 5439)
        rows = pg.psql('SELECT username, role, password_hash FROM users', dbname='vmbroker')
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0][:2], ['admin', 'admin'])
        self.assertTrue(rows[0][2].startswith('$argon2id$'))


if __name__ == '__main__':
    harness.main()
