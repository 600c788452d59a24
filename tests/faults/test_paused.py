# SPDX-License-Identifier: LGPL-2.1-or-later
# Paused guests on real QEMU. A guest libvirt reports paused (virsh suspend, or QEMU stopping
# it by itself as on a KVM internal error) is `paused` in the API with the reason in plain
# words, and counted so on /metrics; resumed, it is `running` again. The owner can stop it
# (at once: a paused guest cannot hear ACPI, so no stop_timeout_s wait), restart it and
# delete it. With events off, the periodic sync sees the same. Waits are bounded generously
# (PROMPT_S); nothing asserts how fast beyond that.
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults  # noqa: E402
from faults import virsh  # noqa: E402

PROMPT_S = 10
STOP_TIMEOUT_S = 30
SUSPENDED = 'paused outside vmbroker (virsh suspend)'


class Paused(faults.FaultCase):
    def vms_gauge(self, state):
        """The value of vmbroker_vms{state="STATE"} on /metrics (0 when absent)."""
        _, _, text = self.broker.request('GET', '/metrics')
        for line in text.decode().splitlines():
            if line.startswith(f'vmbroker_vms{{state="{state}"}} '):
                return float(line.rsplit(' ', 1)[1])
        return 0.0

    def wait_paused(self, auth, vm, reason):
        got = self.wait_for(f'VM {vm["id"]} paused', lambda: (
            lambda v: v if v['state'] == 'paused' else None)(self.get_vm(auth, vm['id'])),
            deadline_s=PROMPT_S)
        self.assertEqual(got['state_reason'], reason)
        # Still QEMU's: it keeps its ports.
        self.assertIsNotNone(got['vnc_port'])
        self.assertEqual(self.domstate(vm['name']), 'paused')
        return got

    def wait_running(self, auth, vm):
        return self.wait_for(f'VM {vm["id"]} running', lambda: (
            lambda v: v if v['state'] == 'running' else None)(self.get_vm(auth, vm['id'])),
            deadline_s=PROMPT_S)

    def test_suspend_resume_stop_restart_delete(self):
        self.start(libvirt={'stop_timeout_s': str(STOP_TIMEOUT_S)})
        admin = self.user('root')
        owner = self.user('alice', role='user')
        vm = self.create(owner, 'memtest-disk')

        virsh('suspend', vm['name'], check=True)
        self.wait_paused(owner, vm, SUSPENDED)
        self.assertEqual(self.vms_gauge('paused'), 1)
        self.assertEqual(self.vms_gauge('running'), 0)
        status, _ = self.api('POST', f'/api/v1/vms/{vm["id"]}/console', auth=owner)
        self.assertEqual(status, 409)
        self.assert_agree()

        virsh('resume', vm['name'], check=True)
        got = self.wait_running(owner, vm)
        self.assertIsNone(got['state_reason'])
        self.assertEqual(got['started_at'], vm['started_at'])  # a resume is not a start
        self.assertEqual(self.vms_gauge('paused'), 0)
        self.assertEqual(self.vms_gauge('running'), 1)

        # Stopped by its owner while paused: destroyed at once, well inside stop_timeout_s
        # (memtest ignores ACPI, so a wait for it would last all of it).
        virsh('suspend', vm['name'], check=True)
        self.wait_paused(owner, vm, SUSPENDED)
        t0 = time.monotonic()
        status, got = self.api('POST', f'/api/v1/vms/{vm["id"]}/stop', auth=owner)
        self.assertEqual(status, 202, got)
        got = self.wait_state(owner, vm['id'], 'stopped')
        took = time.monotonic() - t0
        print(f'stop of a paused VM: {took:.2f} s', file=sys.stderr)
        self.assertLess(took, STOP_TIMEOUT_S / 2)
        self.assertEqual(got['state_reason'], 'stopped by its owner')
        self.assertEqual(self.domstate(vm['name']), 'shut off')
        self.assert_agree()

        # Restarted while paused (reboot, as start): powered off and started again.
        status, got = self.api('POST', f'/api/v1/vms/{vm["id"]}/start', auth=owner)
        self.assertEqual(status, 200, got)
        virsh('suspend', vm['name'], check=True)
        self.wait_paused(owner, vm, SUSPENDED)
        status, got = self.api('POST', f'/api/v1/vms/{vm["id"]}/reboot', auth=owner)
        self.assertEqual(status, 202, got)
        self.assertEqual(got['state'], 'running')
        self.assertEqual(self.domstate(vm['name']), 'running')
        self.assert_agree()

        # Deleted while paused.
        virsh('suspend', vm['name'], check=True)
        self.wait_paused(owner, vm, SUSPENDED)
        status, _ = self.api('DELETE', f'/api/v1/vms/{vm["id"]}', auth=owner)
        self.assertEqual(status, 204)
        self.assertIsNone(self.domstate(vm['name']))
        self.assertEqual(self.vms_gauge('paused'), 0)
        self.assertEqual(self.assert_agree(), {})
        status, _ = self.api('GET', f'/api/v1/vms/{vm["id"]}', auth=admin)
        self.assertEqual(status, 404)

    def test_qemu_pausing_the_guest_itself(self):
        # What QEMU does on a KVM internal error: it stops the guest's CPUs without libvirt
        # asking, and libvirt records the pause without a reason.
        self.start()
        admin = self.user('root')
        vm = self.create(admin, 'memtest')
        virsh('qemu-monitor-command', vm['name'], '--hmp', 'stop', check=True)
        got = self.wait_paused(admin, vm, 'paused by libvirt: internal error (QEMU stopped '
                               'the guest without a reason, as on a KVM emulation failure)')
        self.assertNotIn('/', got['state_reason'])  # plain words, no paths
        # Restarted from the pause: running, on a fresh QEMU.
        status, got = self.api('POST', f'/api/v1/vms/{vm["id"]}/reboot', auth=admin)
        self.assertEqual(status, 202, got)
        self.assertEqual(got['state'], 'running')
        self.assertEqual(self.domstate(vm['name']), 'running')
        self.assert_agree()
        status, _ = self.api('DELETE', f'/api/v1/vms/{vm["id"]}', auth=admin)
        self.assertEqual(status, 204)
        self.assertEqual(self.assert_agree(), {})

    def test_periodic_sync_sees_a_pause(self):
        self.start(libvirt={'events': 'false', 'sync_interval_s': '1'})
        admin = self.user('root')
        vm = self.create(admin, 'memtest-disk')
        virsh('suspend', vm['name'], check=True)
        self.wait_paused(admin, vm, SUSPENDED)
        self.assertEqual(self.vms_gauge('paused'), 1)
        virsh('resume', vm['name'], check=True)
        self.wait_running(admin, vm)
        # Destroyed by hand while paused: stopped, ports released, disk dropped.
        virsh('suspend', vm['name'], check=True)
        self.wait_paused(admin, vm, SUSPENDED)
        virsh('destroy', vm['name'], check=True)
        got = self.wait_state(admin, vm['id'], 'stopped')
        self.assertEqual(got['state_reason'], 'destroyed outside vmbroker')
        self.assertEqual(self.metric('vmbroker_libvirt_events_total'), 0)
        self.assert_agree()
        status, _ = self.api('DELETE', f'/api/v1/vms/{vm["id"]}', auth=admin)
        self.assertEqual(status, 204)
        self.assertEqual(self.assert_agree(), {})


if __name__ == '__main__':
    faults.main()
