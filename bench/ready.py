#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# bench/ready: time to desktop. Console-ready is the time from a request to the guest's first
# screen that is not one flat colour. vmbroker's figure is from the moment the client sends
# POST /api/v1/vms {template: memtest} to the VM's console_ready_at (the broker's own record,
# microseconds, read from PostgreSQL); the reference is the same XML started with
# `virsh create` and `virsh screenshot` taken back to back until the screen (decoded here)
# has a second colour. Then a class burst: B users create at once, each until its console is
# ready, against B `virsh create` at once with the same screenshot loop.
#
# The pool rows do the same with memtest's warm pool full (PUT /api/v1/pools/memtest): one
# take at a time, the pool refilled between takes, then the burst with a pool of B. The
# restore rows use `memtest-saved` (memtest with "memory_image": true): its pool's guests
# wait saved to disk, and each create restores one; taken one at a time from a pool of
# `rounds`, then the burst from a saved pool of B. With the Debian installer fixture built
# (tests/fixtures/make-installer-iso), its template boots cold once and is restored from a
# saved pool of 2, each timed to its language screen by `virsh screenshot` (decoded here, a
# few seconds a look; the time is the screenshot's): the installer's ratio restore : cold.
# The idle rows are the pool's burst again with guests that idle once booted, as a desktop
# nobody uses yet does (tests/fixtures/make-idle-iso), where memtest keeps every CPU busy:
# the pool of B is filled, the host left to go quiet, then B users take one each at once.
# PATHS (comma-separated: cold, pool, idle, restore, installer; default all) picks the rows; the
# one-at-a-time cold rows, vmbroker's and virsh's, are the reference and always run. Run by
# hand, never by CI (root, libvirtd with qemu:///system, memtest86+):
#   ninja -C build && sudo python3 bench/ready.py [rounds, default 10] [burst, default 30]
#       [paths, default cold,pool,idle,restore,installer]
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time

import benchlib
from benchlib import harness, virsh


def white_share(path):
    """The share of a screenshot's pixels that are near-white."""
    width, height, rgb = harness.png_rgb(path)
    white = sum(1 for i in range(0, len(rgb), 3) if min(rgb[i:i + 3]) >= 0xee)
    return white / (width * height)


INSTALLER = glob.glob(os.path.join(os.path.dirname(os.path.dirname(harness.VMBROKER)),
                                   'fixtures', 'debian-installer-gtk-*.iso'))


def templates_dir():
    """The shipped templates, memtest-saved, and the installer's two when its ISO is built."""
    d = harness.mkdtemp('vmbench-templates-')
    harness._cleanup(None, lambda: shutil.rmtree(d, ignore_errors=True))
    shutil.copytree(os.path.join(harness.SRC, 'templates'), d, dirs_exist_ok=True)
    with open(os.path.join(d, 'memtest.json')) as f:
        memtest = json.load(f)

    def write(name, t):
        with open(os.path.join(d, f'{name}.json'), 'w') as f:
            json.dump(t, f)
    write('memtest-saved', {**memtest, 'memory_image': True, 'memory_image_after_s': 1})
    idle = os.path.join(d, 'idle.iso')
    subprocess.run([os.path.join(harness.SRC, 'tests', 'fixtures', 'make-idle-iso'), idle],
                   check=True, stdout=subprocess.DEVNULL)
    write('idle', {**memtest, 'iso_path': idle, 'memory_mib': 128,
                   'description': 'a guest that idles once booted (test fixture)'})
    if INSTALLER:
        installer = {**memtest, 'iso_path': INSTALLER[0], 'memory_mib': 1024,
                     'description': 'the Debian installer (test fixture)'}
        write('installer', installer)
        # Saved at its language screen: under TCG on a busy host it comes up to 4 minutes
        # after the first screen (the firmware's).
        write('installer-saved', {**installer, 'memory_image': True,
                                  'memory_image_after_s': 400})
    return d


