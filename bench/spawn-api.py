#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# bench/spawn-api: the API path of bench/spawn. POST /api/v1/vms {template: memtest} until the
# answer (it comes once the guest runs) against `virsh create` of the same domain XML (taken
# with `virsh dumpxml --inactive` of a VM vmbroker made, renamed, uuid stripped, console ports
# moved), ROUNDS rounds each, interleaved, after one untimed warm-up round. Prints medians and
# their ratio. Target: vmbroker <= 1.15 x virsh create. One guest alive at a time (memtest
# burns a CPU under TCG): each VM is deleted before the next start.
#
# Two passes in one run, each with a broker of its own: libvirt.domain_type = kvm (KVM
# guests; where KVM does not work here the broker says why and the pass prints that line
# instead of a table) and libvirt.domain_type = qemu (TCG).
#
# Run by hand, never by CI (needs root, libvirtd with qemu:///system and memtest86+):
#   ninja -C build && sudo python3 bench/spawn-api.py [rounds, default 10]
# Sets up and removes everything itself: cluster, broker, domains and pools of its own name
# prefix, temp dirs. bench-spawn (C) measures domains/ alone against the same reference.
import json
import os
import re
import subprocess
import sys
import time

import benchlib
from benchlib import virsh


def run_pass(domain_type, rounds):
    env = benchlib.Env(f'spawn_{domain_type}',
                       libvirt={'stop_timeout_s': '2', 'domain_type': domain_type})
    _, _, ready = env.broker.get_json('/readyz')
    accel = ready.get('accelerator') or {}
    if accel.get('accelerator') != domain_type:
        print(f'bench/spawn-api: libvirt.domain_type = {domain_type}: not usable on this host '
              f'({accel.get("finding")}); no table for it')
        return
    auth = {'Authorization': 'Bearer ' + env.user('bench-spawn', 'admin')}
    ref_name = env.prefix + 'virsh-ref'
    ref_xml = os.path.join(env.workdir, 'ref.xml')

    def api_round():
        t0 = time.monotonic()
        status, _, body = env.broker.request('POST', '/api/v1/vms', {'template': 'memtest'},
                                             headers=auth)
        dt = time.monotonic() - t0
        if status != 201:
            sys.exit(f'bench/spawn-api: POST /api/v1/vms gave {status}: {body[:300]!r}')
        return dt * 1000, json.loads(body)['vm']

    def delete(vm):
        status, _, body = env.broker.request('DELETE', f'/api/v1/vms/{vm["id"]}', headers=auth)
        if status != 204:
            sys.exit(f'bench/spawn-api: DELETE gave {status}: {body[:300]!r}')

    def virsh_round():
        t0 = time.monotonic()
        virsh('create', ref_xml, check=True)
        dt = time.monotonic() - t0
        virsh('destroy', ref_name, check=True)
        return dt * 1000

    # Warm-up: a VM of vmbroker's gives the reference XML; neither is timed.
    _, vm = api_round()
    xml = virsh('dumpxml', '--inactive', vm['name'], check=True).stdout
    delete(vm)
    xml = re.sub(r'<name>[^<]*</name>', f'<name>{ref_name}</name>', xml, count=1)
    xml = re.sub(r'\s*<uuid>[^<]*</uuid>', '', xml, count=1)
    # Console ports just past the broker's ranges (ours, so nothing else uses them).
    xml = re.sub(r"(<graphics[^>]*\bport=')\d+'", rf"\g<1>{env.port_base + 60}'", xml)
    xml = re.sub(r"(<graphics[^>]*\bwebsocket=')\d+'", rf"\g<1>{env.port_base + 160}'", xml)
    with open(ref_xml, 'w') as f:
        f.write(xml)
    virsh_round()

    ours, theirs, loads = [], [], [benchlib.loadavg()]
    for _ in range(rounds):
        dt, vm = api_round()
        ours.append(dt)
        delete(vm)
        theirs.append(virsh_round())
    loads.append(benchlib.loadavg())

    med_a, med_b = benchlib.median(ours), benchlib.median(theirs)
    ratio = med_a / med_b
    benchlib.table(
        f'bench/spawn-api: domain type {domain_type}, {rounds} rounds each, interleaved, memtest '
        f'template, qemu:///system, '
        f'{benchlib.cpus()} CPUs, 1-min load avg {" -> ".join(l.split()[0] for l in loads)}',
        ['path', 'median ms', 'min ms', 'max ms'],
        [['POST /api/v1/vms (until 201)', f'{med_a:.1f}', f'{min(ours):.1f}', f'{max(ours):.1f}'],
         ['virsh create (same XML)', f'{med_b:.1f}', f'{min(theirs):.1f}', f'{max(theirs):.1f}']],
        [f'ratio POST : virsh create = {ratio:.3f} (target <= 1.15: '
         f'{"met" if ratio <= 1.15 else "MISSED"})'])


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    for domain_type in ('kvm', 'qemu'):
        run_pass(domain_type, rounds)


if __name__ == '__main__':
    main()
