// SPDX-License-Identifier: LGPL-2.1-or-later
// Keys reach the guest: a GRUB guest (built here with grub-mkrescue) shows a menu of ten
// entries; the test presses ArrowDown seven times in a burst and Enter through the console
// page, and only the eighth entry asks for a line, which the test types at full speed (40
// characters). GRUB compares what arrived with what was typed and paints the screen green
// (whole) or red (anything lost, doubled or out of order); the test reads the colour in the
// noVNC canvas and libvirt's screenshot.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { check, log, run, shot, signIn, waitFor } from './lib.mjs';

const LINE = 'The quick brown fox jumps over 123456789'; // 40 characters
const ENTRY = 7; // reached by seven ArrowDown presses

function buildIso(dir) {
    const root = path.join(dir, 'root');
    fs.mkdirSync(path.join(root, 'boot', 'grub'), { recursive: true });
    const entries = [];
    for (let i = 0; i < 10; i++) {
        entries.push(i !== ENTRY
            ? `menuentry "entry ${i}" { set color_normal=white/red; clear; echo "wrong entry ${i}"; sleep 3600; }`
            : [`menuentry "entry ${i}" {`,
                '  set color_normal=black/cyan', '  clear', '  echo "type the line:"', '  read line',
                '  if [ "$line" = "$expected" ]; then set color_normal=black/green; else set color_normal=white/red; fi',
                '  clear', '  echo "got: [$line]"', '  sleep 3600', '}'].join('\n'));
    }
    fs.writeFileSync(path.join(root, 'boot', 'grub', 'grub.cfg'), [
        'set timeout=-1', 'terminal_output console',
        'set color_normal=white/blue', 'set menu_color_normal=white/blue', 'set menu_color_highlight=blue/white',
        `set expected="${LINE}"`, ...entries, ''].join('\n'));
    const iso = path.join(dir, 'keys.iso');
    const r = spawnSync('grub-mkrescue', ['-o', iso, root], { encoding: 'utf8' });
    check(r.status === 0, `grub-mkrescue failed (grub-pc-bin, xorriso, mtools): ${r.stderr}`);
    fs.chmodSync(iso, 0o644);
    return iso;
}

const work = fs.mkdtempSync('/tmp/vmbb-keys-');
fs.chmodSync(work, 0o755); // libvirt-qemu opens the ISO
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));
const templates = path.join(work, 'templates');
fs.mkdirSync(templates);
fs.writeFileSync(path.join(templates, 'keys.json'), JSON.stringify({
    description: 'GRUB that checks typed keys', kind: 'iso', iso_path: buildIso(work),
    memory_mib: 64, vcpus: 1, video: 'vga', network: 'none', boot: ['cdrom'],
}));

/* The dominant colour of the noVNC canvas: [r, g, b] rounded to 17s, or null. */
const CANVAS = `(() => {
    const c = document.querySelector('#screen canvas');
    if (!c || c.width < 100) return null;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const counts = new Map();
    for (let i = 0; i < d.length; i += 16) {
        const k = (d[i] >> 4) << 8 | (d[i + 1] >> 4) << 4 | (d[i + 2] >> 4);
        counts.set(k, (counts.get(k) || 0) + 1);
    }
    let best = 0, n = 0;
    for (const [k, v] of counts) if (v > n) { best = k; n = v; }
    return [(best >> 8) * 17, ((best >> 4) & 15) * 17, (best & 15) * 17];
})()`;
const COLOURS = { blue: [0, 0, 170], cyan: [0, 170, 170], green: [0, 170, 0], red: [170, 0, 0] };
const near = (a, b) => a && a.every((v, i) => Math.abs(v - b[i]) <= 34);
const named = (rgb) => Object.keys(COLOURS).find((k) => near(rgb, COLOURS[k])) || JSON.stringify(rgb);

await run('keys', async ({ broker, page, name }) => {
    await signIn(page, broker, 'alice');
    await page.getByRole('button', { name: 'Boot keys' }).click();
    await page.locator('#vm-list li.vm[data-state="running"]').waitFor();
    const [vm] = await broker.vms();
    await page.getByRole('button', { name: `Open console: ${vm.name}` }).click();
    await page.waitForFunction(() => document.body.dataset.consoleState === 'connected');
    const colour = async () => named(await page.evaluate(CANVAS));
    await waitFor("GRUB's blue menu", async () => (await colour()) === 'blue');
    await shot(page, name, 'menu');
    await page.locator('#screen canvas').click();

    // A burst of arrows: no pause between the presses.
    for (let i = 0; i < ENTRY; i++) await page.keyboard.press('ArrowDown', { delay: 0 });
    await page.keyboard.press('Enter');
    const prompt = await waitFor('entry 7 to run', async () => {
        const c = await colour();
        return c === 'cyan' || c === 'red' ? c : null;
    });
    if (prompt !== 'cyan') await shot(page, name, 'wrong-entry');
    check(prompt === 'cyan', 'the arrow burst reached another menu entry: arrow keys were lost or doubled');
    // The line at full speed.
    await page.keyboard.type(LINE, { delay: 0 });
    await page.keyboard.press('Enter');
    const verdict = await waitFor('GRUB to judge the line', async () => {
        const c = await colour();
        return c === 'green' || c === 'red' ? c : null;
    });
    await shot(page, name, 'verdict');
    const png = path.join(work, 'virsh.png');
    spawnSync('virsh', ['-c', 'qemu:///system', 'screenshot', vm.name, png]);
    log(`GRUB says ${verdict}; libvirt's screenshot: ${png}`);
    check(verdict === 'green', 'the 40-character line did not arrive whole (see the verdict screenshot: GRUB prints what it got)');
}, { config: { templates: { dir: templates } } });
