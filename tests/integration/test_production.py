# SPDX-License-Identifier: LGPL-2.1-or-later
# The production path without systemd: `meson install` into a staging root, the service user
# made from the installed sysusers.d file, the installed binary started as that user (never
# root, no --allow-root) with the installed templates, web UI and unit's essentials (its own
# state folder, mode 0711), behind Debian's nginx with contrib/nginx/vmbroker.conf, TLS and
# http.trusted_proxies. Over https, from an address of its own, a client signs in, uploads
# an ISO (streamed through nginx), boots it and opens its console (a websocket through nginx
# that carries QEMU's RFB greeting); the sessions table, the audit log and the access log see
# that client's address. Then Debian's Chromium (tests/browser/https-console.mjs) signs in
# through the web UI over https and connects noVNC through nginx. `systemd-analyze verify`
# checks the installed unit.
#
# These machines have no polkit, so a user other than root cannot reach qemu:///system here:
# the broker uses the vmbroker user's own libvirt (qemu:///session, started by libvirt on
# first use and stopped by this test), real QEMU all the same.
import base64
import grp
import hashlib
import json
import os
import pwd
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import nginx  # noqa: E402

BUILD = os.environ.get('VMB_BUILD_ROOT', os.path.join(harness.SRC, 'build'))
PASSWORD = 'correct horse battery'
CLIENT = '127.0.0.77'
PROXY = '127.0.0.3'  # nginx's own address towards vmbroker: Chromium, on 127.0.0.1, is not it
NODE = shutil.which('node') or '/usr/bin/node'


def meson_paths():
    """prefix, bindir, sysconfdir, datadir, mandir of the build, from meson introspect."""
    r = subprocess.run(['meson', 'introspect', '--buildoptions', BUILD], check=True,
                       capture_output=True, text=True, timeout=120)
    opts = {o['name']: o['value'] for o in json.loads(r.stdout)}
    prefix = opts['prefix']
    return {k: os.path.join(prefix, opts[k]) for k in
            ('bindir', 'sysconfdir', 'datadir', 'mandir')} | {'prefix': prefix}


