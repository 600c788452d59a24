// SPDX-License-Identifier: LGPL-2.1-or-later
// The console relay's connects to QEMU: the websocket connect and handshake run on the
// engine thread without blocking it, one at a time per QEMU listener, the others queued.
#include "vmb-splice-private.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmb-error.h"

/*
 * Why a queue per upstream: QEMU listens for websockets with a backlog of 1. When many
 * viewers connect at once, the kernel drops the SYNs that find the backlog full and the
 * client retries them after 1, 3, 7 s..., so a burst of connects used to end in timeouts.
 * Here at most one connect to an address and port is in flight (from connect() to QEMU's
 * 101); the others wait in arrival order, at most VMB_SPLICE_CONNECT_QUEUE of them. A
 * connect has a bound on its wait in the queue and then one on its own connect and
 * handshake, checked every VMB_SPLICE_CONNECT_TICK_MS, so a listener that never answers
 * costs each waiting viewer a bounded time and nothing else: no thread waits for it.
 *
 * The connects in flight have an epoll set of their own (cepfd), registered in the engine's
 * set, so the relay's event handling needs no way to tell a connect from a pair's end.
 */

static void
upstream_free(Upstream *u)
{
    g_queue_clear_full(&u->waiting, (GDestroyNotify) vmb_splice_connect_free);
    g_free(u->key);
    g_free(u);
}

void
vmb_splice_connect_free(Connect *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    g_free(c->key);
    g_free(c->addr);
    g_free(c->ws_protocol);
    if (c->request)
        g_string_free(c->request, TRUE);
    if (c->resp)
        g_byte_array_unref(c->resp);
    g_free(c);
}

/* Ends @c (which is in no queue now): tells its owner, frees it. */
static void
connect_end(VmbSplice *s, Connect *c, VmbWsUpstream *up, const GError *error)
{
    if (c->fd >= 0)
        epoll_ctl(s->cepfd, EPOLL_CTL_DEL, c->fd, NULL);
    s->connecting--;
    c->done(up, error, c->done_data);
    vmb_splice_connect_free(c);
}

static void
connect_fail(VmbSplice *s, Connect *c, VmbErrorKind kind, const char *fmt, ...)
    G_GNUC_PRINTF(4, 5);

static void
connect_fail(VmbSplice *s, Connect *c, VmbErrorKind kind, const char *fmt, ...)
{
    g_autoptr(GError) error = NULL;
    va_list ap;

    va_start(ap, fmt);
    error = g_error_new_valist(VMB_ERROR, kind, fmt, ap);
    va_end(ap);
    connect_end(s, c, NULL, error);
}

static bool
connect_watch(VmbSplice *s, Connect *c, guint32 events, bool add)
{
    struct epoll_event ev = { .events = events, .data.ptr = c };

    return epoll_ctl(s->cepfd, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c->fd, &ev) == 0;
}

/* Starts the oldest waiting connect of @u that is not past its deadline, if none is in
 * flight; drops @u once it has nothing left. */
static void
upstream_next(VmbSplice *s, Upstream *u)
{
    while (!u->active && u->waiting.length) {
        Connect *c = g_queue_pop_head(&u->waiting);
        g_autoptr(GError) error = NULL;
        bool in_progress = false;

        if (g_get_monotonic_time() >= c->deadline_us) {
            connect_fail(s, c, VMB_ERROR_UNAVAILABLE,
                         "console upstream: timed out waiting for the connects before it");
            continue;
        }
        c->fd = vmb_wsupstream_socket(c->addr, c->port, &in_progress, &error);
        if (c->fd < 0) {
            connect_end(s, c, NULL, error);
            continue;
        }
        c->connected = !in_progress;
        c->deadline_us = g_get_monotonic_time() + c->timeout_us; /* its own turn now */
        if (!connect_watch(s, c, EPOLLOUT, true)) {
            connect_fail(s, c, VMB_ERROR_INTERNAL, "epoll_ctl: %s", g_strerror(errno));
            continue;
        }
        u->active = c;
    }
    if (!u->active && !u->waiting.length) {
        g_hash_table_remove(s->upstreams, u->key);
        upstream_free(u);
    }
}

/**
 * vmb_splice_connect_start:
 * @s: the engine
 * @c: (transfer full): a connect from vmb_splice_connect()
 *
 * Engine thread: queues @c behind the connects to the same upstream, or refuses it when
 * that queue is full.
 */
