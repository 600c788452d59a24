#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# bench/scale: many hosts and brokers (#17). Creates per second until running: N creates of a
# guest that idles once booted (tests/fixtures/make-idle-iso), all asked at once
# (Prefer: respond-async), until PostgreSQL says every one runs; first with 1 host and 1
# broker (the reference), then with 2 hosts (the second is contrib/testbed: another libvirtd
# on this machine) and 3 brokers on the one database, the creates spread over the brokers
# round-robin. Then the time another broker takes to watch a host whose watcher was killed
# (SIGKILL), from the kill to its /metrics saying so. Guests are deleted between the runs.
# Both "hosts" share this machine's cores: the ratio shows what the brokers and the second
# libvirtd add, not a second machine's CPUs. Run by hand, never by CI (root):
#   ninja -C build && sudo python3 bench/scale.py [creates, default 20]
import json
import os
import signal
import subprocess
import sys
import threading
import time

import benchlib
from benchlib import harness

def templates_dir(workdir):
    d = os.path.join(workdir, 'templates')
    os.makedirs(d, exist_ok=True)
    harness.idle_template(d, workdir)
    return d


class Bench:
    def __init__(self, n):
        self.n = n
        self.workdir = harness.mkdtemp('vmbench-scale-')
        harness._cleanup(None, lambda: subprocess.run(['rm', '-rf', self.workdir]))
        bed = os.path.join(self.workdir, 'testbed')
        harness._cleanup(None, lambda: subprocess.run([harness.TESTBED, 'down', bed],
                                                      capture_output=True, timeout=180))
        uri, console = harness.testbed_up(None, bed)
        self.host2 = {'VMB_HOST2_URI': uri, 'VMB_HOST2_CONSOLE': console}
        self.env = benchlib.Env('scale', ports=max(50, n + 10),
                                libvirt={'stop_timeout_s': '2'},
                                operations={'instance': 'broker-a'},
                                limits={'max_running_per_user': '0'},
                                templates={'dir': templates_dir(self.workdir)})
        harness._cleanup(None, lambda: self.remove_host2_guests())
        self.token = self.env.user('boss', role='admin')
        self.brokers = [self.env.broker]
        base = self.env.port_base
        r = harness.run(['host', 'add', 'h2', '--uri', self.host2['VMB_HOST2_URI'],
                         '--console-address', self.host2['VMB_HOST2_CONSOLE'],
                         '--vnc-ports', f'{base + 50}-{base + 99}',
                         '--ws-ports', f'{base + 150}-{base + 199}'], config=self.env.config)
        if r.returncode != 0:
            sys.exit(f'scale: host add: {r.stderr}')
        self.host(False)

    def remove_host2_guests(self):
        harness.remove_domains_at(self.host2['VMB_HOST2_URI'], self.env.prefix)

    def host(self, enabled):
        r = harness.run(['host', 'enable' if enabled else 'disable', 'h2'],
                        config=self.env.config)
        if r.returncode != 0:
            sys.exit(f'scale: host enable/disable: {r.stderr}')

    def more_brokers(self):
        for instance in ('broker-b', 'broker-c'):
            sections = {k: dict(v) for k, v in self.env.sections.items()}
            sections['http']['listen'] = f'127.0.0.1:{harness.free_port()}'
            sections['operations']['instance'] = instance
            workdir = os.path.join(self.workdir, instance)
            os.makedirs(workdir)
            self.brokers.append(harness.Broker(None, sections, workdir))
        deadline = time.monotonic() + 60
        while any(self.owned(b, 'h2') is None for b in self.brokers):
            if time.monotonic() > deadline:
                sys.exit('scale: the brokers did not all reach h2')
            time.sleep(0.2)

    def request(self, broker, method, path, body=None, headers=None):
        h = {'Authorization': f'Bearer {self.token}', **(headers or {})}
        status, _, data = broker.request(method, path, body, headers=h, timeout=600)
        return status, json.loads(data) if data else None

    def running(self):
        return int(self.env.db.scalar("SELECT count(*) FROM vms WHERE state = 'running'"))

    def run(self, brokers):
        """N creates at once over BROKERS; seconds until all run, and where they went."""
        errors = []

        def create(i):
            status, made = self.request(brokers[i % len(brokers)], 'POST', '/api/v1/vms',
                                        {'template': 'idle', 'owner': f's{i}'},
                                        {'Prefer': 'respond-async'})
            if status not in (201, 202):
                errors.append(f'{status} {made}')

        t0 = time.monotonic()
        threads = [threading.Thread(target=create, args=(i,)) for i in range(self.n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            sys.exit('scale: creates failed: ' + '; '.join(errors[:3]))
        while self.running() < self.n:
            if time.monotonic() - t0 > 1800:
                sys.exit(f'scale: only {self.running()} of {self.n} ran after 30 min')
            time.sleep(0.1)
        wall = time.monotonic() - t0
        spread = dict(self.env.db.psql("SELECT h.name, count(*) FROM vms v JOIN hosts h"
                                       " ON h.id = v.host_id GROUP BY h.name"))
        self.delete_all(brokers[0])
        return wall, spread

    def delete_all(self, broker):
        ids = [r[0] for r in self.env.db.psql('SELECT id FROM vms')]
        for vm_id in ids:
            self.request(broker, 'DELETE', f'/api/v1/vms/{vm_id}', headers={
                'Prefer': 'respond-async'})
        deadline = time.monotonic() + 600
        while self.env.db.scalar('SELECT count(*) FROM vms') != '0':
            if time.monotonic() > deadline:
                sys.exit('scale: the deletes did not end')
            time.sleep(0.2)

    def owned(self, broker, host):
        _, _, text = broker.request('GET', '/metrics')
        for line in text.decode().splitlines():
            if line.startswith(f'vmbroker_host_owned{{host="{host}"}}'):
                return int(float(line.rsplit(' ', 1)[1]))
        return None

    def takeover(self, host):
        """Kills the broker that watches HOST; seconds until another says it watches it."""
        [owner] = [b for b in self.brokers if self.owned(b, host) == 1]
        rest = [b for b in self.brokers if b is not owner]
        owner.proc.send_signal(signal.SIGKILL)
        owner.proc.wait(timeout=60)
        t0 = time.monotonic()
        while not any(self.owned(b, host) == 1 for b in rest):
            if time.monotonic() - t0 > 120:
                sys.exit('scale: nobody took the host over within 120 s')
            time.sleep(0.05)
        took = time.monotonic() - t0
        self.brokers = rest
        return took


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    b = Bench(n)
    ref_s, ref_spread = b.run(b.brokers)
    b.more_brokers()
    b.host(True)
    wide_s, wide_spread = b.run(b.brokers)
    take_local = b.takeover('local')
    take_h2 = b.takeover('h2')
    ref_rate, wide_rate = n / ref_s, n / wide_s
    benchlib.table(
        f'bench/scale: {n} creates at once until running (idle guests, TCG on '
        f'{benchlib.cpus()} cores, load {benchlib.loadavg()})',
        ['setup', 'wall s', 'creates/s', 'ratio', 'target', 'spread'],
        [['1 host x 1 broker', f'{ref_s:.1f}', f'{ref_rate:.2f}', '1.00', '',
          json.dumps(ref_spread)],
         ['2 hosts x 3 brokers', f'{wide_s:.1f}', f'{wide_rate:.2f}',
          f'{wide_rate / ref_rate:.2f}', '>= 1.8', json.dumps(wide_spread)],
         ['takeover of local', f'{take_local:.1f}', '', '', '<= 10 s', ''],
         ['takeover of h2', f'{take_h2:.1f}', '', '', '<= 10 s', '']])


if __name__ == '__main__':
    main()