class Production(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.assertEqual(os.geteuid(), 0, 'this test creates a system user: run it as root')
        self.dest = os.path.join(self.workdir, 'root')
        r = subprocess.run(['meson', 'install', '-C', BUILD, '--no-rebuild', '--quiet',
                            '--destdir', self.dest], capture_output=True, text=True,
                           timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.paths = meson_paths()

    def installed(self, *parts):
        return os.path.join(self.dest, *(p.lstrip('/') for p in parts))

    def make_user(self):
        """The user and groups of the installed sysusers.d file (systemd-sysusers)."""
        sysusers = self.installed(self.paths['prefix'], 'lib/sysusers.d/vmbroker.conf')
        r = subprocess.run(['systemd-sysusers', sysusers], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        pw = pwd.getpwnam('vmbroker')
        groups = [g.gr_name for g in grp.getgrall() if 'vmbroker' in g.gr_mem]
        self.assertIn('libvirt', groups)
        self.assertNotEqual(pw.pw_uid, 0)
        return pw

    def as_vmbroker(self, args, **kw):
        """Runs the installed binary as the vmbroker user, with its groups."""
        env = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'HOME': self.home,
               'XDG_RUNTIME_DIR': self.runtime, 'LANG': 'C.UTF-8', **kw.pop('env', {})}
        return dict(user=self.pw.pw_uid, group=self.pw.pw_gid,
                    extra_groups=os.getgrouplist('vmbroker', self.pw.pw_gid),
                    env=env, cwd=self.home, **kw), \
            [self.installed(self.paths['bindir'], 'vmbroker'), '--config', self.config_path] \
            + list(args)

    def vmb_as(self, *args, input=None):
        kw, cmd = self.as_vmbroker(args)
        return subprocess.run(cmd, input=input, capture_output=True, text=True,
                              timeout=harness.WAIT_S, **kw)

    def own_dir(self, name, mode):
        d = os.path.join(self.workdir, name)
        os.makedirs(d, exist_ok=True)
        os.chown(d, self.pw.pw_uid, self.pw.pw_gid)
        os.chmod(d, mode)
        return d

    def session_templates(self, installed):
        """The installed templates, with the guest network off: the session libvirt of a user
        without privileges (qemu:///session, as here without polkit) can define neither the
        guests' network nor its nwfilter. In production vmbroker uses qemu:///system."""
        d = self.own_dir('templates', 0o755)
        for name in os.listdir(installed):
            if not name.endswith('.json'):
                shutil.copy(os.path.join(installed, name), d)
                continue
            with open(os.path.join(installed, name), encoding='utf-8') as f:
                t = json.load(f)
            if t.get('network') == 'isolated':
                t['network'] = 'none'
            with open(os.path.join(d, name), 'w', encoding='utf-8') as f:
                json.dump(t, f)
        return d

    def stop_session_libvirt(self):
        """The vmbroker user's libvirtd and virtlogd, started by its first connection: by
        their pid files."""
        for name in ('libvirtd', 'virtlogd'):
            try:
                with open(os.path.join(self.runtime, 'libvirt', name + '.pid'),
                          encoding='ascii') as f:
                    pid = int(f.read().strip())
                with open(f'/proc/{pid}/status', encoding='ascii') as f:
                    mine = f'Uid:\t{self.pw.pw_uid}\t' in f.read()
            except (OSError, ValueError):
                continue
            if mine:
                os.kill(pid, 15)

    def start(self):
        self.pw = self.make_user()
        self.home = self.own_dir('home', 0o700)
        self.runtime = self.own_dir('run', 0o700)
        self.state = self.own_dir('state', 0o711)  # StateDirectory=, StateDirectoryMode=0711
        self.addCleanup(self.stop_session_libvirt)
        port = harness.free_port()
        self.nginx = nginx.Nginx(self, self.workdir, port, proxy_bind=PROXY)
        self.origin = f'https://127.0.0.1:{self.nginx.port}'
        datadir = self.installed(self.paths['datadir'], 'vmbroker')
        templates = self.session_templates(os.path.join(datadir, 'templates'))
        sections = harness.base_config(self.db, self.workdir, **{
            'http': {'listen': f'127.0.0.1:{port}', 'public_url': self.origin,
                     'trusted_proxies': PROXY, 'web_dir': os.path.join(datadir, 'web')},
            'libvirt': {'uri': 'qemu:///session', 'domain_type': 'qemu'},
            'storage': {'dir': self.state},
            'templates': {'dir': templates},
        })
        self.prefix = sections['libvirt']['name_prefix']
        # The installed example, with this test's values appended in place of its comments.
        self.config_path = os.path.join(self.workdir, 'vmbroker.conf')
        shutil.copyfile(self.installed(self.paths['sysconfdir'], 'vmbroker/vmbroker.conf'),
                        self.config_path)
        harness.write_config(self.config_path + '.test', sections)
        with open(self.config_path, 'a', encoding='utf-8') as f, \
                open(self.config_path + '.test', encoding='utf-8') as extra:
            f.write('\n' + extra.read())
        os.chown(self.config_path, 0, self.pw.pw_gid)
        os.chmod(self.config_path, 0o640)
        r = self.vmb_as('migrate')
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.vmb_as('user', 'add', 'teacher', '--role', 'admin', '--password-stdin',
                        input=PASSWORD + '\n')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.log_path = os.path.join(self.workdir, 'serve.log')
        log = open(self.log_path, 'wb')
        self.addCleanup(log.close)
        kw, cmd = self.as_vmbroker(['serve'])
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, **kw)
        self.addCleanup(self.stop)
        deadline = time.monotonic() + harness.WAIT_S
        while ' listening on http' not in self.log():
            self.assertIsNone(self.proc.poll(), self.log())
            self.assertLess(time.monotonic(), deadline, self.log())
            time.sleep(0.1)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for name in ('isos', 'base', 'disks'):
            for action in ('pool-destroy', 'pool-undefine'):
                kw, _ = self.as_vmbroker([])
                subprocess.run(['virsh', '-q', '-c', 'qemu:///session', action,
                                self.prefix + name], capture_output=True, timeout=60, **kw)

    def log(self):
        with open(self.log_path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def idle_iso(self):
        """A bootable ISO (El Torito, no emulation) whose guest halts at once: 0% CPU."""
        d = os.path.join(self.workdir, 'iso')
        os.makedirs(os.path.join(d, 'root'))
        with open(os.path.join(d, 'root', 'boot.img'), 'wb') as f:
            f.write(b'\xfa\xf4'.ljust(2048, b'\0'))  # cli; hlt
        out = os.path.join(d, 'idle.iso')
        subprocess.run(['xorriso', '-as', 'mkisofs', '-quiet', '-b', 'boot.img',
                        '-no-emul-boot', '-boot-load-size', '4', '-o', out,
                        os.path.join(d, 'root')], check=True, capture_output=True, timeout=60)
        with open(out, 'rb') as f:
            return f.read()

    def console_greeting(self, ws_path):
        """Opens the console websocket through nginx (TLS, Upgrade) and returns the payload
        of its first frame: QEMU's RFB greeting, relayed by vmbroker."""
        conn = self.nginx.connection(CLIENT, timeout=harness.WAIT_S)
        conn.connect()
        sock = conn.sock
        try:
            key = base64.b64encode(os.urandom(16)).decode()
            sock.sendall((f'GET {ws_path} HTTP/1.1\r\nHost: 127.0.0.1:{self.nginx.port}\r\n'
                          f'Upgrade: websocket\r\nConnection: Upgrade\r\n'
                          f'Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n'
                          f'Sec-WebSocket-Protocol: binary\r\nOrigin: {self.origin}\r\n\r\n')
                         .encode())
            data = b''
            while b'\r\n\r\n' not in data:
                chunk = sock.recv(4096)
                self.assertTrue(chunk, data)
                data += chunk
            head, _, data = data.partition(b'\r\n\r\n')
            self.assertTrue(head.startswith(b'HTTP/1.1 101'), head)
            while len(data) < 2 or len(data) < 2 + (data[1] & 0x7f):
                chunk = sock.recv(4096)
                self.assertTrue(chunk, data)
                data += chunk
            self.assertLess(data[1] & 0x7f, 126)  # a short, unmasked frame
            return data[2:2 + (data[1] & 0x7f)]
        finally:
            conn.close()

    def https(self, method, path, body=None, headers=None):
        h = {'Origin': self.origin, **(headers or {})}
        status, hdrs, data = self.nginx.request(method, path, body, h, client=CLIENT)
        return status, hdrs, json.loads(data) if data else None

    def test_installed_behind_nginx_as_the_service_user(self):
        self.start()
        with open(f'/proc/{self.proc.pid}/status', encoding='ascii') as f:
            self.assertIn(f'Uid:\t{self.pw.pw_uid}\t', f.read())
        # The installed web UI through nginx.
        status, hdrs, body = self.nginx.request('GET', '/ui/', client=CLIENT)
        self.assertEqual(status, 200)
        # Sign in: a Secure cookie (public_url is https).
        status, hdrs, body = self.https('POST', '/api/v1/auth/login',
                                        {'username': 'teacher', 'password': PASSWORD})
        self.assertEqual(status, 200, body)
        self.assertIn('; Secure', hdrs['set-cookie'])
        auth = {'Cookie': hdrs['set-cookie'].split(';', 1)[0],
                'X-CSRF-Token': body['csrf_token']}
        # Upload an ISO through nginx, streamed (nginx buffers nothing: no body temp file).
        data = self.idle_iso()
        status, _, iso = self.https('PUT', '/api/v1/isos/idle-upload', data,
                                    {**auth, 'Content-Type': 'application/octet-stream'})
        self.assertEqual(status, 201, iso)
        self.assertEqual(iso['sha256'], hashlib.sha256(data).hexdigest())
        self.assertGreater(len(data), 64 * 1024)  # more than nginx would hold in memory
        self.assertNotIn('buffered to a temporary file', self.nginx.error_log())
        # Files and folders: the service user's; QEMU's user may traverse and read.
        isos = os.path.join(self.state, 'isos')
        self.assertEqual(os.stat(isos).st_uid, self.pw.pw_uid)
        self.assertEqual(os.stat(isos).st_mode & 0o777, 0o711)
        files = [os.path.join(isos, n) for n in os.listdir(isos)]
        self.assertEqual(len(files), 1)
        self.assertEqual(os.stat(files[0]).st_uid, self.pw.pw_uid)
        self.assertEqual(os.stat(files[0]).st_mode & 0o777, 0o644)
        # Boot it (session QEMU as vmbroker, TCG) and mint a console ticket.
        status, _, out = self.https('POST', '/api/v1/vms',
                                    {'template': 'iso-blank-disk', 'iso': iso['id']}, auth)
        self.assertEqual(status, 201, out)
        vm = out['vm']
        status, _, ticket = self.https('POST', f'/api/v1/vms/{vm["id"]}/console', None, auth)
        self.assertEqual(status, 201, ticket)
        self.assertTrue(self.console_greeting(ticket['ws_path']).startswith(b'RFB 003.'))
        # The client's address, as nginx passed it, everywhere.
        self.assertEqual(self.db.scalar(
            'SELECT string_agg(DISTINCT host(remote_addr), \',\') FROM sessions'), CLIENT)
        self.assertEqual(self.db.scalar(
            "SELECT host(remote_addr) FROM audit_log WHERE action = 'vm.create'"), CLIENT)
        for path in ('/api/v1/isos/idle-upload', '/api/v1/vms', '/api/v1/auth/login'):
            self.assertEqual(set(nginx.access_addrs(self.log(), path)), {CLIENT}, path)
        # Chromium over https: the web UI, sign-in and noVNC's websocket through nginx.
        r = subprocess.run([NODE, os.path.join(harness.SRC, 'tests', 'browser',
                                               'https-console.mjs'),
                            self.origin, 'teacher', PASSWORD, vm['name']],
                           capture_output=True, text=True, timeout=300,
                           env={**os.environ, 'VMB_BUILD_ROOT': BUILD})
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.log()[-3000:])
        # Chromium's own requests (from 127.0.0.1, as nginx passed it). A GET on a kept-alive
        # connection is logged at debug only; the console page's POST is logged.
        self.assertEqual(set(nginx.access_addrs(
            self.log(), f'/api/v1/vms/{vm["id"]}/console/session')), {'127.0.0.1'})
        status, _, _ = self.https('DELETE', f'/api/v1/vms/{vm["id"]}', None, auth)
        self.assertEqual(status, 204)

    def test_unit_file_verifies(self):
        unit = self.installed(self.paths['prefix'], 'lib/systemd/system/vmbroker.service')
        with open(unit, encoding='utf-8') as f:
            text = f.read()
        binary = os.path.join(self.paths['bindir'], 'vmbroker')
        for line in ('Type=notify', 'User=vmbroker', 'StateDirectory=vmbroker',
                     'WatchdogSec=', 'ProtectSystem=strict', 'CapabilityBoundingSet=\n',
                     'NoNewPrivileges=yes', 'MemoryDenyWriteExecute=yes',
                     f'ExecStart={binary} --config '):
            self.assertIn(line, text)
        # The installed binary lives under the staging root: point ExecStart there.
        staged = os.path.join(self.workdir, 'vmbroker.service')
        with open(staged, 'w', encoding='utf-8') as f:
            f.write(text.replace(f'ExecStart={binary}',
                                 f'ExecStart={self.installed(binary)}'))
        r = subprocess.run(['systemd-analyze', 'verify', '--man=no', staged],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = subprocess.run(['systemd-analyze', 'security', '--offline=true', staged],
                           capture_output=True, text=True, timeout=120)
        self.assertIn('Overall exposure level', r.stdout)
        level = float(r.stdout.split('Overall exposure level for vmbroker.service:')[1].split()[0])
        self.assertLess(level, 2.5, r.stdout)
        # The man pages and the example config are installed.
        for p in (('mandir', 'man8/vmbroker.8'), ('mandir', 'man5/vmbroker.conf.5'),
                  ('sysconfdir', 'vmbroker/vmbroker.conf')):
            self.assertTrue(os.path.isfile(self.installed(self.paths[p[0]], p[1])), p)


if __name__ == '__main__':
    harness.main()
