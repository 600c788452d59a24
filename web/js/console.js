// The console page. The link carries #vm=ID&ticket=T. The page trades the one-time ticket for
// a console session (POST /api/v1/vms/{id}/console/session {ticket} -> {password, ws_path, vm}),
// wipes the fragment from the address bar, and runs noVNC's RFB against ws(s)://host+ws_path.
import RFB from '/novnc/core/rfb.js';
import { api, ApiError, csrfToken } from './api.js';
import { say, themeToggle } from './ui.js';

const $ = (id) => document.getElementById(id);
let rfb = null;
let vmId = null;
let vmName = null;
let everConnected = false;
let failure = null;
// vm.console.closed_at when this connection began: a later one means vmbroker closed it.
let closedAtStart = null;

function status(state, text) {
    const s = $('console-status');
    s.dataset.state = state;
    s.textContent = text;
    document.body.dataset.consoleState = state;
    const live = state === 'connected';
    $('btn-cad').disabled = !live;
    $('btn-fullscreen').disabled = !live;
    $('btn-reconnect').hidden = !(state === 'disconnected' || state === 'failed') || !vmId;
}

function fail(text) {
    status('failed', 'Not connected');
    say($('console-msg'), text);
}

/* The ticket from the fragment; the fragment is then gone from the address bar and history. */
function takeFragment() {
    const params = new URLSearchParams(location.hash.slice(1));
    history.replaceState(null, '', location.pathname + location.search);
    return { vm: params.get('vm'), ticket: params.get('ticket') };
}

async function openSession(id, ticket) {
    const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
    const t = csrfToken();
    if (t) headers['X-CSRF-Token'] = t;
    let res;
    try {
        res = await fetch(`/api/v1/vms/${encodeURIComponent(id)}/console/session`, {
            method: 'POST', headers, body: JSON.stringify({ ticket }), credentials: 'same-origin',
            cache: 'no-store',
        });
    } catch {
        throw new Error('Could not reach the server.');
    }
    let data = null;
    try { data = await res.json(); } catch { data = null; }
    if (res.ok && data && data.ws_path) return data;
    if (res.status === 401 || res.status === 403 || res.status === 410)
        throw new Error(`This console link has expired or was already used. Open the console again from your desktops. (${data?.detail || `HTTP ${res.status}`})`);
    if (res.status === 409)
        throw new Error(data?.detail || 'The VM is not running.');
    throw new Error(data?.detail || `The server refused the console (HTTP ${res.status}).`);
}

function wsUrl(path) {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${location.host}${path.startsWith('/') ? '' : '/'}${path}`;
}

async function explainDisconnect(clean) {
    if (failure) return failure;
    let text = everConnected ? 'Disconnected' : 'Could not connect';
    if (!clean) text += everConnected ? ': the connection broke' : ': the server or the VM did not answer';
    try {
        const vm = await api('GET', `/api/v1/vms/${encodeURIComponent(vmId)}`, { noAuthRedirect: true });
        if (vm?.console?.closed_reason && vm.console.closed_at !== closedAtStart) {
            text = `Disconnected: ${vm.console.closed_reason}`;
            if (vm.state !== 'running') text += `. The VM is ${vm.state}`;
        } else if (vm && vm.state !== 'running') {
            text += `. The VM is ${vm.state}${vm.state_reason ? ` (${vm.state_reason})` : ''}`;
        }
    } catch { /* not signed in in this browser: say what we know */ }
    return text + '.';
}

function connect(session) {
    const screen = $('screen');
    screen.replaceChildren();
    everConnected = false;
    failure = null;
    status('connecting', 'Connecting…');
    try {
        rfb = new RFB(screen, wsUrl(session.ws_path), {
            credentials: { password: session.password },
            shared: true,
        });
    } catch (e) {
        fail(`The console could not start: ${e.message}`);
        return;
    }
    rfb.scaleViewport = $('chk-scale').checked;
    rfb.resizeSession = false;
    rfb.focusOnClick = true;
    rfb.addEventListener('connect', () => {
        everConnected = true;
        say($('console-msg'), '');
        status('connected', 'Connected');
        rfb.focus();
    });
    rfb.addEventListener('securityfailure', (e) => {
        failure = `The VM refused the console: ${e.detail.reason || `security failure ${e.detail.status}`}.`;
    });
    rfb.addEventListener('credentialsrequired', () => {
        failure = 'The VM asked for a password the console session did not give.';
        rfb.disconnect();
    });
    rfb.addEventListener('desktopname', (e) => {
        if (e.detail.name) document.title = `${vmName || e.detail.name} · console · vmbroker`;
    });
    rfb.addEventListener('disconnect', async (e) => {
        rfb = null;
        status('disconnected', everConnected ? 'Disconnected' : 'Not connected');
        const text = await explainDisconnect(e.detail.clean);
        $('console-status').textContent = text;
        say($('console-msg'), failure ? text : '', 'error');
    });
}

async function start(id, ticket) {
    vmId = id;
    let session;
    try {
        session = await openSession(id, ticket);
    } catch (e) {
        fail(e.message);
        return;
    }
    if (session.vm) {
        closedAtStart = session.vm.console?.closed_at ?? null;
        vmName = session.vm.name;
        $('vm-title').textContent = session.vm.name;
        document.title = `${session.vm.name} · console · vmbroker`;
    }
    connect(session);
}

async function reconnect() {
    // A ticket serves once: ask for a fresh one (needs the sign-in of this tab).
    $('btn-reconnect').hidden = true;
    say($('console-msg'), '');
    status('connecting', 'Asking for a new console ticket…');
    try {
        const r = await api('POST', `/api/v1/vms/${encodeURIComponent(vmId)}/console`, { noAuthRedirect: true });
        await start(vmId, r.ticket);
    } catch (e) {
        if (e instanceof ApiError && (e.status === 401 || e.status === 403))
            fail('Reconnecting needs a fresh console link: open the console again from your desktops (or from your course portal).');
        else
            fail(e instanceof ApiError ? e.message : String(e));
    }
}

function init() {
    $('theme-slot').replaceWith(themeToggle());
    const scale = localStorage.getItem('vmb-console-scale');
    if (scale !== null) $('chk-scale').checked = scale === '1';
    $('chk-scale').addEventListener('change', () => {
        localStorage.setItem('vmb-console-scale', $('chk-scale').checked ? '1' : '0');
        if (rfb) rfb.scaleViewport = $('chk-scale').checked;
    });
    $('btn-cad').addEventListener('click', () => { if (rfb) { rfb.sendCtrlAltDel(); rfb.focus(); } });
    $('btn-fullscreen').addEventListener('click', async () => {
        try {
            if (document.fullscreenElement) await document.exitFullscreen();
            else await $('screen').requestFullscreen();
        } catch (e) {
            say($('console-msg'), `Full screen is not available here: ${e.message}`);
        }
    });
    document.addEventListener('fullscreenchange', () => {
        $('btn-fullscreen').textContent = document.fullscreenElement ? 'Leave full screen' : 'Full screen';
        if (rfb) rfb.focus();
    });
    $('btn-reconnect').addEventListener('click', reconnect);

    const { vm, ticket } = takeFragment();
    if (!vm || !ticket) {
        fail('This page needs a console link. Open the console from your desktops.');
        return;
    }
    start(vm, ticket);
}

init();
