// SPDX-License-Identifier: LGPL-2.1-or-later
// Uploading through the page: a real ISO (Debian's memtest86+) PUT raw to /api/v1/isos/{name}
// by XMLHttpRequest, with the progress bar, speed and time left; the result shows name, size
// and the same SHA-256 as the file; the ISO is then on the dashboard and boots with
// iso-blank-disk. Then a larger upload, slowed down by Chromium's own network throttling so
// that it is surely under way, is cancelled, and nothing of it is listed.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { check, run, shot, signIn, waitFor } from './lib.mjs';

const ISO = '/usr/lib/memtest86+/memtest86+x64.iso';

await run('upload', async ({ broker, context, page, name }) => {
    check(fs.existsSync(ISO), `${ISO} is missing: apt-get install memtest86+`);
    const bytes = fs.readFileSync(ISO);
    const sha256 = crypto.createHash('sha256').update(bytes).digest('hex');

    await signIn(page, broker, 'alice');
    await page.goto(`${broker.origin}/ui/upload.html`);
    await page.locator('#iso-file').setInputFiles(ISO);
    check(await page.locator('#iso-name').inputValue() === 'memtest86-x64.iso',
        `the name proposed for memtest86+x64.iso is ${await page.locator('#iso-name').inputValue()}`);
    const answer = page.waitForResponse((r) => r.request().method() === 'PUT' && r.url().includes('/api/v1/isos/'));
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    const res = await answer;
    check(res.status() !== 404 && res.status() !== 405,
        `PUT /api/v1/isos/{name} answered ${res.status()}: the server lacks the upload endpoint, so the upload page cannot work`);
    if (res.status() !== 201) {
        await page.locator('#upload-msg').filter({ hasText: /\S/ }).waitFor();
        throw new Error(`PUT /api/v1/isos/memtest86-x64.iso answered ${res.status()}; the page says: ${await page.locator('#upload-msg').textContent()}`);
    }
    await page.locator('#result').waitFor();
    check(await page.locator('#result-name').textContent() === 'memtest86-x64.iso', 'the result shows another name');
    check((await page.locator('#result-size').textContent()).includes(`(${bytes.length} bytes)`),
        `the result shows size ${await page.locator('#result-size').textContent()}, the file has ${bytes.length} bytes`);
    check(await page.locator('#result-sha256').textContent() === sha256, 'the SHA-256 shown is not the file\'s');
    check(await page.locator('#upload-progress').evaluate((p) => p.value === p.max), 'the progress bar is not full');
    await shot(page, name, 'uploaded');

    // On the dashboard, and bootable with the ISO template.
    const isos = await broker.api('GET', '/api/v1/isos');
    check(isos.status === 200, `GET /api/v1/isos answered ${isos.status}`);
    await page.goto(`${broker.origin}/ui/dashboard.html`);
    const card = page.locator('#iso-list li.iso').filter({ hasText: 'memtest86-x64.iso' });
    await card.waitFor();
    await card.getByRole('button', { name: 'Boot memtest86-x64.iso with iso-blank-disk' }).click();
    await page.locator('#vm-list li.vm[data-state="running"]').waitFor();
    const [vm] = await broker.vms();
    check(vm.template === 'iso-blank-disk' && vm.iso, `the VM is not iso-blank-disk with an ISO: ${JSON.stringify(vm)}`);
    await shot(page, name, 'booted');
    const del = await broker.api('DELETE', `/api/v1/vms/${vm.id}`);
    check(del.status === 204, `DELETE answered ${del.status}`);

    // Cancel: a 256 MiB file at 4 MiB/s (Chromium's throttling) is surely still going when
    // Cancel is pressed after the first progress.
    const big = path.join(broker.workdir, 'big.iso');
    const fd = fs.openSync(big, 'w');
    fs.writeSync(fd, bytes);
    fs.ftruncateSync(fd, 256 * 1024 * 1024);
    fs.closeSync(fd);
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0,
        downloadThroughput: -1, uploadThroughput: 4 * 1024 * 1024 });
    await page.goto(`${broker.origin}/ui/upload.html`);
    await page.locator('#iso-file').setInputFiles(big);
    await page.locator('#iso-name').fill('cancelled.iso');
    await page.getByRole('button', { name: 'Upload', exact: true }).click();
    await waitFor('upload progress with speed and time left', async () =>
        /at .+\/s, about .+ left/.test(await page.locator('#upload-stats').textContent()));
    await shot(page, name, 'progress');
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.locator('#upload-msg').filter({ hasText: 'Upload cancelled' }).waitFor();
    check(await page.getByRole('button', { name: 'Upload', exact: true }).isEnabled(), 'Upload stays disabled after cancel');
    await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    await shot(page, name, 'cancelled');
    await waitFor('the cancelled upload to be absent from GET /api/v1/isos', async () => {
        const list = await broker.api('GET', '/api/v1/isos');
        return list.status === 200 && !list.body.some((i) => i.name === 'cancelled.iso');
    });
});
