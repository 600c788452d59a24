// The dashboard: my VMs with their live state and running operation (from the event stream),
// power buttons and snapshots (take, revert, delete) for VMs with a disk, the templates with
// a boot button each, and my ISOs with a boot button per ISO template. A running VM whose
// screen is not up yet (console_ready_at) shows "Starting…"; one booted here opens its
// console when the screen is up, unless "Open the console when the screen is up" is off.
import { api, ApiError, requireUser } from './api.js';
import { coalesce, follow } from './live.js';
import { ago, bytes, el, say, topbar } from './ui.js';

const $ = (id) => document.getElementById(id);

const STATE_WORDS = {
    creating: 'Starting up',
    running: 'Running',
    paused: 'Paused',
    stopping: 'Shutting down',
    stopped: 'Stopped',
    error: 'Failed',
};

let templates = [];
let me = null;
const rows = new Map(); // vm id -> {li, parts, busy}
// The VM just booted here whose console opens once its screen is up (console_ready_at).
let openWhenReady = null;
const AUTO_OPEN_KEY = 'vmbroker.autoOpenConsole';
// The server stops watching a screen after 600 s: a VM without console_ready_at by then
// is simply running.
const READY_WATCH_MS = 600 * 1000;

/* Running, but the guest has not drawn anything yet. */
function starting(vm) {
    return vm.state === 'running' && !vm.console_ready_at && !!vm.started_at &&
        Date.now() - Date.parse(vm.started_at) < READY_WATCH_MS;
}

/* --- VMs ------------------------------------------------------------------------------ */

function vmButtons(vm, row) {
    const s = vm.state;
    const busy = row.busy;
    const b = row.parts.buttons;
    b.console.disabled = busy || s !== 'running';
    b.novnc.disabled = busy || s !== 'running';
    b.start.disabled = busy || !(s === 'stopped' || s === 'error');
    // A paused guest (halted by an error, or by an admin) can be stopped, restarted (the
    // server powers it off and starts it again) or deleted; resuming it is not offered.
    b.stop.disabled = busy || !(s === 'running' || s === 'paused');
    b.reboot.disabled = busy || !(s === 'running' || s === 'paused');
    b.reboot.textContent = s === 'paused' ? 'Restart' : 'Reboot';
    b.reboot.setAttribute('aria-label', `${b.reboot.textContent}: ${vm.name}`);
    b.del.disabled = busy || s === 'creating';
    b.snapshot.hidden = !hasDisk(vm);
    b.snapshot.disabled = busy || s !== 'running';
    for (const btn of row.parts.snaps.querySelectorAll('button'))
        btn.disabled = busy || (btn.dataset.action === 'revert' ? s !== 'running'
                                                                : !(s === 'running' || s === 'stopped'));
}

// Snapshots need a disk: an overlay, or an ISO template with a blank disk.
function hasDisk(vm) {
    const t = templates.find((x) => x.name === vm.template);
    return !!t && (t.kind === 'overlay' || t.disk_gib > 0);
}

function showSnapshots(row) {
    loadSnapshots(row).catch((e) => say(row.parts.msg, `Could not list the snapshots: ${e.message}`));
}

async function loadSnapshots(row) {
    if (!hasDisk(row.vm)) return;
    const list = await api('GET', `/api/v1/vms/${encodeURIComponent(row.vm.id)}/snapshots`);
    const mk = (text, action, name, cls) => el('button', {
        type: 'button', class: cls || null, dataset: { action, snap: name },
        'aria-label': `${text} snapshot ${name} of ${row.vm.name}`,
    }, text);
    row.parts.snaps.replaceChildren(...(list || []).map((snap) => el('li', { dataset: { snap: snap.name } },
        el('span', { class: 'snap-name' }, snap.name), ` · ${ago(snap.created_at)} `,
        mk('Revert', 'revert', snap.name), ' ', mk('Delete', 'snapdel', snap.name, 'danger'))));
    row.parts.snapsTitle.hidden = !list || list.length === 0;
    vmButtons(row.vm, row);
}

