# SPDX-License-Identifier: LGPL-2.1-or-later
# Hosts as rows: `vmbroker host ...` and /api/v1/hosts on the real binary, PostgreSQL,
# libvirtd and one memtest guest. The config file's host (`local`) is there from the start and
# follows the config; admins add, change, disable and remove others; a disabled host takes no
# new VMs; every change is audited; the vm object names its host.
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

EXIT_FAILURE, EXIT_NOT_FOUND, EXIT_CONFLICT = 1, 3, 4
HV2 = ['--uri', 'qemu+tcp://10.231.0.2/system', '--console-address', '10.231.0.2',
       '--vnc-ports', '6000-6009', '--ws-ports', '6010-6019', '--memory-mib', '4096']


class Hosts(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.broker = harness.Broker(self, harness.base_config(
            self.db, self.workdir, libvirt={'stop_timeout_s': '2'}), self.workdir)
        self.cfg = self.broker.config
        self.addCleanup(harness.remove_domains, self.broker.sections['libvirt']['name_prefix'])
        self.admin = self.bearer_user('root', self.cfg, role='admin')
        self.alice = self.bearer_user('alice', self.cfg)

    def cli(self, *args, code=0):
        r = self.vmb('host', *args, '--json', config=self.cfg)
        if code:
            self.assertFailsWithOneLine(r, code=code)
            return r.stderr
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout) if r.stdout.strip() else None

    def port_rows(self, host, kind):
        return int(self.db.scalar(
            "SELECT count(*) FROM port_leases p JOIN hosts h ON h.id = p.host_id"
            f" WHERE h.name = '{host}' AND p.kind = '{kind}' AND p.in_range"))

    def test_the_configured_host_is_there_and_follows_the_config(self):
        console = self.broker.sections['console']
        [local] = self.cli('list')
        self.assertEqual((local['name'], local['uri'], local['console_address']),
                         ('local', 'qemu:///system', '127.0.0.1'))
        self.assertEqual((local['vnc_ports'], local['ws_ports']),
                         (console['vnc_ports'], console['ws_ports']))
        self.assertTrue(local['from_config'] and local['enabled'])
        self.assertEqual((local['vms'], local['memory_mib']), (0, None))
        # Its settings are the config's; only enabling it is kept here.
        status, _, body = self.broker.request('PATCH', '/api/v1/hosts/local',
                                              {'uri': 'qemu:///session'}, headers=self.admin)
        self.assertEqual(status, 409, body)
        self.assertIn('config file', json.loads(body)['detail'])
        self.assertIn('config file', self.cli('remove', 'local', code=EXIT_CONFLICT))

    def test_add_change_remove_on_the_cli_and_the_api(self):
        hv2 = self.cli('add', 'hv2', *HV2)
        self.assertEqual((hv2['name'], hv2['console_address'], hv2['vnc_ports'],
                          hv2['ws_ports'], hv2['memory_mib'], hv2['enabled'],
                          hv2['from_config']),
                         ('hv2', '10.231.0.2', '6000-6009', '6010-6019', 4096, True, False))
        self.assertEqual((self.port_rows('hv2', 'vnc'), self.port_rows('hv2', 'ws')), (10, 10))
        self.assertIn('exists already', self.cli('add', 'hv2', *HV2, code=EXIT_CONFLICT))
        for bad, needle in ((['--console-address', 'hv3.example'], 'IP address'),
                            (['--vnc-ports', '7000-6990'], 'port range'),
                            (['--ws-ports', '7005-7020'], 'overlap'),
                            (['--uri', 'not a uri'], 'libvirt URI')):
            args = ['--uri', 'qemu:///system', '--console-address', '10.0.0.3',
                    '--vnc-ports', '7000-7009', '--ws-ports', '7010-7019']
            args[args.index(bad[0]) + 1] = bad[1]
            self.assertIn(needle, self.cli('add', 'hv3', *args, code=EXIT_FAILURE))
        self.assertIn('host name', self.cli('add', 'HV3', *HV2, code=EXIT_FAILURE))
        self.assertIn('needs', self.cli('add', 'hv3', '--uri', 'qemu:///system',
                                        code=EXIT_FAILURE))

        # The API: admins only, a misspelt member refused, a change moves the port rows.
        self.api('GET', '/api/v1/hosts', auth=self.alice, want=403)
        self.assertEqual([h['name'] for h in self.api('GET', '/api/v1/hosts', auth=self.admin,
                                                      want=200)], ['hv2', 'local'])
        body = {'name': 'hv3', 'uri': 'qemu+ssh://hv3/system', 'console_address': '10.0.0.3'}
        problem = self.api('POST', '/api/v1/hosts', {**body, 'memroy_mib': 1}, auth=self.admin,
                           want=400)
        self.assertIn("'memroy_mib'", problem['detail'])
        status, headers, data = self.broker.request('POST', '/api/v1/hosts', body,
                                                    headers=self.admin)
        self.assertEqual(status, 201, data)
        self.assertEqual(headers['location'], '/api/v1/hosts/hv3')
        self.assertEqual(json.loads(data)['vnc_ports'], '5900-5999')
        hv3 = self.api('PATCH', '/api/v1/hosts/hv3', {'memory_mib': 2048, 'ws_ports': '5700-5701'},
                       auth=self.admin, want=200)
        self.assertEqual((hv3['memory_mib'], hv3['ws_ports']), (2048, '5700-5701'))
        self.assertEqual(self.port_rows('hv3', 'ws'), 2)
        self.api('PATCH', '/api/v1/hosts/hv3', {'enabled': 'no'}, auth=self.admin, want=400)
        self.api('PATCH', '/api/v1/hosts/nowhere', {'enabled': False}, auth=self.admin,
                 want=404)

        self.api('DELETE', '/api/v1/hosts/hv3', auth=self.admin, want=204)
        self.assertEqual(self.cli('remove', 'hv2'), None)
        self.cli('remove', 'hv2', code=EXIT_NOT_FOUND)
        self.assertEqual(self.db.scalar("SELECT count(*) FROM port_leases p WHERE NOT EXISTS"
                                        " (SELECT 1 FROM hosts h WHERE h.id = p.host_id)"), '0')
        actions = [r[0] for r in self.db.psql("SELECT action FROM audit_log"
                                              " WHERE object_kind = 'host' ORDER BY id")]
        self.assertEqual(actions, ['host.add', 'host.add', 'host.change', 'host.remove',
                                   'host.remove'])

    def test_a_disabled_host_takes_no_new_vms_and_stays_disabled(self):
        self.assertFalse(self.cli('disable', 'local')['enabled'])
        problem = self.api('POST', '/api/v1/vms', {'template': 'memtest'}, auth=self.alice,
                           want=503)
        self.assertIn("host 'local' is disabled", problem['detail'])
        self.assertEqual(self.db.scalar('SELECT count(*) FROM vms'), '0')

        # A restart brings the host in line with the config, and keeps it disabled.
        self.broker.kill()
        self.broker = harness.Broker(self, self.broker.sections, self.workdir)
        self.cfg = self.broker.config
        [local] = self.cli('list')
        self.assertFalse(local['enabled'])

        self.assertTrue(self.cli('enable', 'local')['enabled'])
        vm = self.api('POST', '/api/v1/vms', {'template': 'memtest'}, auth=self.alice,
                      want=201)['vm']
        self.assertEqual(vm['host'], 'local')
        [local] = self.cli('list')
        self.assertEqual(local['vms'], 1)
        self.api('DELETE', '/api/v1/hosts/local', auth=self.admin, want=409)
        actions = [r[0] for r in self.db.psql("SELECT action FROM audit_log"
                                              " WHERE object_kind = 'host' ORDER BY id")]
        self.assertEqual(actions, ['host.disable', 'host.enable'])


if __name__ == '__main__':
    harness.main()
