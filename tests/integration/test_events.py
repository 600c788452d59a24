# SPDX-License-Identifier: LGPL-2.1-or-later
# Event streams (GET /api/v1/events) against the real binary, PostgreSQL and a memtest guest:
# a second client sees a VM's changes as they happen, a user sees only their own (a service
# account those of users, never an admin's), a stream resumes after Last-Event-ID, the bounds
# answer 429, and a thousand idle streams cost the broker no thread each.
import json
import os
import resource
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from test_api_vms import VmCase  # noqa: E402


class Stream:
    """A raw event-stream client that parses events on a thread of its own."""

    def __init__(self, broker, token, last_id=None, read=True):
        self.sock = socket.create_connection((broker.host, broker.port), timeout=60)
        extra = f'Last-Event-ID: {last_id}\r\n' if last_id is not None else ''
        # HTTP/1.0: the body comes as it is, without chunked framing.
        self.sock.sendall((f'GET /api/v1/events HTTP/1.0\r\nHost: x\r\n'
                           f'Authorization: Bearer {token}\r\n{extra}\r\n').encode())
        self.file = self.sock.makefile('rb')
        self.status = int(self.file.readline().split()[1])
        self.headers = {}
        while (line := self.file.readline().strip()):
            k, _, v = line.decode().partition(':')
            self.headers[k.lower()] = v.strip()
        self.events, self.lock = [], threading.Lock()
        if self.status == 200 and read:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        ev = {}
        try:
            while True:
                line = self.file.readline()
                if not line:
                    return
                line = line.decode().rstrip('\r\n')
                if not line:
                    if 'event' in ev:
                        ev['at'] = time.monotonic()
                        with self.lock:
                            self.events.append(ev)
                    ev = {}
                elif not line.startswith(':') and line.isascii() and ':' in line:
                    k, _, v = line.partition(':')
                    ev[k] = v.strip()
        except OSError:
            return

    def wait(self, pred, what, deadline_s=harness.WAIT_S):
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            with self.lock:
                for ev in self.events:
                    if pred(ev):
                        return ev
            time.sleep(0.05)
        raise AssertionError(f'no event {what}; got {self.events}')

    def close(self):
        # The reader's file keeps the descriptor: shut the connection down for real.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def data(ev):
    return json.loads(ev['data'])


class Events(VmCase):
    def stream(self, who, last_id=None):
        s = Stream(self.broker, self.tokens[who], last_id)
        self.addCleanup(s.close)
        return s

    def test_a_second_client_sees_changes_as_they_happen_and_only_its_own(self):
        self.start()
        root, bob, alice = self.stream('root'), self.stream('bob'), self.stream('alice')
        for s in (root, bob, alice):
            self.assertEqual(s.status, 200)
            self.assertEqual(s.headers['content-type'], 'text/event-stream')
        _, out = self.create()
        answered = time.monotonic()
        vm_id = out['vm']['id']

        def vm_state(state):
            return lambda ev: (ev['event'] == 'vm' and data(ev)['id'] == vm_id
                               and data(ev)['state'] == state)

        running = root.wait(vm_state('running'), 'vm running (root)')
        self.assertLess(running['at'] - answered, 1.0, 'the event came late')
        alice.wait(vm_state('running'), 'vm running (alice)')
        created = alice.wait(lambda ev: ev['event'] == 'operation' and
                             data(ev)['kind'] == 'create' and data(ev)['state'] == 'succeeded',
                             'create succeeded')
        self.assertEqual(data(created)['vm_id'], vm_id)
        # Steps are announced as they are taken.
        alice.wait(lambda ev: ev['event'] == 'operation' and
                   data(ev)['step'] == 'starting the guest', 'the starting step')
        # A stop by the owner reaches the admin's stream too.
        status, _, _ = self.api('POST', f'/api/v1/vms/{vm_id}/stop')
        self.assertEqual(status, 202)
        root.wait(vm_state('stopped'), 'vm stopped (root)')
        # bob saw nothing of alice's.
        time.sleep(0.5)
        with bob.lock:
            self.assertEqual([e for e in bob.events if e['event'] in ('vm', 'operation')], [])

        # Resume: from the first event alice saw, she gets the rest again, in order.
        with alice.lock:
            ids = [int(e['id']) for e in alice.events if 'id' in e]
        self.assertEqual(ids, sorted(ids))
        again = self.stream('alice', last_id=ids[0])
        again.wait(vm_state('stopped'), 'vm stopped after resuming')
        with again.lock:
            resumed = [int(e['id']) for e in again.events if 'id' in e]
        self.assertEqual(resumed[:len(ids) - 1], ids[1:])

    def test_a_service_account_sees_the_events_of_users_vms_only(self):
        self.start()
        portal = self.stream('portal')
        _, mine = self.create(who='root')
        _, theirs = self.create(who='alice')

        def of(vm_id):
            return lambda ev: ev['event'] == 'vm' and data(ev)['id'] == vm_id

        portal.wait(of(theirs['vm']['id']), "alice's VM")
        # The admin's VM was made first: had the portal been shown it, it would be there now.
        with portal.lock:
            self.assertEqual([e for e in portal.events if of(mine['vm']['id'])(e)], [])

    def test_bounds_answer_429(self):
        # A stream waits suspended: its client's leaving is seen at the next keep-alive.
        self.start(events={'max_per_user': '2', 'max_streams': '3', 'keepalive_s': '1'})
        a1, a2 = self.stream('alice'), self.stream('alice')
        self.assertEqual((a1.status, a2.status), (200, 200))
        self.assertEqual(self.stream('alice').status, 429)
        self.assertEqual(self.stream('bob').status, 200)
        self.assertEqual(self.stream('root').status, 429)  # the total
        a1.close()
        # A closed stream frees its place.
        end = time.monotonic() + 10
        while time.monotonic() < end:
            s = self.stream('root')
            if s.status == 200:
                break
            time.sleep(0.1)
        self.assertEqual(s.status, 200, self.broker.log()[-3000:])

    def test_a_thousand_idle_streams_hold_no_thread_each(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
        self.start(http={'max_connections': '1200', 'per_ip_connections': '1200'},
                   events={'max_streams': '1100', 'max_per_user': '1100'})
        pid = self.broker.proc.pid

        def threads():
            with open(f'/proc/{pid}/status') as f:
                return int(next(line for line in f if line.startswith('Threads:')).split()[1])

        before = threads()
        streams = [Stream(self.broker, self.tokens['root'], read=False) for _ in range(1000)]
        try:
            self.assertEqual({s.status for s in streams}, {200})
            self.assertLess(threads() - before, 10)
            # The broker still answers others at once.
            status, _, _ = self.broker.request('GET', '/healthz')
            self.assertEqual(status, 200)
        finally:
            for s in streams:
                s.close()


if __name__ == '__main__':
    harness.main()
