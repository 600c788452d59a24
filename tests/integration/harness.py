# SPDX-License-Identifier: LGPL-2.1-or-later
# Helpers for the black-box tests: a fresh database per test file on the run's PostgreSQL
# (contrib/run-tests exports VMB_PG_*), private clusters for tests that stop PostgreSQL, config
# files, the real vmbroker binary (VMBROKER, set by meson) and HTTP. Standard library only.
#
# Every object registers its own cleanup with the test case, so a failing test still kills its
# processes and drops its database.
import atexit
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import zlib

SRC = os.environ.get('VMB_SOURCE_ROOT') or os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))
VMBROKER = os.environ.get('VMBROKER', os.path.join(SRC, 'build', 'broker', 'vmbroker'))

# Guards against a hung process, not measurements: a test never asserts on how long
# something took.
WAIT_S = 60

_atexit_actions = []
atexit.register(lambda: [a() for a in reversed(_atexit_actions)])


def pg_bin(name):
    """Path of a PostgreSQL client or server program (VMB_PG_BIN, else the newest installed)."""
    d = os.environ.get('VMB_PG_BIN')
    if not d:
        versions = sorted(os.listdir('/usr/lib/postgresql'), key=lambda v: int(v.split('.')[0]))
        d = f'/usr/lib/postgresql/{versions[-1]}/bin'
    return os.path.join(d, name)


def mkdtemp(prefix):
    """A temporary folder that libvirt-qemu and postgres can reach (o+x on it and /tmp)."""
    d = tempfile.mkdtemp(prefix=prefix, dir='/tmp')
    os.chmod(d, 0o755)
    return d


def small_iso(test, tag=''):
    """A tiny bootable ISO (El Torito, no emulation: cli; hlt), different per TAG."""
    d = mkdtemp('vmbt-iso-')
    test.addCleanup(shutil.rmtree, d, True)
    os.makedirs(os.path.join(d, 'root'))
    with open(os.path.join(d, 'root', 'boot.img'), 'wb') as f:
        f.write(b'\xfa\xf4' + tag.encode().ljust(2046, b'\0'))
    out = os.path.join(d, 'small.iso')
    subprocess.run(['xorriso', '-as', 'mkisofs', '-quiet', '-b', 'boot.img',
                    '-no-emul-boot', '-boot-load-size', '4', '-o', out,
                    os.path.join(d, 'root')], check=True, capture_output=True)
    with open(out, 'rb') as f:
        return f.read()


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def one_line(text):
    """The lines of TEXT without empty trailing ones."""
    return [l for l in text.splitlines() if l.strip()]


# --- PostgreSQL ----------------------------------------------------------------------------


def virsh(*args):
    """virsh -q on qemu:///system; returns CompletedProcess (text)."""
    return subprocess.run(['virsh', '-q', '-c', 'qemu:///system', *args], capture_output=True,
                          text=True, timeout=120)


def remove_domains(prefix):
    """Destroys and undefines the domains named PREFIX*, with their storage, snapshots
    and memory images."""
    for name in virsh('list', '--all', '--name').stdout.split():
        if name.startswith(prefix):
            virsh('destroy', name)
            virsh('undefine', name, '--remove-all-storage', '--snapshots-metadata',
                  '--managed-save')


def domain_names(uri, prefix):
    """The names of the domains named PREFIX* that libvirt at URI has."""
    r = subprocess.run(['virsh', '-q', '-c', uri, 'list', '--all', '--name'],
                       capture_output=True, text=True, timeout=60)
    return {n for n in r.stdout.split() if n.startswith(prefix)}


def remove_domains_at(uri, prefix):
    """remove_domains() on libvirt at URI (another host's, say), storage left to its pools."""
    for name in domain_names(uri, prefix):
        subprocess.run(['virsh', '-q', '-c', uri, 'destroy', name], capture_output=True)
        subprocess.run(['virsh', '-q', '-c', uri, 'undefine', name], capture_output=True)


TESTBED = os.path.join(SRC, 'contrib', 'testbed')


def testbed_up(test, bed):
    """contrib/testbed up BED, down again when TEST ends (None: the caller's to do);
    returns the second host's (URI, console address)."""
    if test:
        _cleanup(test, lambda: subprocess.run([TESTBED, 'down', bed], capture_output=True,
                                              timeout=180))
    r = subprocess.run([TESTBED, 'up', bed], capture_output=True, text=True, timeout=180)
    if r.returncode != 0:
        raise RuntimeError(f'contrib/testbed up: {r.stderr}')
    env = dict(line.split('=', 1) for line in r.stdout.split())
    return env['VMB_HOST2_URI'], env['VMB_HOST2_CONSOLE']


