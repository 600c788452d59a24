// SPDX-License-Identifier: LGPL-2.1-or-later
// Scenario 3: a non-admin opening admin.html sees "admins only" and no data; the admin sees
// every VM with its owner, ports and state, and the users, disables one (who then cannot sign
// in) and enables them again, and reads both changes in the audit log, filtered by action.
import { PASSWORDS, check, run, shot, signIn } from './lib.mjs';

await run('admin', async ({ broker, page, name }) => {
    // A VM of bob's, made through the API as the admin on his behalf.
    const made = await broker.api('POST', '/api/v1/vms', { template: 'memtest', owner: 'bob' });
    check(made.status === 201, `POST /api/v1/vms for bob answered ${made.status}: ${JSON.stringify(made.body)}`);
    const vm = made.body.vm;

    await signIn(page, broker, 'alice');
    await page.goto('about:blank'); // the dashboard's polls are not the admin page's
    const asked = [];
    page.on('request', (r) => { if (r.url().includes('/api/v1/')) asked.push(`${r.method()} ${new URL(r.url()).pathname}`); });
    await page.goto(`${broker.origin}/ui/admin.html`);
    await page.getByText('Admins only').waitFor();
    check(await page.locator('#admin-content').isHidden(), 'the admin content is visible to alice');
    check(await page.locator('#vm-rows tr').count() === 0, 'alice sees VM rows on the admin page');
    const leaked = asked.filter((a) => a !== 'GET /api/v1/me');
    check(leaked.length === 0, `the admin page asked the API for more than /me as alice: ${leaked.join(', ')}`);
    check(await page.getByRole('link', { name: 'Admin' }).count() === 0, 'alice has an Admin link');
    await shot(page, name, 'non-admin');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL((u) => new URL(u).pathname === '/');

    await signIn(page, broker, 'root');
    // On the dashboard an admin reads what to do about a template that cannot work.
    const hint = page.locator('#template-list .card[data-name="debian-overlay"] .template-hint');
    await hint.waitFor();
    check((await hint.textContent()).includes('debian-12.qcow2'), `the admin hint does not name the image: ${await hint.textContent()}`);
    await shot(page, name, 'template-hint');
    await page.getByRole('link', { name: 'Admin' }).click();
    await page.waitForURL(/\/ui\/admin\.html$/);
    const row = page.locator(`#vm-rows tr[data-id="${vm.id}"]`);
    await row.waitFor();
    const cells = await row.locator('td').allTextContents();
    check(cells[0] === vm.name && cells[1] === 'bob' && cells[2] === 'memtest',
        `the row reads ${JSON.stringify(cells)}`);
    check(cells[4].includes(String(vm.vnc_port)) && cells[4].includes(String(vm.ws_port)),
        `ports ${vm.vnc_port}/${vm.ws_port} not shown: ${cells[4]}`);
    await page.locator(`#vm-rows tr[data-id="${vm.id}"][data-state="running"]`).waitFor();

    // Users: the list; alice disabled from the page cannot sign in, enabled again she can.
    await page.locator('#user-rows tr').first().waitFor();
    const names = await page.locator('#user-rows tr td:first-child').allTextContents();
    for (const u of ['root', 'alice', 'bob'])
        check(names.includes(u), `user ${u} missing from the users list: ${names}`);
    await shot(page, name, 'admin');
    const signInAs = async (user) => (await fetch(`${broker.origin}/api/v1/auth/login`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ username: user, password: PASSWORDS[user] }) })).status;
    check(await signInAs('alice') === 200, 'alice cannot sign in before being disabled');
    page.once('dialog', (d) => d.accept());
    await page.getByRole('button', { name: 'Disable alice' }).click();
    await page.getByRole('button', { name: 'Enable alice' }).waitFor();
    const alice = (await broker.api('GET', '/api/v1/users')).body.find((u) => u.username === 'alice');
    check(alice.disabled === true, `the API says alice is ${JSON.stringify(alice)}`);
    const refused = await signInAs('alice');
    check(refused === 401 || refused === 403, `a disabled alice signed in (HTTP ${refused})`);
    await page.getByRole('button', { name: 'Enable alice' }).click();
    await page.getByRole('button', { name: 'Disable alice' }).waitFor();
    check(await signInAs('alice') === 200, 'alice cannot sign in after being enabled again');

    // The audit log shows both changes as root's, newest first; a filter narrows it.
    await page.locator('#audit-rows tr[data-action="user.enable"]').waitFor();
    const audit = page.locator('#audit-rows tr');
    const firstActions = await page.locator('#audit-rows tr td:nth-child(3)').allTextContents();
    const enableAt = firstActions.indexOf('user.enable'), disableAt = firstActions.indexOf('user.disable');
    check(enableAt >= 0 && disableAt > enableAt, `the audit log reads ${JSON.stringify(firstActions)}`);
    const enableRow = await audit.nth(enableAt).locator('td').allTextContents();
    check(enableRow[1] === 'root', `user.enable is shown as done by ${enableRow[1]}`);
    check(firstActions.includes('auth.login_failed'), `alice's refused sign-in is not in the audit log: ${firstActions}`);
    await page.locator('#audit-action').fill('user.');
    await page.getByRole('button', { name: 'Show' }).click();
    await page.waitForFunction(() => [...document.querySelectorAll('#audit-rows tr')]
        .every((r) => r.dataset.action.startsWith('user.')));
    const filtered = await page.locator('#audit-rows tr td:nth-child(3)').allTextContents();
    check(filtered.length >= 2 && filtered.every((a) => a.startsWith('user.')),
        `the action filter user. shows ${JSON.stringify(filtered)}`);
    await shot(page, name, 'audit');

    // The admin stops bob's VM from the page; the reason says who.
    await row.getByRole('button', { name: `Stop ${vm.name}` }).click();
    await page.locator(`#vm-rows tr[data-id="${vm.id}"][data-state="stopped"]`).waitFor();
    const apiVm = (await broker.api('GET', `/api/v1/vms/${vm.id}`)).body;
    check(apiVm.state === 'stopped', `the API says ${apiVm.state}`);
    page.once('dialog', (d) => d.accept());
    await page.locator(`#vm-rows tr[data-id="${vm.id}"]`).getByRole('button', { name: `Delete ${vm.name}` }).click();
    await page.locator('#vm-empty').waitFor({ state: 'visible' });
    check((await broker.vms()).length === 0, 'the VM is still in the API after delete');
    await shot(page, name, 'admin-after-delete');
});
