// Talking to vmbroker's API from the pages: the session cookie rides along by itself
// (same origin); the session's CSRF token comes from GET /api/v1/me (any tab of the browser
// gets it there, not only the one that signed in), is kept in sessionStorage and goes out as
// X-CSRF-Token on every request that changes something. When a sign-in in another tab
// replaced the session, the next refused change fetches the new token and tries once more,
// or, if another user signed in, says so instead of failing silently. Errors become ApiError,
// whose message is a sentence for a person; a 401 sends the person back to the sign-in page.

const CSRF_KEY = 'vmb-csrf';
const SIGNIN_KEY = 'vmb-signed-in'; // localStorage: who signed in last, seen by every tab
let pageUser = null; // the user this page was opened for
let nowUser = null;  // set when another user signed in in this browser since

export function csrfToken() {
    try { return sessionStorage.getItem(CSRF_KEY); } catch { return null; }
}

export function setCsrfToken(token) {
    try {
        if (token) sessionStorage.setItem(CSRF_KEY, token);
        else sessionStorage.removeItem(CSRF_KEY);
    } catch { /* private mode without storage: state-changing requests will say why */ }
}

export class ApiError extends Error {
    constructor(status, message, problem) {
        super(message);
        this.name = 'ApiError';
        this.status = status;        // HTTP status, 0 when the server could not be reached
        this.problem = problem || null; // the problem+json body, when there was one
    }
}

/* Words for a person, from a status and the server's problem detail. */
export function explain(status, problem, retryAfter) {
    const detail = problem && (problem.detail || problem.title);
    switch (status) {
    case 0: return 'Could not reach the server. Check your connection and try again.';
    case 401: return detail || 'You are not signed in.';
    case 403: return detail || 'You are not allowed to do that.';
    case 404: return detail && detail !== 'No such resource.' ? detail : 'That does not exist (any more).';
    case 413: return detail || 'That is too large for the server.';
    case 429: {
        const s = Number(retryAfter);
        const wait = s > 0 ? ` Try again in ${s} second${s === 1 ? '' : 's'}.` : ' Try again in a moment.';
        return (detail || 'Too many attempts.') + wait;
    }
    default:
        if (status >= 500)
            return 'The server could not do that right now' + (detail ? `: ${detail}` : '.');
        return detail || `The server refused the request (HTTP ${status}).`;
    }
}

export function toSignIn(reason) {
    setCsrfToken(null);
    const here = location.pathname + location.search;
    const params = new URLSearchParams();
    if (here !== '/' && !here.startsWith('/ui/index.html')) params.set('next', here);
    if (reason) params.set('reason', reason);
    const q = params.toString();
    location.assign('/' + (q ? `?${q}` : ''));
}

/**
 * api(method, path, {body, raw, noAuthRedirect}) -> parsed JSON, or null for 204.
 * body: an object sent as JSON. Throws ApiError.
 */
export async function api(method, path, opts = {}) {
    // The cookie is someone else's now: nothing this page asks would be for its user.
    if (nowUser && !opts.noAuthRedirect) throw new ApiError(403, otherUser(nowUser));
    const headers = { Accept: 'application/json' };
    let body;
    if (opts.body !== undefined) {
        headers['Content-Type'] = 'application/json';
        body = JSON.stringify(opts.body);
    }
    const changes = method !== 'GET' && method !== 'HEAD';
    if (changes) {
        const t = csrfToken();
        if (t) headers['X-CSRF-Token'] = t;
    }
    let res;
    try {
        res = await fetch(path, { method, headers, body, credentials: 'same-origin', cache: 'no-store' });
    } catch {
        throw new ApiError(0, explain(0));
    }
    let data = null;
    const type = res.headers.get('Content-Type') || '';
    if (res.status !== 204 && (type.includes('json'))) {
        try { data = await res.json(); } catch { data = null; }
    }
    if (res.ok)
        return data;
    if (res.status === 401 && !opts.noAuthRedirect) {
        toSignIn('Your session ended; please sign in again.');
        // Never settles: the page is going away.
        return new Promise(() => {});
    }
    if (res.status === 403 && changes && !opts.retried && await refreshSession(headers['X-CSRF-Token']))
        return api(method, path, { ...opts, retried: true });
    throw new ApiError(res.status, explain(res.status, data, res.headers.get('Retry-After')), data);
}

/* The session's CSRF token, again: true when it changed (a sign-in in another tab replaced
   the session) and the request is worth one more try. Another user's sign-in is an error
   the person must see. */
async function refreshSession(sent) {
    let me;
    try {
        me = await api('GET', '/api/v1/me', { noAuthRedirect: true });
    } catch {
        return false;
    }
    if (pageUser && me.username !== pageUser) {
        anotherUser(me.username);
        throw new ApiError(403, otherUser(me.username));
    }
    if (!me.csrf_token || me.csrf_token === sent) return false;
    setCsrfToken(me.csrf_token);
    return true;
}

/* The session's CSRF token as the server says it now (for requests not made through api()). */
export async function freshCsrfToken() {
    try {
        const me = await api('GET', '/api/v1/me', { noAuthRedirect: true });
        if (pageUser && me.username !== pageUser) return null;
        if (me.csrf_token) setCsrfToken(me.csrf_token);
    } catch { /* the upload's own answer will say what is wrong */ }
    return csrfToken();
}

function otherUser(name) {
    return `This browser is now signed in as ${name} (in another tab); this page still shows ${pageUser}. Reload the page to go on as ${name}.`;
}

/* Another user's sign-in: every later call of this page fails saying so, and the top of the
   page says it at once. */
function anotherUser(name) {
    nowUser = name;
    let banner = document.getElementById('session-banner');
    if (!banner) {
        banner = document.createElement('div');
        banner.id = 'session-banner';
        banner.className = 'msg warn';
        banner.setAttribute('role', 'alert');
        document.body.prepend(banner);
    }
    banner.textContent = otherUser(name);
}

/* Another tab signed in: the same user just means a new CSRF token; another user means this
   page shows someone else's things. */
function watchSignIns() {
    addEventListener('storage', async (ev) => {
        if (ev.key !== SIGNIN_KEY || !ev.newValue) return;
        let who = null;
        try { who = JSON.parse(ev.newValue).username; } catch { return; }
        if (who !== pageUser) {
            anotherUser(who);
            return;
        }
        try { await refreshSession(null); } catch { /* said on the next action */ }
    });
}

/* Tells the other tabs who signed in (called by the sign-in page). */
export function announceSignIn(username) {
    try { localStorage.setItem(SIGNIN_KEY, JSON.stringify({ username, at: Date.now() })); } catch { /* no storage */ }
}

/* GET /api/v1/me (which also hands this tab the session's CSRF token), or off to the
   sign-in page. */
export async function requireUser() {
    const me = await api('GET', '/api/v1/me');
    if (me.csrf_token) setCsrfToken(me.csrf_token);
    pageUser = me.username;
    watchSignIns();
    return me;
}

export async function signOut() {
    try { await api('POST', '/api/v1/auth/logout', { noAuthRedirect: true }); } catch { /* gone anyway */ }
    setCsrfToken(null);
    location.assign('/');
}
