// The sign-in page (served at /): sign in, or sign up when the server allows it.
import { announceSignIn, api, ApiError, setCsrfToken } from './api.js';
import { say, topbar } from './ui.js';

const $ = (id) => document.getElementById(id);

/* Where to go after signing in: ?next= when it is one of our own pages, else the dashboard. */
function destination() {
    const next = new URLSearchParams(location.search).get('next');
    if (next && /^\/ui\/[a-z]+\.html(\?[^#]*)?$/.test(next)) return next;
    return '/ui/dashboard.html';
}

async function signIn(username, password) {
    const r = await api('POST', '/api/v1/auth/login', { body: { username, password }, noAuthRedirect: true });
    setCsrfToken(r.csrf_token);
    announceSignIn(r.user?.username || username);
    location.assign(destination());
}

function busy(button, on, text) {
    button.disabled = on;
    if (text) button.textContent = text;
}

async function onSignIn(ev) {
    ev.preventDefault();
    const box = $('signin-error'), btn = $('signin-submit');
    const username = $('signin-username').value.trim(), password = $('signin-password').value;
    if (!username || !password) {
        say(box, 'Enter your user name and your password.');
        (username ? $('signin-password') : $('signin-username')).focus();
        return;
    }
    say(box, '');
    busy(btn, true, 'Signing in…');
    try {
        await signIn(username, password);
    } catch (e) {
        const text = e instanceof ApiError && e.status === 401
            ? 'That user name and password do not match. Check them and try again.'
            : e.message;
        say(box, text);
        $('signin-password').select();
        busy(btn, false, 'Sign in');
    }
}

async function onSignUp(ev) {
    ev.preventDefault();
    const box = $('signup-msg'), btn = $('signup-submit');
    const username = $('signup-username').value.trim(), password = $('signup-password').value;
    if (!username || !password) {
        say(box, 'Choose a user name and a password.');
        return;
    }
    if (password !== $('signup-password2').value) {
        say(box, 'The two passwords are not the same.');
        $('signup-password2').focus();
        return;
    }
    say(box, '');
    busy(btn, true, 'Creating…');
    try {
        await api('POST', '/api/v1/auth/signup', { body: { username, password }, noAuthRedirect: true });
        say(box, 'Account created. Signing you in…', 'ok');
        await signIn(username, password);
    } catch (e) {
        if (e instanceof ApiError && e.status === 403)
            say(box, e.problem?.detail || 'Sign-up is not open on this server. Ask an administrator for an account.', 'warn');
        else if (e instanceof ApiError && e.status === 409)
            say(box, 'That user name is taken. Choose another one.');
        else
            say(box, e.message);
        busy(btn, false, 'Create account');
    }
}

function init() {
    topbar(null, 'signin');
    const reason = new URLSearchParams(location.search).get('reason');
    say($('notice'), reason || '', 'info');
    $('signin-form').addEventListener('submit', onSignIn);
    $('signup-form').addEventListener('submit', onSignUp);
    $('signup-show').addEventListener('click', () => {
        const form = $('signup-form');
        form.hidden = !form.hidden;
        $('signup-show').setAttribute('aria-expanded', String(!form.hidden));
        if (!form.hidden) $('signup-username').focus();
    });
    // Already signed in in this browser (any tab): straight on.
    api('GET', '/api/v1/me', { noAuthRedirect: true })
        .then((me) => {
            if (me?.csrf_token) {
                setCsrfToken(me.csrf_token);
                location.replace(destination());
            }
        })
        .catch(() => setCsrfToken(null));
    $('signin-username').focus();
}

init();