def idle_template(templates, workdir, name='idle', **fields):
    """Writes template NAME to TEMPLATES: memtest's settings booting the idle guest
    (tests/fixtures/make-idle-iso, made in WORKDIR once), 128 MiB, with FIELDS over them;
    returns the template and the ISO's path."""
    iso = os.path.join(workdir, 'idle.iso')
    if not os.path.exists(iso):
        subprocess.run([os.path.join(SRC, 'tests', 'fixtures', 'make-idle-iso'), iso],
                       check=True, stdout=subprocess.DEVNULL, timeout=300)
        os.chmod(iso, 0o644)
    with open(os.path.join(SRC, 'templates', 'memtest.json')) as f:
        t = {**json.load(f), 'iso_path': iso, 'memory_mib': 128,
             'description': 'a guest that idles once booted (test fixture)', **fields}
    with open(os.path.join(templates, name + '.json'), 'w') as f:
        json.dump(t, f)
    return t, iso


def png_rgb(path):
    """An 8-bit RGB PNG (QEMU's screendump) as (width, height, its RGB bytes), rows undone."""
    with open(path, 'rb') as f:
        data = f.read()
    pos, idat = 8, b''
    while pos < len(data):
        n, kind = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b'IHDR':
            width, height, depth, colour = struct.unpack('>IIBB', body[:10])
        elif kind == b'IDAT':
            idat += body
    assert (depth, colour) == (8, 2), (depth, colour)
    raw, stride, prev, out = zlib.decompress(idat), width * 3, bytearray(width * 3), bytearray()
    for y in range(height):
        f, row = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = row[i - 3] if i >= 3 else 0
            b, c = prev[i], prev[i - 3] if i >= 3 else 0
            p = a + b - c
            pred = [0, a, b, (a + b) // 2,
                    a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c)
                    else b if abs(p - b) <= abs(p - c) else c][f]
            row[i] = (row[i] + pred) & 0xff
        out += row
        prev = row
    return width, height, out


def png_colours(path):
    """The distinct colours of an 8-bit RGB PNG (QEMU's screendump)."""
    _, _, rgb = png_rgb(path)
    return {bytes(rgb[i:i + 3]) for i in range(0, len(rgb), 3)}


def qemu_io(test, domain, command):
    """Runs qemu-io COMMAND on the first qcow2 disk of running DOMAIN, inside its QEMU (the
    monitor's qemu-io); returns what it printed, which goes to the domain's log."""
    def hmp(command):
        r = virsh('qemu-monitor-command', domain, '--hmp', command)
        test.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout
    info = hmp('info block')
    device = re.search(r'Attached to:\s+(\S+)', info.split('.qcow2', 1)[1]).group(1)
    log = f'/var/log/libvirt/qemu/{domain}.log'
    before = os.path.getsize(log)
    hmp(f'qemu-io -d {device} "{command}"')
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open(log, errors='replace') as f:
            f.seek(before)
            out = f.read()
        if 'bytes at offset' in out or 'Pattern verification failed' in out:
            return out
        time.sleep(0.1)
    test.fail(f'qemu-io printed nothing for {command!r}')


class Cluster:
    """A PostgreSQL cluster reached by unix socket as superuser vmbroker."""

    def __init__(self, host, port, user='vmbroker'):
        self.host, self.port, self.user = host, str(port), user

    @classmethod
    def of_run(cls):
        """The run's shared cluster, from the VMB_PG_* variables contrib/run-tests exports."""
        host = os.environ.get('VMB_PG_HOST')
        if not host:
            raise RuntimeError('VMB_PG_HOST is not set: run the tests with contrib/run-tests '
                               '(or export what contrib/pg-private start prints)')
        return cls(host, os.environ.get('VMB_PG_PORT', '5432'),
                   os.environ.get('VMB_PG_USER', 'vmbroker'))

    def psql(self, sql, dbname='postgres', check=True):
        """Runs SQL; returns the rows as lists of strings (unaligned, tab-separated)."""
        r = subprocess.run([pg_bin('psql'), '-X', '-q', '-A', '-t', '-F', '\t',
                            '-v', 'ON_ERROR_STOP=1', '-h', self.host, '-p', self.port,
                            '-U', self.user, '-d', dbname, '-c', sql],
                           capture_output=True, text=True, timeout=WAIT_S)
        if check and r.returncode != 0:
            raise RuntimeError(f'psql failed ({r.returncode}): {r.stderr.strip()}\nSQL: {sql}')
        return [line.split('\t') for line in r.stdout.splitlines() if line != '']

    def create_database(self, test=None, label='t'):
        """A fresh, empty database; dropped when TEST finishes (or at exit)."""
        name = 'vmbt_' + re.sub(r'[^a-z0-9_]', '_', label.lower())[:30] + '_' + secrets.token_hex(4)
        self.psql(f'CREATE DATABASE "{name}"')
        db = Database(self, name)
        _cleanup(test, db.drop)
        return db


