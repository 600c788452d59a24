# SPDX-License-Identifier: LGPL-2.1-or-later
# Three brokers on one database and two hosts (the configured one and contrib/testbed's), the
# whole of #17 at once: a console on a guest of each host opens through each broker, and
# create/delete cycles from many clients at once, spread over the brokers, leave nothing
# behind. While they run, an independent checker reads libvirt on both hosts and the
# database: no domain runs on two hosts, no port is leased twice; at the end every domain,
# row and lease is gone. VMB_MULTIBROKER_CYCLES sets the cycles (60; the 1,000 take
# about an hour on two cores: run them by hand).
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PROBE = os.environ['VMB_CONSOLE_PROBE']
CYCLES = int(os.environ.get('VMB_MULTIBROKER_CYCLES', '60'))
CLIENTS = 8
domains = harness.domain_names


class MultiBroker(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.uri, console = harness.testbed_up(self, os.path.join(self.workdir, 'testbed'))
        templates = os.path.join(self.workdir, 'templates')
        os.makedirs(templates)
        harness.idle_template(templates, self.workdir)
        base = harness.base_config(self.db, self.workdir,
                                   libvirt={'stop_timeout_s': '2'},
                                   limits={'max_running_per_user': '0'},
                                   templates={'dir': templates})
        self.prefix = base['libvirt']['name_prefix']
        self.addCleanup(self.remove_guests)
        self.brokers = []
        for instance in ('broker-a', 'broker-b', 'broker-c'):
            sections = {k: dict(v) for k, v in base.items()}
            sections['http'] = {'listen': f'127.0.0.1:{harness.free_port()}'}
            sections['operations'] = {'instance': instance}
            workdir = os.path.join(self.workdir, instance)
            os.makedirs(workdir)
            self.brokers.append(harness.Broker(self, sections, workdir))
        cfg = self.brokers[0].config
        self.admin = self.bearer_user('root', cfg, role='admin')
        r = self.vmb('host', 'add', 'h2', '--uri', self.uri, '--console-address', console,
                     '--vnc-ports', '6300-6339', '--ws-ports', '6340-6379', config=cfg)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_for('every broker to reach h2',
                      lambda: all(self.checks(b).get('h2') == 'ok' for b in self.brokers))

    def remove_guests(self):
        harness.remove_domains_at(self.uri, self.prefix)
        harness.remove_domains(self.prefix)

    def checks(self, broker):
        _, _, data = broker.request('GET', '/readyz', headers=self.admin)
        return json.loads(data).get('checks', {}).get('hosts', {})

    def call(self, broker, method, path, body=None, headers=None):
        status, _, data = broker.request(method, path, body,
                                         headers={**self.admin, **(headers or {})}, timeout=300)
        return status, json.loads(data) if data else None

    def console(self, broker, vm_id):
        status, ticket = self.call(broker, 'POST', f'/api/v1/vms/{vm_id}/console')
        self.assertEqual(status, 201, ticket)
        frag = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(ticket['console_url'])
                                           .fragment))
        status, s = self.call(broker, 'POST', f'/api/v1/vms/{vm_id}/console/session',
                              {'ticket': frag['ticket']})
        self.assertEqual(status, 200, s)
        r = subprocess.run([PROBE, broker.host, str(broker.port), s['ws_path'],
                            f'http://{broker.host}:{broker.port}', s['password']],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_consoles_through_every_broker_and_cycles_that_leave_nothing(self):
        vms = {}
        for host in ('local', 'h2'):
            status, made = self.call(self.brokers[0], 'POST', '/api/v1/vms',
                                     {'template': 'idle', 'host': host, 'owner': f'on-{host}'})
            self.assertEqual(status, 201, made)
            vms[host] = made['vm']
        for host, vm in vms.items():
            for broker in self.brokers:
                got = self.console(broker, vm['id'])
                self.assertEqual((got['status'], got['rfb']), (101, 'RFB 003.008'),
                                 (host, broker.port, got))
        for vm in vms.values():
            self.assertEqual(self.call(self.brokers[1], 'DELETE',
                                       f"/api/v1/vms/{vm['id']}")[0], 204)

        stop = threading.Event()
        seen = []

        def checker():
            while not stop.is_set():
                both = domains(self.uri, self.prefix) & domains('qemu:///system', self.prefix)
                twice = self.db.scalar("SELECT count(*) FROM (SELECT host_id, port FROM"
                                       " port_leases WHERE vm_id IS NOT NULL GROUP BY 1, 2"
                                       " HAVING count(*) > 1) t")
                seen.append((sorted(both), twice))
                time.sleep(0.5)

        results, lock = [], threading.Lock()

        def client(c):
            for i in range(c, CYCLES, CLIENTS):
                broker = self.brokers[i % len(self.brokers)]
                status, made = self.call(broker, 'POST', '/api/v1/vms',
                                         {'template': 'idle', 'owner': f'c{c}'})
                deleted = None
                if status == 201:
                    deleted = self.call(self.brokers[(i + 1) % len(self.brokers)], 'DELETE',
                                        f"/api/v1/vms/{made['vm']['id']}")[0]
                with lock:
                    results.append((status, deleted, made['vm']['host'] if status == 201
                                    else made.get('detail')))

        watch = threading.Thread(target=checker)
        watch.start()
        clients = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        stop.set()
        watch.join()

        made = [r for r in results if r[0] == 201]
        self.assertEqual(len(results), CYCLES)
        # Creates the ports or memory refused are fine (503 saying why); nothing else is.
        self.assertEqual([r for r in results if r[0] not in (201, 503)], [])
        self.assertGreater(len(made), CYCLES // 2, results)
        self.assertEqual({r[1] for r in made}, {204}, results)
        self.assertEqual({r[2] for r in made}, {'local', 'h2'})
        self.assertTrue(seen)
        self.assertEqual([s for s in seen if s != ([], '0')], [])
        self.assertEqual(domains(self.uri, self.prefix) | domains('qemu:///system',
                                                                  self.prefix), set())
        self.assertEqual(self.db.scalar('SELECT count(*) FROM vms'), '0')
        self.assertEqual(self.db.scalar('SELECT count(*) FROM port_leases'
                                        ' WHERE vm_id IS NOT NULL'), '0')
        self.assertEqual(self.db.scalar("SELECT count(*) FROM operations"
                                        " WHERE state IN ('queued', 'running')"), '0')
        print(f'{len(made)} of {CYCLES} cycles ran: {sum(r[2] == "h2" for r in made)} on h2',
              file=sys.stderr)


if __name__ == '__main__':
    harness.main()
