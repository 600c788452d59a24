# SPDX-License-Identifier: LGPL-2.1-or-later
# Templates tell the truth: GET /api/v1/templates marks a template whose base image, fixed ISO
# or libvirt network is missing as unavailable with the reason (and, for admins, what to do);
# a create from it is 422 with that reason and makes nothing; once the base image is there,
# the template is available. No answer carries libvirt's words or paths (the harness checks
# every problem body).
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PASSWORD = 'a good password'
MEMTEST = '/usr/lib/memtest86+/memtest86+x64.iso'


class Templates(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.templates = os.path.join(self.workdir, 'templates')
        shutil.copytree(os.path.join(harness.SRC, 'templates'), self.templates)
        with open(os.path.join(harness.SRC, 'templates', 'memtest.json')) as f:
            memtest = json.load(f)
        self.write('gone-iso', {**memtest, 'iso_path': '/nonexistent/vmbt-missing.iso'})
        self.write('no-network', {**memtest, 'network': 'libvirt',
                                  'network_name': 'vmbt-no-such-network'})

    def write(self, name, t):
        with open(os.path.join(self.templates, name + '.json'), 'w') as f:
            json.dump(t, f)

    def user(self, name, role):
        r = self.vmb('user', 'add', name, '--role', role, '--password-stdin',
                     input=PASSWORD + '\n', config=self.broker.config)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.vmb('token', 'create', name, config=self.broker.config)
        return {'Authorization': 'Bearer ' + r.stdout.strip()}

    def listing(self, auth):
        status, _, body = self.broker.get_json('/api/v1/templates', headers=auth)
        self.assertEqual(status, 200, body)
        return {t['name']: t for t in body}

    def test_unavailable_templates_say_why_and_refuse_creates(self):
        overrides = {'templates': {'dir': self.templates}}
        self.migrate(self.config(**overrides))
        self.broker = self.serve(**overrides)
        prefix = self.broker.sections['libvirt']['name_prefix']
        alice, admin = self.user('alice', 'user'), self.user('root', 'admin')

        mine = self.listing(alice)
        self.assertTrue(mine['memtest']['available'])
        self.assertIsNone(mine['memtest']['unavailable_reason'])
        want = {'debian-overlay': 'debian-12.qcow2', 'gone-iso': 'ISO',
                'no-network': 'vmbt-no-such-network'}
        for name, word in want.items():
            with self.subTest(template=name):
                self.assertFalse(mine[name]['available'])
                self.assertIn(word, mine[name]['unavailable_reason'])
                self.assertNotIn('admin_hint', mine[name])  # for admins only
                status, _, body = self.broker.request('POST', '/api/v1/vms',
                                                      {'template': name}, headers=alice)
                self.assertEqual(status, 422, body)
                self.assertIn(mine[name]['unavailable_reason'], json.loads(body)['detail'])
        admins = self.listing(admin)
        self.assertIn(f'{prefix}base', admins['debian-overlay']['admin_hint'])
        self.assertIn('net-start', admins['no-network']['admin_hint'])
        self.assertIsNone(admins['memtest']['admin_hint'])
        self.assertEqual(self.db.scalar('SELECT count(*) FROM vms'), '0')

        # The admin copies the base image into the pool's folder (no pool-refresh): the
        # template is available at the next look.
        base = os.path.join(self.broker.sections['storage']['dir'], 'base')
        os.makedirs(base, exist_ok=True)
        subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2',
                        os.path.join(base, 'debian-12.qcow2'), '16M'], check=True)
        self.assertTrue(self.listing(alice)['debian-overlay']['available'])

    def sighup(self, word):
        """Sends SIGHUP and returns the first log line with @word written after it."""
        before = len(self.broker.log())
        self.broker.signal(signal.SIGHUP)
        deadline = time.monotonic() + harness.WAIT_S
        while time.monotonic() < deadline:
            lines = [l for l in self.broker.log()[before:].splitlines() if word in l]
            if lines:
                return lines[0]
            time.sleep(0.1)
        self.fail(f'no "{word}" after SIGHUP: {self.broker.log()[before:]}')

    def test_sighup_reloads_templates(self):
        overrides = {'templates': {'dir': self.templates}}
        self.migrate(self.config(**overrides))
        self.broker = self.serve(**overrides)
        alice = self.user('alice', 'user')
        self.assertNotIn('small', self.listing(alice))
        with open(os.path.join(self.templates, 'memtest.json')) as f:
            memtest = json.load(f)

        # Added, removed and changed, read again while the broker serves.
        self.write('small', {**memtest, 'description': 'memtest in 128 MiB', 'memory_mib': 128})
        self.write('memtest', {**memtest, 'description': 'memtest, described anew'})
        os.unlink(os.path.join(self.templates, 'gone-iso.json'))
        line = self.sighup('SIGHUP: reread templates')
        self.assertIn('added: small;', line)
        self.assertIn('removed: gone-iso;', line)
        self.assertIn('changed: memtest', line)
        now = self.listing(alice)
        self.assertNotIn('gone-iso', now)
        self.assertEqual(now['memtest']['description'], 'memtest, described anew')
        self.assertTrue(now['small']['available'])
        self.assertEqual(self.db.scalar("SELECT version FROM templates WHERE name = 'memtest'"),
                         '2')
        # A create uses the new template: its guest has the new template's memory.
        status, _, body = self.broker.request('POST', '/api/v1/vms', {'template': 'small'},
                                              headers=alice)
        self.assertEqual(status, 201, body)
        vm_id = json.loads(body)['vm']['id']
        self.addCleanup(self.broker.request, 'DELETE', f'/api/v1/vms/{vm_id}', headers=alice)
        domain = self.db.scalar(f"SELECT domain_uuid FROM vms WHERE id = '{vm_id}'")
        xml = subprocess.run(['virsh', '-c', self.broker.sections['libvirt']['uri'],
                              'dumpxml', domain], capture_output=True, text=True, check=True)
        self.assertIn("<memory unit='KiB'>131072</memory>", xml.stdout)

        # A bad file keeps what runs, and says which file.
        with open(os.path.join(self.templates, 'broken.json'), 'w') as f:
            f.write('{"kind": ')
        self.assertIn('broken.json', self.sighup('kept the running templates'))
        self.assertIn('small', self.listing(alice))

    def start_for_the_api(self):
        """A broker on the test's templates; returns alice's and an admin's headers, the
        memtest template and that template without its host path (one the API takes)."""
        overrides = {'templates': {'dir': self.templates}}
        self.migrate(self.config(**overrides))
        self.broker = self.serve(**overrides)
        self.addCleanup(harness.remove_domains, self.broker.sections['libvirt']['name_prefix'])
        with open(os.path.join(harness.SRC, 'templates', 'memtest.json')) as f:
            memtest = json.load(f)
        return (self.user('alice', 'user'), self.user('root', 'admin'), memtest,
                {k: v for k, v in memtest.items() if k != 'iso_path'})

    def test_admins_define_templates_through_the_api(self):
        alice, admin, memtest, lab = self.start_for_the_api()
        lab.update(description='boot an uploaded ISO', memory_mib=384)

        self.api('POST', '/api/v1/templates', {'name': 'lab', **lab}, auth=alice, want=403)
        made = self.api('POST', '/api/v1/templates', {'name': 'lab', **lab}, auth=admin, want=201)
        self.assertEqual((made['name'], made['source'], made['memory_mib']), ('lab', 'api', 384))
        self.assertEqual(self.listing(alice)['lab']['description'], 'boot an uploaded ISO')
        self.assertEqual(self.listing(alice)['memtest']['source'], 'file')
        self.api('POST', '/api/v1/templates', {'name': 'lab', **lab}, auth=admin, want=409)
        # The checks of template files, with the field that is wrong; no host paths here.
        bad = self.api('POST', '/api/v1/templates', {'name': 'bad', **lab, 'memory_mib': 0},
                       auth=admin, want=422)
        self.assertIn("'memory_mib'", bad['detail'])
        self.assertIn("'iso_path'", self.api('POST', '/api/v1/templates',
                                              {'name': 'host', **memtest}, auth=admin,
                                              want=422)['detail'])
        self.api('POST', '/api/v1/templates', {'name': 'Bad Name', **lab}, auth=admin, want=422)
        self.api('POST', '/api/v1/templates', {'name': 'memtest', **lab}, auth=admin, want=409)
        self.api('PUT', '/api/v1/templates/memtest', lab, auth=admin, want=409)
        self.api('DELETE', '/api/v1/templates/memtest', auth=admin, want=409)

        changed = self.api('PUT', '/api/v1/templates/lab', {**lab, 'memory_mib': 512},
                           auth=admin, want=200)
        self.assertEqual(changed['memory_mib'], 512)
        self.api('PUT', '/api/v1/templates/nope', lab, auth=admin, want=404)
        # Kept across a reload and a restart, and used like a file's template.
        self.broker.signal(signal.SIGHUP)
        self.broker.kill()
        self.broker = self.serve(templates={'dir': self.templates})
        self.assertEqual(self.listing(alice)['lab']['memory_mib'], 512)
        r = self.vmb('template', 'list', config=self.broker.config)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn('lab', r.stdout.split())  # the command line lists the files only

        actions = [row[0] for row in self.db.psql(
            "SELECT action FROM audit_log WHERE object_kind = 'template' ORDER BY id")]
        self.assertEqual(actions, ['template.create', 'template.update'])
        self.api('DELETE', '/api/v1/templates/lab', auth=admin, want=204)
        self.assertNotIn('lab', self.listing(alice))
        self.api('DELETE', '/api/v1/templates/lab', auth=admin, want=404)

    def test_a_template_defined_through_the_api_boots_and_is_kept_while_used(self):
        alice, admin, _, lab = self.start_for_the_api()
        self.api('POST', '/api/v1/templates', {'name': 'lab', **lab}, auth=admin, want=201)
        with open(MEMTEST, 'rb') as f:
            status, _, iso = self.broker.raw_request(
                'PUT', '/api/v1/isos/lab.iso', f.read(),
                {'Content-Type': 'application/octet-stream', **alice})
        self.assertEqual(status, 201, iso)
        vm = self.api('POST', '/api/v1/vms', {'template': 'lab', 'iso': json.loads(iso)['id']},
                      auth=alice, want=201)['vm']
        self.assertEqual((vm['template'], vm['state']), ('lab', 'running'))
        self.assertIn('use template lab', self.api('DELETE', '/api/v1/templates/lab',
                                                   auth=admin, want=409)['detail'])
        self.api('DELETE', f'/api/v1/vms/{vm["id"]}', auth=alice, want=204)
        self.api('DELETE', '/api/v1/templates/lab', auth=admin, want=204)


if __name__ == '__main__':
    harness.main()
