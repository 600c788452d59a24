// SPDX-License-Identifier: LGPL-2.1-or-later
// Snapshots from the dashboard: alice boots a VM with a disk, takes a snapshot with the
// card's button, a pattern is then written to the guest's disk (qemu-io inside its QEMU),
// she reverts with the snapshot's button and the disk reads zeros again; she deletes the
// snapshot and the card and the API agree it is gone. A VM without a disk has no snapshot
// button.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { check, run, shot, signIn, waitFor } from './lib.mjs';

function virsh(...args) {
    const r = spawnSync('virsh', ['-c', 'qemu:///system', ...args], { encoding: 'utf8' });
    check(r.status === 0, `virsh ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
}

/* Runs a qemu-io command on the guest's disk inside its QEMU; returns what it printed to the
   domain's log. */
async function qemuIo(domain, command) {
    const info = virsh('qemu-monitor-command', domain, '--hmp', 'info block');
    const device = /Attached to:\s+(\S+)/.exec(info.split('.qcow2')[1])[1];
    const logPath = `/var/log/libvirt/qemu/${domain}.log`;
    const before = fs.statSync(logPath).size;
    virsh('qemu-monitor-command', domain, '--hmp', `qemu-io -d ${device} "${command}"`);
    let out = '';
    await waitFor(`qemu-io to answer ${command}`, async () => {
        out = fs.readFileSync(logPath, 'utf8').slice(before);
        return /bytes at offset|Pattern verification failed/.test(out);
    });
    return out;
}

const work = fs.mkdtempSync('/tmp/vmbb-snapshots-');
const templates = path.join(work, 'templates');
fs.mkdirSync(templates);
const memtest = JSON.parse(fs.readFileSync(path.join(process.env.VMB_SOURCE_ROOT, 'templates', 'memtest.json'), 'utf8'));
fs.writeFileSync(path.join(templates, 'memtest.json'), JSON.stringify(memtest));
fs.writeFileSync(path.join(templates, 'withdisk.json'),
    JSON.stringify({ ...memtest, description: 'memtest with a 1 GiB disk', disk_gib: 1, boot: ['cdrom', 'hd'] }));

await run('snapshots', async ({ broker, page, name }) => {
    await signIn(page, broker, 'alice');
    await page.getByRole('button', { name: 'Boot withdisk' }).click();
    await page.locator('#vm-list li.vm[data-state="running"]').waitFor();
    const [vm] = await broker.vms();
    const card = page.locator(`#vm-list li.vm[data-id="${vm.id}"]`);
    const take = card.getByRole('button', { name: `Take snapshot: ${vm.name}` });
    await waitFor('the snapshot button', async () => await take.isVisible() && await take.isEnabled());

    await take.click();
    const item = card.locator('ul.snapshots li');
    await item.first().waitFor();
    const snap = await item.first().getAttribute('data-snap');
    check(/^snap-\d{8}-\d{6}$/.test(snap), `the snapshot's name is not made from the time: ${snap}`);
    check(virsh('snapshot-list', vm.name, '--name').trim() === snap, 'virsh does not list the snapshot');
    await shot(page, name, 'taken');

    check((await qemuIo(vm.name, 'write -P 0xab 0 4k')).includes('wrote 4096/4096'), 'the pattern was not written');
    page.once('dialog', (d) => d.accept());
    await card.getByRole('button', { name: `Revert snapshot ${snap} of ${vm.name}` }).click();
    await card.locator('.msg').filter({ hasText: `Back at snapshot ${snap}.` }).waitFor();
    check(!(await qemuIo(vm.name, 'read -P 0 0 4k')).includes('verification failed'),
        'the disk still holds what was written after the snapshot');
    check((await broker.api('GET', `/api/v1/vms/${vm.id}`)).body.state === 'running', 'the VM does not run after the revert');
    await shot(page, name, 'reverted');

    await card.getByRole('button', { name: `Delete snapshot ${snap} of ${vm.name}` }).click();
    await waitFor('the snapshot to leave the card', async () => (await item.count()) === 0);
    const left = (await broker.api('GET', `/api/v1/vms/${vm.id}/snapshots`)).body;
    check(Array.isArray(left) && left.length === 0, `the API still lists snapshots: ${JSON.stringify(left)}`);

    // A VM without a disk offers no snapshot.
    await broker.api('DELETE', `/api/v1/vms/${vm.id}`);
    await page.locator('#vm-empty').waitFor({ state: 'visible' });
    await page.getByRole('button', { name: 'Boot memtest' }).click();
    await page.locator('#vm-list li.vm[data-state="running"]').waitFor();
    const [plain] = await broker.vms();
    check(await page.locator(`#vm-list li.vm[data-id="${plain.id}"]`)
        .getByRole('button', { name: `Take snapshot: ${plain.name}` }).isHidden(), 'a VM without a disk offers a snapshot');
}, { config: { templates: { dir: templates } } });
fs.rmSync(work, { recursive: true, force: true });