class Bench:
    def __init__(self, burst):
        # The broker's ports, then the reference domains' (base + 100 + ...: ws), in 100.
        self.ports = max(50, 2 * burst + 10)
        self.env = benchlib.Env('ready', ports=self.ports,
                                libvirt={'stop_timeout_s': '2'},
                                operations={'workers': str(burst)},
                                limits={'max_running_per_user': '1'},
                                templates={'dir': templates_dir()})
        self.tokens = [self.env.user(f'u{u}') for u in range(burst)]
        self.admin = self.env.user('boss', role='admin')
        self.accel = None

    def api(self, method, path, token, body=None, want=200):
        status, _, data = self.env.broker.request(method, path, body,
                                                  headers={'Authorization': f'Bearer {token}'},
                                                  timeout=600)
        if status != want:
            raise RuntimeError(f'{method} {path}: {status} {data[:200]!r}')
        return json.loads(data) if data else None

    def create(self, u, template):
        """POST /api/v1/vms for user U, answered at once (Prefer: respond-async): 30 cold
        boots at once on a small host take longer than the 60 s a create's answer waits for;
        the figures are the VM's own times either way."""
        vm = self.env.broker.request('POST', '/api/v1/vms', {'template': template}, headers={
            'Authorization': f'Bearer {self.tokens[u]}', 'Prefer': 'respond-async'},
            timeout=600)
        if vm[0] not in (201, 202):
            raise RuntimeError(f'POST /api/v1/vms: {vm[0]} {vm[2][:200]!r}')
        return json.loads(vm[2])['vm']

    def ours(self, u, template='memtest'):
        """One create until console-ready, then its delete; the seconds to ready."""
        t0 = time.time()
        vm = self.create(u, template)
        deadline = time.monotonic() + 600
        while not self.api('GET', f'/api/v1/vms/{vm["id"]}', self.tokens[u])['console_ready_at']:
            if time.monotonic() > deadline:
                raise RuntimeError(f'VM {vm["id"]}: no console-ready in 600 s')
            time.sleep(0.05)
        ready = float(self.env.db.scalar(
            f"SELECT extract(epoch FROM console_ready_at) FROM vms WHERE id = '{vm['id']}'"))
        self.accel = self.env.db.scalar(f"SELECT accelerator FROM vms WHERE id = '{vm['id']}'")
        self.delete(u, vm['id'])
        return ready - t0

    def desktop(self, u, template):
        """One create until the guest shows the installer's language screen (most of the
        screen near-white: not the firmware's, GRUB's or the kernel's text, nor the beige
        splash), by `virsh screenshot`; the seconds from the request to the screenshot that
        showed it, then its delete."""
        t0 = time.time()
        vm = self.create(u, template)
        shot = os.path.join(self.env.workdir, f'desktop{u}.png')
        while True:
            ok = virsh('screenshot', vm['name'], shot).returncode == 0
            taken = time.time()
            if ok and white_share(shot) > 0.35:
                break
            if taken - t0 > 900:
                raise RuntimeError(f'{vm["name"]}: no language screen in 900 s')
            time.sleep(0.2)
        self.delete(u, vm['id'])
        return taken - t0

    def delete(self, u, vm_id):
        """Queues the delete (its end is not what is measured)."""
        status, _, data = self.env.broker.request('DELETE', f'/api/v1/vms/{vm_id}', headers={
            'Authorization': f'Bearer {self.tokens[u]}', 'Prefer': 'respond-async'},
            timeout=600)
        if status not in (202, 204):
            raise RuntimeError(f'DELETE /api/v1/vms/{vm_id}: {status} {data[:200]!r}')

    def settle(self):
        """Waits until the users' VMs are gone, so that a phase starts on a quiet host."""
        deadline = time.monotonic() + 1800
        while self.env.db.scalar("SELECT count(*) FROM vms v JOIN users u ON u.id = v.owner_id"
                                 " WHERE u.username LIKE 'u%'") != '0':
            if time.monotonic() > deadline:
                raise RuntimeError('the benchmark VMs were not deleted in 1800 s')
            time.sleep(0.5)

    def fill_pool(self, size, template='memtest', count='ready'):
        """Sets TEMPLATE's pool to SIZE and waits until all of it is ready (COUNT: or
        saved)."""
        self.api('PUT', f'/api/v1/pools/{template}', self.admin, {'size': size})
        deadline = time.monotonic() + 1800
        while True:
            pools = {p['template']: p for p in self.api('GET', '/api/v1/pools', self.admin)}
            if pools[template][count] >= size:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f'the pool did not fill: {pools}')
            time.sleep(0.5)

    def reference_xml(self):
        """The XML of a VM vmbroker made, one per slot, with a name and ports of its own."""
        vm = self.api('POST', '/api/v1/vms', self.tokens[0], {'template': 'memtest'}, 201)['vm']
        xml = virsh('dumpxml', '--inactive', vm['name'], check=True).stdout
        self.delete(0, vm['id'])
        self.settle()
        xml = re.sub(r'\s*<uuid>[^<]*</uuid>', '', xml, count=1)
        self.ref = []
        for u in range(len(self.tokens)):
            x = re.sub(r'<name>[^<]*</name>', f'<name>{self.env.prefix}ref{u}</name>', xml, count=1)
            vnc = self.env.port_base + self.ports + u
            x = re.sub(r"(<graphics[^>]*\bport=')\d+'", rf"\g<1>{vnc}'", x)
            x = re.sub(r"(<graphics[^>]*\bwebsocket=')\d+'", rf"\g<1>{vnc + 100}'", x)
            path = os.path.join(self.env.workdir, f'ref{u}.xml')
            with open(path, 'w') as f:
                f.write(x)
            self.ref.append(path)

    def theirs(self, u):
        name = f'{self.env.prefix}ref{u}'
        shot = os.path.join(self.env.workdir, f'ref{u}.png')
        t0 = time.time()
        virsh('create', self.ref[u], check=True)
        while True:
            # The time of the screenshot, not of its decoding here, which is slow.
            ok = virsh('screenshot', name, shot).returncode == 0
            taken = time.time()
            if ok and len(harness.png_colours(shot)) > 1:
                ready = taken
                break
            if time.time() - t0 > 600:
                raise RuntimeError(f'{name}: no non-blank screen in 600 s')
        virsh('destroy', name, check=True)
        return ready - t0


