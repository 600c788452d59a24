// The upload page: PUT the chosen file raw to /api/v1/isos/{name} with XMLHttpRequest, so
// upload.onprogress can drive a progress bar with speed and time left; Cancel aborts.
import { explain, freshCsrfToken, requireUser, toSignIn } from './api.js';
import { bytes, duration, say, topbar } from './ui.js';

const $ = (id) => document.getElementById(id);
let xhr = null;

/* A server-side name from a file name: lower case, [a-z0-9._-], starting with a letter or digit. */
export function isoName(fileName) {
    let n = fileName.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+/, '');
    if (n.length > 64) {
        const ext = n.endsWith('.iso') ? '.iso' : '';
        n = n.slice(0, 64 - ext.length) + ext;
    }
    return n;
}

/* Speed over a sliding window of recent progress events. */
class Meter {
    constructor() { this.samples = []; }
    add(loaded) {
        const now = performance.now();
        this.samples.push([now, loaded]);
        while (this.samples.length > 2 && now - this.samples[0][0] > 5000) this.samples.shift();
    }
    bytesPerSecond() {
        if (this.samples.length < 2) return NaN;
        const [t0, b0] = this.samples[0], [t1, b1] = this.samples[this.samples.length - 1];
        return t1 > t0 ? (b1 - b0) * 1000 / (t1 - t0) : NaN;
    }
}

function setRunning(on) {
    $('upload-start').disabled = on;
    $('iso-file').disabled = on;
    $('iso-name').disabled = on;
    $('upload-cancel').disabled = !on;
}

async function start(ev) {
    ev.preventDefault();
    const box = $('upload-msg');
    const file = $('iso-file').files[0];
    const name = $('iso-name').value.trim();
    if (!file) { say(box, 'Choose an ISO file first.'); $('iso-file').focus(); return; }
    if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(name)) {
        say(box, 'The name may have only lower-case letters, digits, dots, dashes and underscores, and must start with a letter or digit.');
        $('iso-name').focus();
        return;
    }
    say(box, '');
    $('result').hidden = true;
    $('progress-panel').hidden = false;
    const bar = $('upload-progress'), stats = $('upload-stats');
    bar.max = file.size || 1;
    bar.value = 0;
    stats.textContent = `Starting the upload of ${bytes(file.size)}…`;
    const meter = new Meter();
    meter.add(0);

    // The session's current token: another tab may have signed in again since this page opened.
    const t = await freshCsrfToken();
    xhr = new XMLHttpRequest();
    xhr.open('PUT', `/api/v1/isos/${encodeURIComponent(name)}`);
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    if (t) xhr.setRequestHeader('X-CSRF-Token', t);
    xhr.responseType = 'text';
    xhr.upload.onprogress = (e) => {
        meter.add(e.loaded);
        const total = e.lengthComputable ? e.total : file.size;
        bar.max = total || 1;
        bar.value = e.loaded;
        const bps = meter.bytesPerSecond();
        const pct = total ? Math.floor(e.loaded * 100 / total) : 0;
        let text = `${pct}% — ${bytes(e.loaded)} of ${bytes(total)}`;
        if (Number.isFinite(bps) && bps > 0) {
            text += ` at ${bytes(bps)}/s`;
            if (e.loaded < total) text += `, about ${duration((total - e.loaded) / bps)} left`;
        }
        stats.textContent = text;
    };
    xhr.upload.onload = () => {
        stats.textContent = `All ${bytes(file.size)} sent; the server is checking the image…`;
    };
    xhr.onload = () => {
        const x = xhr;
        xhr = null;
        setRunning(false);
        let data = null;
        try { data = JSON.parse(x.responseText); } catch { data = null; }
        if (x.status === 401) { toSignIn('Your session ended; please sign in again.'); return; }
        if (x.status >= 200 && x.status < 300 && data) {
            bar.value = bar.max;
            stats.textContent = `Done: ${bytes(data.size)}.`;
            $('result-name').textContent = data.name;
            $('result-size').textContent = `${bytes(Number(data.size))} (${data.size} bytes)`;
            $('result-sha256').textContent = data.sha256;
            $('result').hidden = false;
            say(box, `${data.name} is uploaded.`, 'ok');
            return;
        }
        say(box, `The upload failed: ${explain(x.status, data, x.getResponseHeader('Retry-After'))}`);
        stats.textContent = '';
    };
    xhr.onerror = () => {
        xhr = null;
        setRunning(false);
        // The server may answer early (413) and close the connection mid-body.
        say(box, 'The upload was cut off: the connection to the server broke. If the file is very large, it may be over the server\'s limit.');
    };
    xhr.onabort = () => {
        xhr = null;
        setRunning(false);
        stats.textContent = '';
        say(box, 'Upload cancelled.', 'info');
    };
    setRunning(true);
    xhr.send(file);
    $('upload-cancel').focus();
}

async function init() {
    const me = await requireUser();
    topbar(me, 'upload');
    $('upload-form').addEventListener('submit', start);
    $('upload-cancel').addEventListener('click', () => { if (xhr) xhr.abort(); });
    $('iso-file').addEventListener('change', () => {
        const f = $('iso-file').files[0];
        if (f) $('iso-name').value = isoName(f.name);
    });
    addEventListener('beforeunload', (e) => { if (xhr) e.preventDefault(); });
}

init();
