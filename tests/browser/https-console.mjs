// SPDX-License-Identifier: LGPL-2.1-or-later
// Chromium's half of tests/integration/test_production.py: over https through nginx (the
// test's self-signed certificate), sign in through the web UI, open the console of the VM
// named on the command line, and wait until noVNC is connected through the websocket.
//   node https-console.mjs ORIGIN USER PASSWORD VM_NAME
// Exits 0 once connected, 1 with the reason otherwise.
import { check, launch, log, newPage, shot } from './lib.mjs';

const [origin, user, password, vmName] = process.argv.slice(2);
const cleanups = [];
const problems = [];
let failed = null;
try {
    const context = await launch(cleanups, { ignoreHTTPSErrors: true });
    const page = await newPage(context, problems);
    await page.goto(`${origin}/`);
    await page.locator('#signin-username').fill(user);
    await page.locator('#signin-password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(/\/ui\/dashboard\.html$/);
    await page.getByRole('button', { name: `Open console: ${vmName}` }).click();
    await page.waitForURL(/\/ui\/console\.html/);
    await page.waitForFunction(() => ['connected', 'failed', 'disconnected']
        .includes(document.body.dataset.consoleState));
    const state = await page.evaluate(() => document.body.dataset.consoleState);
    await shot(page, 'production-https', 'console');
    check(state === 'connected', `noVNC did not connect through nginx: ${state}`);
    check(problems.length === 0, `the pages reported problems:\n  ${problems.join('\n  ')}`);
} catch (e) {
    failed = e;
} finally {
    for (const fn of cleanups.reverse()) {
        try { await fn(); } catch (e) { log(`cleanup step failed: ${e.message}`); }
    }
}
if (failed) {
    console.error(`FAIL https-console: ${failed.message || failed}`);
    process.exit(1);
}
log('connected');
process.exit(0);