void
vmb_splice_connect_start(VmbSplice *s, Connect *c)
{
    Upstream *u = g_hash_table_lookup(s->upstreams, c->key);

    s->connecting++;
    if (!u) {
        u = g_new0(Upstream, 1);
        u->key = g_strdup(c->key);
        g_queue_init(&u->waiting);
        g_hash_table_insert(s->upstreams, u->key, u);
    }
    if (u->waiting.length >= VMB_SPLICE_CONNECT_QUEUE) {
        connect_fail(s, c, VMB_ERROR_TOO_MANY,
                     "Too many viewers are connecting to this console at once; try again "
                     "in a few seconds.");
        return;
    }
    if (!s->next_connect_check_us)
        s->next_connect_check_us = g_get_monotonic_time() + VMB_SPLICE_CONNECT_TICK_MS * 1000;
    g_queue_push_tail(&u->waiting, c);
    upstream_next(s, u);
}

/* Sends what is left of the request; true when all of it went. False on error (@c ended). */
static bool
connect_send(VmbSplice *s, Connect *c, bool *ret_all_sent)
{
    while (c->sent < c->request->len) {
        ssize_t n = send(c->fd, c->request->str + c->sent, c->request->len - c->sent,
                         MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n < 0) {
            connect_fail(s, c, VMB_ERROR_UNAVAILABLE,
                         "console upstream: sending the upgrade request: %s", g_strerror(errno));
            return false;
        }
        c->sent += (size_t) n;
    }
    *ret_all_sent = c->sent == c->request->len;
    return true;
}

/* Reads QEMU's answer; ends @c when it is complete or wrong. True when @c ended. */
static bool
connect_read(VmbSplice *s, Connect *c)
{
    g_auto(VmbWsUpstream) up = VMB_WSUPSTREAM_INIT;
    g_autoptr(GError) error = NULL;
    guint8 chunk[2048];
    size_t want = MIN(sizeof(chunk), VMB_WSUPSTREAM_MAX_HEADERS - c->resp->len);
    ssize_t n;
    int done;

    do
        n = recv(c->fd, chunk, want, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN)
        return false;
    if (n == 0) {
        connect_fail(s, c, VMB_ERROR_UNAVAILABLE,
                     "console upstream closed the connection during the upgrade");
        return true;
    }
    if (n < 0) {
        connect_fail(s, c, VMB_ERROR_UNAVAILABLE,
                     "console upstream: reading the upgrade response: %s", g_strerror(errno));
        return true;
    }
    g_byte_array_append(c->resp, chunk, (guint) n);
    done = vmb_wsupstream_response(c->resp, (size_t) n, c->ws_protocol, &up, &error);
    if (done == 0)
        return false;
    if (done < 0) {
        connect_end(s, c, NULL, error);
        return true;
    }
    epoll_ctl(s->cepfd, EPOLL_CTL_DEL, c->fd, NULL);
    up.fd = c->fd;
    c->fd = -1;
    connect_end(s, c, &up, NULL);
    return true;
}

/* One step of @c on @events; true when @c ended (and was freed). */
static bool
connect_step(VmbSplice *s, Connect *c, guint32 events)
{
    g_autoptr(GError) error = NULL;
    bool all_sent = false;

    if (!c->connected) {
        if (!vmb_wsupstream_connected(c->fd, &error)) {
            connect_end(s, c, NULL, error);
            return true;
        }
        c->connected = true;
    }
    if (c->sent < c->request->len) {
        if (!connect_send(s, c, &all_sent))
            return true;
        if (all_sent && !connect_watch(s, c, EPOLLIN, false)) {
            connect_fail(s, c, VMB_ERROR_INTERNAL, "epoll_ctl: %s", g_strerror(errno));
            return true;
        }
        return false;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
        return connect_read(s, c);
    return false;
}

/**
 * vmb_splice_connect_events:
 * @s: the engine
 *
 * Engine thread: cepfd is readable; moves every connect that can go on.
 */
void
vmb_splice_connect_events(VmbSplice *s)
{
    struct epoll_event events[MAX_EVENTS];
    int n = epoll_wait(s->cepfd, events, MAX_EVENTS, 0);

    for (int i = 0; i < n; i++) {
        Connect *c = events[i].data.ptr;
        g_autofree char *key = g_strdup(c->key);
        Upstream *u = g_hash_table_lookup(s->upstreams, key);

        /* Each connect in flight is its upstream's only one: it appears once per batch. */
        u->active = NULL;
        if (!connect_step(s, c, events[i].events)) {
            u->active = c;
            continue;
        }
        upstream_next(s, u);
    }
}

/**
 * vmb_splice_connect_expire:
 * @s: the engine
 *
 * Engine thread: ends the connects past their deadline, waiting or in flight.
 */
void
vmb_splice_connect_expire(VmbSplice *s)
{
    gint64 now = g_get_monotonic_time();
    g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func(g_free);
    GHashTableIter it;
    gpointer key;

    s->next_connect_check_us = s->connecting ? now + VMB_SPLICE_CONNECT_TICK_MS * 1000 : 0;
    g_hash_table_iter_init(&it, s->upstreams);
    while (g_hash_table_iter_next(&it, &key, NULL))
        g_ptr_array_add(keys, g_strdup(key));
    for (guint i = 0; i < keys->len; i++) {
        Upstream *u = g_hash_table_lookup(s->upstreams, keys->pdata[i]);
        GList *l = u->waiting.head;

        while (l) {
            Connect *c = l->data;
            GList *next = l->next;
            if (now >= c->deadline_us) {
                g_queue_delete_link(&u->waiting, l);
                connect_fail(s, c, VMB_ERROR_UNAVAILABLE,
                             "console upstream: timed out waiting for the connects before it");
            }
            l = next;
        }
        if (u->active && now >= u->active->deadline_us) {
            Connect *c = g_steal_pointer(&u->active);
            connect_fail(s, c, VMB_ERROR_UNAVAILABLE, c->connected
                         ? "console upstream: timed out waiting for the upgrade response"
                         : "console upstream: timed out connecting");
        }
        upstream_next(s, u);
    }
}

/**
 * vmb_splice_connect_stop:
 * @s: the engine
 *
 * Engine thread, at its end: every connect fails as "shutting down".
 */
void
vmb_splice_connect_stop(VmbSplice *s)
{
    GHashTableIter it;
    gpointer value;

    g_hash_table_iter_init(&it, s->upstreams);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        Upstream *u = value;
        Connect *c;

        if (u->active)
            connect_fail(s, g_steal_pointer(&u->active), VMB_ERROR_UNAVAILABLE,
                         "console relay: shutting down");
        while ((c = g_queue_pop_head(&u->waiting)))
            connect_fail(s, c, VMB_ERROR_UNAVAILABLE, "console relay: shutting down");
        g_hash_table_iter_remove(&it);
        upstream_free(u);
    }
}

