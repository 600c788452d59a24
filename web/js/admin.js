// The admin page: every VM (owner, ports, state, age; kept current by the event stream) with
// stop and delete, the users with disable, the templates (define, edit and delete those of
// the API's), the base images (upload with progress, delete) and the audit log (filtered, a page at a time). A non-admin sees "Admins only" and nothing
// is fetched (the API refuses anyway).
import { api, explain, freshCsrfToken, requireUser } from './api.js';
import { coalesce, follow } from './live.js';
import { ago, bytes, el, say, topbar, when } from './ui.js';

const $ = (id) => document.getElementById(id);
const busy = new Set(); // ids of VMs with an action in flight

function vmRow(vm) {
    const stop = el('button', { type: 'button', dataset: { action: 'stop' }, 'aria-label': `Stop ${vm.name}`,
        disabled: busy.has(vm.id) || !(vm.state === 'running' || vm.state === 'paused') }, 'Stop');
    const del = el('button', { type: 'button', class: 'danger', dataset: { action: 'delete' },
        'aria-label': `Delete ${vm.name}`, disabled: busy.has(vm.id) || vm.state === 'creating' }, 'Delete');
    stop.addEventListener('click', () => act(vm, 'stop'));
    del.addEventListener('click', () => act(vm, 'delete'));
    const ports = vm.vnc_port || vm.ws_port ? `${vm.vnc_port ?? '–'} / ${vm.ws_port ?? '–'}` : '–';
    const conns = vm.console?.connections ? `${vm.console.connections} open` : 'none';
    return el('tr', { dataset: { id: vm.id, state: vm.state } },
        el('td', { class: 'mono' }, vm.name),
        el('td', {}, vm.owner),
        el('td', {}, vm.template),
        el('td', {}, el('span', { class: `state state-${vm.state}` }, vm.state),
            vm.state_reason ? el('div', { class: 'small muted' }, vm.state_reason) : null),
        el('td', { class: 'mono' }, ports),
        el('td', { title: vm.created_at || '' }, ago(vm.created_at).replace(' ago', '')),
        el('td', {}, conns),
        el('td', { class: 'actions' }, stop, ' ', del));
}

async function act(vm, action) {
    if (action === 'delete' && !confirm(`Delete ${vm.name} of ${vm.owner}? Its disks are removed.`))
        return;
    busy.add(vm.id);
    say($('vms-msg'), '');
    try {
        if (action === 'delete') await api('DELETE', `/api/v1/vms/${encodeURIComponent(vm.id)}`);
        else await api('POST', `/api/v1/vms/${encodeURIComponent(vm.id)}/${action}`);
    } catch (e) {
        say($('vms-msg'), `${vm.name}: ${e.message}`);
    } finally {
        busy.delete(vm.id);
        await refreshVms();
        loadAudit(false);
    }
}

function renderVms(vms) {
    const body = $('vm-rows');
    // Keep keyboard focus on the same button across a refresh.
    const active = document.activeElement;
    const focusId = active?.closest?.('tr')?.dataset.id;
    const focusAction = active?.dataset?.action;
    vms.sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
    body.replaceChildren(...vms.map(vmRow));
    if (focusId && focusAction) {
        const b = body.querySelector(`tr[data-id="${CSS.escape(focusId)}"] button[data-action="${focusAction}"]`);
        if (b && !b.disabled) b.focus();
    }
    $('vm-empty').hidden = vms.length > 0;
}

