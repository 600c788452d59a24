// SPDX-License-Identifier: LGPL-2.1-or-later
// Base images and templates from the admin page: the admin picks a qcow2 file (the name fills
// in from it), uploads it with the progress bar and sees it listed with its size; a qcow2 with
// a backing file is refused with the server's reason; Delete removes the image from the page,
// the API and libvirt's base pool. Then the admin defines a template with the form (it shows
// on the dashboard), edits it, is told what is wrong with a bad one, and deletes it.
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

    const tmsg = page.locator('#templates-msg');
    await page.locator('#template-name').fill('lab');
    await page.getByRole('button', { name: 'Save template' }).click();
    await tmsg.filter({ hasText: 'lab is defined.' }).waitFor();
    const trow = page.locator('#template-rows tr[data-name="lab"]');
    check((await trow.textContent()).includes('api'), `the template's row does not say api: ${await trow.textContent()}`);
    await trow.getByRole('button', { name: 'Edit template lab' }).click();
    const def = JSON.parse(await page.locator('#template-json').inputValue());
    check(def.memory_mib === 1024, `Edit did not load the definition: ${JSON.stringify(def)}`);
    await page.locator('#template-json').fill(JSON.stringify({ ...def, memory_mib: 0 }));
    await page.getByRole('button', { name: 'Save template' }).click();
    await tmsg.filter({ hasText: 'memory_mib' }).waitFor();
    await page.locator('#template-json').fill(JSON.stringify({ ...def, memory_mib: 768 }));
    await page.getByRole('button', { name: 'Save template' }).click();
    await tmsg.filter({ hasText: 'lab is changed.' }).waitFor();
    // The row is drawn again after the message: wait for it rather than read it at once.
    await waitFor('the row showing the change', async () => (await trow.textContent()).includes('768 MiB'));
    await shot(page, name, 'template');
    await page.goto(`${broker.origin}/`);
    await page.locator('#template-list .card[data-name="lab"]').waitFor();
    await page.goto(`${broker.origin}/ui/admin.html`);
    page.once('dialog', (d) => d.accept());
    await page.locator('#template-rows tr[data-name="lab"]').getByRole('button', { name: 'Delete template lab' }).click();
    await tmsg.filter({ hasText: 'lab is deleted.' }).waitFor();
    check(!(await broker.api('GET', '/api/v1/templates')).body.some((t) => t.name === 'lab'), 'the API still lists the template');
});
fs.rmSync(work, { recursive: true, force: true });
