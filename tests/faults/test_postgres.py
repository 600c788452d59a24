# SPDX-License-Identifier: LGPL-2.1-or-later
# PostgreSQL restarts and killed backends (the test's own cluster): requests fail cleanly
# with 503 while it is gone and the next ones succeed; a guest that stopped meanwhile is
# repaired once PostgreSQL is back; creates and deletes whose backends are killed under
# them leave nothing half-applied once the sync has run.
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults  # noqa: E402
import harness  # noqa: E402
from faults import virsh  # noqa: E402


class Postgres(faults.FaultCase):
    def setUp(self):
        super().setUp()
        self.cluster = harness.PrivateCluster(self, port=harness.free_port())
        self.db = self.cluster.create_database(self, 'pg')
        self.start(libvirt={'sync_interval_s': '2'})
        self.admin = self.user('root')

    def kill_backends(self):
        self.cluster.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE application_name = 'vmbroker'")

    def settled(self):
        return not [r for r in self.rows().values() if r['state'] in ('creating', 'stopping')]

    def test_postgres_restart(self):
        vm = self.create(self.admin, 'memtest-disk')
        self.cluster.stop()
        try:
            for method, path, body in (('GET', '/api/v1/vms', None),
                                       ('POST', '/api/v1/vms', {'template': 'memtest'}),
                                       ('GET', '/readyz', None)):
                status, got = self.api(method, path, body, self.admin)
                self.assertEqual(status, 503, (method, path, got))
            # The guest stops while PostgreSQL is away: the event cannot be recorded.
            virsh('destroy', vm['name'], check=True)
        finally:
            self.cluster.start()
        status, got = self.api('GET', '/api/v1/vms', auth=self.admin)
        self.assertEqual(status, 200, got)
        got = self.wait_state(self.admin, vm['id'], 'stopped')
        self.assertEqual(got['state_reason'], 'destroyed outside vmbroker')
        self.assert_agree()

    def test_killed_backends(self):
        self.kill_backends()
        status, got = self.api('GET', '/api/v1/vms', auth=self.admin)
        self.assertEqual(status, 200, got)
        results = []

        def churn():
            for _ in range(3):
                status, made = self.api('POST', '/api/v1/vms', {'template': 'memtest-disk'},
                                        self.admin)
                results.append(('create', status))
                if status == 201:
                    status, _ = self.api('DELETE', f'/api/v1/vms/{made["vm"]["id"]}',
                                         auth=self.admin)
                    results.append(('delete', status))

        t = threading.Thread(target=churn)
        t.start()
        while t.is_alive():
            self.kill_backends()
            time.sleep(0.3)
        t.join()
        print(f'results under killed backends: {results}', file=sys.stderr)
        for what, status in results:
            self.assertIn(status, (201, 204, 503), what)
        self.wait_for('no VM creating or stopping', self.settled)
        rows = self.assert_agree()
        # A delete that failed left a VM that still runs (or is stopped); delete it now.
        for r in rows.values():
            status, _ = self.api('DELETE', f'/api/v1/vms/{r["id"]}', auth=self.admin)
            self.assertEqual(status, 204)
        self.assertEqual(self.assert_agree(), {})


if __name__ == '__main__':
    faults.main()
