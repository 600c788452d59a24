// SPDX-License-Identifier: LGPL-2.1-or-later
// Scenario 4: the theme toggle switches the colours and the choice survives a reload and a new
// page; the system preference is followed until then; a 400 px window has no horizontal
// scroll on any page; everything is reachable by keyboard with a visible focus.
import { check, run, shot, signIn } from './lib.mjs';

const bg = (page) => page.evaluate(() => getComputedStyle(document.body).backgroundColor);

await run('theme-layout', async ({ broker, page, name }) => {
    await page.emulateMedia({ colorScheme: 'light' });
    await signIn(page, broker, 'alice');
    const light = await bg(page);
    const toggle = page.locator('#theme-toggle');
    check((await toggle.getAttribute('data-current')) === 'light', 'light system preference not followed');
    await shot(page, name, 'light');

    await toggle.click();
    check(await page.evaluate(() => document.documentElement.dataset.theme) === 'dark', 'toggle did not set dark');
    const dark = await bg(page);
    check(dark !== light, `the background stayed ${light}`);
    await shot(page, name, 'dark');

    await page.reload();
    await page.locator('#theme-toggle').waitFor();
    check(await bg(page) === dark, 'the dark theme did not survive a reload');
    await page.goto(`${broker.origin}/ui/upload.html`);
    check(await bg(page) === dark, 'the dark theme did not carry over to another page');
    check(await page.evaluate(() => localStorage.getItem('vmb-theme')) === 'dark', 'not remembered in localStorage');

    // The remembered choice wins over the system's.
    await page.emulateMedia({ colorScheme: 'light' });
    check(await bg(page) === dark, 'the system preference overrode the choice');
    await page.locator('#theme-toggle').click();
    check(await bg(page) === light, 'toggling back did not give the light theme');
    await page.reload();
    check(await bg(page) === light, 'the light choice did not survive a reload');

    // No choice: the system's dark preference gives the dark colours.
    await page.evaluate(() => localStorage.removeItem('vmb-theme'));
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.reload();
    check(await bg(page) === dark, 'prefers-color-scheme: dark is not followed');
    await page.emulateMedia({ colorScheme: 'light' });

    // Keyboard: Tab from the top reaches the skip link, then the navigation; focus is visible.
    await page.goto(`${broker.origin}/ui/dashboard.html`);
    await page.locator('#who').waitFor();
    await page.keyboard.press('Tab');
    const first = await page.evaluate(() => document.activeElement.textContent);
    check(first === 'Skip to content', `the first Tab stop is "${first}"`);
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    check(outline !== 'none', 'the focused element has no visible outline');
    const stops = [];
    for (let i = 0; i < 12; i++) {
        await page.keyboard.press('Tab');
        stops.push(await page.evaluate(() => document.activeElement.textContent.trim()));
    }
    for (const want of ['My desktops', 'Upload an ISO', 'Sign out', 'Boot'])
        check(stops.some((s) => s.startsWith(want)), `Tab never reaches "${want}": ${JSON.stringify(stops)}`);

    // 400 px wide: no horizontal scroll anywhere.
    await page.setViewportSize({ width: 400, height: 800 });
    for (const p of ['/ui/dashboard.html', '/ui/upload.html', '/ui/admin.html', '/ui/console.html', '/']) {
        if (p === '/') {
            await page.goto(`${broker.origin}/ui/dashboard.html`);
            await page.getByRole('button', { name: 'Sign out' }).click();
            await page.waitForURL((u) => new URL(u).pathname === '/');
        } else {
            await page.goto(`${broker.origin}${p}`);
        }
        await page.waitForLoadState('networkidle');
        const [sw, cw] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
        check(sw <= cw, `${p} scrolls sideways at 400 px: ${sw} > ${cw}`);
        await shot(page, name, `400px-${p.replace(/\W+/g, '_').replace(/^_|_$/g, '') || 'signin'}`);
    }
});
