// SPDX-License-Identifier: LGPL-2.1-or-later
// The connection watchdog: libmicrohttpd's own timeout only bounds idle gaps, so a client
// sending a byte now and then would hold a connection forever. Every second this thread
// shuts down (never closes: the socket stays libmicrohttpd's) the connections whose head is
// late or whose body is too slow; libmicrohttpd then reads end-of-file and closes them.
#include "http-watchdog.h"

#include <sys/socket.h>

#include "vmb-log.h"
#include "vmb-periodic.h"

/* A body must bring min_body_rate bytes a second over each window this long. */
#define BODY_WINDOW_S 10

struct HttpWatched {
    int fd;                /* the socket, valid until http_watchdog_remove() */
    HttpWatchPhase phase;
    gint64 since_us;       /* HEAD: when the wait began; BODY: the current window's start */
    guint64 window_bytes;  /* BODY: bytes received in the current window */
    bool dropped;          /* shut down once already */
    unsigned requests;     /* finished on this connection (for the request log) */
};

struct HttpWatchdog {
    unsigned head_timeout_s;
    unsigned min_body_rate;
    GMutex lock;           /* guards conns and every HttpWatched in it */
    GHashTable *conns;     /* HttpWatched set */
    VmbPeriodic *thread;
};

/* Whether @c broke a deadline by @now; moves a body's rate window on. */
static bool
overdue(const HttpWatchdog *w, HttpWatched *c, gint64 now)
{
    gint64 elapsed = now - c->since_us;

    switch (c->phase) {
    case HTTP_WATCH_HEAD:
        return w->head_timeout_s && elapsed > (gint64) w->head_timeout_s * G_USEC_PER_SEC;
    case HTTP_WATCH_BODY:
        if (elapsed < BODY_WINDOW_S * G_USEC_PER_SEC)
            return false;
        if (c->window_bytes * G_USEC_PER_SEC < (guint64) w->min_body_rate * (guint64) elapsed)
            return true;
        c->since_us = now;
        c->window_bytes = 0;
        return false;
    case HTTP_WATCH_BUSY:
    case HTTP_WATCH_UPGRADED:
        break;
    }
    return false;
}

static void
sweep(gpointer data)
{
    HttpWatchdog *w = data;
    gint64 now = g_get_monotonic_time();
    unsigned heads = 0, bodies = 0;
    GHashTableIter it;
    gpointer key;

    g_mutex_lock(&w->lock);
    g_hash_table_iter_init(&it, w->conns);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        HttpWatched *c = key;
        if (c->dropped || !overdue(w, c, now))
            continue;
        shutdown(c->fd, SHUT_RDWR);
        c->dropped = true;
        if (c->phase == HTTP_WATCH_HEAD)
            heads++;
        else
            bodies++;
    }
    g_mutex_unlock(&w->lock);
    if (heads || bodies)
        vmb_info("http: dropped %u connection(s) past the head deadline, %u below the body rate",
                 heads, bodies);
}

/**
 * http_watchdog_start:
 * @head_timeout_s: a request head must be whole this long after the connection's start or
 *     its previous request's end; 0 for no deadline
 * @min_body_rate: bytes a second a body must average over each window; 0 for no minimum
 *
 * Returns: (transfer full): the watchdog, its thread running.
 */
HttpWatchdog *
http_watchdog_start(unsigned head_timeout_s, unsigned min_body_rate)
{
    HttpWatchdog *w = g_new0(HttpWatchdog, 1);

    w->head_timeout_s = head_timeout_s;
    w->min_body_rate = min_body_rate;
    g_mutex_init(&w->lock);
    w->conns = g_hash_table_new(g_direct_hash, g_direct_equal);
    w->thread = vmb_periodic_start("http-watchdog", 1, sweep, w);
    return w;
}

/**
 * http_watchdog_stop:
 * @w: (nullable) (transfer full): a watchdog
 */
void
http_watchdog_stop(HttpWatchdog *w)
{
    if (!w)
        return;
    vmb_periodic_stop(w->thread);
    g_hash_table_unref(w->conns);
    g_mutex_clear(&w->lock);
    g_free(w);
}

/**
 * http_watchdog_add:
 * @w: the watchdog
 * @fd: the connection's socket
 *
 * Returns: (transfer none): the connection's record, until http_watchdog_remove().
 */
HttpWatched *
http_watchdog_add(HttpWatchdog *w, int fd)
{
    HttpWatched *c = g_new0(HttpWatched, 1);

    c->fd = fd;
    c->phase = HTTP_WATCH_HEAD;
    c->since_us = g_get_monotonic_time();
    g_mutex_lock(&w->lock);
    g_hash_table_add(w->conns, c);
    g_mutex_unlock(&w->lock);
    return c;
}

/**
 * http_watchdog_remove:
 * @w: the watchdog
 * @c: (transfer full): a record of http_watchdog_add(), whose socket is about to close
 */
void
http_watchdog_remove(HttpWatchdog *w, HttpWatched *c)
{
    g_mutex_lock(&w->lock);
    g_hash_table_remove(w->conns, c);
    g_mutex_unlock(&w->lock);
    g_free(c);
}

/**
 * http_watchdog_notify:
 * @cls: the watchdog
 * @conn: a connection libmicrohttpd accepted or is about to close
 * @socket_context: where the connection's record is kept
 * @code: started or closed
 */
void
http_watchdog_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                     enum MHD_ConnectionNotificationCode code)
{
    HttpWatchdog *w = cls;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        /* Without its socket a connection is not watched: MHD's idle timeout still holds. */
        *socket_context = ci ? http_watchdog_add(w, ci->connect_fd) : NULL;
    } else if (*socket_context) {
        /* libmicrohttpd closes the socket after this returns: from now on the watchdog
         * must not know its number. */
        http_watchdog_remove(w, *socket_context);
        *socket_context = NULL;
    }
}

/**
 * http_watchdog_of:
 * @conn: a connection
 *
 * Returns: (nullable) (transfer none): its record, set by http_watchdog_notify().
 */
HttpWatched *
http_watchdog_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *sc =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return sc ? sc->socket_context : NULL;
}

/**
 * http_watchdog_phase:
 * @w: the watchdog
 * @c: (nullable): a connection's record
 * @phase: where it is now (an upgraded connection stays upgraded)
 */
void
http_watchdog_phase(HttpWatchdog *w, HttpWatched *c, HttpWatchPhase phase)
{
    if (!c)
        return;
    g_mutex_lock(&w->lock);
    if (c->phase != HTTP_WATCH_UPGRADED && c->phase != phase) {
        c->phase = phase;
        c->since_us = g_get_monotonic_time();
        c->window_bytes = 0;
    }
    g_mutex_unlock(&w->lock);
}

/**
 * http_watchdog_body:
 * @w: the watchdog
 * @c: (nullable): a connection's record
 * @len: body bytes just received
 */
void
http_watchdog_body(HttpWatchdog *w, HttpWatched *c, size_t len)
{
    if (!c || !len)
        return;
    g_mutex_lock(&w->lock);
    c->window_bytes += len;
    g_mutex_unlock(&w->lock);
}

/**
 * http_watchdog_count_request:
 * @w: the watchdog
 * @c: a connection's record
 *
 * Counts a finished request of @c.
 *
 * Returns: how many requests @c had finished before this one (0: it is the first).
 */
unsigned
http_watchdog_count_request(HttpWatchdog *w, HttpWatched *c)
{
    unsigned before;

    if (!w || !c)
        return 0;
    g_mutex_lock(&w->lock);
    before = c->requests++;
    g_mutex_unlock(&w->lock);
    return before;
}
