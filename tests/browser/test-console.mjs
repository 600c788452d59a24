// SPDX-License-Identifier: LGPL-2.1-or-later
// The console in the page: "Open console" on the dashboard leads to console.html with a
// one-time ticket in the fragment; the page trades it for a session
// (POST /api/v1/vms/{id}/console/session), wipes the fragment, and noVNC connects through
// vmbroker's websocket (GET /api/v1/vms/{id}/console/ws). memtest's blue screen must then be
// in the canvas, the same picture as `virsh screenshot` (size and dominant colour).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { check, run, shot, signIn, waitFor } from './lib.mjs';

/* Size and dominant colour of an image, measured by the browser (PNG data URL or canvas). */
const MEASURE = `(img) => {
    const c = document.createElement('canvas');
    c.width = img.width; c.height = img.height;
    const g = c.getContext('2d');
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    const counts = new Map();
    for (let i = 0; i < d.length; i += 4) {
        const k = (d[i] >> 4) << 8 | (d[i + 1] >> 4) << 4 | (d[i + 2] >> 4);
        counts.set(k, (counts.get(k) || 0) + 1);
    }
    let best = 0, n = 0;
    for (const [k, v] of counts) if (v > n) { best = k; n = v; }
    return { width: c.width, height: c.height, rgb: [(best >> 8) * 17, ((best >> 4) & 15) * 17, (best & 15) * 17],
             share: n / (c.width * c.height) };
}`;

const isBlue = (m) => m.rgb[2] >= 96 && m.rgb[2] > m.rgb[0] + 64 && m.rgb[2] > m.rgb[1] + 64 && m.share > 0.4;

await run('console', async ({ broker, page, name }) => {
    await signIn(page, broker, 'alice');
    await page.getByRole('button', { name: 'Boot memtest' }).click();
    await page.locator('#vm-list li.vm[data-state="running"]').waitFor();
    const [vm] = await broker.vms();

    const sessionAnswer = page.waitForResponse((r) => r.url().endsWith('/console/session'));
    await page.getByRole('button', { name: `Open console: ${vm.name}` }).click();
    await page.waitForURL(/\/ui\/console\.html/);
    const session = await sessionAnswer;
    check(session.status() !== 404,
        'POST /api/v1/vms/{id}/console/session answered 404: the server lacks the console session '
        + 'endpoint (ticket -> {password, ws_path, vm}), so the console page cannot start');
    check(session.status() === 200 || session.status() === 201,
        `POST /api/v1/vms/{id}/console/session answered ${session.status()}: ${await session.text()}`);
    check(!page.url().includes('ticket'),
        `the ticket is still in the address bar: ${page.url()}`);

    await page.waitForFunction(() => ['connected', 'failed', 'disconnected'].includes(document.body.dataset.consoleState));
    const state = await page.evaluate(() => document.body.dataset.consoleState);
    if (state !== 'connected') {
        await shot(page, name, 'not-connected');
        const text = await page.locator('#console-status').textContent();
        const msg = await page.locator('#console-msg').textContent();
        throw new Error(`noVNC did not connect through GET /api/v1/vms/{id}/console/ws (is the websocket route there?): ${text} ${msg}`);
    }
    check(await page.locator('#vm-title').textContent() === vm.name, 'the toolbar does not name the VM');
    check(await page.getByRole('button', { name: 'Send Ctrl-Alt-Del' }).isEnabled(), 'Ctrl-Alt-Del is disabled while connected');

    // The canvas shows memtest's blue screen ...
    await page.locator('#screen canvas').waitFor();
    // (Expressions as strings: Playwright runs them outside the page's CSP, which forbids eval.)
    const measureCanvas = () => page.evaluate(`(() => {
        const c = document.querySelector('#screen canvas');
        return c && c.width >= 100 ? (${MEASURE})(c) : null; })()`);
    const seen = await waitFor("memtest's blue screen in the noVNC canvas", async () => {
        const m = await measureCanvas();
        return m && isBlue(m) ? m : null;
    });
    await shot(page, name, 'connected');

    // ... the same picture libvirt takes of the guest.
    const png = path.join(broker.workdir, 'virsh-shot.png');
    const r = spawnSync('virsh', ['-c', 'qemu:///system', 'screenshot', vm.name, png], { encoding: 'utf8' });
    check(r.status === 0, `virsh screenshot failed: ${r.stderr}`);
    const dataUrl = `data:image/png;base64,${fs.readFileSync(png).toString('base64')}`;
    const virsh = await page.evaluate(`(async () => {
        const img = new Image();
        img.src = ${JSON.stringify(dataUrl)};
        await img.decode();
        return (${MEASURE})(img); })()`);
    check(isBlue(virsh), `virsh's screenshot is not memtest's blue screen: ${JSON.stringify(virsh)}`);
    check(isBlue(seen), `the canvas is not memtest's blue screen: ${JSON.stringify(seen)}`);
    check(seen.width === virsh.width && seen.height === virsh.height,
        `canvas ${seen.width}x${seen.height} but the guest's screen is ${virsh.width}x${virsh.height}`);
    check(seen.rgb.every((v, i) => Math.abs(v - virsh.rgb[i]) <= 17),
        `canvas colour ${seen.rgb} differs from the guest's ${virsh.rgb}`);

    // Scale to window can be switched while connected.
    await page.getByLabel('Scale to window').uncheck();
    await page.getByLabel('Scale to window').check();

    // The VM stops: the page says so.
    const stop = await broker.api('POST', `/api/v1/vms/${vm.id}/stop`);
    check(stop.status === 202, `stop answered ${stop.status}`);
    // The guest is gone (QEMU exits): vmbroker must close the browser's websocket.
    await waitFor('the VM to be stopped in the API', async () =>
        (await broker.api('GET', `/api/v1/vms/${vm.id}`)).body.state === 'stopped');
    try {
        await page.waitForFunction(() => document.body.dataset.consoleState === 'disconnected');
    } catch {
        const after = (await broker.api('GET', `/api/v1/vms/${vm.id}`)).body;
        const ps = spawnSync('virsh', ['-c', 'qemu:///system', 'domstate', vm.name], { encoding: 'utf8' });
        await shot(page, name, 'still-connected');
        if (ps.stdout.trim() === 'running')
            throw new Error(`the API says the VM is ${after.state} (${after.state_reason}) but libvirt says its domain `
                + `${vm.name} is still running, so its console rightly stays connected: POST /api/v1/vms/{id}/stop `
                + 'marked the VM stopped without the guest going away');
        throw new Error(`the VM stopped (API: ${after.state}, ${after.state_reason}; virsh: ${ps.stdout.trim()}) but `
            + `the console page still says "${await page.locator('#console-status').textContent()}": vmbroker did not `
            + 'close the websocket (GET /api/v1/vms/{id}/console/ws) when QEMU went away');
    }
    // ... and why: vmbroker closed the console for the stop (vm.console.closed_reason).
    const reason = (await broker.api('GET', `/api/v1/vms/${vm.id}`)).body.console.closed_reason;
    check(reason, 'the stopped VM has no console.closed_reason');
    await waitFor(`the page to say "${reason}"`, async () =>
        (await page.locator('#console-status').textContent()).includes(reason));
    await shot(page, name, 'disconnected');
});
