#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# bench/ops: a storm of operations. 16 users each run 4 create/delete cycles of the memtest
# template at once (POST /api/v1/vms until the 201, which comes once the guest runs, then
# DELETE until the 204), against the same storm done with `virsh create` / `virsh destroy`
# from 16 threads (the XML of a VM vmbroker made, renamed and with ports of its own per
# thread). Meanwhile an admin lists the VMs (GET /api/v1/vms) in a loop: its p99 during the
# storm is the figure "no request waits on another" stands on (target <= 20 ms).
#
# Run by hand, never by CI (needs root, libvirtd with qemu:///system and memtest86+):
#   ninja -C build && sudo python3 bench/ops.py [users, default 16] [cycles, default 4]
import json
import os
import re
import sys
import threading
import time

import benchlib
from benchlib import virsh


def main():
    n_users = int(sys.argv[1]) if len(sys.argv) > 1 else 16
    cycles = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    env = benchlib.Env('ops', ports=50, libvirt={'stop_timeout_s': '2'},
                       operations={'workers': str(n_users), 'max_per_user': '4'},
                       limits={'max_running_per_user': '1'})
    tokens = [env.user(f'u{u}') for u in range(n_users)]
    admin = {'Authorization': 'Bearer ' + env.user('bench-admin', 'admin')}

    def api(method, path, token, body=None, want=200):
        status, _, data = env.broker.request(method, path, body,
                                             headers={'Authorization': f'Bearer {token}'},
                                             timeout=600)
        if status != want:
            raise RuntimeError(f'{method} {path}: {status} {data[:200]!r}')
        return json.loads(data) if data else None

    def api_cycle(u, i):
        t0 = time.monotonic()
        vm = api('POST', '/api/v1/vms', tokens[u], {'template': 'memtest'}, 201)['vm']
        dt = (time.monotonic() - t0) * 1000
        api('DELETE', f'/api/v1/vms/{vm["id"]}', tokens[u], want=204)
        return dt

    # The reference XML, from a VM of vmbroker's (untimed).
    vm = api('POST', '/api/v1/vms', tokens[0], {'template': 'memtest'}, 201)['vm']
    xml = virsh('dumpxml', '--inactive', vm['name'], check=True).stdout
    api('DELETE', f'/api/v1/vms/{vm["id"]}', tokens[0], want=204)
    xml = re.sub(r'\s*<uuid>[^<]*</uuid>', '', xml, count=1)
    ref_files = []
    for u in range(n_users):
        x = re.sub(r'<name>[^<]*</name>', f'<name>{env.prefix}ref{u}</name>', xml, count=1)
        x = re.sub(r"(<graphics[^>]*\bport=')\d+'", rf"\g<1>{env.port_base + 50 + u}'", x)
        x = re.sub(r"(<graphics[^>]*\bwebsocket=')\d+'", rf"\g<1>{env.port_base + 150 + u}'", x)
        path = os.path.join(env.workdir, f'ref{u}.xml')
        with open(path, 'w') as f:
            f.write(x)
        ref_files.append(path)

    def virsh_cycle(u, i):
        t0 = time.monotonic()
        virsh('create', ref_files[u], check=True)
        dt = (time.monotonic() - t0) * 1000
        virsh('destroy', f'{env.prefix}ref{u}', check=True)
        return dt

    # The bystander: an admin listing every VM during the vmbroker storm.
    lists, done = [], threading.Event()

    def bystander():
        while not done.is_set():
            t0 = time.monotonic()
            status, _, _ = env.broker.request('GET', '/api/v1/vms', headers=admin)
            if status == 200:
                lists.append((time.monotonic() - t0) * 1000)
            time.sleep(0.02)

    loads = [benchlib.loadavg()]
    watcher = threading.Thread(target=bystander)
    watcher.start()
    ours, ours_wall = benchlib.storm(n_users, cycles, api_cycle, 'bench/ops')
    done.set()
    watcher.join()
    loads.append(benchlib.loadavg())
    theirs, theirs_wall = benchlib.storm(n_users, cycles, virsh_cycle, 'bench/ops')
    loads.append(benchlib.loadavg())

    n = n_users * cycles
    rows = [['vmbroker POST until 201, DELETE', f'{benchlib.pct(ours, 50):.0f}', f'{benchlib.pct(ours, 99):.0f}',
             f'{n / ours_wall * 60:.1f}'],
            ['virsh create, destroy', f'{benchlib.pct(theirs, 50):.0f}', f'{benchlib.pct(theirs, 99):.0f}',
             f'{n / theirs_wall * 60:.1f}']]
    p99_list = benchlib.pct(lists, 99)
    benchlib.table(
        f'bench/ops: {n_users} users x {cycles} create/delete cycles at once, memtest, '
        f'qemu:///system, {benchlib.cpus()} CPUs, 1-min load avg '
        f'{" -> ".join(l.split()[0] for l in loads)}',
        ['path', 'to running p50 ms', 'p99 ms', 'cycles/min'], rows,
        [f'ratio p50 vmbroker : virsh = {benchlib.pct(ours, 50) / benchlib.pct(theirs, 50):.3f}, '
         f'throughput vmbroker : virsh = {theirs_wall / ours_wall:.3f}',
         f'GET /api/v1/vms during the vmbroker storm: {len(lists)} requests, '
         f'p50 {benchlib.pct(lists, 50):.1f} ms, p99 {p99_list:.1f} ms '
         f'(target <= 20 ms: {"met" if p99_list <= 20 else "MISSED"})'])


if __name__ == '__main__':
    main()
