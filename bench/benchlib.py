# SPDX-License-Identifier: LGPL-2.1-or-later
# Shared set-up for the Python benchmarks (bench/api.py, bench/upload.py, bench/spawn-api.py):
# a private PostgreSQL cluster in a temp dir, a migrated database, a `vmbroker serve` of the
# benchmark's own (free loopback port, unique libvirt name prefix, storage dir and port
# ranges), users and tokens through the CLI, and cleanup at exit (also on Ctrl-C/SIGTERM).
# Standard library only; it reuses tests/integration/harness.py. Measurements only: nothing
# here asserts on a time.
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(SRC, 'tests', 'integration'))
os.environ.setdefault('VMBROKER', os.path.join(SRC, 'build', 'broker', 'vmbroker'))
import harness  # noqa: E402

PASSWORD = 'a good bench password'


def _on_term(signum, frame):
    raise SystemExit(128 + signum)  # atexit cleanups then run


signal.signal(signal.SIGTERM, _on_term)


def loadavg():
    with open('/proc/loadavg') as f:
        return ' '.join(f.read().split()[:3])


def cpus():
    return os.cpu_count()


def median(xs):
    return statistics.median(xs)


def virsh(*args, check=False):
    r = subprocess.run(['virsh', '-q', '-c', 'qemu:///system', *args],
                       capture_output=True, text=True, timeout=120)
    if check and r.returncode != 0:
        raise RuntimeError(f'virsh {" ".join(args)}: {r.stderr.strip()}')
    return r


def pct(xs, p):
    """The P-th percentile of XS (nearest rank)."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def storm(n_users, cycles, one_cycle, label='bench'):
    """Runs one_cycle(user, i) n_users x cycles times, users in parallel; returns (what
    the calls returned, wall seconds). Exits naming the first errors when any call failed."""
    times, errors = [], []
    lock = threading.Lock()

    def user(u):
        for i in range(cycles):
            try:
                dt = one_cycle(u, i)
            except Exception as e:  # reported after the storm
                with lock:
                    errors.append(f'user {u} cycle {i}: {e}')
                return
            with lock:
                times.append(dt)

    t0 = time.monotonic()
    threads = [threading.Thread(target=user, args=(u,)) for u in range(n_users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    if errors:
        sys.exit(f'{label}: ' + '; '.join(errors[:5]))
    return times, wall


class Env:
    """Everything one benchmark needs, removed at exit in reverse order of creation."""

    def __init__(self, label, ports=50, **overrides):
        if not os.access(harness.VMBROKER, os.X_OK):
            sys.exit(f'{label}: {harness.VMBROKER} not found: build first (ninja -C build)')
        self.workdir = harness.mkdtemp(f'vmbench-{label}-')
        harness._cleanup(None, lambda: shutil.rmtree(self.workdir, ignore_errors=True))
        self.cluster = harness.PrivateCluster(None, port=harness.free_port())
        self.db = self.cluster.create_database(None, f'bench_{label}')
        cfg = harness.base_config(self.db, self.workdir, **overrides)
        # Port ranges of our own, wider than the tests' 10, inside the tests' 20000-27999 block
        # scheme but offset by 8000 so a concurrent test run cannot collide.
        base = 28000 + (int(cfg['libvirt']['name_prefix'][4:10], 16) % 20) * 200
        if 'vnc_ports' not in overrides.get('console', {}):
            cfg['console']['vnc_ports'] = f'{base}-{base + ports - 1}'
            cfg['console']['ws_ports'] = f'{base + 100}-{base + 100 + ports - 1}'
        cfg['libvirt']['name_prefix'] = cfg['libvirt']['name_prefix'].replace('vmbt', 'vmbench')
        self.port_base = base
        self.prefix = cfg['libvirt']['name_prefix']
        self.sections = cfg
        self.config = harness.write_config(os.path.join(self.workdir, 'vmbroker.ini'), cfg)
        r = harness.run(['migrate'], config=self.config)
        if r.returncode != 0:
            raise RuntimeError('migrate: ' + r.stderr)
        # Runs after the broker is stopped (cleanups run in reverse).
        harness._cleanup(None, self.remove_libvirt_objects)
        self.broker = harness.Broker(None, cfg, self.workdir)
        self.config = self.broker.config
        keep = os.environ.get('BENCH_KEEP_LOG')
        if keep:    # a copy of the broker's log, made before the workdir goes
            harness._cleanup(None, lambda: shutil.copy(self.broker.log_path, keep))

    @property
    def pid(self):
        return self.broker.proc.pid

    def url(self, path):
        return f'http://{self.broker.host}:{self.broker.port}{path}'

    def user(self, name, role='user'):
        """Adds a user with PASSWORD; returns a bearer token for it."""
        r = harness.run(['user', 'add', name, '--role', role, '--password-stdin'],
                        config=self.config, input=PASSWORD + '\n')
        if r.returncode != 0:
            raise RuntimeError('user add: ' + r.stderr)
        r = harness.run(['token', 'create', name], config=self.config)
        if r.returncode != 0:
            raise RuntimeError('token create: ' + r.stderr)
        return r.stdout.strip()

    def remove_libvirt_objects(self):
        harness.remove_domains(self.prefix)
        for kind in ('isos', 'base', 'disks'):
            if virsh('pool-info', self.prefix + kind).returncode == 0:
                virsh('pool-destroy', self.prefix + kind)
                virsh('pool-undefine', self.prefix + kind)


def table(title, header, rows, notes=()):
    """Prints one short table: HEADER and ROWS are lists of cells (first column left)."""
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    print(title)
    for r in [header] + rows:
        print('  '.join(str(c).ljust(widths[i]) if i == 0 else str(c).rjust(widths[i])
                        for i, c in enumerate(r)))
    for n in notes:
        print(n)
    sys.stdout.flush()
