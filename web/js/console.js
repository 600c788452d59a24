// The console page. The link carries #vm=ID&ticket=T. The page trades the one-time ticket for
// the VNC password and a websocket ticket (POST /api/v1/vms/{id}/console/session {ticket});
// that answer also sets a console session cookie scoped to this VM's console, so the page
// keeps #vm=ID (the ticket is wiped) and, after a reload or a dropped websocket, asks again
// with the cookie alone. It reconnects by itself with backoff and stops only for a reason a
// reconnect cannot fix (the VM stopped or is gone, the access ended), which it says.
import RFB from '/novnc/core/rfb.js';
import { api } from './api.js';
import { say, themeToggle } from './ui.js';

const $ = (id) => document.getElementById(id);
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];
let rfb = null;
let vmId = null;
let vmName = null;
let everConnected = false;
let failure = null;
let attempt = 0;      // reconnect attempts since the last good connection
let retryTimer = null;
let keepTimer = null;  // while connected: keeps the console session alive, notices its end
let idleMs = 7200_000; // the console session's idle limit, as the server said
let finished = false; // stopped for a reason a reconnect cannot fix
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
    $('btn-reconnect').hidden = !(state === 'disconnected' || state === 'failed' || state === 'reconnecting') || !vmId;
    $('btn-reconnect').textContent = state === 'reconnecting' ? 'Reconnect now' : 'Reconnect';
}

function fail(text) {
    status('failed', 'Not connected');
    say($('console-msg'), text);
}

/* The ticket from the fragment; the ticket is then gone from the address bar and history,
   the VM stays (a reload finds its console session by it). */
function takeFragment() {
    const params = new URLSearchParams(location.hash.slice(1));
    const vm = params.get('vm');
    history.replaceState(null, '', location.pathname + location.search + (vm ? `#vm=${encodeURIComponent(vm)}` : ''));
    return { vm, ticket: params.get('ticket') };
}

class SessionError extends Error {
    constructor(message, final) {
        super(message);
        this.final = final; // true: reconnecting cannot help
    }
}

async function openSession(id, ticket) {
    const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
    let res;
    try {
        res = await fetch(`/api/v1/vms/${encodeURIComponent(id)}/console/session`, {
            method: 'POST', headers, body: JSON.stringify(ticket ? { ticket } : {}),
            credentials: 'same-origin', cache: 'no-store',
        });
    } catch {
        throw new SessionError('Could not reach the server.', false);
    }
    let data = null;
    try { data = await res.json(); } catch { data = null; }
    if (res.ok && data && data.ws_path) return data;
    const detail = data?.detail || `HTTP ${res.status}`;
    if (res.status === 401 || res.status === 403)
        throw new SessionError(ticket
            ? `This console link has expired or was already used. Open the console again from your desktops or your course portal. (${detail})`
            : (data?.detail || 'Your access to this console has ended.'), true);
    if (res.status === 404)
        throw new SessionError('This VM no longer exists.', true);
    if (res.status === 409)
        throw new SessionError(data?.detail || 'The VM is not running.', true);
    if (res.status === 400 || res.status === 422)
        throw new SessionError(`The server refused the console: ${detail}`, true);
    throw new SessionError(`The server could not open the console right now (${detail}).`, false);
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
    closedAtStart = session.vm?.console?.closed_at ?? null;
    status(attempt ? 'reconnecting' : 'connecting', attempt ? 'Reconnecting…' : 'Connecting…');
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
        attempt = 0;
        say($('console-msg'), '');
        status('connected', 'Connected');
        rfb.focus();
        keepAlive();
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
    rfb.addEventListener('disconnect', (e) => {
        rfb = null;
        clearInterval(keepTimer);
        if (!finished) onDropped(e.detail.clean);
    });
}

/* Why vmbroker closed this connection itself, if it did (a newer viewer of an exclusive
   console, a stop): a reconnect would only undo what someone meant. */
function deliberateClose(vm) {
    const c = vm?.console;
    return c?.closed_reason && c.closed_at && c.closed_at !== closedAtStart ? c.closed_reason : null;
}

/* A console in use is not idle: while connected, the page uses its console session now and
   then (a third of its idle limit, at most every five minutes), and learns so when the access
   ended (revoked, withdrawn, the VM stopped) even before the websocket goes. */
function keepAlive() {
    clearInterval(keepTimer);
    keepTimer = setInterval(async () => {
        try {
            await openSession(vmId, null);
        } catch (e) {
            if (!e.final) return; // the server is away: the websocket will tell
            clearInterval(keepTimer);
            const why = await closedReason();
            stopFor(why ? `Disconnected: ${why}. ${e.message}` : e.message);
            if (rfb) rfb.disconnect();
        }
    }, Math.max(1000, Math.min(idleMs / 3, 300_000)));
}

function stopFor(text) {
    finished = true;
    clearInterval(keepTimer);
    clearTimeout(retryTimer);
    status('disconnected', text);
    say($('console-msg'), '');
}

/* The websocket dropped: ask again with the console session, after a pause that grows. */
function onDropped(clean) {
    const delay = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
    attempt += 1;
    status('reconnecting', 'Reconnecting…');
    say($('console-msg'), failure || (everConnected && !clean ? 'The connection broke; reconnecting…' : ''), 'warn');
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => { open(null); }, delay + Math.floor(Math.random() * delay / 4));
}

async function open(ticket) {
    let session;
    try {
        session = await openSession(vmId, ticket);
    } catch (e) {
        if (e.final) {
            const why = await closedReason();
            stopFor(why ? `Disconnected: ${why}. ${e.message}` : e.message);
        } else {
            onDropped(false);
            say($('console-msg'), `${e.message} Trying again…`, 'warn');
        }
        return;
    }
    if (session.session_idle_s) idleMs = session.session_idle_s * 1000;
    if (session.vm) {
        vmName = session.vm.name;
        $('vm-title').textContent = session.vm.name;
        document.title = `${session.vm.name} · console · vmbroker`;
    }
    const why = rfb === null && attempt > 0 ? deliberateClose(session.vm) : null;
    if (why) {
        stopFor(`Disconnected: ${why}.`);
        return;
    }
    connect(session);
}

/* vmbroker's reason for closing the VM's consoles, when this browser may read the VM. */
async function closedReason() {
    try {
        const vm = await api('GET', `/api/v1/vms/${encodeURIComponent(vmId)}`, { noAuthRedirect: true });
        return deliberateClose(vm);
    } catch {
        return null; // a portal student has no sign-in: the session's answer says enough
    }
}

function reconnectNow() {
    clearTimeout(retryTimer);
    finished = false;
    attempt = 0;
    say($('console-msg'), '');
    if (rfb) rfb.disconnect(); else open(null);
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
    $('btn-reconnect').addEventListener('click', reconnectNow);

    const { vm, ticket } = takeFragment();
    if (!vm) {
        fail('This page needs a console link. Open the console from your desktops or your course portal.');
        return;
    }
    vmId = vm;
    open(ticket);
}

init();
