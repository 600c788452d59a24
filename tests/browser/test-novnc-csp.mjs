// SPDX-License-Identifier: LGPL-2.1-or-later
// Stock noVNC on our origin takes its server from the URL: a crafted link
// (/novnc/vnc.html?host=...&port=...&autoconnect=true) would make our page talk to someone
// else's server. The CSP vmbroker sends with every /novnc/ answer limits connect-src to our
// origin: Chromium must refuse the connection, and the "attacker's" listener must see none.
import net from 'node:net';
import { check, log, run, shot, waitFor } from './lib.mjs';

await run('novnc-csp', async ({ broker, page, name, problems }) => {
    let attempts = 0;
    const evil = net.createServer((sock) => { attempts++; sock.destroy(); });
    await new Promise((resolve) => evil.listen(0, '127.0.0.1', resolve));
    const evilPort = evil.address().port;
    try {
        const violations = [];
        page.on('console', (m) => {
            if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
        });
        const query = `host=127.0.0.1&port=${evilPort}&autoconnect=true&path=websockify`;
        const resp = await page.goto(`${broker.origin}/novnc/vnc.html?${query}#${query}`);
        check(resp.status() === 200, `vnc.html answered ${resp.status()}`);
        check(/connect-src 'self'/.test(resp.headers()['content-security-policy'] || ''),
            `no connect-src in vnc.html's CSP: ${resp.headers()['content-security-policy']}`);
        // noVNC itself loaded and ran (its control bar is there): the refusal is the CSP's.
        await page.locator('#noVNC_control_bar').waitFor({ state: 'attached' });
        await waitFor('the browser refusing the connection',
            () => violations.some((v) => /connect-src/.test(v) && v.includes(String(evilPort))));
        await shot(page, name, 'refused');
        log(`refused: ${violations[0]}`);
        check(attempts === 0, `the attacker's server saw ${attempts} connection(s)`);
        // These violations are what this test provokes; any other problem still fails it.
        for (let i = problems.length - 1; i >= 0; i--)
            if (/connect-src/.test(problems[i]) && problems[i].includes(String(evilPort)))
                problems.splice(i, 1);
    } finally {
        evil.close();
    }
});
