// Live updates: the broker's event stream (GET /api/v1/events). `follow` calls onVm(vm) and
// onOperation(op) for each change the signed-in user may see, and onReset() when the page
// must reload what it shows (after the stream fell behind, and when it (re)connects, as
// changes may have been missed meanwhile). The browser reconnects by itself, resuming after
// the last event it saw; onStatus(text) says whether updates are live.
export function follow({ onVm, onOperation, onReset, onStatus }) {
    const source = new EventSource('/api/v1/events');
    const parse = (handler) => (ev) => {
        let data;
        try { data = JSON.parse(ev.data); } catch { return; }
        handler(data);
    };
    source.addEventListener('vm', parse(onVm));
    source.addEventListener('operation', parse(onOperation));
    source.addEventListener('reset', () => onReset());
    source.addEventListener('open', () => { onStatus('live'); onReset(); });
    source.addEventListener('error', () => onStatus('reconnecting…'));
    return source;
}

// Calls fn at most once per `ms`, the last call winning.
export function coalesce(fn, ms) {
    let timer = null;
    return () => {
        if (timer) return;
        timer = setTimeout(() => { timer = null; fn(); }, ms);
    };
}
