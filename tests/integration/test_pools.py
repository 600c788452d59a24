# SPDX-License-Identifier: LGPL-2.1-or-later
# Warm pools on the real stack (binary, PostgreSQL, libvirtd, memtest guests under QEMU): a
# pool of 2 fills, a create takes a ready guest that is then its new owner's on the live
# domain (metadata, title, a new VNC password: the old one no longer opens the console), the
# pool refills, and a pool set to 0 drains while the taken guests stay.
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PROBE = os.environ['VMB_CONSOLE_PROBE']
BOOT_S = 600  # two memtest guests booting under TCG on a busy machine


def virsh(*args):
    return subprocess.run(['virsh', '-q', '-c', 'qemu:///system', *args],
                          capture_output=True, text=True, timeout=60)


def vnc_password(domain):
    xml = virsh('dumpxml', '--security-info', domain).stdout
    return re.search(r"<graphics type='vnc'[^>]* passwd='([^']*)'", xml).group(1)


class Pools(harness.TestCase):
    def setUp(self):
        super().setUp()
        sections = harness.base_config(self.db, self.workdir, libvirt={'stop_timeout_s': '2'})
        # Cleanups run last first: the broker (whose filler makes guests) stops before the
        # guests are removed.
        self.addCleanup(harness.remove_domains, sections['libvirt']['name_prefix'])
        self.broker = harness.Broker(self, sections, self.workdir)
        self.origin = f'http://{self.broker.host}:{self.broker.port}'
        self.admin = self.bearer_user('root', self.broker.config, role='admin')
        self.alice = self.bearer_user('alice', self.broker.config)
        self.bob = self.bearer_user('bob', self.broker.config)

    def pool(self):
        pools = self.api('GET', '/api/v1/pools', auth=self.admin, want=200)
        return {p['template']: p for p in pools}.get('memtest')

    def wait_for(self, what, fn, deadline_s=BOOT_S):
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            got = fn()
            if got:
                return got
            time.sleep(0.5)
        self.fail(f'timed out waiting for {what}: {self.pool()}')

    def pool_guests(self):
        return {r[0]: r[1] for r in self.db.psql(
            "SELECT v.id, v.name FROM vms v JOIN users u ON u.id = v.owner_id"
            " WHERE u.username = 'vmbroker-pool'")}

    def probe(self, vm_id, console_url, password):
        """Opens VM_ID's console through CONSOLE_URL's ticket with PASSWORD (None: the one
        the broker gives); returns what the probe saw and the password given."""
        ticket = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(console_url).fragment))
        status, _, data = self.broker.request(
            'POST', f'/api/v1/vms/{vm_id}/console/session', {'ticket': ticket['ticket']})
        self.assertEqual(status, 200, data)
        s = json.loads(data)
        r = subprocess.run([PROBE, self.broker.host, str(self.broker.port), s['ws_path'],
                            self.origin, password or s['password']],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout), s['password']

    def test_fill_take_refill_drain(self):
        self.api('PUT', '/api/v1/pools/memtest', {'size': 2}, auth=self.alice, want=403)
        self.api('PUT', '/api/v1/pools/memtest', {'size': 65}, auth=self.admin, want=400)
        self.api('PUT', '/api/v1/pools/nothing', {'size': 1}, auth=self.admin, want=404)
        got = self.api('PUT', '/api/v1/pools/memtest', {'size': 2}, auth=self.admin, want=200)
        self.assertEqual((got['template'], got['size'], got['schedules']), ('memtest', 2, []))
        self.wait_for('a full pool', lambda: self.pool()['ready'] == 2)
        guests = self.pool_guests()
        self.assertEqual(len(guests), 2)
        old = {name: vnc_password(name) for name in guests.values()}

        # A create takes a ready guest: already running, its screen up, alice's everywhere.
        made = self.api('POST', '/api/v1/vms', {'template': 'memtest'}, auth=self.alice,
                        want=201)
        vm = made['vm']
        self.assertIn(vm['id'], guests)
        self.assertEqual((vm['owner'], vm['state']), ('alice', 'running'))
        self.assertIsNotNone(vm['console_ready_at'])
        self.assertGreaterEqual(vm['console_ready_at'], vm['started_at'])
        self.assertEqual([v['id'] for v in self.api('GET', '/api/v1/vms', auth=self.alice,
                                                      want=200)], [vm['id']])
        meta = virsh('metadata', vm['name'], 'https://vmbroker.dev/xmlns/domain/1').stdout
        self.assertIn('<owner>alice</owner>', meta.replace('vmbroker:', ''))
        self.assertIn('<title>alice: memtest</title>', virsh('dumpxml', vm['name']).stdout)
        new = vnc_password(vm['name'])
        self.assertNotEqual(new, old[vm['name']])
        ops = self.api('GET', f"/api/v1/vms/{vm['id']}/operations", auth=self.alice, want=200)
        self.assertEqual([(o['kind'], o['state']) for o in ops][:1], [('create', 'succeeded')])

        # The console opens with the password the broker gives; the pool's old one fails.
        ok, given = self.probe(vm['id'], made['console_url'], None)
        self.assertEqual((ok['status'], ok['error']), (101, ''), ok)
        self.assertGreater(ok['width'], 0)
        self.assertEqual(given, new)
        again = self.api('POST', f"/api/v1/vms/{vm['id']}/console", auth=self.alice, want=201)
        refused, _ = self.probe(vm['id'], again['console_url'], old[vm['name']])
        self.assertEqual(refused['status'], 101)
        self.assertNotEqual(refused['error'], '', refused)
        self.assertEqual(refused['width'], 0)

        # The pool refills behind the take; bob takes the other guest at once.
        bob_vm = self.api('POST', '/api/v1/vms', {'template': 'memtest'}, auth=self.bob,
                          want=201)['vm']
        self.assertIn(bob_vm['id'], guests)
        self.wait_for('the pool refilled', lambda: self.pool()['ready'] == 2)
        self.assertFalse(set(self.pool_guests()) & {vm['id'], bob_vm['id']})
        _, _, metrics = self.broker.request('GET', '/metrics')
        self.assertRegex(metrics.decode(),
                         r'vmbroker_console_ready_seconds_count\{path="pool"\} 2\b')

        # Size 0: the pool's guests go, the taken ones stay.
        self.api('PUT', '/api/v1/pools/memtest', {'size': 0}, auth=self.admin, want=200)
        self.wait_for('the pool drained', lambda: not self.pool_guests())
        self.assertEqual(self.api('GET', f"/api/v1/vms/{vm['id']}", auth=self.alice,
                                  want=200)['state'], 'running')
        self.assertEqual(self.db.scalar("SELECT count(*) FROM audit_log"
                                        " WHERE action = 'pool.size'"), '2')

    def test_a_schedule_fills_the_pool_and_it_drains_after(self):
        def at(s):
            t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=s)
            return t.strftime('%Y-%m-%dT%H:%M:%SZ')

        path = '/api/v1/pools/memtest/schedules'
        self.api('POST', path, {'from': at(5), 'until': at(60), 'size': 1}, auth=self.alice,
                 want=403)
        for bad in ({'from': at(60), 'until': at(5), 'size': 1},
                    {'from': 'at nine', 'until': at(60), 'size': 1},
                    {'from': at(5), 'until': at(60), 'size': 0}):
            self.api('POST', path, bad, auth=self.admin, want=400)
        self.api('POST', '/api/v1/pools/nothing/schedules',
                 {'from': at(5), 'until': at(60), 'size': 1}, auth=self.admin, want=404)
        self.assertIsNone(self.pool())

        # Starting within the lead time: its guest boots now, to be ready at `from`.
        pool = self.api('POST', path, {'from': at(5), 'until': at(60), 'size': 1},
                        auth=self.admin, want=201)
        self.assertEqual((pool['size'], len(pool['schedules']), pool['schedules'][0]['size']),
                         (1, 1, 1))
        self.wait_for('the scheduled guest', lambda: self.pool()['ready'] == 1)
        self.assertEqual(len(self.pool_guests()), 1)
        # After `until` the schedule goes, and its guest with it.
        self.wait_for('the schedule to end', lambda: self.pool() is None, deadline_s=120)
        self.wait_for('the pool drained', lambda: not self.pool_guests())

    def test_pool_guests_survive_a_broker_restart(self):
        self.api('PUT', '/api/v1/pools/memtest', {'size': 1}, auth=self.admin, want=200)
        self.wait_for('a full pool', lambda: self.pool()['ready'] == 1)
        [guest] = self.pool_guests()
        self.broker.kill()
        self.broker = harness.Broker(self, self.broker.sections, self.workdir)
        # Reconciled with libvirt at start: the same guest, still ready, nothing new booted.
        self.assertEqual(self.pool()['ready'], 1)
        time.sleep(3)   # past a look of the filler
        self.assertEqual(list(self.pool_guests()), [guest])
        vm = self.api('POST', '/api/v1/vms', {'template': 'memtest'}, auth=self.alice,
                      want=201)['vm']
        self.assertEqual((vm['id'], vm['owner']), (guest, 'alice'))

    def test_a_template_change_replaces_the_pool_guests(self):
        with open(os.path.join(harness.SRC, 'templates', 'memtest.json')) as f:
            memtest = json.load(f)
        templates = os.path.join(self.workdir, 'templates')
        os.makedirs(templates)

        def write(description):
            with open(os.path.join(templates, 'lab.json'), 'w') as f:
                json.dump({**memtest, 'warm_pool': 1, 'description': description,
                           'idle_timeout_s': 2, 'max_lifetime_s': 3}, f)

        write('version 1')
        self.broker.kill()
        sections = dict(self.broker.sections)
        sections['templates'] = {'dir': templates}
        sections['console'] = {**sections['console'], 'reaper_interval_s': '1'}
        self.broker = harness.Broker(self, sections, self.workdir)
        pools = self.api('GET', '/api/v1/pools', auth=self.admin, want=200)
        self.assertEqual([(p['template'], p['size']) for p in pools], [('lab', 1)])
        self.wait_for('the lab pool', lambda: self.api(
            'GET', '/api/v1/pools', auth=self.admin, want=200)[0]['ready'] == 1)
        [first] = self.pool_guests()
        # The reaper leaves a waiting guest alone, past its idle time and lifetime.
        time.sleep(5)
        self.assertEqual(self.db.scalar(f"SELECT state FROM vms WHERE id = '{first}'"),
                         'running')
        write('version 2')
        self.broker.signal(signal.SIGHUP)
        self.wait_for('a guest of the new version', lambda: (lambda g: len(g) == 1 and first
                      not in g)(self.pool_guests()))
        self.assertEqual(self.db.scalar(
            "SELECT v.template_version FROM vms v JOIN users u ON u.id = v.owner_id"
            " WHERE u.username = 'vmbroker-pool'"), '2')

    def test_saved_guests_are_restored_each_with_its_own_disk(self):
        with open(os.path.join(harness.SRC, 'templates', 'memtest.json')) as f:
            memtest = json.load(f)
        templates = os.path.join(self.workdir, 'templates')
        os.makedirs(templates)
        with open(os.path.join(templates, 'saved.json'), 'w') as f:
            json.dump({**memtest, 'disk_gib': 1, 'warm_pool': 2, 'memory_image': True,
                       'memory_image_after_s': 1}, f)
        self.broker.kill()
        sections = dict(self.broker.sections)
        sections['templates'] = {'dir': templates}
        self.broker = harness.Broker(self, sections, self.workdir)

        def pool():
            pools = self.api('GET', '/api/v1/pools', auth=self.admin, want=200)
            return {p['template']: p for p in pools}['saved']

        # The pool's guests boot, show their screen, then wait saved: stopped, portless.
        self.wait_for('a saved pool', lambda: pool()['saved'] == 2)
        self.assertEqual(pool()['ready'], 2)
        guests = self.pool_guests()
        for name in guests.values():
            self.assertEqual(virsh('domstate', '--reason', name).stdout.strip(),
                             'shut off (saved)')
        self.assertEqual(self.db.psql(
            "SELECT state, vnc_port IS NULL, state_reason FROM vms v JOIN users u"
            " ON u.id = v.owner_id WHERE u.username = 'vmbroker-pool'"),
            [['stopped', 't', 'saved with its memory for the pool\'s takers']] * 2)

        # They stay saved across a broker restart (nothing to reconcile, nothing booted).
        self.broker.kill()
        self.broker = harness.Broker(self, sections, self.workdir)
        time.sleep(3)   # past a look of the filler
        self.assertEqual((pool()['saved'], self.pool_guests()), (2, guests))

        # A create restores one: running at once with new ports and password, alice's.
        made = self.api('POST', '/api/v1/vms', {'template': 'saved'}, auth=self.alice,
                        want=201)
        vm = made['vm']
        self.assertIn(vm['id'], guests)
        self.assertEqual((vm['owner'], vm['state']), ('alice', 'running'))
        self.assertIsNotNone(vm['console_ready_at'])
        self.assertEqual(virsh('domstate', '--reason', vm['name']).stdout.strip(),
                         'running (restored)')
        xml = virsh('dumpxml', vm['name']).stdout
        self.assertIn('<title>alice: saved</title>', xml)
        self.assertIn(f"port='{vm['vnc_port']}'", xml)
        self.assertIn(f"websocket='{vm['ws_port']}'", xml)
        ok, given = self.probe(vm['id'], made['console_url'], None)
        self.assertEqual((ok['status'], ok['error']), (101, ''), ok)
        self.assertGreater(ok['width'], 0)
        self.assertEqual(given, vnc_password(vm['name']))
        bob_vm = self.api('POST', '/api/v1/vms', {'template': 'saved'}, auth=self.bob,
                          want=201)['vm']
        self.assertIn(bob_vm['id'], guests)
        _, _, metrics = self.broker.request('GET', '/metrics')
        self.assertRegex(metrics.decode(),
                         r'vmbroker_console_ready_seconds_count\{path="restore"\} 2\b')

        # Each restored guest has its own disk: what is written to alice's is not in bob's.
        self.assertIn('wrote 4096/4096', harness.qemu_io(self, vm['name'], 'write -P 0x5a 0 4k'))
        self.assertNotIn('Pattern verification failed',
                         harness.qemu_io(self, vm['name'], 'read -P 0x5a 0 4k'))
        self.assertIn('Pattern verification failed',
                      harness.qemu_io(self, bob_vm['name'], 'read -P 0x5a 0 4k'))

        # The pool saves two more; a deleted guest's image and disk go with it.
        self.wait_for('the pool saved again', lambda: (lambda p, g: p['saved'] == 2 and not
                      set(g) & {vm['id'], bob_vm['id']})(pool(), self.pool_guests()))
        self.api('DELETE', f"/api/v1/vms/{vm['id']}", auth=self.alice, want=204)
        self.assertNotEqual(virsh('domstate', vm['name']).returncode, 0)
        self.assertFalse(os.path.exists(f"/var/lib/libvirt/qemu/save/{vm['name']}.save"))

        # An image that cannot be restored is not trusted: the create boots a cold guest,
        # and the pool guest is deleted.
        spoiled = self.pool_guests()
        for name in spoiled.values():
            os.remove(f'/var/lib/libvirt/qemu/save/{name}.save')
        carol = self.bearer_user('carol', self.broker.config)
        cold = self.api('POST', '/api/v1/vms', {'template': 'saved'}, auth=carol, want=201)['vm']
        self.assertNotIn(cold['id'], spoiled)
        self.wait_for('the spoiled guest deleted',
                      lambda: len(set(spoiled) & set(self.pool_guests())) < 2)

if __name__ == '__main__':
    harness.main()
