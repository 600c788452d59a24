// SPDX-License-Identifier: LGPL-2.1-or-later
// Scenario 2: boot memtest from the dashboard, watch it reach running, see it paused (virsh
// suspend) with the reason and the buttons a paused VM has, and running again once resumed
// (the page follows the event stream: no reload, no polling); stop it and see "stopped" with
// the reason, delete it; the API agrees at each step.
import { spawnSync } from 'node:child_process';
import { check, run, shot, signIn, waitFor } from './lib.mjs';

function virsh(...args) {
    const r = spawnSync('virsh', ['-c', 'qemu:///system', ...args], { encoding: 'utf8' });
    check(r.status === 0, `virsh ${args.join(' ')}: ${r.stderr}`);
}

await run('vm-lifecycle', async ({ broker, page, name }) => {
    await signIn(page, broker, 'alice');
    await page.getByRole('button', { name: 'Boot memtest' }).click();

    const card = page.locator('#vm-list li.vm').first();
    await card.waitFor();
    await page.locator('#vm-list li.vm[data-state="running"]').waitFor();
    const vms = await broker.vms();
    check(vms.length === 1 && vms[0].state === 'running' && vms[0].owner === 'alice',
        `the API does not show one running VM of alice's: ${JSON.stringify(vms)}`);
    const vm = vms[0];
    check((await card.locator('h3').textContent()) === vm.name, 'the card is not named after the domain');
    check(await card.getByRole('button', { name: `Open console: ${vm.name}` }).isEnabled(), 'Open console is disabled while running');
    check(await card.getByRole('button', { name: `Start: ${vm.name}` }).isDisabled(), 'Start is enabled while running');
    await shot(page, name, 'running');

    // Live updates from the event stream, not polling: in quiet times the page does not
    // fetch the list at all; the changes below (virsh, the API) reach it without a reload.
    await waitFor('the live label', async () =>
        (await page.locator('#vms-live').textContent()) === 'live');
    let lists = 0;
    const countLists = (r) => {
        if (r.method() === 'GET' && new URL(r.url()).pathname === '/api/v1/vms') lists++;
    };
    page.on('request', countLists);
    await page.waitForTimeout(5000);
    page.off('request', countLists);
    check(lists === 0, `the page fetched the VM list ${lists} times in 5 s without a change`);

    // A second boot is over alice's limit of one running VM: the 409 says so, with a console link.
    await page.getByRole('button', { name: 'Boot memtest' }).click();
    const boot = page.locator('#boot-msg');
    await boot.filter({ hasText: /Stop or delete a VM/ }).waitFor();
    check(await boot.getByRole('link', { name: new RegExp(`console of ${vm.name}`) }).count() === 1,
        `the limit message has no console link: ${await boot.textContent()}`);
    await shot(page, name, 'limit');

    // Paused by libvirt: the card says so with the reason and offers Stop, Restart and Delete.
    virsh('suspend', vm.name);
    await page.locator('#vm-list li.vm[data-state="paused"]').waitFor();
    const paused = (await broker.api('GET', `/api/v1/vms/${vm.id}`)).body;
    check(paused.state === 'paused', `the API says ${paused.state} where the page says paused`);
    check((await card.locator('.state').textContent()) === 'Paused', 'the badge does not say Paused');
    check((await card.locator('.reason').textContent()).includes(paused.state_reason),
        `the page does not show the reason "${paused.state_reason}"`);
    for (const b of ['Stop', 'Restart', 'Delete'])
        check(await card.getByRole('button', { name: `${b}: ${vm.name}`, exact: true }).isEnabled(), `${b} is disabled while paused`);
    for (const b of ['Open console', 'Start'])
        check(await card.getByRole('button', { name: `${b}: ${vm.name}`, exact: true }).isDisabled(), `${b} is enabled while paused`);
    await shot(page, name, 'paused');
    virsh('resume', vm.name);
    await page.locator('#vm-list li.vm[data-state="running"]').waitFor();
    check(await card.getByRole('button', { name: `Reboot: ${vm.name}` }).isEnabled(), 'Reboot is disabled once resumed');

    await card.getByRole('button', { name: `Stop: ${vm.name}` }).click();
    await page.locator('#vm-list li.vm[data-state="stopped"]').waitFor();
    const reason = (await card.locator('.reason').textContent()).trim();
    const apiVm = (await broker.api('GET', `/api/v1/vms/${vm.id}`)).body;
    check(apiVm.state === 'stopped', `the API says ${apiVm.state} where the page says stopped`);
    check(apiVm.state_reason && reason.includes(apiVm.state_reason),
        `the page shows reason "${reason}", the API "${apiVm.state_reason}"`);
    check((await card.locator('.state').textContent()) === 'Stopped', 'the badge does not say Stopped');
    check(await card.getByRole('button', { name: `Start: ${vm.name}` }).isEnabled(), 'Start is disabled while stopped');
    await shot(page, name, 'stopped');

    page.once('dialog', (d) => d.accept());
    await card.getByRole('button', { name: `Delete: ${vm.name}` }).click();
    await page.locator('#vm-empty').waitFor({ state: 'visible' });
    await waitFor('the API to forget the VM', async () => (await broker.vms()).length === 0);
    // It stays gone (a late event or reload does not bring it back).
    await page.waitForTimeout(2500);
    check(await page.locator('#vm-list li.vm').count() === 0, 'the deleted VM came back on the dashboard');
    await shot(page, name, 'deleted');
});
