# SPDX-License-Identifier: LGPL-2.1-or-later
# Shared parts of the fault tests: a broker on real QEMU (memtest guests, some with an
# ephemeral disk), virsh, restarts of vmbroker and libvirtd, and the check every test ends
# with: the VM rows, `virsh list --all`, `virsh vol-list` and the lease table agree.
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                'integration'))
import harness  # noqa: E402

PASSWORD = 'a good password'
URI = 'qemu:///system'


def virsh(*args, check=False):
    r = subprocess.run(['virsh', '-q', '-c', URI, *args], capture_output=True, text=True,
                       timeout=120)
    if check and r.returncode != 0:
        raise AssertionError(f'virsh {" ".join(args)}: {r.stderr.strip()}')
    return r


def libvirtd_answers():
    return subprocess.run(['virsh', '-q', '-c', URI, 'version'], capture_output=True,
                          timeout=30).returncode == 0


def wait_libvirtd(deadline_s=60):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if libvirtd_answers():
            return
        time.sleep(0.2)
    raise AssertionError('libvirtd does not answer again')


def stop_libvirtd():
    """Kills libvirtd (guests keep running: QEMU is not its child in any way that matters)."""
    subprocess.run(['pkill', '-x', 'libvirtd'], timeout=30)
    end = time.monotonic() + 30
    while time.monotonic() < end and subprocess.run(['pgrep', '-x', 'libvirtd'],
                                                     capture_output=True).returncode == 0:
        time.sleep(0.1)


def start_libvirtd():
    subprocess.run(['libvirtd', '-d'], timeout=60)
    wait_libvirtd()


def ensure_libvirtd():
    """Whatever a test did, libvirtd answers again afterwards (others share it)."""
    if not libvirtd_answers():
        subprocess.run([os.path.join(harness.SRC, 'contrib', 'libvirtd-ensure')], timeout=120)