def qemu_cpus(seconds=2):
    """The CPUs that QEMU processes (the guests) kept busy over SECONDS, on average."""
    def ticks():
        total = 0
        for stat in glob.glob('/proc/[0-9]*/stat'):
            try:
                with open(stat) as f:
                    fields = f.read().rsplit(')', 1)
            except OSError:
                continue            # gone meanwhile
            if fields[0].endswith('(qemu-system-x86'):
                total += sum(int(x) for x in fields[1].split()[11:13])    # utime, stime
        return total
    t0 = ticks()
    time.sleep(seconds)
    return (ticks() - t0) / os.sysconf('SC_CLK_TCK') / seconds


def idle_rows(b, n, loads):
    """The burst of N from a pool of N guests that idle once booted, on a quiet host."""
    b.fill_pool(n, 'idle')
    deadline = time.monotonic() + 900
    while qemu_cpus() > 0.02 * n:   # the pool's kernels finish booting
        if time.monotonic() > deadline:
            raise RuntimeError('the host did not go quiet in 900 s')
    loads.append(benchlib.loadavg())
    burst, wall = benchlib.storm(n, 1, lambda u, i: b.ours(u, 'idle'), 'bench/ready')
    b.fill_pool(0, 'idle')
    b.settle()
    return burst, wall


def restore_rows(b, rounds, n, loads):
    """memtest restored one at a time from a saved pool of ROUNDS, then a burst of N."""
    b.fill_pool(rounds, 'memtest-saved', 'saved')
    one = []
    for _ in range(rounds):
        one.append(b.ours(0, 'memtest-saved'))
        b.settle()
    b.fill_pool(n, 'memtest-saved', 'saved')
    loads.append(benchlib.loadavg())
    burst, wall = benchlib.storm(n, 1, lambda u, i: b.ours(u, 'memtest-saved'), 'bench/ready')
    b.fill_pool(0, 'memtest-saved')
    b.settle()
    return one, burst, wall


