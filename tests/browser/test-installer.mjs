// SPDX-License-Identifier: LGPL-2.1-or-later
// A real guest in the console: the Debian installer (graphical), booted from the fixture ISO of
// tests/fixtures/make-installer-iso, uploaded with PUT /api/v1/isos/{name} and started with
// iso-blank-disk for alice as a course portal would. Her browser opens the answer's console_url
// while the guest still boots; once `virsh screenshot` shows the installer's language screen, the
// noVNC canvas must show the same picture, and a Down arrow typed into the page must move the
// language list's selection one row down, in the guest (virsh) and in the canvas alike.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BUILD, Failure, SHOTS, SRC, check, log, run, shot, signIn, waitFor } from './lib.mjs';

// Under TCG on 2 shared cores the installer takes 1.5 to 4 minutes to draw its first screen;
// the deadline only guards against a hang.
const BOOT_WAIT_MS = 15 * 60_000;

/* The installer ISO: VMB_INSTALLER_ISO (contrib/run-tests builds it once per run), or the
   fixture script's cached build under the build folder. */
function installerIso() {
    if (process.env.VMB_INSTALLER_ISO) return process.env.VMB_INSTALLER_ISO;
    const script = path.join(SRC, 'tests', 'fixtures', 'make-installer-iso');
    const r = spawnSync(script, [path.join(BUILD, 'fixtures')], { encoding: 'utf8', timeout: 300_000 });
    check(r.status === 0, `${script} failed (${r.status}): ${r.stderr}`);
    return r.stdout.trim();
}

/* What the tests look for in a picture of the installer (a PNG data URL or the canvas),
   measured by the browser: size; the dominant colour (4 bits a channel) and its share; the
   mean brightness of the top 6 % (the installer's dark banner); the rows below it that are
   mostly the teal of a selected list row (the selection bar: top and bottom row, or null);
   and the mean colour of each cell of a 32 x 20 grid, to compare two pictures. */
const ANALYSE = `(img) => {
    const c = document.createElement('canvas');
    const w = c.width = img.width, h = c.height = img.height;
    const g = c.getContext('2d');
    g.drawImage(img, 0, 0);
    const d = g.getImageData(0, 0, w, h).data;
    const counts = new Map();
    for (let i = 0; i < d.length; i += 4) {
        const k = (d[i] >> 4) << 8 | (d[i + 1] >> 4) << 4 | (d[i + 2] >> 4);
        counts.set(k, (counts.get(k) || 0) + 1);
    }
    let best = 0, n = 0;
    for (const [k, v] of counts) if (v > n) { best = k; n = v; }
    const bannerRows = Math.max(1, Math.round(h * 0.06));
    let lum = 0;
    for (let i = 0; i < bannerRows * w * 4; i += 4) lum += (d[i] * 3 + d[i + 1] * 6 + d[i + 2]) / 10;
    let bar = null;
    for (let y = Math.round(h * 0.12); y < h; y++) {
        let teal = 0;
        for (let x = 0; x < w; x++) {
            const i = (y * w + x) * 4, r = d[i], gr = d[i + 1], b = d[i + 2];
            if (r < 110 && gr > 90 && gr > r + 40 && b > r + 30) teal++;
        }
        if (teal > w * 0.5) {
            if (!bar) bar = { top: y, bottom: y };
            else if (bar.bottom === y - 1) bar.bottom = y;
        }
    }
    const GX = 32, GY = 20, grid = [];
    for (let gy = 0; gy < GY; gy++)
        for (let gx = 0; gx < GX; gx++) {
            const x0 = Math.floor(gx * w / GX), x1 = Math.floor((gx + 1) * w / GX);
            const y0 = Math.floor(gy * h / GY), y1 = Math.floor((gy + 1) * h / GY);
            const s = [0, 0, 0];
            for (let y = y0; y < y1; y++)
                for (let x = x0; x < x1; x++) {
                    const i = (y * w + x) * 4;
                    s[0] += d[i]; s[1] += d[i + 1]; s[2] += d[i + 2];
                }
            const m = Math.max(1, (x1 - x0) * (y1 - y0));
            grid.push(Math.round(s[0] / m), Math.round(s[1] / m), Math.round(s[2] / m));
        }
    return { width: w, height: h, rgb: [(best >> 8) * 17, ((best >> 4) & 15) * 17, (best & 15) * 17],
             share: n / (w * h), banner: lum / (bannerRows * w), bar, grid };
}`;

/* The language screen: white list dominating under the dark banner, one row selected. (The
   installer's splash before it is a beige page under the banner, without a list.) */