class FaultCase(harness.TestCase):
    """A test with its own templates folder, prefix, database and broker."""

    def setUp(self):
        super().setUp()
        self.templates = os.path.join(self.workdir, 'templates')
        os.makedirs(self.templates)
        with open(os.path.join(harness.SRC, 'templates', 'memtest.json')) as f:
            t = json.load(f)
        with open(os.path.join(self.templates, 'memtest.json'), 'w') as f:
            json.dump(t, f)
        # memtest with an ephemeral (blank, sparse) disk: volumes to leak or not.
        t.update(disk_gib=1, boot=['cdrom', 'hd'])
        with open(os.path.join(self.templates, 'memtest-disk.json'), 'w') as f:
            json.dump(t, f)
        self.broker = None
        self.sections = None
        self.addCleanup(ensure_libvirtd)

    # --- the broker ---

    def start(self, db=None, env=None, **overrides):
        """Starts vmbroker serve (migrating first); the same settings on every restart."""
        if self.sections is None:
            overrides.setdefault('templates', {})['dir'] = self.templates
            lv = overrides.setdefault('libvirt', {})
            lv.setdefault('stop_timeout_s', '2')
            overrides.setdefault('console', {}).setdefault('port_cooldown_s', '0')
            self.sections = harness.base_config(db or self.db, self.workdir, **overrides)
            self.prefix = self.sections['libvirt']['name_prefix']
            self.addCleanup(self.remove_everything)
            path = harness.write_config(os.path.join(self.workdir, 'migrate.ini'),
                                        self.sections)
            self.migrate(path)
        self.broker = harness.Broker(self, self.sections, self.workdir, env=env)
        return self.broker

    def stop_broker(self, how=signal.SIGTERM):
        """Sends HOW and waits for the broker to exit; a hang fails with its threads' stacks."""
        self.broker.proc.send_signal(how)
        try:
            return self.broker.proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            stacks = subprocess.run(['gdb', '-p', str(self.broker.proc.pid), '-batch', '-ex',
                                     'thread apply all bt'], capture_output=True, text=True,
                                    timeout=120).stdout if shutil.which('gdb') else ''
            self.fail(f'vmbroker did not exit after {how.name}:\n{stacks}\n'
                      + self.broker.log()[-4000:])

    def restart(self, env=None, how=signal.SIGKILL):
        """Kills the broker (SIGKILL unless told) and starts it again."""
        self.stop_broker(how)
        return self.start(env=env)

    def start_crashing(self, point):
        """A broker that SIGKILLs itself at crash point POINT (VMB_CRASH_AT)."""
        return self.start(env={'VMB_CRASH_AT': point})

    def remove_everything(self):
        ensure_libvirtd()
        for name in virsh('list', '--all', '--name').stdout.split():
            if name.startswith(self.prefix):
                virsh('destroy', name)
                virsh('undefine', name, '--remove-all-storage', '--nvram')
        for pool in virsh('pool-list', '--all', '--name').stdout.split():
            if pool.startswith(self.prefix):
                virsh('pool-destroy', pool)
                virsh('pool-undefine', pool)

    def user(self, name, role='admin'):
        cfg = self.broker.config
        r = self.vmb('user', 'add', name, '--role', role, '--password-stdin',
                     input=PASSWORD + '\n', config=cfg)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.vmb('token', 'create', name, config=cfg)
        self.assertEqual(r.returncode, 0, r.stderr)
        return {'Authorization': 'Bearer ' + r.stdout.strip()}

    # --- the API ---

    def api(self, method, path, body=None, auth=None, timeout=120):
        status, _, data = self.broker.request(method, path, body, headers=auth,
                                              timeout=timeout)
        try:
            return status, json.loads(data) if data else None
        except ValueError:
            return status, data

    def create(self, auth, template='memtest', **body):
        status, made = self.api('POST', '/api/v1/vms', {'template': template, **body}, auth)
        self.assertEqual(status, 201, made)
        return made['vm']

    def get_vm(self, auth, vm_id):
        status, vm = self.api('GET', f'/api/v1/vms/{vm_id}', auth=auth)
        self.assertEqual(status, 200, vm)
        return vm

    def wait_for(self, what, fn, deadline_s=harness.WAIT_S):
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            value = fn()
            if value:
                return value
            time.sleep(0.1)
        self.fail(f'timed out waiting for {what}')

    def wait_operations_idle(self, deadline_s=harness.WAIT_S):
        """Waits until no operation is queued or running: a broker (re)started after a crash
        finishes or undoes what it left in the background."""
        self.wait_for('operations to end', lambda: self.db.scalar(
            "SELECT count(*) FROM operations WHERE state IN ('queued', 'running')") == '0',
            deadline_s)

    def wait_state(self, auth, vm_id, state):
        return self.wait_for(f'VM {vm_id} {state}', lambda: (
            lambda v: v if v['state'] == state else None)(self.get_vm(auth, vm_id)))

    def metric(self, name):
        """The sum of every series of metric NAME on /metrics (0 when absent)."""
        _, _, text = self.broker.request('GET', '/metrics')
        total = 0.0
        for line in text.decode().splitlines():
            if line.startswith(name + ' ') or line.startswith(name + '{'):
                total += float(line.rsplit(' ', 1)[1])
        return total

    # --- libvirt ---

    def domstate(self, name):
        r = virsh('domstate', name)
        return r.stdout.strip() if r.returncode == 0 else None

    def qemu_pid(self, name):
        with open(f'/run/libvirt/qemu/{name}.pid') as f:
            return int(f.read().strip())

    # --- the check every test ends with ---

    def rows(self):
        out = {}
        for r in self.db.psql(
                "SELECT id, name, state, coalesce(vnc_port, 0), coalesce(ws_port, 0),"
                " array_to_string(disk_volumes, ','), coalesce(state_reason, '')"
                f" FROM vms WHERE name LIKE '{self.prefix}%'"):
            out[r[1]] = {'id': r[0], 'state': r[2], 'ports': {int(r[3]), int(r[4])} - {0},
                         'volumes': set(filter(None, r[5].split(','))), 'reason': r[6]}
        return out

    def assert_agree(self, allow_error=False):
        """The rows of this prefix, libvirt's domains and volumes, and the leases agree."""
        ensure_libvirtd()
        rows = self.rows()
        all_doms = {n for n in virsh('list', '--all', '--name').stdout.split()
                    if n.startswith(self.prefix)}
        running = {n for n in virsh('list', '--name').stdout.split()
                   if n.startswith(self.prefix)}
        pool = self.prefix + 'disks'
        vols = {line.split()[0] for line in virsh('vol-list', pool).stdout.splitlines()
                if line.strip()}
        by_id = {r['id']: r for r in rows.values()}
        leases = {}
        for vm_id, port in self.db.psql(
                'SELECT vm_id, port FROM port_leases WHERE vm_id IS NOT NULL'):
            leases.setdefault(vm_id, set()).add(int(port))
        problems = []
        for name in sorted(all_doms - set(rows)):
            problems.append(f'domain {name} has no row')
        for name, r in sorted(rows.items()):
            if r['state'] in ('creating', 'stopping'):
                problems.append(f'{name} is still {r["state"]}')
            if r['state'] in ('running', 'paused') and name not in running:
                problems.append(f'{name} is {r["state"]} in PostgreSQL, not in libvirt')
            if r['state'] == 'stopped' and name in running:
                problems.append(f'{name} is stopped in PostgreSQL, running in libvirt')
            if r['state'] == 'error' and not allow_error:
                problems.append(f'{name} is in error: {r["reason"]}')
            if leases.get(r['id'], set()) != r['ports']:
                problems.append(f'{name}: ports {r["ports"]} but leases '
                                f'{leases.get(r["id"], set())}')
        for vm_id in sorted(set(leases) - set(by_id)):
            problems.append(f'leases {leases[vm_id]} held by VM {vm_id} without a row')
        owned = set().union(*[r['volumes'] for r in rows.values()]) if rows else set()
        for v in sorted(vols - owned):
            problems.append(f'volume {v} belongs to no VM')
        self.assertEqual(problems, [], f'rows: {rows}\ndomains: {all_doms}\n'
                         f'running: {running}\nvolumes: {vols}\nleases: {leases}')
        return rows


def main():
    harness.main()