def installer_rows(b):
    """To the installer's language screen: once cold, then twice restored from a saved pool
    of 2 (whose images were saved at that screen)."""
    cold = [b.desktop(0, 'installer')]
    b.settle()
    b.fill_pool(2, 'installer-saved', 'saved')
    restored = []
    for _ in range(2):          # the pool refills behind the takes, as it would in class
        restored.append(b.desktop(0, 'installer-saved'))
        b.settle()
    b.fill_pool(0, 'installer-saved')
    return cold, restored


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    paths = set((sys.argv[3] if len(sys.argv) > 3 else
                 'cold,pool,idle,restore,installer').split(','))
    b = Bench(n)
    b.reference_xml()
    loads = [benchlib.loadavg()]
    ours, theirs = [], []
    for _ in range(rounds):     # interleaved, one guest at a time
        ours.append(b.ours(0))
        b.settle()
        theirs.append(b.theirs(0))
    loads.append(benchlib.loadavg())
    rows = [row('cold: vmbroker create -> console_ready_at', ours),
            row('cold: virsh create + screenshot loop', theirs)]
    notes = [f'ratio p50 vmbroker : virsh = {ratio(ours, theirs):.3f} (cold, one at a time)']
    if 'cold' in paths:
        ours_b, ours_wall = benchlib.storm(n, 1, lambda u, i: b.ours(u), 'bench/ready')
        b.settle()
        loads.append(benchlib.loadavg())
        theirs_b, theirs_wall = benchlib.storm(n, 1, lambda u, i: b.theirs(u), 'bench/ready')
        loads.append(benchlib.loadavg())
        rows += [row(f'burst of {n} cold: vmbroker', ours_b, ours_wall),
                 row(f'burst of {n} cold: virsh', theirs_b, theirs_wall)]
        notes.append(f'ratio p50 vmbroker : virsh = {ratio(ours_b, theirs_b):.3f} (burst of '
                     f'{n}); all ready in {ours_wall:.1f} s cold')
    if 'pool' in paths:
        pool = []
        for _ in range(rounds):     # one take at a time, from a full pool of 2
            b.fill_pool(2)
            pool.append(b.ours(0))
            b.settle()
        b.fill_pool(n)
        loads.append(benchlib.loadavg())
        pool_b, pool_wall = benchlib.storm(n, 1, lambda u, i: b.ours(u), 'bench/ready')
        b.fill_pool(0)
        b.settle()
        loads.append(benchlib.loadavg())
        rows += [row('pool: vmbroker create -> console_ready_at', pool),
                 row(f'burst of {n} from a pool of {n}: vmbroker', pool_b, pool_wall)]
        notes.append(f'ratio p50 pool : cold virsh = {ratio(pool, theirs):.3f} (targets: pool '
                     f'p50 <= 300 ms, p99 <= 1 s); burst of {n} all ready in {pool_wall:.1f} s '
                     f'(target <= 20 s)')
    if 'idle' in paths:
        burst, wall = idle_rows(b, n, loads)
        loads.append(benchlib.loadavg())
        rows.append(row(f'burst of {n} from a pool of {n} idle guests', burst, wall))
        notes.append(f'burst of {n} from a pool of idle guests all ready in {wall:.1f} s '
                     f'(target <= 20 s)')
    if 'restore' in paths:
        one, burst, wall = restore_rows(b, rounds, n, loads)
        loads.append(benchlib.loadavg())
        rows += [row('restore: vmbroker create -> console_ready_at', one),
                 row(f'burst of {n} restored from a saved pool of {n}', burst, wall)]
        notes.append(f'ratio p50 restore : cold virsh = {ratio(one, theirs):.3f} (target: '
                     f'restore p50 <= 1.5 s); burst of {n} all ready in {wall:.1f} s')
    if 'installer' in paths and INSTALLER:
        cold, restored = installer_rows(b)
        loads.append(benchlib.loadavg())
        rows += [row('installer cold: create -> language screen (virsh screenshot)', cold),
                 row('installer restore: create -> language screen (virsh screenshot)',
                     restored)]
        notes.append(f'ratio p50 installer restore : installer cold = '
                     f'{ratio(restored, cold):.3f} (target <= 0.1)')
    benchlib.table(
        f'bench/ready: console-ready (memtest where a row names no other guest), accelerator '
        f'{b.accel}, {benchlib.cpus()} CPUs, '
        f'1-min load avg {" -> ".join(l.split()[0] for l in loads)}',
        ['path', 'n', 'p50 ms', 'p99 ms', 'all ready s'], rows, notes)


def row(label, xs, wall=None):
    return [label, len(xs), f'{benchlib.pct(xs, 50) * 1000:.0f}',
            f'{benchlib.pct(xs, 99) * 1000:.0f}', f'{wall:.1f}' if wall is not None else '-']


def ratio(xs, ys):
    return benchlib.pct(xs, 50) / benchlib.pct(ys, 50)


if __name__ == '__main__':
    main()
