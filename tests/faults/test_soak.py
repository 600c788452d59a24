# SPDX-License-Identifier: LGPL-2.1-or-later
# Soak: 4 clients run create/delete cycles (VMB_SOAK_CYCLES each, 30 by default) while
# libvirtd is restarted twice and PostgreSQL (the test's own cluster) once. A failed request
# is retried (a delete until it answers 204 or 404). Afterwards every VM is accounted for:
# no row, domain, volume or lease is left, and nothing any client did not ask for exists.
# limits.host_memory_mib keeps at most three 256 MiB guests at once (2 cores).
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults  # noqa: E402
import harness  # noqa: E402

CLIENTS = 4
CYCLES = int(os.environ.get('VMB_SOAK_CYCLES', '30'))


class Soak(faults.FaultCase):
    def test_soak(self):
        self.cluster = harness.PrivateCluster(self, port=harness.free_port())
        self.db = self.cluster.create_database(self, 'soak')
        self.start(libvirt={'sync_interval_s': '5'}, limits={'host_memory_mib': '768'})
        auth = self.user('root')
        lock = threading.Lock()
        done = [0]
        created, deleted, errors = set(), set(), []
        statuses = {}

        def request(method, path, body=None):
            try:
                status, got = self.api(method, path, body, auth, timeout=180)
            except OSError as e:
                status, got = 'io', str(e)
            with lock:
                statuses[(method, status)] = statuses.get((method, status), 0) + 1
            return status, got

        def client(n):
            for _ in range(CYCLES):
                end = time.monotonic() + 600
                while True:
                    status, got = request('POST', '/api/v1/vms', {'template': 'memtest-disk'})
                    if status == 201:
                        break
                    if status not in (503, 'io') or time.monotonic() > end:
                        errors.append(f'client {n}: create {status} {got}')
                        return
                    time.sleep(0.5)
                vm_id = got['vm']['id']
                with lock:
                    created.add(vm_id)
                while True:
                    status, got = request('DELETE', f'/api/v1/vms/{vm_id}')
                    if status in (204, 404):
                        break
                    if status not in (503, 409, 'io') or time.monotonic() > end:
                        errors.append(f'client {n}: delete {status} {got}')
                        return
                    time.sleep(0.5)
                with lock:
                    deleted.add(vm_id)
                    done[0] += 1

        def wait_done(n):
            while done[0] < n and any(t.is_alive() for t in threads):
                time.sleep(0.2)

        t0 = time.monotonic()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        total = CLIENTS * CYCLES
        try:
            for at, fault in ((total // 5, 'libvirtd'), (2 * total // 5, 'postgres'),
                              (3 * total // 5, 'libvirtd')):
                wait_done(at)
                if fault == 'libvirtd':
                    faults.stop_libvirtd()
                    time.sleep(1)
                    faults.start_libvirtd()
                else:
                    self.cluster.stop()
                    time.sleep(1)
                    self.cluster.start()
        finally:
            faults.ensure_libvirtd()
            for t in threads:
                t.join()
        print(f'soak: {len(created)} VMs created and deleted by {CLIENTS} clients in '
              f'{time.monotonic() - t0:.0f} s; answers {sorted(statuses.items(), key=str)}',
              file=sys.stderr)
        self.assertEqual(errors, [], self.broker.log()[-6000:])
        self.assertEqual(created, deleted)
        self.assertEqual(len(created), total)
        self.wait_for('no VM left', lambda: not self.rows(), deadline_s=120)
        self.assertEqual(self.assert_agree(), {})
        self.assertEqual(self.db.scalar(
            'SELECT count(*) FROM port_leases WHERE vm_id IS NOT NULL'), '0')


if __name__ == '__main__':
    faults.main()
