// Shared page furniture: the top bar (navigation, who is signed in, sign out, theme), a small
// element builder, messages and formatting.
import { signOut } from './api.js';

/* el('button', {class: 'primary', onclick: f}, 'text', child...) */
export function el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
        if (v === null || v === undefined || v === false) continue;
        if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
        else if (k === 'class') e.className = v;
        else if (k === 'dataset') Object.assign(e.dataset, v);
        else if (v === true) e.setAttribute(k, '');
        else e.setAttribute(k, String(v));
    }
    for (const c of children.flat())
        if (c !== null && c !== undefined && c !== false)
            e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
}

/* Shows TEXT in the message box BOX (kind: error, ok, info, warn); empty text hides it. */
export function say(box, text, kind = 'error') {
    box.className = `msg ${kind}`;
    box.textContent = text || '';
    if (kind === 'error' && text) box.setAttribute('role', 'alert');
    else box.setAttribute('role', 'status');
}

/* --- theme ---------------------------------------------------------------------------- */

export function currentTheme() {
    const t = document.documentElement.dataset.theme;
    if (t === 'light' || t === 'dark') return t;
    return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

function themeButtonLabel(btn) {
    const next = currentTheme() === 'dark' ? 'light' : 'dark';
    btn.textContent = next === 'dark' ? 'Dark theme' : 'Light theme';
    btn.setAttribute('aria-label', `Switch to the ${next} theme`);
    btn.dataset.current = currentTheme();
}

export function themeToggle() {
    const btn = el('button', { type: 'button', id: 'theme-toggle', class: 'theme-toggle' });
    themeButtonLabel(btn);
    btn.addEventListener('click', () => {
        const next = currentTheme() === 'dark' ? 'light' : 'dark';
        document.documentElement.dataset.theme = next;
        try { localStorage.setItem('vmb-theme', next); } catch { /* not remembered */ }
        themeButtonLabel(btn);
    });
    matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => themeButtonLabel(btn));
    return btn;
}

/* --- top bar -------------------------------------------------------------------------- */

/* Fills <header id="topbar">. ME may be null (signed out). */
export function topbar(me, current) {
    const header = document.getElementById('topbar');
    header.className = 'topbar';
    header.replaceChildren();
    header.append(el('a', { class: 'skip', href: '#main' }, 'Skip to content'));
    header.append(el('a', { class: 'brand', href: me ? '/ui/dashboard.html' : '/' }, 'vmbroker'));
    if (me) {
        const links = [['dashboard', '/ui/dashboard.html', 'My desktops'],
                       ['upload', '/ui/upload.html', 'Upload an ISO']];
        if (me.role === 'admin') links.push(['admin', '/ui/admin.html', 'Admin']);
        header.append(el('nav', { 'aria-label': 'Main' },
            links.map(([key, href, text]) =>
                el('a', { href, 'aria-current': key === current ? 'page' : null }, text))));
    }
    header.append(el('span', { class: 'spacer' }));
    if (me) {
        header.append(el('span', { class: 'who', id: 'who' }, `${me.username} (${me.role})`));
        header.append(el('button', { type: 'button', id: 'sign-out', onclick: () => signOut() }, 'Sign out'));
    }
    header.append(themeToggle());
}

/* --- formatting ----------------------------------------------------------------------- */

export function bytes(n) {
    if (!Number.isFinite(n)) return '?';
    const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return i === 0 ? `${n} bytes` : `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

export function duration(seconds) {
    if (!Number.isFinite(seconds) || seconds < 0) return '?';
    seconds = Math.round(seconds);
    if (seconds < 60) return `${seconds} s`;
    const m = Math.floor(seconds / 60), s = seconds % 60;
    if (m < 60) return `${m} min ${s} s`;
    const h = Math.floor(m / 60);
    if (h < 48) return `${h} h ${m % 60} min`;
    return `${Math.floor(h / 24)} days`;
}

/* "3 min ago" from an ISO date string. */
export function ago(iso) {
    if (!iso) return '';
    const t = Date.parse(iso);
    if (!Number.isFinite(t)) return '';
    return `${duration(Math.max(0, (Date.now() - t) / 1000))} ago`;
}

export function when(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    return Number.isFinite(d.getTime()) ? d.toLocaleString() : iso;
}