async function refreshVms() {
    try {
        renderVms((await api('GET', '/api/v1/vms')) || []);
        say($('vms-msg'), '');
        $('vms-updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (e) {
        say($('vms-msg'), `Could not list the VMs: ${e.message}`);
    }
}

function followVms() {
    const refreshSoon = coalesce(refreshVms, 250);
    follow({
        onVm: refreshSoon,
        onOperation: (op) => { if (op.state !== 'running') refreshSoon(); },
        onReset: refreshSoon,
        onStatus: (text) => { $('vms-live').textContent = text; },
    });
}

async function loadUsers() {
    const body = $('user-rows');
    let users;
    try {
        users = await api('GET', '/api/v1/users');
    } catch (e) {
        say($('users-msg'), `Could not list the users: ${e.message}`);
        return;
    }
    body.replaceChildren(...users.map((u) => {
        const action = u.disabled ? 'Enable' : 'Disable';
        const btn = el('button', { type: 'button', class: u.disabled ? '' : 'danger',
            'aria-label': `${action} ${u.username}` }, action);
        btn.addEventListener('click', async () => {
            if (!u.disabled && !confirm(`Disable ${u.username}? They can no longer sign in.`)) return;
            btn.disabled = true;
            try {
                await api('POST', `/api/v1/users/${encodeURIComponent(u.id)}/${action.toLowerCase()}`);
                say($('users-msg'), `${u.username} is ${u.disabled ? 'enabled' : 'disabled'}.`, 'ok');
            } catch (e) {
                say($('users-msg'), `Could not ${action.toLowerCase()} ${u.username}: ${e.message}`);
            }
            await loadUsers();
            await loadAudit(false);
        });
        return el('tr', { dataset: { id: u.id } },
            el('td', {}, u.username), el('td', {}, u.role),
            el('td', {}, u.disabled ? 'disabled' : 'active'), el('td', { class: 'actions' }, btn));
    }));
}

const apiTemplates = new Set(); // names of the templates defined through the API

async function loadTemplates() {
    let list;
    try {
        list = (await api('GET', '/api/v1/templates')) || [];
    } catch (e) {
        say($('templates-msg'), `Could not list the templates: ${e.message}`);
        return;
    }
    apiTemplates.clear();
    $('template-rows').replaceChildren(...list.map((t) => {
        const actions = el('td', { class: 'actions' });
        if (t.source === 'api') {
            apiTemplates.add(t.name);
            const edit = el('button', { type: 'button', 'aria-label': `Edit template ${t.name}` }, 'Edit');
            edit.addEventListener('click', () => {
                const { name, source, available, unavailable_reason, admin_hint, needs_iso, ...def } = t;
                if (!def.disk_gib) delete def.disk_gib; // the listing's 0 is a file's "no disk"
                $('template-name').value = name;
                $('template-json').value = JSON.stringify(def, null, 2);
                $('template-name').focus();
            });
            const del = el('button', { type: 'button', class: 'danger', 'aria-label': `Delete template ${t.name}` }, 'Delete');
            del.addEventListener('click', async () => {
                if (!confirm(`Delete the template ${t.name}?`)) return;
                try {
                    await api('DELETE', `/api/v1/templates/${encodeURIComponent(t.name)}`);
                    say($('templates-msg'), `${t.name} is deleted.`, 'ok');
                } catch (e) {
                    say($('templates-msg'), `Could not delete ${t.name}: ${e.message}`);
                }
                await loadTemplates();
            });
            actions.append(edit, ' ', del);
        }
        return el('tr', { dataset: { name: t.name } },
            el('td', { class: 'mono' }, t.name), el('td', {}, t.source), el('td', {}, t.kind),
            el('td', {}, `${t.memory_mib} MiB`), actions);
    }));
}

async function saveTemplate(ev) {
    ev.preventDefault();
    const name = $('template-name').value.trim();
    let def;
    try {
        def = JSON.parse($('template-json').value);
    } catch (e) {
        say($('templates-msg'), `The definition is not JSON: ${e.message}`);
        return;
    }
    const exists = apiTemplates.has(name);
    try {
        if (exists) await api('PUT', `/api/v1/templates/${encodeURIComponent(name)}`, { body: def });
        else await api('POST', '/api/v1/templates', { body: { ...def, name } });
        say($('templates-msg'), `${name} is ${exists ? 'changed' : 'defined'}.`, 'ok');
    } catch (e) {
        say($('templates-msg'), `Could not save ${name}: ${e.message}`);
    }
    await loadTemplates();
}

async function loadImages() {
    let images;
    try {
        images = (await api('GET', '/api/v1/images')) || [];
    } catch (e) {
        say($('images-msg'), `Could not list the base images: ${e.message}`);
        return;
    }
    $('image-rows').replaceChildren(...images.map((img) => {
        const del = el('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${img.name}` }, 'Delete');
        del.addEventListener('click', async () => {
            if (!confirm(`Delete the base image ${img.name}?`)) return;
            del.disabled = true;
            try {
                await api('DELETE', `/api/v1/images/${encodeURIComponent(img.name)}`);
                say($('images-msg'), `${img.name} is deleted.`, 'ok');
            } catch (e) {
                say($('images-msg'), `Could not delete ${img.name}: ${e.message}`);
            }
            await loadImages();
        });
        return el('tr', { dataset: { name: img.name } },
            el('td', { class: 'mono' }, img.name), el('td', {}, img.format ?? '?'),
            el('td', {}, bytes(img.capacity_bytes)), el('td', {}, bytes(img.allocation_bytes)),
            el('td', {}, img.templates.join(', ') || '–'), el('td', { class: 'actions' }, del));
    }));
    $('image-empty').hidden = images.length > 0;
}

// PUT with XMLHttpRequest, whose upload.onprogress drives the progress bar.
async function uploadImage(ev) {
    ev.preventDefault();
    const file = $('image-file').files[0];
    const name = $('image-name').value.trim();
    const bar = $('image-progress');
    if (!file || !name) return;
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', `/api/v1/images/${encodeURIComponent(name)}?format=${encodeURIComponent($('image-format').value)}`);
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    const t = await freshCsrfToken();
    if (t) xhr.setRequestHeader('X-CSRF-Token', t);
    xhr.upload.onprogress = (e) => { bar.max = e.total || file.size || 1; bar.value = e.loaded; };
    const done = (text, kind) => {
        bar.hidden = true;
        $('image-upload').disabled = false;
        say($('images-msg'), text, kind);
        loadImages();
    };
    xhr.onload = () => {
        let data = null;
        try { data = JSON.parse(xhr.responseText); } catch { data = null; }
        if (xhr.status === 201) done(`${name} is uploaded (${bytes(data.capacity_bytes)}).`, 'ok');
        else done(`The upload failed: ${explain(xhr.status, data, xhr.getResponseHeader('Retry-After'))}`);
    };
    xhr.onerror = () => done('The upload was cut off: the connection to the server broke.');
    bar.hidden = false;
    $('image-upload').disabled = true;
    say($('images-msg'), '');
    xhr.send(file);
}

// The audit log: the filter form's values, then "Older entries" follows next_cursor.
let auditCursor = null;

function auditRow(r) {
    const who = r.actor ?? r.origin ?? 'system';
    const detail = Object.keys(r.detail || {}).length ? JSON.stringify(r.detail) : '';
    return el('tr', { dataset: { id: String(r.id), action: r.action } },
        el('td', { title: r.at }, when(r.at)),
        el('td', {}, who),
        el('td', { class: 'mono' }, r.action),
        el('td', { class: 'mono small' }, `${r.object_kind}${r.object_id ? ` ${r.object_id}` : ''}`),
        el('td', { class: 'mono' }, r.remote_addr ?? '–'),
        el('td', { class: 'mono small' }, detail));
}

async function loadAudit(more) {
    const q = new URLSearchParams({ limit: '50' });
    for (const f of ['user', 'action', 'since']) {
        const v = $(`audit-${f}`).value.trim();
        if (v) q.set(f, v);
    }
    if (more && auditCursor) q.set('cursor', auditCursor);
    let page;
    try {
        page = await api('GET', `/api/v1/audit?${q}`);
    } catch (e) {
        say($('audit-msg'), `Could not read the audit log: ${e.message}`);
        return;
    }
    say($('audit-msg'), '');
    const rows = page.items.map(auditRow);
    if (more) $('audit-rows').append(...rows);
    else $('audit-rows').replaceChildren(...rows);
    auditCursor = page.next_cursor;
    $('audit-more').hidden = !auditCursor;
    $('audit-empty').hidden = $('audit-rows').children.length > 0;
}

async function init() {
    const me = await requireUser();
    topbar(me, 'admin');
    if (me.role !== 'admin') {
        $('admins-only').hidden = false;
        return;
    }
    $('admin-content').hidden = false;
    followVms();
    loadUsers();
    loadTemplates();
    $('template-form').addEventListener('submit', saveTemplate);
    loadImages();
    $('image-form').addEventListener('submit', uploadImage);
    $('image-file').addEventListener('change', () => {
        const f = $('image-file').files[0];
        if (f && !$('image-name').value) $('image-name').value = f.name.toLowerCase();
        if (f && /\.(raw|img)$/i.test(f.name)) $('image-format').value = 'raw';
    });
    $('audit-filter').addEventListener('submit', (e) => { e.preventDefault(); loadAudit(false); });
    $('audit-more').addEventListener('click', () => loadAudit(true));
    loadAudit(false);
}

init();
