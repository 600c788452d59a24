// SPDX-License-Identifier: LGPL-2.1-or-later
// Base images from the admin page: the admin picks a qcow2 file (the name fills in from it),
// uploads it with the progress bar and sees it listed with its size; a qcow2 with a backing
// file is refused with the server's reason; Delete removes the image from the page, the API
// and libvirt's base pool.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { check, run, shot, signIn, waitFor } from './lib.mjs';

function qemuImg(...args) {
    const r = spawnSync('qemu-img', args, { encoding: 'utf8' });
    check(r.status === 0, `qemu-img ${args.join(' ')}: ${r.stderr}`);
}

const work = fs.mkdtempSync('/tmp/vmbb-images-');
const good = path.join(work, 'Lab-Base.qcow2');
const backed = path.join(work, 'backed.qcow2');
qemuImg('create', '-q', '-f', 'qcow2', good, '48M');
qemuImg('create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', good, backed, '48M');

await run('images', async ({ broker, page, name }) => {
    await signIn(page, broker, 'root');
    await page.goto(`${broker.origin}/ui/admin.html`);
    const msg = page.locator('#images-msg');

    await page.locator('#image-file').setInputFiles(good);
    check(await page.locator('#image-name').inputValue() === 'lab-base.qcow2', 'the name did not fill in from the file');
    await page.getByRole('button', { name: 'Upload' }).click();
    await msg.filter({ hasText: 'lab-base.qcow2 is uploaded (48 MiB).' }).waitFor();
    const row = page.locator('#image-rows tr[data-name="lab-base.qcow2"]');
    await row.waitFor();
    check((await row.textContent()).includes('qcow2'), `the row lacks the format: ${await row.textContent()}`);
    await shot(page, name, 'uploaded');

    await page.locator('#image-name').fill('');
    await page.locator('#image-file').setInputFiles(backed);
    await page.getByRole('button', { name: 'Upload' }).click();
    await msg.filter({ hasText: 'backing file' }).waitFor();
    check(await page.locator('#image-rows tr').count() === 1, 'a refused image is listed');

    page.once('dialog', (d) => d.accept());
    await row.getByRole('button', { name: 'Delete lab-base.qcow2' }).click();
    await page.locator('#image-empty').waitFor({ state: 'visible' });
    await waitFor('the API to forget the image', async () => (await broker.api('GET', '/api/v1/images')).body.length === 0);
    const vols = spawnSync('virsh', ['-c', 'qemu:///system', 'vol-list', `${broker.prefix}base`], { encoding: 'utf8' }).stdout;
    check(!vols.includes('lab-base.qcow2'), `libvirt's base pool still lists the image:\n${vols}`);
    await shot(page, name, 'deleted');
});
fs.rmSync(work, { recursive: true, force: true });
