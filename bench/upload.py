#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# bench/upload: PUT /api/v1/isos/{name} of a 1 GiB bootable ISO over loopback against
# `sha256sum` of the same file (both from the page cache), one run each, in the same run.
# Target: vmbroker >= 0.8 x sha256sum's MB/s. The upload hashes, writes and fdatasyncs, so
# sha256sum is the floor it cannot beat.
#
# Run by hand, never by CI (needs root for the private PostgreSQL and libvirt):
#   ninja -C build && sudo python3 bench/upload.py [--perf] [MiB, default 1024]
# --perf records the serve process with perf during the upload and prints where it spent
# its time. Needs xorriso and curl, ~3 GiB free in /tmp. Sets up and removes everything
# itself (cluster, broker, libvirt pools of its own name prefix, the ISO, temp dirs).
import os
import shutil
import subprocess
import sys
import time

import benchlib


def make_iso(workdir, mib):
    """A bootable ISO (El Torito, no emulation) holding MIB MiB of random data."""
    root = os.path.join(workdir, 'iso-root')
    os.makedirs(root)
    with open(os.path.join(root, 'boot.img'), 'wb') as f:
        f.write(b'\xfa\xf4' + b'\0' * 2046)  # cli; hlt
    with open(os.path.join(root, 'data.bin'), 'wb') as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))
    out = os.path.join(workdir, 'bench.iso')
    subprocess.run(['xorriso', '-as', 'mkisofs', '-quiet', '-b', 'boot.img', '-no-emul-boot',
                    '-boot-load-size', '4', '-o', out, root], check=True, capture_output=True)
    shutil.rmtree(root)
    return out


def main():
    args = [a for a in sys.argv[1:] if a != '--perf']
    perf = '--perf' in sys.argv[1:]
    mib = int(args[0]) if args else 1024
    for prog in ('xorriso', 'curl', 'sha256sum') + (('perf',) if perf else ()):
        if not shutil.which(prog):
            sys.exit(f'bench/upload: {prog} not found')
    env = benchlib.Env('upload', storage={'max_iso_bytes': str(4 << 30),
                                          'user_quota_bytes': str(8 << 30)})
    token = env.user('bench-upload')
    iso = make_iso(env.workdir, mib)
    size = os.path.getsize(iso)
    subprocess.run(['cat', iso], stdout=subprocess.DEVNULL, check=True)  # into the page cache

    loads = [benchlib.loadavg()]
    t0 = time.monotonic()
    ref = subprocess.run(['sha256sum', iso], capture_output=True, text=True, check=True)
    t_ref = time.monotonic() - t0
    digest = ref.stdout.split()[0]
    loads.append(benchlib.loadavg())

    rec = None
    if perf:
        data = os.path.join(env.workdir, 'perf.data')
        rec = subprocess.Popen(['perf', 'record', '-q', '-F', '499', '-g', '-p', str(env.pid),
                                '-o', data], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
    resp = os.path.join(env.workdir, 'response.json')
    t0 = time.monotonic()
    r = subprocess.run(['curl', '-sS', '-T', iso, '-o', resp, '-w', '%{http_code}',
                        '-H', 'Content-Type: application/octet-stream',
                        '-H', f'Authorization: Bearer {token}',
                        env.url('/api/v1/isos/bench-upload.iso')],
                       capture_output=True, text=True, timeout=3600)
    t_up = time.monotonic() - t0
    loads.append(benchlib.loadavg())
    if rec:
        rec.send_signal(2)
        rec.wait()
    body = open(resp, 'rb').read()
    if r.stdout != '201':
        sys.exit(f'bench/upload: PUT gave {r.stdout} {r.stderr.strip()}: {body[:300]!r}')
    import json
    got = json.loads(body)
    if got['sha256'] != digest or got['size'] != size:
        sys.exit(f'bench/upload: stored {got} but sha256sum says {digest}, {size} bytes')
    env.broker.request('DELETE', f'/api/v1/isos/{got["id"]}',
                       headers={'Authorization': f'Bearer {token}'})

    mb = size / 1e6
    ratio = t_ref / t_up
    benchlib.table(
        f'bench/upload: {size} B bootable ISO, page cache warm, one run each, '
        f'{benchlib.cpus()} CPUs, 1-min load avg {" -> ".join(l.split()[0] for l in loads)}',
        ['path', 'seconds', 'MB/s'],
        [['sha256sum (reference)', f'{t_ref:.2f}', f'{mb / t_ref:.0f}'],
         ['vmbroker PUT /api/v1/isos (curl -T)', f'{t_up:.2f}', f'{mb / t_up:.0f}']],
        [f'ratio vmbroker/sha256sum MB/s = {ratio:.3f} (target >= 0.8: '
         f'{"met" if ratio >= 0.8 else "MISSED"})'])
    if rec:
        rep = subprocess.run(['perf', 'report', '-i', data, '--stdio', '--no-children',
                              '--sort', 'dso,symbol', '-g', 'none', '--percent-limit', '2'],
                             capture_output=True, text=True)
        print('\nperf of vmbroker serve during the upload (self time, >= 2 %):')
        print('\n'.join(l for l in rep.stdout.splitlines() if l.strip() and
                        not l.startswith('#')))


if __name__ == '__main__':
    main()