function stateLine(vm) {
    const words = starting(vm) ? 'Starting…' : STATE_WORDS[vm.state] || vm.state;
    const reason = vm.state_reason ? ` — ${vm.state_reason}` : '';
    return [words, reason];
}

function fillRow(row, vm) {
    row.vm = vm;
    const p = row.parts;
    p.name.textContent = vm.name;
    p.badge.textContent = stateLine(vm)[0];
    p.badge.className = `state state-${vm.state}`;
    p.badge.dataset.state = vm.state;
    p.reason.textContent = stateLine(vm)[1];
    const facts = [`template ${vm.template}`, `created ${ago(vm.created_at)}`];
    if (vm.state === 'running' && vm.started_at) facts.push(`up since ${ago(vm.started_at).replace(' ago', '')}`);
    if (vm.console && vm.console.connections) facts.push(`${vm.console.connections} console connection(s)`);
    p.facts.textContent = facts.join(' · ');
    row.li.dataset.state = vm.state;
    row.li.dataset.ready = vm.console_ready_at ? 'yes' : 'no';
    vmButtons(vm, row);
    if (openWhenReady === vm.id) {
        if (vm.console_ready_at) {
            openWhenReady = null;
            act(row, 'console');
        } else if (vm.state !== 'running' && vm.state !== 'creating') {
            openWhenReady = null;
        }
    }
}

function makeRow(vm) {
    const mk = (text, action, cls) => el('button', { type: 'button', class: cls || null, dataset: { action } }, text);
    const buttons = {
        console: mk('Open console', 'console', 'primary'),
        novnc: mk('Stock noVNC', 'novnc'),
        start: mk('Start', 'start'),
        stop: mk('Stop', 'stop'),
        reboot: mk('Reboot', 'reboot'),
        snapshot: mk('Take snapshot', 'snapshot'),
        del: mk('Delete', 'delete', 'danger'),
    };
    const parts = {
        name: el('h3'),
        badge: el('span', { class: 'state' }),
        reason: el('span', { class: 'reason' }),
        step: el('span', { class: 'step muted small', 'aria-live': 'polite' }),
        facts: el('p', { class: 'muted small' }),
        msg: el('div', { class: 'msg error', role: 'alert' }),
        snapsTitle: el('p', { class: 'muted small', hidden: true }, 'Snapshots (disks and memory):'),
        snaps: el('ul', { class: 'snapshots' }),
        buttons,
    };
    const li = el('li', { class: 'card vm', dataset: { id: vm.id } },
        parts.name,
        el('p', { class: 'state-line' }, parts.badge, parts.reason, parts.step),
        parts.facts,
        parts.msg,
        el('div', { class: 'actions' }, Object.values(buttons)),
        parts.snapsTitle,
        parts.snaps);
    for (const btn of Object.values(buttons))
        btn.setAttribute('aria-label', `${btn.textContent}: ${vm.name}`);
    const row = { li, parts, busy: false, vm };
    li.addEventListener('click', (ev) => {
        const btn = ev.target.closest('button[data-action]');
        if (btn && !btn.disabled) act(row, btn.dataset.action, btn.dataset.snap);
    });
    showSnapshots(row);
    return row;
}

