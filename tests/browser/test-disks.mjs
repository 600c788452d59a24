// SPDX-License-Identifier: LGPL-2.1-or-later
// Persistent disks from the dashboard: alice boots a persistent overlay template, stops the
// VM, and finds its disk under "My disks" with its size and VM; Reset keeps it listed (as
// new: py-disks reads its contents), Delete removes it from the card and from the API.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { check, run, shot, signIn, waitFor } from './lib.mjs';

const work = fs.mkdtempSync('/tmp/vmbb-disks-');
fs.chmodSync(work, 0o755);
const templates = path.join(work, 'templates');
fs.mkdirSync(templates);
fs.writeFileSync(path.join(templates, 'keep.json'), JSON.stringify({
    description: 'a disk of your own', kind: 'overlay', base_image: 'tiny.qcow2', base_format: 'qcow2',
    persistent: true, memory_mib: 256, vcpus: 1, video: 'vga', disk_bus: 'virtio', network: 'none', boot: ['hd'],
}));

await run('disks', async ({ broker, page, name }) => {
    const base = path.join(broker.workdir, 'storage', 'base');
    fs.mkdirSync(base, { recursive: true, mode: 0o755 });
    const made = spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', path.join(base, 'tiny.qcow2'), '64M'], { encoding: 'utf8' });
    check(made.status === 0, `qemu-img: ${made.stderr}`);

    await signIn(page, broker, 'alice');
    await page.getByRole('button', { name: 'Boot keep' }).click();
    await page.locator('#vm-list li.vm[data-state="running"]').waitFor();
    const [vm] = await broker.vms();
    await broker.api('POST', `/api/v1/vms/${vm.id}/stop`);
    await page.locator('#vm-list li.vm[data-state="stopped"]').waitFor();
    await page.reload();

    const card = page.locator('#disk-list li.disk[data-id="keep@alice"]');
    await card.waitFor();
    const facts = await card.locator('p').textContent();
    check(facts.includes('64 MiB') && facts.includes(`used by ${vm.name}`), `the card does not show the size and VM: ${facts}`);
    await shot(page, name, 'listed');

    page.once('dialog', (d) => d.accept());
    await card.getByRole('button', { name: 'Reset the disk of keep' }).click();
    await page.locator('#disk-msg').filter({ hasText: 'The disk of keep is as new.' }).waitFor();
    const [disk] = (await broker.api('GET', '/api/v1/disks')).body;
    check(disk && disk.id === 'keep@alice', `the API lost the disk after a reset: ${JSON.stringify(disk)}`);

    page.once('dialog', (d) => d.accept());
    await page.locator('#disk-list li.disk[data-id="keep@alice"]').getByRole('button', { name: 'Delete the disk of keep' }).click();
    await page.locator('#disk-empty').waitFor({ state: 'visible' });
    await waitFor('the API to forget the disk', async () => (await broker.api('GET', '/api/v1/disks')).body.length === 0);
    await shot(page, name, 'deleted');
}, { config: { templates: { dir: templates } } });
fs.rmSync(work, { recursive: true, force: true });