const isLanguageScreen = (m) => m.width >= 640 && m.height >= 480
    && m.rgb.every((v) => v >= 0xee) && m.share > 0.35
    && m.banner < 110
    && m.bar !== null && m.bar.bottom - m.bar.top >= 8 && m.bar.bottom - m.bar.top <= 60;

/* How far apart two pictures of one size are: the largest difference of a grid cell's mean
   colour channel. */
const gridDistance = (a, b) => a.grid.reduce((max, v, i) => Math.max(max, Math.abs(v - b.grid[i])), 0);

const brief = (m) => JSON.stringify({ ...m, grid: undefined });

await run('installer', async ({ broker, page, name }) => {
    const iso = installerIso();
    check(fs.existsSync(iso), `the installer ISO ${iso} is missing`);
    const bytes = fs.readFileSync(iso);
    log(`installer ISO ${iso} (${bytes.length} bytes)`);

    // The admin uploads it (an admin's ISO is usable by everyone) ...
    const put = await fetch(`${broker.origin}/api/v1/isos/debian-installer-gtk.iso`, {
        method: 'PUT', body: bytes,
        headers: { Authorization: `Bearer ${broker.adminToken}`, 'Content-Type': 'application/octet-stream' },
    });
    const uploaded = await put.json().catch(() => null);
    check(put.status === 201, `PUT /api/v1/isos/debian-installer-gtk.iso answered ${put.status}: ${JSON.stringify(uploaded)}`);
    check(uploaded.size === bytes.length && uploaded.public, `the stored ISO is not the file, or not public: ${JSON.stringify(uploaded)}`);

    // ... and boots it for alice, as a course portal does.
    // (503 means "try again shortly": the shared libvirtd may be restarting under another test.)
    const made = await waitFor('POST /api/v1/vms to answer other than 503', async () => {
        const r = await broker.api('POST', '/api/v1/vms', { template: 'iso-blank-disk', iso: uploaded.id, owner: 'alice' });
        if (r.status === 503) log(`POST /api/v1/vms answered 503 (${r.body?.detail}); trying again`);
        return r.status === 503 ? null : r;
    }, 120_000, 5000);
    check(made.status === 201, `POST /api/v1/vms answered ${made.status}: ${JSON.stringify(made.body)}`);
    const vm = made.body.vm;
    const booted = Date.now();
    check(vm.state === 'running' && vm.iso === uploaded.id, `the VM is not running the ISO: ${JSON.stringify(vm)}`);
    log(`VM ${vm.name} running; its console link goes to alice`);

    // Alice's browser connects to the console at once, and stays while the guest boots.
    await signIn(page, broker, 'alice');
    await page.goto(made.body.console_url);
    await page.waitForFunction(() => ['connected', 'failed', 'disconnected'].includes(document.body.dataset.consoleState));
    const state = await page.evaluate(() => document.body.dataset.consoleState);
    if (state !== 'connected') {
        await shot(page, name, 'not-connected');
        throw new Error(`the console did not connect: ${await page.locator('#console-status').textContent()} `
            + `${await page.locator('#console-msg').textContent()}`);
    }
    await page.locator('#screen canvas').waitFor();

    // (Expressions as strings: Playwright runs them outside the page's CSP, which forbids eval.)
    const png = path.join(broker.workdir, 'virsh-shot.png');
    const virshShot = async (keep) => {
        const r = spawnSync('virsh', ['-c', 'qemu:///system', 'screenshot', vm.name, png], { encoding: 'utf8', timeout: 60_000 });
        check(r.status === 0, `virsh screenshot ${vm.name} failed: ${r.stderr}`);
        if (keep) {
            fs.mkdirSync(SHOTS, { recursive: true });
            fs.copyFileSync(png, path.join(SHOTS, `${name}-${keep}-virsh.png`));
        }
        const dataUrl = `data:image/png;base64,${fs.readFileSync(png).toString('base64')}`;
        return page.evaluate(`(async () => {
            const img = new Image();
            img.src = ${JSON.stringify(dataUrl)};
            await img.decode();
            return (${ANALYSE})(img); })()`);
    };
    const canvas = () => page.evaluate(`(() => {
        const c = document.querySelector('#screen canvas');
        return c && c.width >= 100 ? (${ANALYSE})(c) : null; })()`);

    // The language screen in the guest, the same in two pictures a few seconds apart.
    let previous = null;
    let guest;
    try {
        guest = await waitFor("the installer's language screen in `virsh screenshot`", async () => {
            // (waitFor retries on errors: a VM that is no longer running ends the wait instead.)
            const now = (await broker.api('GET', `/api/v1/vms/${vm.id}`)).body;
            if (now.state !== 'running') return { gone: now };
            const m = await virshShot();
            const stable = previous && isLanguageScreen(m) && isLanguageScreen(previous)
                && m.width === previous.width && m.height === previous.height && gridDistance(m, previous) <= 2;
            previous = m;
            return stable ? m : null;
        }, BOOT_WAIT_MS, 3000);
    } catch (e) {
        // What the guest showed last, to tell a slow boot from a wrong picture.
        if (fs.existsSync(png)) {
            fs.mkdirSync(SHOTS, { recursive: true });
            fs.copyFileSync(png, path.join(SHOTS, `${name}-no-language-screen-virsh.png`));
        }
        await shot(page, name, 'no-language-screen');
        throw new Failure(`${e.message}; last picture: ${previous ? brief(previous) : 'none'}`);
    }
    check(!guest.gone, `the VM is ${guest.gone?.state} (${guest.gone?.state_reason}) while the installer boots`);
    log(`the installer's language screen after ${Math.round((Date.now() - booted) / 1000)} s: ${brief(guest)}`);
    await virshShot('language');

    // The canvas shows that picture: size, colours, banner, the selected row, cell by cell.
    const sameAs = (what, seen, want) => {
        check(seen.width === want.width && seen.height === want.height,
            `${what}: canvas ${seen.width}x${seen.height} but the guest's screen is ${want.width}x${want.height}`);
        check(isLanguageScreen(seen), `${what}: the canvas is not the installer's language screen: ${brief(seen)}`);
        check(seen.rgb.every((v, i) => Math.abs(v - want.rgb[i]) <= 17),
            `${what}: canvas colour ${seen.rgb} differs from the guest's ${want.rgb}`);
        check(Math.abs(seen.bar.top - want.bar.top) <= 2 && Math.abs(seen.bar.bottom - want.bar.bottom) <= 2,
            `${what}: the canvas's selected row is at ${JSON.stringify(seen.bar)}, the guest's at ${JSON.stringify(want.bar)}`);
        // noVNC's tight encoding may send JPEG: cells may differ a little, a different picture a lot.
        const far = gridDistance(seen, want);
        check(far <= 24, `${what}: the canvas differs from the guest's screen by ${far} in a grid cell's mean colour`);
    };
    const seen = await waitFor('the language screen in the noVNC canvas', async () => {
        const m = await canvas();
        return m && m.width === guest.width && isLanguageScreen(m) && m.bar.top === guest.bar.top ? m : null;
    }, 60_000, 500);
    await shot(page, name, 'language');
    sameAs('language screen', seen, guest);

    // A key typed into the page reaches the installer: Down selects the next language.
    await page.locator('#screen canvas').focus();
    await page.keyboard.press('ArrowDown');
    const after = await waitFor('the selection to move down in `virsh screenshot`', async () => {
        const m = await virshShot();
        return isLanguageScreen(m) && m.bar.top > guest.bar.top ? m : null;
    }, 120_000, 1000);
    await virshShot('after-down');
    const rowHeight = guest.bar.bottom - guest.bar.top + 1;
    check(after.bar.top - guest.bar.top <= 2 * rowHeight,
        `Down moved the selection from ${JSON.stringify(guest.bar)} to ${JSON.stringify(after.bar)}: more than a row`);
    log(`Down moved the selection from ${JSON.stringify(guest.bar)} to ${JSON.stringify(after.bar)}`);
    const seenAfter = await waitFor('the moved selection in the noVNC canvas', async () => {
        const m = await canvas();
        return m && isLanguageScreen(m) && m.bar.top === after.bar.top ? m : null;
    }, 60_000, 500);
    await shot(page, name, 'after-down');
    sameAs('after Down', seenAfter, after);

    // Gone when deleted: the domain too.
    const del = await broker.api('DELETE', `/api/v1/vms/${vm.id}`);
    check(del.status === 204, `DELETE /api/v1/vms/${vm.id} answered ${del.status}`);
    const left = spawnSync('virsh', ['-c', 'qemu:///system', 'dominfo', vm.name], { encoding: 'utf8' });
    check(left.status !== 0, `the domain ${vm.name} is still defined after DELETE`);
    const gone = await broker.api('DELETE', `/api/v1/isos/${uploaded.id}`);
    check(gone.status === 204, `DELETE /api/v1/isos/${uploaded.id} answered ${gone.status}`);
});