async function act(row, action, snap) {
    const vm = row.vm;
    if (action === 'delete' &&
        !confirm(`Delete ${vm.name}? It is switched off and its disks are removed.`))
        return;
    if (action === 'revert' &&
        !confirm(`Revert ${vm.name} to snapshot ${snap}? What changed since is lost.`))
        return;
    row.busy = true;
    vmButtons(vm, row);
    say(row.parts.msg, '');
    try {
        if (action === 'console') {
            const r = await api('POST', `/api/v1/vms/${encodeURIComponent(vm.id)}/console`);
            location.assign(r.console_url);
            return;
        }
        if (action === 'novnc') {
            // The stock noVNC page asks for the VNC password: shown here, next to its link.
            const r = await api('POST', `/api/v1/vms/${encodeURIComponent(vm.id)}/console`);
            const box = row.parts.msg;
            box.replaceChildren(el('a', { href: r.novnc_url, target: '_blank', rel: 'noopener' }, 'Open the stock noVNC page'),
                ' (within a minute); it asks for the VNC password ',
                el('code', { class: 'vnc-password' }, r.vnc_password || '(not given to you)'), '.');
            box.className = 'msg info';
            box.setAttribute('role', 'status');
            return;
        }
        if (action === 'delete') {
            await api('DELETE', `/api/v1/vms/${encodeURIComponent(vm.id)}`);
            row.li.remove();
            rows.delete(vm.id);
            $('vm-empty').hidden = rows.size > 0;
            return;
        }
        if (action === 'snapshot' || action === 'revert' || action === 'snapdel') {
            await snapshotAction(row, action, snap);
            return;
        }
        const updated = await api('POST', `/api/v1/vms/${encodeURIComponent(vm.id)}/${action}`);
        if (updated && updated.id) fillRow(row, updated);
    } catch (e) {
        say(row.parts.msg, e.message);
    } finally {
        row.busy = false;
        vmButtons(row.vm, row);
    }
}

async function snapshotAction(row, action, snap) {
    const base = `/api/v1/vms/${encodeURIComponent(row.vm.id)}/snapshots`;
    const one = `${base}/${encodeURIComponent(snap || '')}`;
    if (action === 'snapshot') {
        const r = await api('POST', base);
        say(row.parts.msg, `Snapshot ${r.name} taken.`, 'info');
    } else if (action === 'revert') {
        const updated = await api('POST', `${one}/revert`);
        if (updated && updated.id) fillRow(row, updated);
        say(row.parts.msg, `Back at snapshot ${snap}.`, 'info');
    } else {
        await api('DELETE', one);
    }
    await loadSnapshots(row);
}

function renderVms(vms) {
    const list = $('vm-list');
    vms.sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
    const seen = new Set();
    let prev = null;
    for (const vm of vms) {
        seen.add(vm.id);
        let row = rows.get(vm.id);
        if (!row) {
            row = makeRow(vm);
            rows.set(vm.id, row);
        }
        if (!row.busy) fillRow(row, vm);
        // Keep the order without moving a focused element more than needed.
        const want = prev ? prev.nextSibling : list.firstChild;
        if (want !== row.li) list.insertBefore(row.li, want);
        prev = row.li;
    }
    for (const [id, row] of rows)
        if (!seen.has(id)) { row.li.remove(); rows.delete(id); }
    $('vm-empty').hidden = vms.length > 0;
    list.setAttribute('aria-busy', 'false');
}

