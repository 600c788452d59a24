// Talking to vmbroker's API from the pages: the session cookie rides along by itself
// (same origin); the CSRF token that login returned lives in sessionStorage and goes out as
// X-CSRF-Token on every request that changes something. Errors become ApiError, whose
// message is a sentence for a person; a 401 sends the person back to the sign-in page.

const CSRF_KEY = 'vmb-csrf';

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
    const headers = { Accept: 'application/json' };
    let body;
    if (opts.body !== undefined) {
        headers['Content-Type'] = 'application/json';
        body = JSON.stringify(opts.body);
    }
    if (method !== 'GET' && method !== 'HEAD') {
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
    throw new ApiError(res.status, explain(res.status, data, res.headers.get('Retry-After')), data);
}

/* GET /api/v1/me, or off to the sign-in page. A tab without the CSRF token cannot change
   anything, so it counts as signed out too. */
export async function requireUser() {
    const me = await api('GET', '/api/v1/me');
    if (!csrfToken()) {
        toSignIn('Please sign in again in this tab.');
        return new Promise(() => {});
    }
    return me;
}

export async function signOut() {
    try { await api('POST', '/api/v1/auth/logout', { noAuthRedirect: true }); } catch { /* gone anyway */ }
    setCsrfToken(null);
    location.assign('/');
}
