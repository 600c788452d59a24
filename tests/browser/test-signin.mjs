// SPDX-License-Identifier: LGPL-2.1-or-later
// Scenario 1: a wrong password shows the error in words; the right one signs in; the
// dashboard lists the templates; sign-up, closed on this server, shows the server's reason.
import { check, PASSWORDS, run, shot } from './lib.mjs';

await run('signin', async ({ broker, page, name }) => {
    await page.goto(`${broker.origin}/`);
    await page.locator('#signin-username').fill('alice');
    await page.locator('#signin-password').fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const error = page.locator('#signin-error');
    await error.filter({ hasText: /do not match/ }).waitFor();
    check(/\/$/.test(new URL(page.url()).pathname), `a failed sign-in left the page: ${page.url()}`);
    await shot(page, name, 'bad-password');

    // Sign-up is closed by default: the 403's detail is shown, not a raw status.
    await page.getByRole('button', { name: 'Create an account' }).click();
    await page.locator('#signup-username').fill('carol');
    await page.locator('#signup-password').fill('carol password 1234');
    await page.locator('#signup-password2').fill('carol password 1234');
    await page.getByRole('button', { name: 'Create account' }).click();
    const signup = page.locator('#signup-msg');
    await signup.filter({ hasText: /\S/ }).waitFor();
    const text = await signup.textContent();
    check(/closed on this server/.test(text), `sign-up message lacks the server's detail: ${text}`);
    await shot(page, name, 'signup-closed');

    await page.locator('#signin-password').fill(PASSWORDS.alice);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(/\/ui\/dashboard\.html$/);
    await page.locator('#who').filter({ hasText: 'alice' }).waitFor();

    const names = await page.locator('#template-list .card h3').allTextContents();
    const api = await broker.api('GET', '/api/v1/templates');
    const expected = api.body.map((t) => t.name).sort();
    check(JSON.stringify([...names].sort()) === JSON.stringify(expected),
        `dashboard lists templates ${JSON.stringify(names)}, the API ${JSON.stringify(expected)}`);
    check(await page.getByRole('button', { name: 'Boot memtest' }).isVisible(), 'no Boot button for memtest');
    // A template whose base image is missing is shown, disabled, with the server's reason.
    const overlay = page.locator('#template-list .card[data-name="debian-overlay"]');
    check(await overlay.getByRole('button', { name: 'Boot debian-overlay' }).isDisabled(),
        'debian-overlay (no base image on this server) can be booted');
    const reason = await overlay.locator('.template-reason').textContent();
    check(reason.includes('debian-12.qcow2'), `the card does not say the base image is missing: ${reason}`);
    check(await overlay.locator('.template-hint').count() === 0, 'a user is shown the admin hint');
    await page.locator('#vm-empty').waitFor({ state: 'visible' });
    await shot(page, name, 'dashboard');

    // The session survives a reload; signing out ends it.
    await page.reload();
    await page.locator('#who').filter({ hasText: 'alice' }).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL((u) => new URL(u).pathname === '/');
    await page.goto(`${broker.origin}/ui/dashboard.html`);
    await page.waitForURL((u) => new URL(u).pathname === '/');
    check(await page.locator('#signin-form').isVisible(), 'signed out, the dashboard did not send us to sign in');
});
