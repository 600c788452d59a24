// SPDX-License-Identifier: LGPL-2.1-or-later
// Sessions across tabs: a second tab opens the dashboard without signing in again; signing in
// again as the same user in another tab leaves the first tab's actions working; another
// user's sign-in in another tab is said in the first tab, at the top of the page and on the
// action the person tries, instead of failures nobody sees.
import { check, newPage, PASSWORDS, run, shot, signIn } from './lib.mjs';

async function formSignIn(page, user) {
    await page.locator('#signin-username').fill(user);
    await page.locator('#signin-password').fill(PASSWORDS[user]);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(/\/ui\/dashboard\.html$/);
}

await run('tabs', async ({ broker, context, page, name, problems }) => {
    // Two tabs that showed the sign-in page before anyone signed in (stale tabs).
    await page.goto(`${broker.origin}/`);
    const stale1 = await newPage(context, problems);
    await stale1.goto(`${broker.origin}/`);
    const stale2 = await newPage(context, problems);
    await stale2.goto(`${broker.origin}/`);

    await signIn(page, broker, 'alice');
    await page.locator('#who').filter({ hasText: 'alice' }).waitFor();

    // A second tab: straight in, no "sign in again in this tab".
    const tab2 = await newPage(context, problems);
    await tab2.goto(`${broker.origin}/ui/dashboard.html`);
    await tab2.locator('#who').filter({ hasText: 'alice' }).waitFor();
    check(new URL(tab2.url()).pathname === '/ui/dashboard.html', `the second tab was sent to ${tab2.url()}`);

    // Alice signs in again in a stale tab: a new session (and CSRF token) for the browser.
    await formSignIn(stale1, 'alice');
    // The first tab still acts: it boots a VM, and the second tab too (it learns the new token).
    await page.getByRole('button', { name: 'Boot memtest' }).click();
    await page.locator('#vm-list li.vm').first().waitFor();
    // The boot's notice is next to the VM, not by the template's button.
    await page.locator('#vm-list li.vm .msg').filter({ hasText: /is (running|starting up)/ }).waitFor();
    const bootMsg = await page.locator('#boot-msg').textContent();
    check(!/CSRF|refused|not allowed/i.test(bootMsg), `the first tab's boot failed after a re-login: ${bootMsg}`);
    await tab2.locator('#vm-list li.vm[data-state="running"]').waitFor();
    await tab2.getByRole('button', { name: /^Reboot: / }).click();
    const rowMsg2 = tab2.locator('#vm-list li.vm .msg');
    await tab2.waitForTimeout(1000);
    const said2 = (await rowMsg2.first().textContent()) || '';
    check(!/CSRF/i.test(said2), `the second tab's reboot failed after a re-login: ${said2}`);

    // The stock noVNC page's password is shown to the owner next to its link.
    await tab2.getByRole('button', { name: /^Stock noVNC: / }).click();
    const stock = tab2.locator('#vm-list li.vm .msg').filter({ hasText: 'stock noVNC page' });
    await stock.waitFor();
    const shown = await stock.locator('code.vnc-password').textContent();
    check(/^\S{4,}$/.test(shown), `no VNC password next to the noVNC link: "${shown}"`);
    check((await stock.getByRole('link').getAttribute('href')).includes('/novnc/vnc.html#path='), 'the link is not novnc_url');

    // Bob signs in in the other stale tab: the first tab says so, at the top and on an action.
    await formSignIn(stale2, 'bob');
    await page.locator('#session-banner').filter({ hasText: 'signed in as bob' }).waitFor();
    await page.locator('#vm-list li.vm[data-state="running"]').first().waitFor();
    await page.getByRole('button', { name: /^Stop: / }).first().click();
    await page.locator('#vm-list li.vm .msg').filter({ hasText: 'signed in as bob' }).waitFor();
    await shot(page, name, 'another-user');
    // Nothing was stopped for bob or for alice by that click.
    const vms = await broker.vms();
    check(vms.length === 1 && vms[0].owner === 'alice' && vms[0].state !== 'stopped',
        `the VM changed: ${JSON.stringify(vms.map((v) => [v.owner, v.state]))}`);
});