class Database:
    def __init__(self, cluster, name):
        self.cluster, self.name = cluster, name

    @property
    def conninfo(self):
        c = self.cluster
        return f'host={c.host} port={c.port} user={c.user} dbname={self.name}'

    def psql(self, sql, check=True):
        return self.cluster.psql(sql, self.name, check=check)

    def scalar(self, sql):
        rows = self.psql(sql)
        return rows[0][0] if rows else None

    def dump(self, exclude_data=()):
        """The whole database as pg_dump's plain SQL text (data included, but for the tables
        named in EXCLUDE_DATA)."""
        c = self.cluster
        skip = [f'--exclude-table-data={t}' for t in exclude_data]
        r = subprocess.run([pg_bin('pg_dump'), '-h', c.host, '-p', c.port, '-U', c.user,
                            *skip, self.name], capture_output=True, text=True, timeout=WAIT_S,
                           check=True)
        # pg_dump >= 15.14 brackets its output with a random \restrict key: not data.
        return ''.join(l for l in r.stdout.splitlines(True)
                       if not l.startswith(('\\restrict ', '\\unrestrict ')))

    def drop(self):
        try:
            self.cluster.psql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)', check=False)
        except Exception:  # the cluster may be gone already
            pass


class PrivateCluster(Cluster):
    """A cluster of the test's own (contrib/pg-private), for tests that stop PostgreSQL."""

    def __init__(self, test=None, port=5489):
        self.dir = mkdtemp('vmbt-pg-')
        super().__init__(os.path.join(self.dir, 'socket'), port)
        _cleanup(test, self.destroy)
        self.start()

    def _script(self, *args):
        r = subprocess.run([os.path.join(SRC, 'contrib', 'pg-private'), *args],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f'pg-private {" ".join(args)} failed: {r.stderr.strip()}')

    def start(self):
        self._script('start', self.dir, self.port)

    def stop(self):
        self._script('stop', self.dir)

    def destroy(self):
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


# --- config and the binary -----------------------------------------------------------------

def write_config(path, sections):
    """Writes an INI file from {section: {key: value}}; a value None leaves the key out."""
    with open(path, 'w', encoding='utf-8') as f:
        for section, keys in sections.items():
            f.write(f'[{section}]\n')
            for k, v in keys.items():
                if v is not None:
                    f.write(f'{k} = {v}\n')
            f.write('\n')
    return path


def base_config(db, workdir, http_port=None, **overrides):
    """A valid config for DB with everything of the test's own under WORKDIR.

    OVERRIDES is {section: {key: value}} merged over the defaults (None removes a key)."""
    tag = secrets.token_hex(3)
    storage = os.path.join(workdir, 'storage')
    os.makedirs(storage, exist_ok=True)
    os.chmod(storage, 0o755)
    templates = os.path.join(SRC, 'templates')
    if not os.path.isdir(templates):
        templates = os.path.join(workdir, 'templates')
        os.makedirs(templates, exist_ok=True)
    # 10 VNC and 10 websocket ports of the test's own, in one of 400 blocks: two tests that
    # run side by side on one libvirtd rarely share a block (libvirt refuses a port another
    # domain of its holds: "Failed to reserve port").
    base = (int(tag, 16) % 400) * 20 + 20000
    cfg = {
        'http': {'listen': f'127.0.0.1:{http_port or free_port()}'},
        'database': {'url': db.conninfo if db else 'host=/nonexistent dbname=none'},
        'libvirt': {'uri': 'qemu:///system', 'name_prefix': f'vmbt{tag}-'},
        'storage': {'dir': storage},
        'console': {'listen': '127.0.0.1', 'vnc_ports': f'{base}-{base + 9}',
                    'ws_ports': f'{base + 10}-{base + 19}'},
        'templates': {'dir': templates},
        'log': {'level': 'info'},
    }
    for section, keys in overrides.items():
        cfg.setdefault(section, {}).update(keys)
    return cfg


def clean_env(extra=None):
    """The environment for vmbroker: ours without any VMBROKER_* variable, plus EXTRA."""
    env = {k: v for k, v in os.environ.items() if not k.startswith('VMBROKER_')}
    env.update(extra or {})
    return env


