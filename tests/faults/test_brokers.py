# SPDX-License-Identifier: LGPL-2.1-or-later
# Several brokers on one database and one libvirtd (#17). Broker A is killed (SIGKILL, its
# own crash point) in the middle of a create; B and C start: the host's lease, which A held,
# goes to one of them once it runs out, and another broker takes A's operation over and
# undoes the create. One broker at a time watches the host (/metrics says which); a console
# ticket minted on one broker opens through another; the watcher's events follow a guest
# destroyed behind the brokers' backs; the watcher killed, the other takes the host over
# and follows the next guest.
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults  # noqa: E402
import harness  # noqa: E402

PROBE = os.environ.get('VMB_CONSOLE_PROBE')


class Brokers(faults.FaultCase):
    def another(self, instance):
        sections = {k: dict(v) for k, v in self.sections.items()}
        sections['http']['listen'] = f'127.0.0.1:{harness.free_port()}'
        sections['operations']['instance'] = instance
        workdir = os.path.join(self.workdir, instance)
        os.makedirs(workdir)
        return harness.Broker(self, sections, workdir)

    def owned(self, broker):
        """What BROKER's /metrics says of the host `local`: 1 when it watches it."""
        _, _, text = broker.request('GET', '/metrics')
        for line in text.decode().splitlines():
            if line.startswith('vmbroker_host_owned{host="local"}'):
                return int(float(line.rsplit(' ', 1)[1]))
        return None

    def watcher(self, brokers):
        """The one broker of BROKERS that watches the host, once exactly one does."""
        def one():
            states = [self.owned(b) for b in brokers]
            return brokers[states.index(1)] if states.count(1) == 1 and \
                states.count(0) == len(brokers) - 1 else None
        return self.wait_for('one broker to watch the host', one, 30)

    def console_through(self, minting, opening, auth, vm_id):
        status, _, data = minting.request('POST', f'/api/v1/vms/{vm_id}/console', headers=auth)
        self.assertEqual(status, 201, data)
        ticket = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(
            json.loads(data)['console_url']).fragment))['ticket']
        status, _, data = opening.request('POST', f'/api/v1/vms/{vm_id}/console/session',
                                          {'ticket': ticket})
        self.assertEqual(status, 200, data)
        s = json.loads(data)
        r = subprocess.run([PROBE, opening.host, str(opening.port), s['ws_path'],
                            f'http://{opening.host}:{opening.port}', s['password']],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def destroyed_behind_their_backs(self, auth, vm):
        faults.virsh('destroy', vm['name'], check=True)
        self.wait_for('the watcher to follow the guest',
                      lambda: self.get_vm(auth, vm['id'])['state'] == 'stopped', 30)

    def test_one_watcher_at_a_time_and_takeovers_of_a_create_and_of_the_host(self):
        a = self.start(operations={'instance': 'broker-a', 'stale_s': '3'},
                       env={'VMB_CRASH_AT': 'create:after-define'})
        admin = self.user('root')
        self.assertEqual(self.owned(a), 1)
        status, made = self.api('POST', '/api/v1/vms', {'template': 'memtest'},
                                {**admin, 'Prefer': 'respond-async'})
        self.assertEqual(status, 202, made)
        self.assertEqual(a.proc.wait(timeout=120), -signal.SIGKILL)
        died = time.monotonic()

        b, c = self.another('broker-b'), self.another('broker-c')
        owner = self.watcher([b, c])
        took = time.monotonic() - died
        print(f'host lease taken over {took:.1f} s after its owner died', file=sys.stderr)
        self.assertLess(took, 30)
        # A's create was taken over and undone: no row, no domain.
        self.wait_operations_idle()
        op = self.db.psql("SELECT state, broker, attempts FROM operations"
                          f" WHERE id = '{made['operation']['id']}'")[0]
        self.assertIn(op[1], ('broker-b', 'broker-c'))
        self.assertEqual(op[2], '2')
        self.assert_agree()
        self.assertEqual(self.db.scalar('SELECT count(*) FROM vms'), '0')

        other = c if owner is b else b
        self.broker = other
        vm = self.create(admin)
        got = self.console_through(owner, other, admin, vm['id'])
        self.assertEqual((got['status'], got['rfb']), (101, 'RFB 003.008'), got)
        self.destroyed_behind_their_backs(admin, vm)

        owner.proc.send_signal(signal.SIGKILL)
        owner.proc.wait(timeout=60)
        died = time.monotonic()
        self.assertEqual(self.watcher([other]), other)
        print(f'host lease taken over {time.monotonic() - died:.1f} s after its owner died',
              file=sys.stderr)
        vm2 = self.create(admin)
        self.destroyed_behind_their_backs(admin, vm2)
        self.assert_agree()


if __name__ == '__main__':
    faults.main()
