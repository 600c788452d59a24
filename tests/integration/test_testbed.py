# SPDX-License-Identifier: LGPL-2.1-or-later
# contrib/testbed, the second hypervisor host the multi-host tests stand on: `up` prints the
# host's settings; its libvirtd answers on VMB_HOST2_URI with a host UUID other than this
# machine's, defines nothing of this host's, boots a guest whose VNC listens on
# VMB_HOST2_CONSOLE and answers from here; `down` leaves no daemon, namespace, link, folder
# or guest behind.
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

TESTBED = os.path.join(harness.SRC, 'contrib', 'testbed')


def host_uuid(uri):
    caps = subprocess.run(['virsh', '-q', '-c', uri, 'capabilities'], capture_output=True,
                          text=True, check=True).stdout
    return caps.split('<uuid>', 1)[1].split('</uuid>', 1)[0]


class Testbed(harness.TestCase):
    def test_up_boot_down(self):
        bed = os.path.join(self.workdir, 'testbed')
        self.addCleanup(subprocess.run, [TESTBED, 'down', bed], capture_output=True)
        r = subprocess.run([TESTBED, 'up', bed], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        env = dict(line.split('=', 1) for line in r.stdout.split())
        uri, console = env['VMB_HOST2_URI'], env['VMB_HOST2_CONSOLE']
        self.assertNotEqual(host_uuid(uri), host_uuid('qemu:///system'))
        self.assertEqual(subprocess.run(['virsh', '-q', '-c', uri, 'list', '--all', '--name'],
                                        capture_output=True, text=True).stdout.strip(), '')

        # A guest on the second host, its VNC on that host's console address.
        xml = os.path.join(self.workdir, 'guest.xml')
        r = harness.run(['template', 'render', 'memtest', '--vnc-port', '5990', '--ws-port',
                         '5991', '--listen', console, '--vnc-password', 'abcdefgh',
                         '--domain-type', 'qemu', '--storage-dir', self.workdir],
                        config=self.config())
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(xml, 'w') as f:
            f.write(r.stdout)
        r = subprocess.run(['virsh', '-q', '-c', uri, 'create', xml], capture_output=True,
                           text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        deadline = time.monotonic() + harness.WAIT_S
        while True:
            try:
                with socket.create_connection((console, 5990), timeout=5) as s:
                    self.assertEqual(s.recv(12), b'RFB 003.008\n')
                    break
            except OSError:
                self.assertLess(time.monotonic(), deadline, 'no VNC on the second host')
                time.sleep(0.2)
        self.assertEqual(subprocess.run(['virsh', '-q', '-c', 'qemu:///system', 'list',
                                         '--name'], capture_output=True, text=True)
                         .stdout.split().count('vmbroker-owner-00000000'), 0)

        r = subprocess.run([TESTBED, 'down', bed], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(bed))
        self.assertNotIn('vmbtb', subprocess.run(['ip', 'netns', 'list'], capture_output=True,
                                                 text=True).stdout)
        self.assertNotEqual(subprocess.run(['ip', 'link', 'show', 'vmbtb0'],
                                           capture_output=True).returncode, 0)
        self.assertNotEqual(subprocess.run(['virsh', '-q', '-c', uri, 'version'],
                                           capture_output=True, timeout=60).returncode, 0)
        self.assertNotIn('guest=vmbroker-owner-00000000',
                         subprocess.run(['ps', '-eo', 'args'], capture_output=True,
                                        text=True).stdout)


if __name__ == '__main__':
    harness.main()
