// SPDX-License-Identifier: LGPL-2.1-or-later
// The browser tests' harness: a fresh database on the run's PostgreSQL (VMB_PG_*, exported by
// contrib/run-tests), a config of the test's own (name prefix, storage, port ranges), the real
// `vmbroker migrate`, `user add` and `serve` (VMBROKER, set by meson), and Debian's Chromium
// driven by playwright-core with a fresh profile. Screenshots go to
// $VMB_BUILD_ROOT/browser-shots/. Everything is undone at the end, failed or not: VMs deleted
// through the API (and any domain left with the test's prefix destroyed), serve stopped, the
// database dropped, the folders removed.
//
// No timing assertions: every wait is for a condition, with a generous deadline that only
// guards against a hang.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

let chromium;
try {
    ({ chromium } = await import('playwright-core'));
} catch (e) {
    console.error(`FAIL: playwright-core is not installed (${e.code || e.message}): run `
        + '`npm ci --prefix tests/browser` (contrib/run-tests does)');
    process.exit(1);
}

export const SRC = process.env.VMB_SOURCE_ROOT || path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
export const BUILD = process.env.VMB_BUILD_ROOT || path.join(SRC, 'build');
export const VMBROKER = process.env.VMBROKER || path.join(BUILD, 'broker', 'vmbroker');
export const SHOTS = path.join(BUILD, 'browser-shots');
export const CHROMIUM = process.env.VMB_CHROMIUM || '/usr/bin/chromium';
export const WAIT_MS = 120_000; // a guard against hangs, never a measurement

export const PASSWORDS = { root: 'root password 1234', alice: 'alice password 1234', bob: 'bob password 1234' };

export class Failure extends Error {}

export function check(cond, message) {
    if (!cond) throw new Failure(message);
}

export function log(...args) {
    console.log(`[${new Date().toISOString().slice(11, 19)}]`, ...args);
}

function pgBin(name) {
    let dir = process.env.VMB_PG_BIN;
    if (!dir) {
        const versions = fs.readdirSync('/usr/lib/postgresql').sort((a, b) => Number(a) - Number(b));
        dir = `/usr/lib/postgresql/${versions[versions.length - 1]}/bin`;
    }
    return path.join(dir, name);
}

function pg() {
    const host = process.env.VMB_PG_HOST;
    if (!host)
        throw new Failure('VMB_PG_HOST is not set: run the browser tests with contrib/run-tests '
            + '(or export what contrib/pg-private start prints)');
    return { host, port: process.env.VMB_PG_PORT || '5432', user: process.env.VMB_PG_USER || 'vmbroker' };
}

function psql(sql, dbname = 'postgres') {
    const c = pg();
    const r = spawnSync(pgBin('psql'), ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', c.host,
        '-p', c.port, '-U', c.user, '-d', dbname, '-c', sql], { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0)
        throw new Failure(`psql failed (${r.status}): ${r.stderr}\nSQL: ${sql}`);
    return r.stdout;
}

export function freePort() {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.on('error', reject);
        s.listen(0, '127.0.0.1', () => {
            const { port } = s.address();
            s.close(() => resolve(port));
        });
    });
}