async function refresh() {
    try {
        const vms = await api('GET', '/api/v1/vms');
        renderVms(vms || []);
        say($('page-msg'), '');
        $('vms-updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (e) {
        say($('page-msg'), `Could not refresh your VMs: ${e.message}`);
    }
}

// An operation's step shows on its VM while it runs; its end brings the VM's new state.
function showOperation(op, refreshSoon) {
    const row = rows.get(op.vm_id);
    if (row) {
        const active = op.state === 'queued' || op.state === 'running';
        row.parts.step.textContent = active ? `${op.kind}: ${op.step}…` : '';
        if (op.state === 'failed' && op.error) say(row.parts.msg, op.error.detail);
    }
    if (!row || op.state === 'succeeded' || op.state === 'failed') refreshSoon();
}

function live() {
    const refreshSoon = coalesce(refresh, 250);
    follow({
        onVm: refreshSoon,
        onOperation: (op) => showOperation(op, refreshSoon),
        onReset: refreshSoon,
        onStatus: (text) => { $('vms-live').textContent = text; },
    });
}

/* --- booting -------------------------------------------------------------------------- */

function showLimit(box, e) {
    // 409 at the running limit: the problem lists the running VMs with console links.
    box.replaceChildren();
    box.className = 'msg warn';
    box.setAttribute('role', 'alert');
    box.append(el('span', {}, e.message + ' '));
    for (const vm of e.problem?.running || []) {
        if (vm.console_url)
            box.append(el('a', { href: vm.console_url }, `Open the console of ${vm.name}`), ' ');
    }
    box.append(el('span', {}, 'Stop or delete a VM to boot another.'));
}

async function boot(button, body, box) {
    const label = button.textContent;
    button.disabled = true;
    button.textContent = 'Booting…';
    say(box, 'Creating the VM; this takes a few seconds…', 'info');
    try {
        const r = await api('POST', '/api/v1/vms', { body });
        const vms = await api('GET', '/api/v1/vms');
        renderVms(vms || []);
        // The notice goes next to the VM it is about; the box by the button only clears.
        const row = rows.get(r.vm.id);
        let text = `${r.vm.name} is ${STATE_WORDS[r.vm.state]?.toLowerCase() || r.vm.state}.`;
        if ($('auto-open').checked && r.vm.state === 'running') {
            text = `${r.vm.name} is starting; its console opens when the screen is up.`;
            openWhenReady = r.vm.id;
            if (row) fillRow(row, row.vm);  // it may be up already
        }
        if (row) {
            say(box, '');
            say(row.parts.msg, text, 'ok');
            row.li.scrollIntoView({ block: 'nearest' });
        } else {
            say(box, text, 'ok');
        }
    } catch (e) {
        if (e instanceof ApiError && e.status === 409 && e.problem?.running) showLimit(box, e);
        else say(box, e.message);
    } finally {
        button.disabled = false;
        button.textContent = label;
    }
}

function renderTemplates() {
    const list = $('template-list');
    list.replaceChildren();
    for (const t of templates) {
        const facts = [`${t.memory_mib} MiB`, `${t.vcpus} vCPU${t.vcpus === 1 ? '' : 's'}`];
        if (t.max_lifetime_s) facts.push(`stops after ${Math.round(t.max_lifetime_s / 60)} min`);
        const li = el('li', { class: 'card template', dataset: { name: t.name } },
            el('h3', {}, t.name),
            t.description ? el('p', {}, t.description) : null,
            el('p', { class: 'muted small' }, facts.join(' · ')));
        if (t.available === false) {
            // The server says what is missing; admins also read what to do about it.
            li.classList.add('unavailable');
            li.append(el('p', { class: 'msg warn template-reason', role: 'status' }, `Not available: ${t.unavailable_reason}`));
            if (t.admin_hint) li.append(el('p', { class: 'small template-hint' }, `For admins: ${t.admin_hint}`));
            if (!t.needs_iso)
                li.append(el('div', { class: 'actions' }, el('button', { type: 'button', class: 'primary', disabled: true,
                    dataset: { template: t.name }, 'aria-label': `Boot ${t.name}`, title: t.unavailable_reason }, 'Boot')));
        } else if (t.needs_iso) {
            li.append(el('p', { class: 'muted small' }, 'Boots an ISO of yours: use the buttons under My ISOs.'));
        } else {
            const btn = el('button', { type: 'button', class: 'primary', dataset: { template: t.name },
                'aria-label': `Boot ${t.name}` }, 'Boot');
            btn.addEventListener('click', () => boot(btn, { template: t.name }, $('boot-msg')));
            li.append(el('div', { class: 'actions' }, btn));
        }
        list.append(li);
    }
    if (!templates.length) list.append(el('li', { class: 'empty' }, 'No templates are set up on this server.'));
}

async function loadIsos() {
    const list = $('iso-list');
    let isos;
    try {
        isos = await api('GET', '/api/v1/isos');
    } catch (e) {
        say($('iso-msg'), `Could not list your ISOs: ${e.message}`);
        return;
    }
    say($('iso-msg'), '');
    list.replaceChildren();
    const isoTemplates = templates.filter((t) => t.needs_iso && t.available !== false);
    for (const iso of isos || []) {
        const actions = el('div', { class: 'actions' });
        for (const t of isoTemplates) {
            const btn = el('button', { type: 'button', class: 'primary', dataset: { template: t.name, iso: iso.id } },
                `Boot with ${t.name}`);
            btn.setAttribute('aria-label', `Boot ${iso.name} with ${t.name}`);
            btn.addEventListener('click', () => boot(btn, { template: t.name, iso: iso.id }, $('iso-msg')));
            actions.append(btn);
        }
        // Course images (public: an admin's uploads) are everybody's to use, not to delete.
        if (!iso.public || me.role === 'admin') {
            const del = el('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${iso.name}` }, 'Delete');
            del.addEventListener('click', async () => {
                if (!confirm(`Delete the ISO ${iso.name}?`)) return;
                del.disabled = true;
                try {
                    await api('DELETE', `/api/v1/isos/${encodeURIComponent(iso.id)}`);
                    await loadIsos();
                } catch (e) {
                    say($('iso-msg'), e.message);
                    del.disabled = false;
                }
            });
            actions.append(del);
        }
        const facts = [bytes(Number(iso.size))];
        if (iso.public) facts.push('course image, for everyone');
        if (iso.created_at) facts.push(ago(iso.created_at));
        list.append(el('li', { class: 'card iso', dataset: { id: iso.id } },
            el('h3', {}, iso.name),
            el('p', { class: 'muted small' }, facts.join(' · ')),
            iso.sha256 ? el('p', { class: 'small mono' }, `sha256 ${iso.sha256}`) : null,
            actions));
    }
    $('iso-empty').hidden = (isos || []).length > 0;
}

/* --- persistent disks ------------------------------------------------------------------ */

async function diskAction(disk, action, button) {
    const what = action === 'reset'
        ? `Reset the disk of ${disk.template}? Everything on it is erased; it starts again from the template's image.`
        : `Delete the disk of ${disk.template}? Everything on it is lost.`;
    if (!confirm(what)) return;
    button.disabled = true;
    try {
        const path = `/api/v1/disks/${encodeURIComponent(disk.id)}`;
        await api(action === 'reset' ? 'POST' : 'DELETE', action === 'reset' ? `${path}/reset` : path);
        say($('disk-msg'), action === 'reset' ? `The disk of ${disk.template} is as new.` : '', 'info');
        await loadDisks();
    } catch (e) {
        say($('disk-msg'), e.message);
        button.disabled = false;
    }
}

async function loadDisks() {
    let disks;
    try {
        disks = (await api('GET', '/api/v1/disks')) || [];
    } catch (e) {
        say($('disk-msg'), `Could not list your disks: ${e.message}`);
        return;
    }
    $('disk-list').replaceChildren(...disks.map((disk) => {
        const facts = [`${bytes(disk.capacity_bytes)}`, `${bytes(disk.allocation_bytes)} used`];
        if (disk.owner !== me.username) facts.unshift(`of ${disk.owner}`);
        if (disk.vm_name) facts.push(`used by ${disk.vm_name}`);
        const mk = (text, action, cls) => {
            const b = el('button', { type: 'button', class: cls, 'aria-label': `${text} the disk of ${disk.template}` }, text);
            b.addEventListener('click', () => diskAction(disk, action, b));
            return b;
        };
        return el('li', { class: 'card disk', dataset: { id: disk.id } },
            el('h3', {}, `${disk.template} disk`),
            el('p', { class: 'muted small' }, facts.join(' · ')),
            el('div', { class: 'actions' }, mk('Reset', 'reset', null), mk('Delete', 'delete', 'danger')));
    }));
    $('disk-empty').hidden = disks.length > 0;
}

async function init() {
    me = await requireUser();
    topbar(me, 'dashboard');
    const auto = $('auto-open');
    auto.checked = localStorage.getItem(AUTO_OPEN_KEY) !== 'off';
    auto.addEventListener('change', () => {
        localStorage.setItem(AUTO_OPEN_KEY, auto.checked ? 'on' : 'off');
        if (!auto.checked) openWhenReady = null;
    });
    live();
    try {
        templates = (await api('GET', '/api/v1/templates')) || [];
        renderTemplates();
        // Cards drawn before the templates came learn now which VMs have a disk.
        for (const row of rows.values()) {
            vmButtons(row.vm, row);
            showSnapshots(row);
        }
    } catch (e) {
        say($('boot-msg'), `Could not list the templates: ${e.message}`);
    }
    loadIsos();
    loadDisks();
}

init();
