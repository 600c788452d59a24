#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# bench/api: the HTTP API under wrk, against nginx serving a static file in the same run.
#
#   GET /api/v1/vms with a bearer token (20 running VM rows inserted with SQL, so no guests)
#   vs nginx serving a file whose size equals that response body; wrk -t2 -c64, one run each.
#   Targets: vmbroker >= 0.5 x nginx req/s, vmbroker p99 <= 10 ms at 64 connections.
#   Then POST /api/v1/auth/login (correct password) at 8 and 64 clients: logins/s; and the
#   broker's peak RSS (VmHWM, reset before the run) under 200 concurrent logins, next to the
#   bound above the RSS before the run: auth.max_hashing x auth.argon2_memory_kib, plus what
#   200 open connections may hold (libmicrohttpd's 64 KiB per connection, http-server.c).
#
# Run by hand, never by CI (needs root for the private PostgreSQL, wrk and nginx):
#   ninja -C build && sudo python3 bench/api.py [seconds per GET run, default 15]
# Sets up and removes everything itself: a private PostgreSQL cluster in a temp dir, its own
# `vmbroker serve` and nginx on free loopback ports. apt-get install wrk nginx-light if missing.
import json
import os
import re
import shutil
import subprocess
import sys
import time

import benchlib
from benchlib import harness

N_VMS = 20
LOGIN_S = int(os.environ.get("BENCH_LOGIN_S", "10"))
LOGIN_CLIENTS_MAX = 200
CONNECTION_MEMORY_KIB = 64  # MHD_OPTION_CONNECTION_MEMORY_LIMIT in broker/http/http-server.c


def need(prog, pkg):
    if not shutil.which(prog):
        sys.exit(f'bench/api: {prog} not found (apt-get install {pkg})')


def to_ms(s):
    m = re.fullmatch(r'([\d.]+)(us|ms|s|m)', s)
    v = float(m.group(1))
    return {'us': v / 1000, 'ms': v, 's': v * 1000, 'm': v * 60000}[m.group(2)]


def wrk(url, conns, seconds, headers=(), script=None):
    """One wrk run; returns {rps, ok_rps, p50, p99, non2xx, errors, requests}."""
    cmd = ['wrk', '-t2', f'-c{conns}', f'-d{seconds}s', '--timeout', '10s', '--latency']
    for h in headers:
        cmd += ['-H', h]
    if script:
        cmd += ['-s', script]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True,
                         timeout=seconds + 60).stdout
    lat = dict(re.findall(r'^\s+(50|99)%\s+(\S+)\s*$', out, re.M))
    if '99' not in lat:
        raise RuntimeError('bench/api: unexpected wrk output:\n' + out)
    reqs, took = re.search(r'(\d+) requests in ([\d.]+\w+),', out).groups()
    secs = to_ms(took) / 1000
    non2xx = int((re.search(r'Non-2xx or 3xx responses: (\d+)', out) or [0, 0])[1])
    errs = re.search(r'Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)', out)
    return {
        'requests': int(reqs), 'rps': float(re.search(r'Requests/sec:\s+([\d.]+)', out)[1]),
        'ok_rps': (int(reqs) - non2xx) / secs, 'p50': to_ms(lat['50']), 'p99': to_ms(lat['99']),
        'non2xx': non2xx, 'errors': sum(int(x) for x in errs.groups()) if errs else 0,
    }


def insert_vms(env):
    """N_VMS users with one running VM each, ports leased as svc-vms would, straight in SQL."""
    env.db.psql(f"""
DO $$
DECLARE h uuid; u uuid; vid uuid; vp int; wp int; tv int;
BEGIN
  SELECT id INTO h FROM hosts WHERE name = 'local';
  SELECT version INTO tv FROM templates WHERE name = 'memtest';
  FOR i IN 1..{N_VMS} LOOP
    INSERT INTO users (username, role) VALUES (format('student%s', lpad(i::text, 2, '0')), 'user')
      RETURNING id INTO u;
    vid := gen_random_uuid();
    SELECT port INTO vp FROM port_leases WHERE host_id = h AND kind = 'vnc' AND vm_id IS NULL
      ORDER BY port LIMIT 1;
    UPDATE port_leases SET vm_id = vid, leased_at = now() WHERE host_id = h AND port = vp;
    SELECT port INTO wp FROM port_leases WHERE host_id = h AND kind = 'ws' AND vm_id IS NULL
      ORDER BY port LIMIT 1;
    UPDATE port_leases SET vm_id = vid, leased_at = now() WHERE host_id = h AND port = wp;
    INSERT INTO vms (id, name, owner_id, template_name, template_version, host_id,
                     domain_uuid, state, vnc_port, ws_port, started_at, console_last_activity_at)
      VALUES (vid, format('{env.prefix}student%s-memtest', lpad(i::text, 2, '0')), u, 'memtest',
              tv, h, gen_random_uuid(), 'running', vp, wp, now(), now());
  END LOOP;
END $$""")


