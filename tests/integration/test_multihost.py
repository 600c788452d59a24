# SPDX-License-Identifier: LGPL-2.1-or-later
# Many hosts (#17) on the test bed (contrib/testbed: a second libvirtd on this machine, in
# namespaces of its own): a broker with its configured host and an added one places each
# guest on the host with the most free memory, runs it there (each libvirtd holds exactly its
# own guests), reaches its console through that host's console address, pins a guest where an
# admin says, answers 503 naming each host's reason when none has room, keeps guests with disks
# where the storage pools are, lists each host in /readyz, and follows the second host's
# guests through that host's own events. Guests idle
# once booted (tests/fixtures/make-idle-iso), so ten of them run on two cores.
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PROBE = os.environ['VMB_CONSOLE_PROBE']
TESTBED = os.path.join(harness.SRC, 'contrib', 'testbed')
GUEST_MIB = 128
LOCAL_MIB, H2_MIB = 4 * GUEST_MIB, 6 * GUEST_MIB


def domains(uri, prefix):
    r = subprocess.run(['virsh', '-q', '-c', uri, 'list', '--all', '--name'],
                       capture_output=True, text=True, timeout=60)
    return sorted(n for n in r.stdout.split() if n.startswith(prefix))


class MultiHost(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.shared = harness.mkdtemp('vmbt-mh-')
        os.chmod(cls.shared, 0o755)
        bed = os.path.join(cls.shared, 'testbed')
        r = subprocess.run([TESTBED, 'up', bed], capture_output=True, text=True, timeout=180)
        if r.returncode != 0:
            shutil.rmtree(cls.shared, True)
            raise RuntimeError(f'contrib/testbed up: {r.stderr}')
        cls.bed = bed
        env = dict(line.split('=', 1) for line in r.stdout.split())
        cls.uri, cls.console = env['VMB_HOST2_URI'], env['VMB_HOST2_CONSOLE']
        templates = os.path.join(cls.shared, 'templates')
        os.makedirs(templates)
        iso = os.path.join(cls.shared, 'idle.iso')
        subprocess.run([os.path.join(harness.SRC, 'tests', 'fixtures', 'make-idle-iso'), iso],
                       check=True, stdout=subprocess.DEVNULL, timeout=300)
        os.chmod(iso, 0o644)
        with open(os.path.join(harness.SRC, 'templates', 'memtest.json')) as f:
            idle = {**json.load(f), 'iso_path': iso, 'memory_mib': GUEST_MIB,
                    'description': 'a guest that idles once booted (test fixture)'}
        with open(os.path.join(templates, 'idle.json'), 'w') as f:
            json.dump(idle, f)
        with open(os.path.join(templates, 'idle-disk.json'), 'w') as f:
            json.dump({**idle, 'disk_gib': 1, 'boot': ['cdrom', 'hd']}, f)
        cls.templates = templates

    @classmethod
    def tearDownClass(cls):
        subprocess.run([TESTBED, 'down', cls.bed], capture_output=True, timeout=180)
        shutil.rmtree(cls.shared, True)

    def setUp(self):
        super().setUp()
        sections = harness.base_config(
            self.db, self.workdir, libvirt={'stop_timeout_s': '2', 'sync_interval_s': '5'},
            limits={'host_memory_mib': str(LOCAL_MIB), 'max_running_per_user': '0'},
            templates={'dir': self.templates})
        self.prefix = sections['libvirt']['name_prefix']
        self.addCleanup(self.remove_guests)
        self.broker = harness.Broker(self, sections, self.workdir)
        self.origin = f'http://{self.broker.host}:{self.broker.port}'
        self.admin = self.bearer_user('root', self.broker.config, role='admin')
        self.alice = self.bearer_user('alice', self.broker.config)
        r = self.vmb('host', 'add', 'h2', '--uri', self.uri, '--console-address', self.console,
                     '--vnc-ports', '6200-6219', '--ws-ports', '6220-6239',
                     '--memory-mib', str(H2_MIB), config=self.broker.config)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_for('the broker connected to h2', lambda: self.host_state('h2') == 'ok')

    def remove_guests(self):
        for uri in (self.uri, 'qemu:///system'):
            for name in domains(uri, self.prefix):
                subprocess.run(['virsh', '-q', '-c', uri, 'destroy', name], capture_output=True)
                subprocess.run(['virsh', '-q', '-c', uri, 'undefine', '--nvram', name],
                               capture_output=True)

    def wait_for(self, what, fn, deadline_s=harness.WAIT_S):
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            got = fn()
            if got:
                return got
            time.sleep(0.3)
        self.fail(f'timed out waiting for {what}')

    def host_state(self, name):
        status, _, data = self.broker.request('GET', '/readyz', headers=self.admin)
        return json.loads(data).get('checks', {}).get('hosts', {}).get(name)

    def create(self, auth=None, want=201, **body):
        status, _, data = self.broker.request('POST', '/api/v1/vms',
                                              {'template': 'idle', **body},
                                              headers=auth or self.admin)
        self.assertEqual(status, want, data)
        return json.loads(data)

    def vm(self, vm_id):
        return self.api('GET', f'/api/v1/vms/{vm_id}', auth=self.admin, want=200)

    def console_greeting(self, vm):
        """Opens VM's console through the broker with its password: what the probe saw."""
        ticket = self.api('POST', f"/api/v1/vms/{vm['id']}/console", auth=self.admin, want=201)
        frag = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(ticket['console_url'])
                                           .fragment))
        s = self.api('POST', f"/api/v1/vms/{vm['id']}/console/session",
                     {'ticket': frag['ticket']}, want=200)
        r = subprocess.run([PROBE, self.broker.host, str(self.broker.port), s['ws_path'],
                            self.origin, s['password']], capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_guests_spread_by_free_memory_each_on_its_host_with_its_console(self):
        free = {'local': LOCAL_MIB, 'h2': H2_MIB}
        placed = []
        for i in range(10):
            # The host with the most free memory; of equals, the first by name.
            want = max(sorted(free), key=lambda h: free[h])
            vm = self.create(owner=f's{i}')['vm']
            self.assertEqual(vm['host'], want, (i, free))
            free[want] -= GUEST_MIB
            placed.append(vm)
        self.assertEqual(free, {'local': 0, 'h2': 0})
        on = {h: sorted(v['name'] for v in placed if v['host'] == h) for h in free}
        self.assertEqual(domains(self.uri, self.prefix), on['h2'])
        self.assertEqual(domains('qemu:///system', self.prefix), on['local'])

        # No room anywhere: 503 naming each host's reason; nothing is left of the attempt.
        p = self.create(want=503)
        self.assertIn("host 'h2' has 0 of 768 MiB free", p['detail'])
        self.assertIn("host 'local' has 0 of 512 MiB free", p['detail'])
        self.assertEqual(self.db.scalar('SELECT count(*) FROM vms'), '10')

        # A console on each host, through the broker to that host's console address.
        for host in ('local', 'h2'):
            vm = next(v for v in placed if v['host'] == host)
            got = self.console_greeting(vm)
            self.assertEqual((got['status'], got['rfb'], got['error']),
                             (101, 'RFB 003.008', ''), (host, got))
            self.assertGreater(got['width'] * got['height'], 0)

        for vm in placed:
            self.api('DELETE', f"/api/v1/vms/{vm['id']}", auth=self.admin, want=204)
        self.assertEqual(domains(self.uri, self.prefix), [])
        self.assertEqual(domains('qemu:///system', self.prefix), [])
        self.assertEqual(self.db.scalar('SELECT count(*) FROM port_leases'
                                        ' WHERE vm_id IS NOT NULL'), '0')

    def test_pinning_storage_and_the_second_hosts_own_events(self):
        # A guest with a disk goes where the storage pools are (local), though h2 has more
        # room; pinned to h2 it is refused with the reason.
        vm = self.create(template='idle-disk')['vm']
        self.assertEqual(vm['host'], 'local')
        p = self.create(template='idle-disk', host='h2', owner='carol', want=503)
        self.assertIn("host 'h2' has no storage", p['detail'])
        self.api('DELETE', f"/api/v1/vms/{vm['id']}", auth=self.admin, want=204)

        # Only admins pin; a host that does not exist is 422.
        p = self.create(auth=self.alice, want=403, host='h2')
        self.assertIn('host', p['detail'])
        self.create(want=422, host='nowhere')
        vm = self.create(host='local')['vm']
        self.assertEqual(vm['host'], 'local')
        vm = self.create(host='h2', owner='bob')['vm']
        self.assertEqual(vm['host'], 'h2')
        self.assertEqual(domains(self.uri, self.prefix), [vm['name']])
        self.assertEqual(self.vm(vm['id'])['state'], 'running')

        # Stop and start reach the guest's own libvirtd.
        self.api('POST', f"/api/v1/vms/{vm['id']}/stop", auth=self.admin, want=202)
        self.wait_for('the stop', lambda: self.vm(vm['id'])['state'] == 'stopped')
        state = subprocess.run(['virsh', '-q', '-c', self.uri, 'domstate', vm['name']],
                               capture_output=True, text=True).stdout.strip()
        self.assertEqual(state, 'shut off')
        self.api('POST', f"/api/v1/vms/{vm['id']}/start", auth=self.admin)
        self.wait_for('the start', lambda: self.vm(vm['id'])['state'] == 'running')

        # A guest destroyed behind the broker's back on h2: that host's events say so.
        subprocess.run(['virsh', '-q', '-c', self.uri, 'destroy', vm['name']], check=True,
                       capture_output=True)
        self.wait_for('the row to follow h2', lambda: self.vm(vm['id'])['state'] == 'stopped',
                      deadline_s=30)

        # A disabled h2 takes no new guest: a pinned create says why.
        r = self.vmb('host', 'disable', 'h2', config=self.broker.config)
        self.assertEqual(r.returncode, 0, r.stderr)
        p = self.create(want=503, host='h2')
        self.assertIn("host 'h2' is disabled", p['detail'])
        self.api('DELETE', f"/api/v1/vms/{vm['id']}", auth=self.admin, want=204)
        self.assertEqual(domains(self.uri, self.prefix), [])

    def test_a_lost_host_shows_its_guests_unknown_and_is_reconciled_when_back(self):
        vm = self.create(host='h2')['vm']
        self.assertEqual(self.vm(vm['id'])['reachability'], 'reachable')
        with open(os.path.join(self.bed, 'libvirtd.pid')) as f:
            os.kill(int(f.read().strip()), 9)
        self.addCleanup(subprocess.run, [TESTBED, 'up', self.bed], capture_output=True,
                        timeout=180)
        self.wait_for('h2 seen down', lambda: self.host_state('h2') == 'down', deadline_s=60)
        # Its guest runs on (QEMU did not die with libvirtd): unknown, not stopped.
        self.wait_for('the guest unknown',
                      lambda: self.vm(vm['id'])['reachability'] == 'unknown', deadline_s=30)
        self.assertEqual(self.vm(vm['id'])['state'], 'running')
        [h2] = [h for h in self.api('GET', '/api/v1/hosts', auth=self.admin, want=200)
                if h['name'] == 'h2']
        self.assertFalse(h2['reachable'])
        # Creates go to the host that is up, though h2 has more room.
        self.assertEqual(self.create(owner='dave')['vm']['host'], 'local')

        r = subprocess.run([TESTBED, 'up', self.bed], capture_output=True, text=True,
                           timeout=180)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.wait_for('h2 back', lambda: self.host_state('h2') == 'ok', deadline_s=120)
        self.wait_for('the guest reachable again',
                      lambda: self.vm(vm['id'])['reachability'] == 'reachable', deadline_s=60)
        self.assertEqual(self.vm(vm['id'])['state'], 'running')
        self.assertEqual(domains(self.uri, self.prefix), [vm['name']])
        got = self.console_greeting(self.vm(vm['id']))
        self.assertEqual((got['status'], got['rfb']), (101, 'RFB 003.008'), got)
        self.api('DELETE', f"/api/v1/vms/{vm['id']}", auth=self.admin, want=204)
        self.assertEqual(domains(self.uri, self.prefix), [])


if __name__ == '__main__':
    harness.main()
