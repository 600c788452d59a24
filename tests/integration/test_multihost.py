# SPDX-License-Identifier: LGPL-2.1-or-later
# Many hosts (#17) on the test bed (contrib/testbed: a second libvirtd on this machine, in
# namespaces of its own, with its own /var/lib/libvirt): a broker with its configured host
# and an added one places each guest on the host with the most free memory, runs it there
# (each libvirtd holds exactly its own guests), reaches its console through that host's
# console address, pins a guest where an admin says, answers 503 naming each host's reason
# when none has room, copies an uploaded ISO and a base image to the host that boots them
# once (checked by SHA-256), keeps persistent disks on the configured host, lists each host
# in /readyz, follows the second host's guests through that host's own events, and shows
# them `unknown` while that host's libvirtd is down. Guests idle once booted
# (tests/fixtures/make-idle-iso), so ten of them run on two cores.
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PROBE = os.environ['VMB_CONSOLE_PROBE']
GUEST_MIB = 128
LOCAL_MIB, H2_MIB = 4 * GUEST_MIB, 6 * GUEST_MIB


def domains(uri, prefix):
    return sorted(harness.domain_names(uri, prefix))


class MultiHost(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.shared = harness.mkdtemp('vmbt-mh-')
        cls.bed = os.path.join(cls.shared, 'testbed')
        try:
            cls.uri, cls.console = harness.testbed_up(None, cls.bed)
        except RuntimeError:
            shutil.rmtree(cls.shared, True)
            raise
        templates = os.path.join(cls.shared, 'templates')
        os.makedirs(templates)
        idle, cls.iso = harness.idle_template(templates, cls.shared)
        harness.idle_template(templates, cls.shared, 'idle-disk', disk_gib=1,
                              boot=['cdrom', 'hd'])
        # Boots the ISO a user uploaded, with a disk: both must be on the VM's host.
        uploaded = {k: v for k, v in idle.items() if k != 'iso_path'}
        with open(os.path.join(templates, 'own-iso.json'), 'w') as f:
            json.dump({**uploaded, 'disk_gib': 1, 'boot': ['cdrom', 'hd']}, f)
        overlay = {'kind': 'overlay', 'base_format': 'qcow2', 'base_image': 'tiny.qcow2',
                   'memory_mib': GUEST_MIB, 'vcpus': 1, 'video': 'vga', 'disk_bus': 'virtio',
                   'network': 'none', 'boot': ['hd']}
        for name, kept in (('overlay', False), ('kept', True)):
            with open(os.path.join(templates, name + '.json'), 'w') as f:
                json.dump({**overlay, 'persistent': kept}, f)
        cls.templates = templates

    @classmethod
    def tearDownClass(cls):
        subprocess.run([harness.TESTBED, 'down', cls.bed], capture_output=True, timeout=180)
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
        base = os.path.join(sections['storage']['dir'], 'base')
        os.makedirs(base, exist_ok=True)
        subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2',
                        os.path.join(base, 'tiny.qcow2'), '64M'], check=True)

    def remove_guests(self):
        harness.remove_domains_at(self.uri, self.prefix)
        harness.remove_domains(self.prefix)

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

    def test_an_uploaded_iso_is_copied_once_to_the_host_that_boots_it(self):
        with open(self.iso, 'rb') as f:
            data = f.read()
        status, _, body = self.broker.raw_request(
            'PUT', '/api/v1/isos/idle', data,
            {'Content-Type': 'application/octet-stream', **self.admin})
        self.assertIn(status, (200, 201), body)
        iso = json.loads(body)
        # h2 has the most room: the copy goes there, through libvirt, checked by SHA-256.
        vm = self.create(template='own-iso', iso=iso['id'])['vm']
        self.assertEqual(vm['host'], 'h2')
        [(copied_sha, copied_at)] = self.db.psql(
            "SELECT sha256, copied_at FROM host_volumes v JOIN hosts h ON h.id = v.host_id"
            " WHERE h.name = 'h2' AND v.pool = 'isos'")
        self.assertEqual(copied_sha, hashlib.sha256(data).hexdigest())
        on_h2 = glob.glob(os.path.join(self.bed, 'lib', 'images', '*', 'isos', '*'))
        self.assertEqual(len(on_h2), 1, on_h2)
        with open(on_h2[0], 'rb') as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), copied_sha)
        self.assertEqual(len(glob.glob(os.path.join(self.bed, 'lib', 'images', '*', 'disks',
                                                    '*'))), 1)
        got = self.console_greeting(vm)
        self.assertEqual((got['status'], got['rfb']), (101, 'RFB 003.008'), got)
        # A second guest of it on h2 boots the copy already there; one on local, the upload.
        vm2 = self.create(template='own-iso', iso=iso['id'], host='h2', owner='erin')['vm']
        self.assertEqual(self.db.psql("SELECT copied_at FROM host_volumes")[0][0], copied_at)
        vm3 = self.create(template='own-iso', iso=iso['id'], host='local', owner='finn')['vm']
        self.assertEqual(self.vm(vm3['id'])['state'], 'running')
        for v in (vm, vm2, vm3):
            self.api('DELETE', f"/api/v1/vms/{v['id']}", auth=self.admin, want=204)
        self.assertEqual(glob.glob(os.path.join(self.bed, 'lib', 'images', '*', 'disks', '*')),
                         [])

        # A copy without its record (one cut short) is made again; one that does not hash to
        # the ISO's recorded digest is deleted and the create fails, leaving nothing.
        self.db.psql('DELETE FROM host_volumes')
        self.db.psql(f"UPDATE isos SET sha256 = '{'0' * 64}' WHERE id = '{iso['id']}'")
        status, _, body = self.broker.request('POST', '/api/v1/vms', {
            'template': 'own-iso', 'iso': iso['id'], 'host': 'h2', 'owner': 'gil'},
            headers=self.admin)
        self.assertNotIn(status, (200, 201, 202), body)
        self.assertEqual(glob.glob(os.path.join(self.bed, 'lib', 'images', '*', 'isos', '*')),
                         [])
        self.assertEqual(self.db.scalar('SELECT count(*) FROM host_volumes'), '0')
        self.assertEqual(self.db.scalar('SELECT count(*) FROM vms'), '0')
        self.db.psql(f"UPDATE isos SET sha256 = '{copied_sha}' WHERE id = '{iso['id']}'")
        vm = self.create(template='own-iso', iso=iso['id'], host='h2', owner='gil')['vm']
        self.assertEqual(self.db.psql('SELECT sha256 FROM host_volumes')[0][0], copied_sha)
        self.api('DELETE', f"/api/v1/vms/{vm['id']}", auth=self.admin, want=204)

        # A base image too: copied, checked against the configured host's, the overlay on h2.
        vm = self.create(template='overlay')['vm']
        self.assertEqual(vm['host'], 'h2')
        self.assertEqual(self.vm(vm['id'])['state'], 'running')
        [(base_sha,)] = self.db.psql("SELECT sha256 FROM host_volumes WHERE pool = 'base'")
        with open(os.path.join(self.broker.sections['storage']['dir'], 'base', 'tiny.qcow2'),
                  'rb') as f:
            self.assertEqual(hashlib.sha256(f.read()).hexdigest(), base_sha)
        self.assertEqual(len(glob.glob(os.path.join(self.bed, 'lib', 'images', '*', 'disks',
                                                    '*'))), 1)
        self.api('DELETE', f"/api/v1/vms/{vm['id']}", auth=self.admin, want=204)

    def test_pinning_persistent_disks_and_the_second_hosts_own_events(self):
        # A guest whose disk is kept for its owner stays where such disks are (local), though
        # h2 has more room; pinned to h2 it is refused with the reason.
        vm = self.create(template='kept')['vm']
        self.assertEqual(vm['host'], 'local')
        p = self.create(template='kept', host='h2', owner='carol', want=503)
        self.assertIn("host 'h2' does not keep persistent disks", p['detail'])
        self.api('DELETE', f"/api/v1/vms/{vm['id']}", auth=self.admin, want=204)

        # Only admins pin; a host that does not exist is 422.
        p = self.create(auth=self.alice, want=403, host='h2')
        self.assertIn('host', p['detail'])
        self.create(want=422, host='nowhere')
        on_local = self.create(host='local')['vm']
        self.assertEqual(on_local['host'], 'local')
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

        # A stopped guest that keeps nothing on its host starts where a create would go:
        # h2 again, once enabled, leaving nothing defined on local.
        self.api('DELETE', f"/api/v1/vms/{on_local['id']}", auth=self.admin, want=204)
        self.assertEqual(self.vmb('host', 'enable', 'h2', config=self.broker.config)
                         .returncode, 0)
        vm = self.create(host='local', owner='gus')['vm']
        self.api('POST', f"/api/v1/vms/{vm['id']}/stop", auth=self.admin, want=202)
        self.wait_for('the stop', lambda: self.vm(vm['id'])['state'] == 'stopped')
        self.api('POST', f"/api/v1/vms/{vm['id']}/start", auth=self.admin)
        self.wait_for('the start', lambda: self.vm(vm['id'])['state'] == 'running')
        self.assertEqual(self.vm(vm['id'])['host'], 'h2')
        self.assertEqual(domains(self.uri, self.prefix), [vm['name']])
        self.assertEqual(domains('qemu:///system', self.prefix), [])
        got = self.console_greeting(self.vm(vm['id']))
        self.assertEqual((got['status'], got['rfb']), (101, 'RFB 003.008'), got)
        self.api('DELETE', f"/api/v1/vms/{vm['id']}", auth=self.admin, want=204)

    def test_a_lost_host_shows_its_guests_unknown_and_is_reconciled_when_back(self):
        vm = self.create(host='h2')['vm']
        self.assertEqual(self.vm(vm['id'])['reachability'], 'reachable')
        with open(os.path.join(self.bed, 'libvirtd.pid')) as f:
            os.kill(int(f.read().strip()), 9)
        self.addCleanup(harness.testbed_up, None, self.bed)
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

        harness.testbed_up(None, self.bed)
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
