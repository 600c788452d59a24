# SPDX-License-Identifier: LGPL-2.1-or-later
# Console-ready on the real stack: after a cold create, and again after a stop and a start,
# the vm object's console_ready_at is set, later than the domain's start, and the guest's
# screen then really shows something (a screenshot taken here, decoded here, has a second
# colour); it is null while stopped; /metrics counts each in
# vmbroker_console_ready_seconds{path="cold"}. A start whose watch a broker left unfinished
# (killed) is watched again by the next broker.
import datetime
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def when(text):
    return datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))


class Ready(harness.TestCase):
    def setUp(self):
        super().setUp()
        self.overrides = {'libvirt': {'stop_timeout_s': '2'}}
        self.migrate(self.config(**self.overrides))
        self.broker = self.serve(**self.overrides)
        self.addCleanup(harness.remove_domains, self.broker.sections['libvirt']['name_prefix'])
        self.alice = self.bearer_user('alice', self.broker.config)

    def vm(self, vm):
        return self.api('GET', f'/api/v1/vms/{vm["id"]}', auth=self.alice, want=200)

    def wait_ready(self, vm):
        deadline = time.monotonic() + harness.WAIT_S
        while True:
            got = self.vm(vm)
            if got['console_ready_at'] or time.monotonic() > deadline:
                return got
            time.sleep(0.2)

    def ready_count(self):
        status, _, body = self.broker.request('GET', '/metrics')
        self.assertEqual(status, 200)
        for line in body.decode().splitlines():
            if line.startswith('vmbroker_console_ready_seconds_count{path="cold"}'):
                return int(float(line.split()[-1]))
        return 0

    def assert_ready_after_start(self, vm):
        got = self.wait_ready(vm)
        self.assertIsNotNone(got['console_ready_at'], got)
        # The API gives seconds; the row has microseconds, and the request's operation too.
        self.assertGreaterEqual(when(got['console_ready_at']), when(got['started_at']))
        self.assertEqual(self.db.scalar(
            "SELECT v.console_ready_at > v.started_at AND v.started_at > o.created_at"
            f" FROM vms v JOIN operations o ON o.vm_id = v.id WHERE v.id = '{vm['id']}'"
            " ORDER BY o.created_at DESC LIMIT 1"), 't')
        shot = os.path.join(self.workdir, 'screen.png')
        subprocess.run(['virsh', '-q', '-c', 'qemu:///system', 'screenshot', got['name'], shot],
                       check=True, capture_output=True)
        self.assertGreater(len(harness.png_colours(shot)), 1, 'the screen is one flat colour')
        return got

    def test_ready_after_a_create_and_after_a_start(self):
        self.assertEqual(self.ready_count(), 0)
        vm = self.api('POST', '/api/v1/vms', {'template': 'memtest'}, self.alice, want=201)['vm']
        first = self.assert_ready_after_start(vm)
        self.assertEqual(self.ready_count(), 1)
        # The event stream announced it (the dashboard opens the console on that event).
        self.assertEqual(self.db.scalar(
            "SELECT count(*) FROM events WHERE kind = 'vm'"
            f" AND vm_id = '{vm['id']}' AND payload->>'console_ready_at' IS NOT NULL"), '1')

        self.api('POST', f'/api/v1/vms/{vm["id"]}/stop', auth=self.alice, want=202)
        deadline = time.monotonic() + harness.WAIT_S
        while (got := self.vm(vm))['state'] != 'stopped':
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.2)
        self.assertIsNone(got['console_ready_at'])

        self.api('POST', f'/api/v1/vms/{vm["id"]}/start', auth=self.alice, want=200)
        second = self.assert_ready_after_start(vm)
        self.assertGreater(when(second['started_at']), when(first['console_ready_at']))
        self.assertEqual(self.ready_count(), 2)

    def test_a_restarted_broker_watches_an_unfinished_start(self):
        vm = self.api('POST', '/api/v1/vms', {'template': 'memtest'}, self.alice, want=201)['vm']
        self.assert_ready_after_start(vm)
        # As if the broker had died before the screen came up: its watch is gone with it.
        self.broker.kill()
        self.db.psql(f"UPDATE vms SET console_ready_at = NULL WHERE id = '{vm['id']}'")
        self.broker = self.serve(**self.overrides)
        self.assertEqual(self.vm(vm)['state'], 'running')
        self.assert_ready_after_start(vm)
        self.assertEqual(self.ready_count(), 1)


if __name__ == '__main__':
    harness.main()
