# SPDX-License-Identifier: LGPL-2.1-or-later
# Losing libvirtd: /readyz says so, operations that need libvirt answer 503, guests keep
# running; once libvirtd is back vmbroker reconnects (with backoff), re-registers its
# callbacks and resyncs: a guest that died meanwhile is stopped, and events flow again.
# A hung libvirtd (SIGSTOP) is noticed by keepalive; with keepalive off, no request waits on
# it longer than libvirt.call_timeout_s (readyz: 2 s), and what a create had begun is
# finished or undone once libvirtd answers again; takes from a warm pool stuck on it hold no
# HTTP thread. The shared libvirtd is restarted once and frozen three times, each briefly,
# and always brought back.
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults  # noqa: E402
from faults import virsh  # noqa: E402


class Libvirtd(faults.FaultCase):
    def test_libvirtd_restart(self):
        # A long interval: what repairs the dead guest below is the reconnect's resync.
        self.start(libvirt={'sync_interval_s': '3600'})
        self.admin = self.user('root')
        alive = self.create(self.admin, 'memtest')
        dies = self.create(self.admin, 'memtest-disk')
        alive_pid, dies_pid = self.qemu_pid(alive['name']), self.qemu_pid(dies['name'])
        try:
            faults.stop_libvirtd()
            status, ready = self.api('GET', '/readyz')
            self.assertEqual((status, ready['checks']['libvirt']), (503, 'down'), ready)
            self.assertEqual(ready['checks']['guest_network'], 'unknown', ready)
            status, got = self.api('POST', '/api/v1/vms', {'template': 'memtest'}, self.admin)
            self.assertEqual(status, 503, got)
            status, got = self.api('POST', f'/api/v1/vms/{alive["id"]}/stop', auth=self.admin)
            self.assertEqual(status, 503, got)
            # Reads need PostgreSQL only.
            self.assertEqual(self.get_vm(self.admin, alive['id'])['state'], 'running')
            # A guest dies while nobody watches.
            os.kill(dies_pid, signal.SIGKILL)
        finally:
            faults.start_libvirtd()
        self.wait_for('/readyz', lambda: self.api('GET', '/readyz')[0] == 200)
        got = self.wait_state(self.admin, dies['id'], 'stopped')
        # Whatever libvirtd recorded when it found QEMU gone at its start.
        self.assertIn(got['state_reason'], ('crashed', 'shut off outside vmbroker'))
        os.kill(alive_pid, 0)  # the other guest kept running throughout
        self.assertEqual(self.get_vm(self.admin, alive['id'])['state'], 'running')
        self.assertGreaterEqual(self.metric('vmbroker_libvirt_reconnects_total'), 1)
        # The callbacks are registered again.
        virsh('destroy', alive['name'], check=True)
        got = self.wait_state(self.admin, alive['id'], 'stopped')
        self.assertEqual(got['state_reason'], 'destroyed outside vmbroker')
        self.assertNotIn('creating', [r['state'] for r in self.assert_agree().values()])
        # Nothing a failed create or stop started is left: all VMs are accounted for.
        self.assertEqual(set(self.assert_agree()), {alive['name'], dies['name']})

    def test_libvirtd_hang_caught_by_keepalive(self):
        self.start(libvirt={'keepalive_interval_s': '1', 'keepalive_count': '2',
                            'sync_interval_s': '3600'})
        self.admin = self.user('root')
        vm = self.create(self.admin, 'memtest')
        qemu = self.qemu_pid(vm['name'])
        pid = int(subprocess.run(['pgrep', '-x', 'libvirtd'], capture_output=True, text=True,
                                 check=True).stdout.split()[0])
        os.kill(pid, signal.SIGSTOP)
        try:
            # libvirtd accepts connections but answers nothing: keepalive drops ours, and
            # requests are refused (503) rather than left hanging.
            self.wait_for('/readyz 503', lambda: self.api('GET', '/readyz')[0] == 503)
            status, got = self.api('POST', '/api/v1/vms', {'template': 'memtest'}, self.admin)
            self.assertEqual(status, 503, got)
        finally:
            os.kill(pid, signal.SIGCONT)
        faults.wait_libvirtd()
        self.wait_for('/readyz', lambda: self.api('GET', '/readyz')[0] == 200)
        os.kill(qemu, 0)
        self.assertEqual(self.get_vm(self.admin, vm['id'])['state'], 'running')
        virsh('destroy', vm['name'], check=True)
        got = self.wait_state(self.admin, vm['id'], 'stopped')
        self.assertEqual(got['state_reason'], 'destroyed outside vmbroker')
        self.assert_agree()

    def test_hung_libvirtd_holds_no_request(self):
        # Keepalive off: only the bound on each request's libvirt work stands between a
        # client and a libvirtd that accepts but never answers.
        self.start(libvirt={'keepalive_interval_s': '0', 'call_timeout_s': '15',
                            'sync_interval_s': '3600'})
        self.admin = self.user('root')
        vm = self.create(self.admin, 'memtest')
        pid = int(subprocess.run(['pgrep', '-x', 'libvirtd'], capture_output=True, text=True,
                                 check=True).stdout.split()[0])
        os.kill(pid, signal.SIGSTOP)
        try:
            # Generous bounds (the call timeout is 15 s) against a wait that would
            # otherwise never end.
            for method, path, body in (('POST', '/api/v1/vms', {'template': 'memtest'}),
                                       ('DELETE', f'/api/v1/vms/{vm["id"]}', None),
                                       ('GET', '/readyz', None)):
                t0 = time.monotonic()
                status, got = self.api(method, path, body, self.admin, timeout=90)
                self.assertEqual(status, 503, got)
                self.assertLess(time.monotonic() - t0, 45, f'{method} {path}')
            self.assertEqual(got['checks']['libvirt'], 'down', got)
            # What needs PostgreSQL only still answers.
            status, vms = self.api('GET', '/api/v1/vms', auth=self.admin, timeout=10)
            self.assertEqual(status, 200, vms)
        finally:
            os.kill(pid, signal.SIGCONT)
        faults.wait_libvirtd()
        self.wait_for('/readyz', lambda: self.api('GET', '/readyz')[0] == 200)
        self.assertIn('did not finish the create within 15 s', self.broker.log())
        # The create and the delete that were cut short went on in the background: neither
        # is left half done, and PostgreSQL and libvirt agree.
        self.wait_for('no VM in creating', lambda: 'creating' not in
                      [v['state'] for v in self.api('GET', '/api/v1/vms', auth=self.admin)[1]])
        self.wait_for('the delete finished', lambda: self.api(
            'GET', f'/api/v1/vms/{vm["id"]}', auth=self.admin)[0] == 404)
        self.assert_agree()

    def test_takes_waiting_on_libvirt_hold_no_http_thread(self):
        # A create runs off the HTTP threads (App.creates): more takes from a warm pool than
        # HTTP threads, all stuck on a frozen libvirtd in their handover, leave every HTTP
        # thread free for other requests.
        self.start(http={'threads': '2'},
                   libvirt={'keepalive_interval_s': '0', 'call_timeout_s': '10',
                            'sync_interval_s': '3600'})
        self.admin = self.user('root')
        self.assertEqual(self.api('PUT', '/api/v1/pools/memtest', {'size': 3}, self.admin)[0],
                         200)
        self.wait_for('a pool of 3 ready', lambda: self.api(
            'GET', '/api/v1/pools', auth=self.admin)[1][0]['ready'] == 3)
        pid = int(subprocess.run(['pgrep', '-x', 'libvirtd'], capture_output=True, text=True,
                                 check=True).stdout.split()[0])
        answers = []

        def create():
            answers.append(self.api('POST', '/api/v1/vms', {'template': 'memtest'},
                                    self.admin, timeout=120)[0])
        creates = [threading.Thread(target=create) for _ in range(3)]
        os.kill(pid, signal.SIGSTOP)
        try:
            for t in creates:
                t.start()
            time.sleep(1)   # the takes are read and wait on libvirt
            # A generous bound against the 10 s each take waits on libvirt.
            for _ in range(3):
                t0 = time.monotonic()
                status, vms = self.api('GET', '/api/v1/vms', auth=self.admin, timeout=30)
                self.assertEqual(status, 200, vms)
                self.assertLess(time.monotonic() - t0, 2)
            self.assertEqual(answers, [])
        finally:
            os.kill(pid, signal.SIGCONT)
        for t in creates:
            t.join(180)
        self.assertEqual(len(answers), 3, answers)
        self.assertTrue(set(answers) <= {201, 503}, answers)
        faults.wait_libvirtd()
        self.api('PUT', '/api/v1/pools/memtest', {'size': 0}, self.admin)
        self.wait_for('the pool drained', lambda: not any(
            p['ready'] or p['starting'] for p in self.api('GET', '/api/v1/pools',
                                                          auth=self.admin)[1]))
        self.wait_for('no VM in creating', lambda: 'creating' not in
                      [v['state'] for v in self.api('GET', '/api/v1/vms', auth=self.admin)[1]])
        self.wait_operations_idle()
        self.assert_agree()

if __name__ == '__main__':
    faults.main()