/**
 * vmb_splice_connect:
 * @s: the engine
 * @addr: numeric address of QEMU's websocket listener ("::1" or "[::1]")
 * @port: its port
 * @ws_key: the browser's Sec-WebSocket-Key, forwarded unchanged
 * @ws_protocol: (nullable): the browser's Sec-WebSocket-Protocol, forwarded unchanged
 * @timeout_ms: bound on the connect and the handshake, from the moment they start
 * @wait_ms: bound on the wait in the queue for that moment
 * @done: called once, on the engine thread, with the result
 * @done_data: passed to @done
 * @error: return location for an error
 *
 * Any thread; returns at once. The engine opens QEMU's websocket as vmb_wsupstream_connect()
 * does, but without blocking anyone and one connect at a time per @addr and @port. @done then
 * gets the connection (to hand to vmb_splice_add() with the client's socket) or the error:
 * VMB_ERROR_UNAVAILABLE when QEMU refuses, fails or is late, VMB_ERROR_TOO_MANY when
 * VMB_SPLICE_CONNECT_QUEUE connects wait for it already.
 *
 * Returns: true when queued (@done will run); false for a malformed key, protocol or port,
 * or an engine that is stopping (@done will not run).
 */
bool
vmb_splice_connect(VmbSplice *s, const char *addr, unsigned port, const char *ws_key,
                   const char *ws_protocol, unsigned timeout_ms, unsigned wait_ms,
                   VmbSpliceConnectFunc done, void *done_data, GError **error)
{
    g_autoptr(GString) request = vmb_wsupstream_request(addr, port, NULL, ws_key, ws_protocol,
                                                        error);
    Connect *c;
    Cmd *cmd;

    g_return_val_if_fail(s && addr && done, false);

    if (!request)
        return false;
    c = g_new0(Connect, 1);
    c->key = g_strdup_printf("%s %u", addr, port);
    c->addr = g_strdup(addr);
    c->port = port;
    c->ws_protocol = g_strdup(ws_protocol);
    c->request = g_steal_pointer(&request);
    c->resp = g_byte_array_sized_new(1024);
    c->fd = -1;
    c->deadline_us = g_get_monotonic_time() + (gint64) wait_ms * 1000;
    c->timeout_us = (gint64) timeout_ms * 1000;
    c->done = done;
    c->done_data = done_data;
    cmd = g_new0(Cmd, 1);
    cmd->kind = CMD_CONNECT;
    cmd->connect = c;

    g_mutex_lock(&s->lock);
    if (s->stopping) {
        g_mutex_unlock(&s->lock);
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE, "splice engine is stopping");
        vmb_splice_cmd_free(cmd);
        return false;
    }
    g_queue_push_tail(&s->commands, cmd);
    g_mutex_unlock(&s->lock);
    vmb_splice_wake(s);
    return true;
}
