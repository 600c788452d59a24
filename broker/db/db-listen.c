// SPDX-License-Identifier: LGPL-2.1-or-later
// The listener thread: connect, LISTEN, then wait on the socket and count what arrives.
// Readers take no lock and make no system call: they load two atomics. The count moves at
// every (re)connect and at every disconnect after the flag is down, so a reader that saw the
// flag up and then loaded the count holds a count from a time the listener was connected.
#include "db-listen.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <libpq-fe.h>

#include "vmb-log.h"

#define RETRY_MIN_MS 250
#define RETRY_MAX_MS 5000

struct DbListener {
    char *conninfo;
    char *channel;
    unsigned connect_timeout_s;
    int wake_fd;        /* eventfd: stop */
    GThread *thread;

    /* Written by the thread only. */
    atomic_bool listening;
    atomic_uint_fast64_t generation; /* moves at every notification and (dis)connect */
};

static void
listen_set(DbListener *l, bool listening)
{
    if (listening) {
        atomic_fetch_add(&l->generation, 1);
        atomic_store(&l->listening, true);
    } else {
        atomic_store(&l->listening, false);
        atomic_fetch_add(&l->generation, 1);
    }
}

/* What the server says outside a query (the FATAL of a terminated backend): the loss is
 * logged when it is noticed, so this is only for debugging. */
static void
listen_notice(void *data, const char *message)
{
    g_autofree char *msg = g_strdup(message);

    g_strdelimit(g_strstrip(msg), "\n\t", ' ');
    vmb_debug("listener: %s", msg);
}

static PGconn *
listen_connect(DbListener *l)
{
    g_autofree char *timeout = g_strdup_printf("%u", l->connect_timeout_s);
    /* Named after its channel, so that an admin (and a test) can tell the listeners apart. */
    g_autofree char *app = g_strdup_printf("vmbroker-listen:%.40s", l->channel);
    /* TCP keepalives notice a peer that vanished without closing. */
    const char *const keys[] = { "dbname", "application_name", "connect_timeout",
                                 "keepalives", "keepalives_idle", "keepalives_interval",
                                 "keepalives_count", NULL };
    const char *const values[] = { l->conninfo, app, timeout, "1", "10", "5",
                                   "3", NULL };
    PGconn *pg = PQconnectdbParams(keys, values, 1);
    g_autofree char *quoted = NULL;
    g_autofree char *sql = NULL;
    PGresult *res;

    if (!pg || PQstatus(pg) != CONNECTION_OK)
        goto fail;
    PQsetNoticeProcessor(pg, listen_notice, NULL);
    quoted = PQescapeIdentifier(pg, l->channel, strlen(l->channel));
    if (!quoted)
        goto fail;
    sql = g_strdup_printf("LISTEN %s", quoted);
    PQfreemem(g_steal_pointer(&quoted));
    res = PQexec(pg, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        PQclear(res);
        goto fail;
    }
    PQclear(res);
    return pg;

fail:
    if (pg) {
        g_autofree char *msg = g_strdup(PQerrorMessage(pg));
        g_strdelimit(g_strstrip(msg), "\n\t", ' ');
        vmb_debug("listener: cannot listen on %s: %s", l->channel, msg);
        PQfinish(pg);
    }
    return NULL;
}

/* Reads what arrived and counts it. Returns false when the connection is gone. */
static bool
listen_read(DbListener *l, PGconn *pg)
{
    bool ok = PQconsumeInput(pg) == 1 && PQstatus(pg) == CONNECTION_OK;
    PGnotify *n;

    while ((n = PQnotifies(pg))) {
        atomic_fetch_add(&l->generation, 1);
        PQfreemem(n);
    }
    return ok;
}

/* Waits up to @timeout_ms (-1: forever) for input on @fd (-1: none). Returns false when
 * asked to stop. */
static bool
listen_wait(DbListener *l, int fd, int timeout_ms)
{
    struct pollfd pfd[2] = {
        { .fd = l->wake_fd, .events = POLLIN },
        { .fd = fd, .events = POLLIN },
    };

    while (poll(pfd, fd >= 0 ? 2 : 1, timeout_ms) < 0 && errno == EINTR)
        ;
    return !(pfd[0].revents & POLLIN);
}

static gpointer
listen_thread(gpointer data)
{
    DbListener *l = data;
    unsigned retry_ms = RETRY_MIN_MS;
    bool warned = false;

    for (;;) {
        PGconn *pg = listen_connect(l);

        if (!pg) {
            if (!warned)
                vmb_warning("listener: no connection to PostgreSQL for notifications; "
                            "cached reads are off until there is one");
            warned = true;
            if (!listen_wait(l, -1, (int) retry_ms))
                return NULL;
            retry_ms = MIN(retry_ms * 2, RETRY_MAX_MS);
            continue;
        }
        listen_set(l, true);
        if (warned)
            vmb_info("listener: listening on %s again; cached reads are back on", l->channel);
        warned = false;
        retry_ms = RETRY_MIN_MS;

        while (listen_wait(l, PQsocket(pg), -1)) {
            if (!listen_read(l, pg)) {
                vmb_warning("listener: lost the connection to PostgreSQL; cached reads are "
                            "off until it is back");
                warned = true;
                break;
            }
        }
        listen_set(l, false);
        PQfinish(pg);
        if (!warned)
            return NULL; /* asked to stop */
    }
}

/**
 * db_listener_start:
 * @conninfo: the database (a libpq connection string or name)
 * @channel: the channel to LISTEN on
 * @connect_timeout_s: each connection attempt's bound
 *
 * Returns: (transfer full): the listener; its thread connects, and reconnects when the
 * connection is lost (after 0.25 s, doubling up to 5 s).
 */
DbListener *
db_listener_start(const char *conninfo, const char *channel, unsigned connect_timeout_s)
{
    DbListener *l = g_new0(DbListener, 1);

    l->conninfo = g_strdup(conninfo);
    l->channel = g_strdup(channel);
    l->connect_timeout_s = connect_timeout_s;
    atomic_init(&l->listening, false);
    atomic_init(&l->generation, 0);
    l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (l->wake_fd < 0)
        g_error("eventfd: %s", g_strerror(errno));
    l->thread = g_thread_new("vmb-listen", listen_thread, l);
    return l;
}

/**
 * db_listener_stop:
 * @listener: (nullable): a listener
 *
 * Stops the thread, closes the connection and frees @listener.
 */
void
db_listener_stop(DbListener *listener)
{
    guint64 one = 1;

    if (!listener)
        return;
    if (write(listener->wake_fd, &one, sizeof(one)) != sizeof(one))
        g_error("eventfd write: %s", g_strerror(errno));
    g_thread_join(listener->thread);
    close(listener->wake_fd);
    g_free(listener->conninfo);
    g_free(listener->channel);
    g_free(listener);
}

/**
 * db_listener_current:
 * @listener: a listener
 * @ret_generation: (out): the count of notifications, connects and disconnects
 *
 * Returns: true when @ret_generation accounts for every notification the listener has read
 * so far; false while it is disconnected.
 */
bool
db_listener_current(DbListener *listener, guint64 *ret_generation)
{
    bool listening = atomic_load(&listener->listening);

    *ret_generation = atomic_load(&listener->generation);
    return listening;
}
