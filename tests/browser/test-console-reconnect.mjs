// SPDX-License-Identifier: LGPL-2.1-or-later
// A console that survives: a portal's student (no password, no sign-in) opens the console_url
// the portal got, reloads the page, has the websocket cut under it (the test kills vmbroker's
// connection to QEMU with `ss -K`), opens a second tab of the same console, and each time the
// page connects again by itself. When the portal withdraws the access, the page stops and
// says why instead of retrying.
import { spawnSync } from 'node:child_process';
import { check, log, newPage, run, shot, waitFor } from './lib.mjs';

const SHORT_MS = 30_000; // "within a few seconds", with room for a loaded machine

async function connected(page, what, deadlineMs = 120_000) {
    try {
        await page.waitForFunction(() => document.body.dataset.consoleState === 'connected', null,
            { timeout: deadlineMs });
    } catch {
        const text = await page.locator('#console-status').textContent();
        const msg = await page.locator('#console-msg').textContent();
        throw new Error(`${what}: the console did not connect: "${text}" "${msg}"`);
    }
}

await run('console-reconnect', async ({ broker, context, page, name, problems }) => {
    broker.vmb(['user', 'add', 'portal', '--role', 'service', '--password-stdin'], 'portal password 1234\n');
    const portal = broker.vmb(['token', 'create', 'portal', '--name', 'course']).trim();
    const r = await fetch(`${broker.origin}/api/v1/vms`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${portal}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ template: 'memtest', owner: 'student1' }),
    });
    const made = await r.json();
    check(r.status === 201, `the portal's create answered ${r.status}: ${JSON.stringify(made)}`);
    const vm = made.vm;

    // Opened from the portal: the ticket goes, the VM stays in the address.
    const sockets = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    await page.goto(made.console_url);
    await connected(page, 'first open');
    check(!page.url().includes('ticket'), `the ticket is still in the address bar: ${page.url()}`);
    check(page.url().includes(`#vm=${vm.id}`), `the address lost the VM: ${page.url()}`);

    // F5: the console session cookie opens it again.
    await page.reload();
    await connected(page, 'after a reload');
    await shot(page, name, 'after-reload');

    // A console in use outlives console.session_idle_s (10 s here): the page keeps its
    // session alive while connected, so a later drop still reconnects.
    await page.waitForTimeout(15_000);
    check(await page.evaluate(() => document.body.dataset.consoleState) === 'connected', 'the console dropped while idle');

    // The network drops: vmbroker's connection to QEMU is killed under the page.
    const before = sockets.length;
    const cut = spawnSync('ss', ['-K', 'dst', '127.0.0.1', 'dport', '=', String(vm.ws_port)], { encoding: 'utf8' });
    check(cut.status === 0, `ss -K failed: ${cut.stderr}`);
    await page.waitForFunction(() => document.body.dataset.consoleState !== 'connected', null, { timeout: SHORT_MS });
    const started = Date.now();
    await connected(page, 'after the websocket was cut', SHORT_MS);
    log(`reconnected ${Date.now() - started} ms after the cut`);
    check(sockets.length > before, 'the page did not open a new websocket after the cut');

    // A second tab of the same console.
    const tab2 = await newPage(context, problems);
    await tab2.goto(`${broker.origin}/ui/console.html#vm=${vm.id}`);
    await connected(tab2, 'in a second tab');
    await tab2.close();

    // The portal withdraws the access: the page stops, saying so.
    const end = await fetch(`${broker.origin}/api/v1/vms/${vm.id}/console/sessions`, {
        method: 'DELETE', headers: { Authorization: `Bearer ${portal}` },
    });
    check(end.status === 204, `DELETE console/sessions answered ${end.status}`);
    await waitFor('the page to stop and say the access ended', async () =>
        (await page.evaluate(() => document.body.dataset.consoleState)) === 'disconnected'
        && (await page.locator('#console-status').textContent()).includes('access to this console has ended'));
    await shot(page, name, 'withdrawn');
    const quiet = sockets.length;
    await new Promise((res) => setTimeout(res, 5000));
    check(sockets.length === quiet, 'the page kept reconnecting after the access ended');
}, { config: { console: { session_idle_s: 10 } } });