def start_nginx(env, body):
    d = os.path.join(env.workdir, 'nginx')
    os.makedirs(os.path.join(d, 'www'))
    os.makedirs(os.path.join(d, 'tmp'))
    with open(os.path.join(d, 'www', 'vms.json'), 'wb') as f:
        f.write(body)
    os.chmod(d, 0o755)
    port = harness.free_port()
    conf = os.path.join(d, 'nginx.conf')
    temps = ''.join(f'  {k}_temp_path {d}/tmp/{k};\n' for k in
                    ('client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'))
    with open(conf, 'w') as f:
        f.write(f"""daemon off;
worker_processes auto;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
{temps}  server {{
    listen 127.0.0.1:{port};
    root {d}/www;
    location / {{ default_type application/json; }}
  }}
}}
""")
    proc = subprocess.Popen(['nginx', '-p', d, '-e', f'{d}/error.log', '-c', conf],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)

    def stop():
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    harness._cleanup(None, stop)  # runs before the work dir goes
    url = f'http://127.0.0.1:{port}/vms.json'
    for _ in range(100):
        try:
            if subprocess.run(['curl', '-sf', '-o', '/dev/null', url]).returncode == 0:
                return url
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit('bench/api: nginx did not start: ' + open(f'{d}/error.log').read())


def status_kib(pid, key):
    with open(f'/proc/{pid}/status') as f:
        return int(re.search(rf'^{key}:\s+(\d+) kB', f.read(), re.M)[1])


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    need('wrk', 'wrk')
    need('nginx', 'nginx-light')
    env = benchlib.Env('api', http={'per_ip_connections': '512'})
    token = env.user('bench-admin', 'admin')
    env.user('bench-login')
    insert_vms(env)
    auth = f'Authorization: Bearer {token}'
    status, _, body = env.broker.request('GET', '/api/v1/vms',
                                         headers={'Authorization': f'Bearer {token}'})
    if status != 200 or len(json.loads(body)) != N_VMS:
        sys.exit(f'bench/api: GET /api/v1/vms gave {status}: {body[:200]!r}')
    nginx_url = start_nginx(env, body)

    rows, loads = [], []
    loads.append(benchlib.loadavg())
    ng = wrk(nginx_url, 64, seconds, [auth])
    loads.append(benchlib.loadavg())
    vb = wrk(env.url('/api/v1/vms'), 64, seconds, [auth])
    loads.append(benchlib.loadavg())

    lua = os.path.join(env.workdir, 'login.lua')
    with open(lua, 'w') as f:
        f.write('wrk.method = "POST"\n'
                'wrk.headers["Content-Type"] = "application/json"\n'
                f'wrk.body = \'{{"username":"bench-login","password":"{benchlib.PASSWORD}"}}\'\n')
    logins = {c: wrk(env.url('/api/v1/auth/login'), c, LOGIN_S, script=lua) for c in (8, 64)}
    loads.append(benchlib.loadavg())
    rss_before = status_kib(env.pid, 'VmRSS')
    with open(f'/proc/{env.pid}/clear_refs', 'w') as f:
        f.write('5')  # resets VmHWM to the current RSS
    logins[200] = wrk(env.url('/api/v1/auth/login'), LOGIN_CLIENTS_MAX, LOGIN_S, script=lua)
    hwm = status_kib(env.pid, 'VmHWM')
    loads.append(benchlib.loadavg())

    def row(name, r, rate='rps'):
        return [name, f'{r[rate]:.0f}', f'{r["p50"]:.2f}', f'{r["p99"]:.2f}', r['non2xx'],
                r['errors']]
    rows = [row(f'nginx static {len(body)} B (GET)', ng),
            row('vmbroker GET /api/v1/vms', vb)]
    rows += [row(f'vmbroker login, {c} clients', logins[c], 'ok_rps') for c in (8, 64, 200)]
    ratio = vb['rps'] / ng['rps']
    mem_kib = int(env.sections.get('auth', {}).get('argon2_memory_kib', 19456))
    slots = int(env.sections.get('auth', {}).get('max_hashing', 4))
    conn_kib = LOGIN_CLIENTS_MAX * CONNECTION_MEMORY_KIB
    bound = rss_before + slots * mem_kib + conn_kib
    ok = lambda c: 'met' if c else 'MISSED'  # noqa: E731
    benchlib.table(
        f'bench/api: wrk -t2 -c64 -d{seconds}s (logins -d{LOGIN_S}s), {N_VMS} VMs, '
        f'{benchlib.cpus()} CPUs, 1-min load avg {" -> ".join(l.split()[0] for l in loads)}',
        ['run', 'req/s', 'p50 ms', 'p99 ms', 'non-2xx', 'sock err'], rows,
        [f'ratio vmbroker/nginx req/s = {ratio:.3f} (target >= 0.5: {ok(ratio >= 0.5)}); '
         f'vmbroker p99 = {vb["p99"]:.2f} ms (target <= 10 ms: {ok(vb["p99"] <= 10)})',
         'login rows count 200s only (non-2xx are 429s: no hashing slot within 5 s)',
         f'peak RSS under 200 concurrent logins: VmHWM {hwm / 1024:.1f} MiB (RSS before '
         f'{rss_before / 1024:.1f} MiB); bound before + max_hashing {slots} x {mem_kib // 1024} '
         f'MiB + 200 connections x {CONNECTION_MEMORY_KIB} KiB = {bound / 1024:.1f} MiB '
         f'({ok(hwm <= bound)}); unbounded 200 x '
         f'{mem_kib // 1024} MiB = {200 * mem_kib / 1024:.0f} MiB'])


if __name__ == '__main__':
    main()