def serve_args():
    """`serve` and, as root (CI, these machines), --allow-root: production runs as the
    vmbroker user (test_production does), the other tests as whoever runs them."""
    return ['serve'] + (['--allow-root'] if os.geteuid() == 0 else [])


def run(args, config=None, env=None, input=None, timeout=WAIT_S):
    """Runs vmbroker [--config CONFIG] ARGS to the end; returns CompletedProcess (text).
    A `serve` without other arguments gets serve_args()."""
    args = serve_args() if list(args) == ['serve'] else list(args)
    cmd = [VMBROKER] + (['--config', config] if config else []) + args
    return subprocess.run(cmd, input=input, capture_output=True, text=True,
                          env=clean_env(env), timeout=timeout,
                          stdin=None if input is not None else subprocess.DEVNULL)


def remove_pools(prefix):
    """Removes the storage pools `serve` defines for PREFIX (their folders are the test's)."""
    if not prefix:
        return
    for kind in ('isos', 'base', 'disks'):
        for action in ('pool-destroy', 'pool-undefine'):
            subprocess.run(['virsh', '-q', '-c', 'qemu:///system', action, prefix + kind],
                           capture_output=True, timeout=60)


# Text that must never reach a client in a problem's title or detail: libvirt's and
# PostgreSQL's own words, libvirt object names, host paths (README: they stay in the log).
INTERNALS = re.compile(
    r"libvirt|virsh|virDomain|virStorage|storage pool|storage volume|domain '|"
    r"internal error|qemu-img|SQLSTATE|database \[|syntax error|violates|duplicate key|"
    r"relation \"|(?<![\w/.-])/(?:var|tmp|etc|usr|home|run|srv|work|root|proc|dev|opt)/",
    re.IGNORECASE)


def check_problem(method, path, hdrs, data):
    """Fails the test when an error body tells a client what only the log may say."""
    if not hdrs.get('content-type', '').startswith('application/problem+json'):
        return
    if path.split('?')[0] == '/readyz':
        return  # readiness names the dependency that is down ("libvirt unavailable") by design
    try:
        problem = json.loads(data)
    except ValueError:
        raise AssertionError(f'{method} {path}: a problem+json body that is not JSON: {data!r}')
    for key in ('title', 'detail'):
        found = INTERNALS.search(str(problem.get(key, '')))
        if found:
            raise AssertionError(f'{method} {path} answered {problem.get("status")} with '
                                 f'internals in its {key} ({found.group(0)!r}): {problem}')


