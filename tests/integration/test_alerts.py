# SPDX-License-Identifier: LGPL-2.1-or-later
# The alert rules of contrib/prometheus and the metrics they read, on the real stack:
# promtool checks the rules and runs their unit tests; promtool lints a real broker's
# /metrics, whose storage, memory, port and libvirt figures match what the machine, the
# database and libvirt say before, during and after a real guest; a guest whose QEMU
# stops answering counts a console failure; and a real Prometheus scraping a broker that
# cannot reach libvirt raises VmbrokerLibvirtDown.
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

RULES_DIR = os.path.join(harness.SRC, 'contrib', 'prometheus')
RULES = os.path.join(RULES_DIR, 'vmbroker-rules.yml')
PROBE = os.environ['VMB_CONSOLE_PROBE']
MIB = 1 << 20
BUDGET_MIB = 3072


def promtool(*args, stdin=None):
    return subprocess.run(['promtool', *args], input=stdin, capture_output=True, text=True,
                          timeout=120)


virsh = harness.virsh


def parse_metrics(text):
    """{series as printed: value} of a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith('#'):
            series, value = line.rsplit(' ', 1)
            out[series] = float(value)
    return out


class Alerts(harness.TestCase):
    def start(self, **overrides):
        overrides.setdefault('limits', {})['host_memory_mib'] = str(BUDGET_MIB)
        self.migrate(self.config(**overrides))
        self.broker = self.serve(**overrides)
        self.prefix = self.broker.sections['libvirt']['name_prefix']
        self.addCleanup(harness.remove_domains, self.prefix)
        self.auth = self.bearer_user('alice', self.broker.config)


    def scrape(self):
        status, _, body = self.broker.request('GET', '/metrics')
        self.assertEqual(status, 200, body)
        return body.decode()

    def metrics(self):
        return parse_metrics(self.scrape())

    def eventually(self, what, check, deadline_s=60):
        end = time.monotonic() + deadline_s
        while not check():
            if time.monotonic() > end:
                self.fail(f'not within {deadline_s} s: {what}')
            time.sleep(0.2)

    def create(self):
        status, _, data = self.broker.request('POST', '/api/v1/vms', {'template': 'memtest'},
                                              headers=self.auth)
        self.assertEqual(status, 201, data)
        return json.loads(data)['vm']

    def delete(self, vm_id):
        status, _, data = self.broker.request('DELETE', f'/api/v1/vms/{vm_id}',
                                              headers=self.auth)
        self.assertIn(status, (200, 202, 204), data)
        self.eventually('the VM gone', lambda: self.broker.request(
            'GET', f'/api/v1/vms/{vm_id}', headers=self.auth)[0] == 404, 120)

    # --- the rules ---

    def test_rules_pass_promtool_and_their_unit_tests(self):
        r = promtool('check', 'rules', RULES)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn('SUCCESS: 8 rules found', r.stdout)
        r = subprocess.run(['promtool', 'test', 'rules', 'vmbroker-rules.test.yml'],
                           cwd=RULES_DIR, capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn('SUCCESS', r.stdout)

    def test_a_rule_that_no_longer_fires_fails_its_unit_test(self):
        """The unit tests can fail: libvirt-down waiting 10 minutes misses its test."""
        tmp = os.path.join(self.workdir, 'rules')
        shutil.copytree(RULES_DIR, tmp)
        path = os.path.join(tmp, 'vmbroker-rules.yml')
        with open(path) as f:
            text = f.read()
        text = re.sub(r'(expr: vmbroker_libvirt_up == 0\n\s+for:) 1m', r'\1 10m', text)
        with open(path, 'w') as f:
            f.write(text)
        r = subprocess.run(['promtool', 'test', 'rules', 'vmbroker-rules.test.yml'], cwd=tmp,
                           capture_output=True, text=True, timeout=120)
        self.assertNotEqual(r.returncode, 0, r.stdout)
        self.assertIn('VmbrokerLibvirtDown', r.stdout + r.stderr)

    # --- the metrics on a real broker ---

    def check_machine_figures(self, m):
        st = os.statvfs(self.broker.sections['storage']['dir'])
        free, size = st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize
        self.assertEqual(m['vmbroker_storage_size_bytes'], size)
        # Other writers on the machine move the free space between the two reads.
        self.assertLess(abs(m['vmbroker_storage_free_bytes'] - free), max(free // 20, 256 * MIB))
        self.assertEqual(m['vmbroker_host_memory_bytes'],
                         os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE'))
        self.assertEqual(m['vmbroker_guest_memory_budget_bytes'], BUDGET_MIB * MIB)
        self.assertEqual(m[f'vmbroker_build_info{{version="{os.environ["VMB_VERSION"]}"}}'], 1)

    def test_metrics_pass_promtool_and_follow_a_guest(self):
        self.start()
        self.eventually('libvirt up', lambda: self.metrics().get('vmbroker_libvirt_up') == 1)
        text = self.scrape()
        r = promtool('check', 'metrics', stdin=text)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        m = parse_metrics(text)
        self.check_machine_figures(m)
        self.assertEqual(m['vmbroker_guest_memory_bytes'], 0)
        for kind in ('vnc', 'ws'):
            self.assertEqual(m[f'vmbroker_ports{{kind="{kind}"}}'], 10)
            self.assertEqual(m[f'vmbroker_ports_free{{kind="{kind}"}}'], 10)
        # Counters the rules take a rate of are there before anything happened.
        for kind in ('create', 'start', 'stop', 'reboot', 'delete'):
            for result in ('succeeded', 'failed'):
                self.assertEqual(
                    m[f'vmbroker_operations_total{{kind="{kind}",result="{result}"}}'], 0)
        self.assertEqual(m['vmbroker_console_failures_total'], 0)

        vm = self.create()
        m = self.metrics()
        self.assertEqual(m['vmbroker_guest_memory_bytes'], 256 * MIB)  # memtest's memory_mib
        self.assertEqual(m['vmbroker_vms{state="running"}'], 1)
        self.assertEqual(m['vmbroker_operations_total{kind="create",result="succeeded"}'], 1)
        for kind in ('vnc', 'ws'):
            # A port a process outside the test held when it was probed (another test's
            # guest, on this shared host) is quarantined, and is not free either.
            held = int(self.db.scalar(
                f"SELECT count(*) FROM port_leases WHERE kind = '{kind}'"
                " AND quarantined_until > now()"))
            self.assertEqual(m[f'vmbroker_ports_free{{kind="{kind}"}}'], 9 - held)
        self.delete(vm['id'])
        self.eventually('the memory given back',
                        lambda: self.metrics()['vmbroker_guest_memory_bytes'] == 0)

    def qemu_pid(self):
        domains = [d for d in virsh('list', '--name').stdout.split() if d.startswith(self.prefix)]
        self.assertEqual(len(domains), 1, domains)
        with open(f'/run/libvirt/qemu/{domains[0]}.pid') as f:
            return int(f.read().strip())

    def test_a_guest_that_does_not_answer_counts_a_console_failure(self):
        self.start()
        vm = self.create()
        status, _, data = self.broker.request('POST', f'/api/v1/vms/{vm["id"]}/console',
                                              headers=self.auth)
        self.assertEqual(status, 201, data)
        ws_path = json.loads(data)['ws_path']
        pid = self.qemu_pid()
        os.kill(pid, signal.SIGSTOP)  # the kernel still accepts; QEMU never answers
        try:
            origin = f'http://{self.broker.host}:{self.broker.port}'
            r = subprocess.run([PROBE, self.broker.host, str(self.broker.port), ws_path,
                                origin], capture_output=True, text=True, timeout=120)
        finally:
            os.kill(pid, signal.SIGCONT)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotEqual(json.loads(r.stdout)['status'], 101, r.stdout)
        m = self.metrics()
        self.assertEqual(m['vmbroker_console_failures_total'], 1)
        self.assertEqual(m['vmbroker_console_connects_total'], 0)
        self.delete(vm['id'])

    # --- a real Prometheus ---

    def prometheus(self, target):
        port = harness.free_port()
        config = os.path.join(self.workdir, 'prometheus.yml')
        with open(config, 'w') as f:
            f.write('global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n'
                    f'rule_files:\n  - {RULES}\n'
                    'scrape_configs:\n  - job_name: vmbroker\n'
                    f'    static_configs:\n      - targets: ["{target}"]\n')
        log = open(os.path.join(self.workdir, 'prometheus.log'), 'w+b')
        self.addCleanup(log.close)
        proc = subprocess.Popen(['prometheus', f'--config.file={config}',
                                 f'--storage.tsdb.path={self.workdir}/tsdb',
                                 f'--web.listen-address=127.0.0.1:{port}'],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

        def stop():
            proc.terminate()
            proc.wait(30)
        self.addCleanup(stop)
        return f'http://127.0.0.1:{port}', log

    def test_prometheus_raises_libvirt_down(self):
        self.start(libvirt={'uri': 'qemu+unix:///system?socket=/nonexistent/libvirt-sock'})
        self.assertEqual(self.metrics()['vmbroker_libvirt_up'], 0)
        url, log = self.prometheus(f'{self.broker.host}:{self.broker.port}')

        def alerts():
            try:
                with urllib.request.urlopen(url + '/api/v1/alerts', timeout=5) as r:
                    return {a['labels']['alertname']: a for a in json.load(r)['data']['alerts']}
            except OSError:
                return {}
        try:
            self.eventually('VmbrokerLibvirtDown raised',
                            lambda: 'VmbrokerLibvirtDown' in alerts(), 90)
        except AssertionError:
            log.seek(0)
            raise AssertionError(log.read().decode(errors='replace')[-4000:])
        got = alerts()
        self.assertIn(got['VmbrokerLibvirtDown']['state'], ('pending', 'firing'))
        self.assertEqual(got['VmbrokerLibvirtDown']['labels']['severity'], 'critical')
        self.assertNotIn('VmbrokerConsolePortsNearlyExhausted', got)
        q = urllib.parse.urlencode({'query': 'vmbroker_ports_free'})
        with urllib.request.urlopen(f'{url}/api/v1/query?{q}', timeout=5) as r:
            kinds = {s['metric']['kind'] for s in json.load(r)['data']['result']}
        self.assertEqual(kinds, {'vnc', 'ws'})


if __name__ == '__main__':
    harness.main()