function writeIni(file, sections) {
    let text = '';
    for (const [section, keys] of Object.entries(sections)) {
        text += `[${section}]\n`;
        for (const [k, v] of Object.entries(keys)) if (v !== null && v !== undefined) text += `${k} = ${v}\n`;
        text += '\n';
    }
    fs.writeFileSync(file, text);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* Polls FN until it returns a truthy value; throws Failure(WHAT) after the deadline. */
export async function waitFor(what, fn, deadlineMs = WAIT_MS, everyMs = 250) {
    const end = Date.now() + deadlineMs;
    let last;
    for (;;) {
        try {
            const v = await fn();
            if (v) return v;
        } catch (e) {
            last = e;
        }
        if (Date.now() > end)
            throw new Failure(`gave up waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`);
        await sleep(everyMs);
    }
}

/* A running vmbroker of the test's own, with users root (admin), alice and bob. */
export class Broker {
    constructor(name) {
        this.name = name;
        this.tag = crypto.randomBytes(3).toString('hex');
        this.cleanups = [];
    }

    async start(overrides = {}) {
        this.workdir = fs.mkdtempSync(path.join('/tmp', `vmbb-${this.name}-`));
        fs.chmodSync(this.workdir, 0o755); // libvirt-qemu must reach the storage below
        this.cleanups.push(() => fs.rmSync(this.workdir, { recursive: true, force: true }));
        const storage = path.join(this.workdir, 'storage');
        fs.mkdirSync(storage, { mode: 0o755 });
        fs.chmodSync(storage, 0o755);

        this.db = `vmbb_${this.name.replace(/[^a-z0-9]/g, '_')}_${this.tag}`;
        psql(`CREATE DATABASE "${this.db}"`);
        this.cleanups.push(() => psql(`DROP DATABASE IF EXISTS "${this.db}" WITH (FORCE)`));

        this.port = await freePort();
        this.origin = `http://127.0.0.1:${this.port}`;
        this.prefix = `vmbb${this.tag}-`;
        const base = 28000 + (parseInt(this.tag, 16) % 40) * 20; // port ranges of the test's own
        const c = pg();
        const sections = {
            http: { listen: `127.0.0.1:${this.port}`, web_dir: path.join(SRC, 'web') },
            database: { url: `host=${c.host} port=${c.port} user=${c.user} dbname=${this.db}` },
            libvirt: { uri: 'qemu:///system', name_prefix: this.prefix, stop_timeout_s: 5 },
            storage: { dir: storage },
            console: { listen: '127.0.0.1', vnc_ports: `${base}-${base + 4}`, ws_ports: `${base + 10}-${base + 14}` },
            templates: { dir: path.join(SRC, 'templates') },
            log: { level: 'info' },
        };
        for (const [s, keys] of Object.entries(overrides)) sections[s] = { ...(sections[s] || {}), ...keys };
        this.config = path.join(this.workdir, 'vmbroker.ini');
        writeIni(this.config, sections);

        this.vmb(['migrate']);
        this.vmb(['user', 'add', 'root', '--role', 'admin', '--password-stdin'], PASSWORDS.root + '\n');
        this.vmb(['user', 'add', 'alice', '--password-stdin'], PASSWORDS.alice + '\n');
        this.vmb(['user', 'add', 'bob', '--password-stdin'], PASSWORDS.bob + '\n');
        this.adminToken = this.vmb(['token', 'create', 'root', '--name', 'browser-test-cleanup']).trim();

        this.logPath = path.join(this.workdir, 'serve.log');
        const out = fs.openSync(this.logPath, 'w');
        // As root (these machines), serve needs --allow-root; production runs as vmbroker.
        const serveArgs = process.getuid() === 0 ? ['serve', '--allow-root'] : ['serve'];
        this.proc = spawn(VMBROKER, ['--config', this.config, ...serveArgs], { stdio: ['ignore', out, out], env: this.env() });
        fs.closeSync(out);
        this.exited = new Promise((resolve) => this.proc.on('exit', (code, sig) => resolve({ code, sig })));
        this.cleanups.push(() => this.stopServe());
        this.cleanups.push(() => this.deleteAllVms());
        await waitFor('vmbroker serve to answer /healthz', async () => {
            if (this.proc.exitCode !== null)
                throw new Failure(`vmbroker serve exited with ${this.proc.exitCode}:\n${this.log()}`);
            const r = await fetch(`${this.origin}/healthz`);
            return r.status === 200;
        }, 60_000, 100);
        log(`vmbroker serve on ${this.origin}, database ${this.db}, prefix ${this.prefix}`);
        return this;
    }

    env() {
        const env = {};
        for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('VMBROKER_')) env[k] = v;
        return env;
    }

    vmb(args, input) {
        const r = spawnSync(VMBROKER, ['--config', this.config, ...args],
            { input: input ?? '', encoding: 'utf8', env: this.env(), timeout: 60_000 });
        if (r.status !== 0)
            throw new Failure(`vmbroker ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
        return r.stdout;
    }

    log() {
        try { return fs.readFileSync(this.logPath, 'utf8'); } catch { return ''; }
    }

    /* The API as the admin, with the bearer token: {status, body}. */
    async api(method, p, body) {
        const headers = { Authorization: `Bearer ${this.adminToken}` };
        if (body !== undefined) headers['Content-Type'] = 'application/json';
        const r = await fetch(`${this.origin}${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
        const text = await r.text();
        let json = null;
        try { json = text ? JSON.parse(text) : null; } catch { json = text; }
        return { status: r.status, body: json };
    }

    async vms() {
        const r = await this.api('GET', '/api/v1/vms');
        check(r.status === 200, `GET /api/v1/vms answered ${r.status}: ${JSON.stringify(r.body)}`);
        return r.body;
    }

    async deleteAllVms() {
        if (this.proc && this.proc.exitCode === null) {
            try {
                for (const vm of await this.vms()) {
                    // 503 while vmbroker reconnects to a libvirtd that restarted (the faults
                    // suite restarts the shared one): try again for a while.
                    const end = Date.now() + 60_000;
                    let r = await this.api('DELETE', `/api/v1/vms/${vm.id}`);
                    while (r.status === 503 && Date.now() < end) {
                        await sleep(1000);
                        r = await this.api('DELETE', `/api/v1/vms/${vm.id}`);
                    }
                    if (r.status !== 204) log(`cleanup: DELETE ${vm.name} answered ${r.status}`);
                }
            } catch (e) {
                log(`cleanup: could not delete VMs through the API: ${e.message}`);
            }
        }
        // Whatever is left with our prefix (the API failed, or serve died): remove it in libvirt,
        // once libvirtd answers.
        let list;
        try {
            list = await waitFor('libvirtd to answer `virsh list`', () => {
                const l = spawnSync('virsh', ['-c', 'qemu:///system', 'list', '--all', '--name'], { encoding: 'utf8' });
                return l.status === 0 ? l : null;
            }, 60_000, 1000);
        } catch (e) {
            log(`cleanup: ${e.message}: domains with prefix ${this.prefix} may be left`);
            return;
        }
        for (const dom of (list.stdout || '').split('\n').map((s) => s.trim()).filter((s) => s.startsWith(this.prefix))) {
            log(`cleanup: removing leftover domain ${dom}`);
            spawnSync('virsh', ['-c', 'qemu:///system', 'destroy', dom], { stdio: 'ignore' });
            spawnSync('virsh', ['-c', 'qemu:///system', 'undefine', dom, '--nvram'], { stdio: 'ignore' });
        }
        const pools = spawnSync('virsh', ['-c', 'qemu:///system', 'pool-list', '--all', '--name'], { encoding: 'utf8' });
        for (const pool of (pools.stdout || '').split('\n').map((s) => s.trim()).filter((s) => s.startsWith(this.prefix))) {
            spawnSync('virsh', ['-c', 'qemu:///system', 'pool-destroy', pool], { stdio: 'ignore' });
            spawnSync('virsh', ['-c', 'qemu:///system', 'pool-undefine', pool], { stdio: 'ignore' });
        }
    }

    async stopServe() {
        if (!this.proc || this.proc.exitCode !== null) return;
        this.proc.kill('SIGTERM');
        const done = await Promise.race([this.exited, sleep(15_000).then(() => null)]);
        if (!done) {
            this.proc.kill('SIGKILL');
            await this.exited;
        }
    }

    async cleanup() {
        for (const fn of this.cleanups.reverse()) {
            try { await fn(); } catch (e) { log(`cleanup step failed: ${e.message}`); }
        }
        this.cleanups = [];
    }
}

/* Debian's Chromium with a fresh profile (never a downloaded browser). */
export async function launch(cleanups, options = {}) {
    check(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (contrib/install-deps)`);
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'vmbb-chromium-'));
    cleanups.push(() => fs.rmSync(profile, { recursive: true, force: true }));
    const context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
            '--disable-component-update', '--disable-quic', '--no-first-run', '--disable-sync'],
        viewport: { width: 1280, height: 800 },
        ...options,
    });
    cleanups.push(() => context.close());
    return context;
}

/* A page that fails the test on a script error or a CSP violation, and logs console errors. */
export async function newPage(context, problems) {
    const page = context.pages().length === 1 && context.pages()[0].url() === 'about:blank'
        ? context.pages()[0] : await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    page.on('pageerror', (e) => problems.push(`script error on ${page.url()}: ${e.message}`));
    page.on('console', (m) => {
        const t = m.text();
        if (/Content Security Policy/i.test(t)) problems.push(`CSP violation on ${page.url()}: ${t}`);
        if (m.type() === 'error') log(`browser console: ${t}`);
    });
    return page;
}

export async function shot(page, testName, what) {
    fs.mkdirSync(SHOTS, { recursive: true });
    const file = path.join(SHOTS, `${testName}-${what}.png`);
    await page.screenshot({ path: file, fullPage: true });
    log(`screenshot ${file}`);
    return file;
}

export async function signIn(page, broker, user) {
    await page.goto(`${broker.origin}/`);
    await page.getByLabel('User name', { exact: true }).first().fill(user);
    await page.locator('#signin-password').fill(PASSWORDS[user]);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(/\/ui\/dashboard\.html$/);
}

/* Runs a browser test: BODY({broker, context, page, name}) with everything set up, then
   cleans up whatever happened. Exits 0 on success, 1 with a clear message on failure. */
export async function run(name, body, opts = {}) {
    const broker = new Broker(name);
    const cleanups = [];
    const problems = [];
    let failed = null;
    const onSignal = async (sig) => {
        log(`${sig}: cleaning up`);
        for (const fn of cleanups.reverse()) { try { await fn(); } catch { /* going */ } }
        await broker.cleanup();
        process.exit(1);
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    try {
        await broker.start(opts.config || {});
        const context = await launch(cleanups);
        // The dashboard would leave for the console once a booted VM's screen is up; the
        // tests that click "Open console" themselves turn that off (test-ready keeps it).
        if (!opts.autoOpenConsole)
            await context.addInitScript(() => {
                if (location.protocol.startsWith('http')) localStorage.setItem('vmbroker.autoOpenConsole', 'off');
            });
        const page = await newPage(context, problems);
        await body({ broker, context, page, name, problems });
        check(problems.length === 0, `the pages reported problems:\n  ${problems.join('\n  ')}`);
    } catch (e) {
        failed = e;
    } finally {
        for (const fn of cleanups.reverse()) {
            try { await fn(); } catch (e) { log(`cleanup step failed: ${e.message}`); }
        }
        if (failed) {
            const tail = broker.log().split('\n').slice(-30).join('\n');
            if (tail.trim()) console.error(`--- last lines of vmbroker serve's log ---\n${tail}`);
        }
        await broker.cleanup();
    }
    if (failed) {
        console.error(`FAIL ${name}: ${failed instanceof Failure ? failed.message : failed.stack || failed}`);
        process.exit(1);
    }
    log(`PASS ${name}`);
    process.exit(0);
}