class Broker:
    """A running `vmbroker serve`; stopped (and reaped) when the test finishes. Every
    problem+json it answers is checked for internals (check_problem)."""

    def __init__(self, test, config_sections, workdir, env=None, wait=True):
        self.workdir = workdir
        self.sections = config_sections
        self.config = write_config(os.path.join(workdir, 'serve.ini'), config_sections)
        self.host, port = config_sections['http']['listen'].rsplit(':', 1)
        self.port = int(port)
        self.log_path = os.path.join(workdir, f'serve-{self.port}.log')
        self._log = open(self.log_path, 'w+b')
        self.proc = subprocess.Popen([VMBROKER, '--config', self.config] + serve_args(),
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=clean_env(env))
        _cleanup(test, self.kill)
        if wait:
            self.wait_healthy()

    def log(self):
        with open(self.log_path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def wait_healthy(self):
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f'vmbroker serve exited with {self.proc.returncode}:\n'
                                     + self.log())
            try:
                status, _, _ = self.request('GET', '/healthz', timeout=2)
                # The server answers a moment before `serve` logs where it listens: started
                # means both, so a test reads a whole start-up log.
                if status == 200 and ' listening on http' in self.log():
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError('vmbroker serve did not answer /healthz:\n' + self.log())

    def request(self, method, path, body=None, headers=None, timeout=120):
        """Returns (status, headers as a lower-cased dict, body bytes)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                headers = {'Content-Type': 'application/json', **(headers or {})}
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            check_problem(method, path, hdrs, data)
            return r.status, hdrs, data
        finally:
            conn.close()

    def raw_request(self, method, path, body, headers, timeout=120):
        """Like request, but over a plain socket that keeps reading when the server answers
        before the whole body is sent (413) and closes: returns (status, headers, body)."""
        head = f'{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n'
        head += f'Content-Length: {len(body)}\r\nConnection: close\r\n'
        head += ''.join(f'{k}: {v}\r\n' for k, v in headers.items()) + '\r\n'
        with socket.create_connection((self.host, self.port), timeout=timeout) as s:
            s.sendall(head.encode())
            try:
                s.sendall(body)
            except (BrokenPipeError, ConnectionResetError):
                pass
            data = b''
            try:
                while chunk := s.recv(65536):
                    data += chunk
            except ConnectionResetError:
                pass
        head, _, rest = data.partition(b'\r\n\r\n')
        lines = head.decode('latin-1').split('\r\n')
        hdrs = {k.strip().lower(): v.strip() for k, _, v in
                (line.partition(':') for line in lines[1:])}
        check_problem(method, path, hdrs, rest)
        return int(lines[0].split()[1]), hdrs, rest

    def get_json(self, path, headers=None):
        status, hdrs, data = self.request('GET', path, headers=headers)
        return status, hdrs, json.loads(data) if data else None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=WAIT_S):
        return self.proc.wait(timeout=timeout)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        self.print_warnings()
        remove_pools(self.sections.get('libvirt', {}).get('name_prefix'))

    def print_warnings(self):
        """The log's last warnings and errors on stderr, which meson shows for a test that
        failed: the cause the problem+json keeps private is there."""
        lines = [l for l in self.log().splitlines()
                 if re.match(r'\S+ (warning|error|critical) ', l)]
        if lines:
            print(f'--- vmbroker on port {self.port}: its last warnings ---', file=sys.stderr)
            for line in lines[-30:]:
                print(line, file=sys.stderr)


# --- test case base ------------------------------------------------------------------------

def _cleanup(test, fn):
    if test is not None:
        test.addCleanup(fn)
    else:
        _atexit_actions.append(fn)


class TestCase(unittest.TestCase):
    """A test case with a work folder and a fresh migrated-or-empty database per test."""

    def setUp(self):
        self.workdir = mkdtemp('vmbt-')
        self.addCleanup(shutil.rmtree, self.workdir, True)
        self.cluster = Cluster.of_run()
        self.db = self.cluster.create_database(self, self.id().rsplit('.', 1)[-1])

    def config(self, db=None, name='vmbroker.ini', **overrides):
        """Writes a valid config (for DB, default self.db) with OVERRIDES; returns its path."""
        sections = base_config(db or self.db, self.workdir, **overrides)
        return write_config(os.path.join(self.workdir, name), sections)

    def vmb(self, *args, config=None, env=None, input=None):
        return run(args, config=config or self.config(), env=env, input=input)

    def migrate(self, config=None):
        r = self.vmb('migrate', config=config)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def serve(self, db=None, env=None, wait=True, **overrides):
        return Broker(self, base_config(db or self.db, self.workdir, **overrides),
                      self.workdir, env=env, wait=wait)

    def api(self, method, path, body=None, auth=None, want=None):
        """METHOD PATH on self.broker with the AUTH headers; checks the status is WANT when
        given; returns the JSON body (None when empty)."""
        status, _, data = self.broker.request(method, path, body, headers=auth)
        if want is not None:
            self.assertEqual(status, want, data)
        return json.loads(data) if data else None

    def wait_for(self, what, fn, deadline_s=WAIT_S):
        """FN's first true answer, asked every 0.3 s; fails after DEADLINE_S."""
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            got = fn()
            if got:
                return got
            time.sleep(0.3)
        self.fail(f'timed out waiting for {what}')

    def bearer_user(self, name, config, role='user', password=None):
        """Adds user NAME (with PASSWORD when given) and a token of theirs; returns the
        Authorization header that carries it."""
        args = ['user', 'add', name, '--role', role]
        if password:
            args.append('--password-stdin')
        r = self.vmb(*args, input=password + '\n' if password else None, config=config)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.vmb('token', 'create', name, config=config)
        self.assertEqual(r.returncode, 0, r.stderr)
        return {'Authorization': 'Bearer ' + r.stdout.strip()}

    def assertFailsWithOneLine(self, r, *needles, code=1):
        """R failed with exit CODE and one stderr line `vmbroker: ...` containing NEEDLES."""
        lines = one_line(r.stderr)
        self.assertEqual(r.returncode, code, f'exit {r.returncode}, stderr: {r.stderr!r}')
        self.assertEqual(len(lines), 1, f'expected one stderr line, got: {r.stderr!r}')
        self.assertTrue(lines[0].startswith('vmbroker: '), lines[0])
        for n in needles:
            self.assertIn(n, lines[0])
        return lines[0]


def migration_versions():
    """The versions of the migration files in the source tree, in order."""
    d = os.path.join(SRC, 'migrations')
    return sorted(int(m.group(1)) for f in os.listdir(d)
                  if (m := re.match(r'^(\d+)_.*\.sql$', f)))


def main():
    unittest.main(verbosity=2)
