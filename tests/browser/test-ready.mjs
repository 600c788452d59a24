// SPDX-License-Identifier: LGPL-2.1-or-later
// Console-ready in the page: "Boot memtest" on the dashboard, with "Open the console when
// the screen is up" on (the default), leads to the console page by itself once the VM's
// console_ready_at is set, and noVNC connects there. With it off (remembered in the
// browser), a boot stays on the dashboard and says "Running" once the screen is up.
import { check, run, shot, signIn, waitFor } from './lib.mjs';

await run('ready', async ({ broker, page, name }) => {
    await signIn(page, broker, 'alice');
    check(await page.locator('#auto-open').isChecked(), 'auto-open is not on by default');
    await page.getByRole('button', { name: 'Boot memtest' }).click();
    await page.waitForURL(/\/ui\/console\.html/);
    const [vm] = await broker.vms();
    check(vm.console_ready_at, `the console opened before console_ready_at: ${JSON.stringify(vm)}`);
    await page.waitForFunction(() => ['connected', 'failed', 'disconnected'].includes(document.body.dataset.consoleState));
    const state = await page.evaluate(() => document.body.dataset.consoleState);
    if (state !== 'connected') await shot(page, name, 'not-connected');
    check(state === 'connected', `the console page did not connect: ${state}`);
    await shot(page, name, 'console');

    // Off, and remembered: the next boot stays here.
    await page.goto(`${broker.origin}/ui/dashboard.html`);
    await page.locator('#auto-open').uncheck();
    await page.reload();
    check(!(await page.locator('#auto-open').isChecked()), 'auto-open off was not remembered');
    await page.getByRole('button', { name: `Delete: ${vm.name}` }).waitFor();
    page.once('dialog', (d) => d.accept());
    await page.getByRole('button', { name: `Delete: ${vm.name}` }).click();
    await waitFor('the VM deleted', async () => (await broker.vms()).length === 0);
    await page.getByRole('button', { name: 'Boot memtest' }).click();
    const card = page.locator('#vm-list li.vm[data-ready="yes"]');
    await card.waitFor();
    check((await card.locator('.state').textContent()) === 'Running', 'the card does not say Running');
    check(/\/ui\/dashboard\.html$/.test(page.url()), `the page left the dashboard: ${page.url()}`);
}, { autoOpenConsole: true });
