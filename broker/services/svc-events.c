// SPDX-License-Identifier: LGPL-2.1-or-later
// The event hub: a reader thread appends new events to a bounded ring (oldest dropped) and
// wakes every stream; a stream formats, under the hub's lock, the ring's events after its
// cursor that its user may see. A stream whose cursor fell off the ring gets a "reset" event
// (the client reloads what it shows) and continues from the newest.
#include "svc-events.h"

#include <string.h>

#include "db-events.h"
#include "db-listen.h"
#include "vmb-error.h"
#include "vmb-log.h"

#define EVENTS_CHANNEL "vmbroker_events"
#define RING_MAX 4096
#define READ_BATCH 1000
#define TICK_US (100 * G_TIME_SPAN_MILLISECOND)

struct SvcEventStream {
    SvcEvents *hub;
    char *user_id;
    DbRole role;        /* admins see all, service accounts what users own */
    gint64 cursor;          /* the last event id handled */
    GString *pending;       /* formatted, not yet read */
    gint64 last_sent_us;    /* for keep-alives */
    SvcEventWakeFunc wake;
    gpointer wake_data;
};

struct SvcEvents {
    SvcEventsOptions opts;
    char *conninfo;
    DbListener *listener;
    GThread *reader;
    GMutex lock;
    GCond quit_cond;
    bool quit;
    bool ending;            /* streams end once they have sent what they hold */
    GQueue ring;            /* DbEvent, oldest first */
    gint64 newest;          /* id of the newest event seen */
    GPtrArray *streams;     /* SvcEventStream */
    GHashTable *per_user;   /* user id -> count (GUINT_TO_POINTER) */
};

/* Under the lock: appends @batch (transfer: its events) to the ring. */
static void
ring_append(SvcEvents *hub, GPtrArray *batch)
{
    while (batch->len) {
        DbEvent *ev = g_ptr_array_steal_index(batch, 0);
        hub->newest = MAX(hub->newest, ev->id);
        g_queue_push_tail(&hub->ring, ev);
        while (hub->ring.length > RING_MAX)
            db_event_free(g_queue_pop_head(&hub->ring));
    }
}

/* Reads what is new; returns whether anything was. */
static bool
read_new(SvcEvents *hub)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(DbConn) conn = db_pool_acquire(hub->opts.db, &err);
    g_autoptr(GPtrArray) batch = NULL;
    gint64 after;
    bool any;

    g_mutex_lock(&hub->lock);
    after = hub->newest;
    g_mutex_unlock(&hub->lock);
    if (conn)
        batch = db_events_after(conn, after, READ_BATCH, &err);
    if (!batch) {
        vmb_warning("events: reading: %s", err->message);
        return false;
    }
    any = batch->len > 0;
    g_mutex_lock(&hub->lock);
    ring_append(hub, batch);
    g_mutex_unlock(&hub->lock);
    return any;
}

/* Wakes every stream (news, or time for a keep-alive). */
static void
wake_all(SvcEvents *hub)
{
    g_autoptr(GPtrArray) wakes = g_ptr_array_new();

    g_mutex_lock(&hub->lock);
    for (guint i = 0; i < hub->streams->len; i++)
        g_ptr_array_add(wakes, hub->streams->pdata[i]);
    /* A wake only resumes a connection; it never calls back into the hub, so holding the
     * lock here keeps every stream alive while it is woken. */
    for (guint i = 0; i < wakes->len; i++) {
        SvcEventStream *s = wakes->pdata[i];
        s->wake(s->wake_data);
    }
    g_mutex_unlock(&hub->lock);
}

static gpointer
reader_main(gpointer data)
{
    SvcEvents *hub = data;
    guint64 seen = G_MAXUINT64, gen = 0;
    gint64 next_keepalive = 0, next_poll = 0;
    gint64 keepalive_us = (gint64) hub->opts.keepalive_s * G_TIME_SPAN_SECOND;

    g_mutex_lock(&hub->lock);
    while (!hub->quit) {
        gint64 now = g_get_monotonic_time();
        bool listening;

        g_mutex_unlock(&hub->lock);
        listening = db_listener_current(hub->listener, &gen);
        /* Without the LISTEN connection, the table is read every second anyway. */
        if ((gen != seen || (!listening && now >= next_poll)) && read_new(hub)) {
            wake_all(hub);
            next_keepalive = now + keepalive_us;
        } else if (now >= next_keepalive) {
            wake_all(hub);
            next_keepalive = now + keepalive_us;
        }
        if (gen != seen || now >= next_poll)
            next_poll = now + G_TIME_SPAN_SECOND;
        seen = gen;
        g_mutex_lock(&hub->lock);
        if (!hub->quit)
            g_cond_wait_until(&hub->quit_cond, &hub->lock, g_get_monotonic_time() + TICK_US);
    }
    g_mutex_unlock(&hub->lock);
    return NULL;
}

SvcEvents *
svc_events_new(const SvcEventsOptions *opts)
{
    SvcEvents *hub = g_new0(SvcEvents, 1);
    g_autoptr(DbConn) conn = db_pool_acquire(opts->db, NULL);
    gint64 last = 0;

    hub->opts = *opts;
    hub->conninfo = g_strdup(opts->conninfo);
    hub->opts.conninfo = hub->conninfo;
    hub->opts.keepalive_s = MAX(opts->keepalive_s, 1);
    g_mutex_init(&hub->lock);
    g_cond_init(&hub->quit_cond);
    g_queue_init(&hub->ring);
    hub->streams = g_ptr_array_new();
    hub->per_user = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    /* The ring starts with the latest events, for streams that resume. */
    if (conn && db_events_last_id(conn, &last, NULL))
        hub->newest = MAX(last - RING_MAX, 0);
    g_clear_pointer(&conn, db_conn_release);
    read_new(hub);
    hub->newest = MAX(hub->newest, last);
    hub->listener = db_listener_start(hub->conninfo, EVENTS_CHANNEL, 10);
    hub->reader = g_thread_new("vmb-events", reader_main, hub);
    return hub;
}

void
svc_events_free(SvcEvents *hub)
{
    if (!hub)
        return;
    g_mutex_lock(&hub->lock);
    hub->quit = true;
    g_cond_signal(&hub->quit_cond);
    g_mutex_unlock(&hub->lock);
    g_thread_join(hub->reader);
    db_listener_stop(hub->listener);
    g_queue_clear_full(&hub->ring, (GDestroyNotify) db_event_free);
    g_ptr_array_unref(hub->streams);
    g_hash_table_unref(hub->per_user);
    g_mutex_clear(&hub->lock);
    g_cond_clear(&hub->quit_cond);
    g_free(hub->conninfo);
    g_free(hub);
}

SvcEventStream *
svc_events_open(SvcEvents *hub, const DbUser *caller, gint64 last_id, SvcEventWakeFunc wake,
                gpointer wake_data, GError **error)
{
    SvcEventStream *s;
    guint mine;

    g_mutex_lock(&hub->lock);
    mine = GPOINTER_TO_UINT(g_hash_table_lookup(hub->per_user, caller->id));
    if (hub->streams->len >= hub->opts.max_streams || mine >= hub->opts.max_per_user) {
        g_mutex_unlock(&hub->lock);
        g_set_error(error, VMB_ERROR, VMB_ERROR_TOO_MANY,
                    mine >= hub->opts.max_per_user
                        ? "You have %u event streams open, the most allowed; close one."
                        : "The broker serves as many event streams as it may (%u); try later.",
                    mine >= hub->opts.max_per_user ? mine : hub->streams->len);
        return NULL;
    }
    s = g_new0(SvcEventStream, 1);
    s->hub = hub;
    s->user_id = g_strdup(caller->id);
    s->role = caller->role;
    s->cursor = last_id < 0 ? hub->newest : last_id;
    s->pending = g_string_new("retry: 2000\n\n");
    s->last_sent_us = g_get_monotonic_time();
    s->wake = wake;
    s->wake_data = wake_data;
    g_ptr_array_add(hub->streams, s);
    g_hash_table_insert(hub->per_user, g_strdup(caller->id), GUINT_TO_POINTER(mine + 1));
    g_mutex_unlock(&hub->lock);
    return s;
}

void
svc_event_stream_close(SvcEventStream *s)
{
    SvcEvents *hub = s->hub;
    guint mine;

    g_mutex_lock(&hub->lock);
    g_ptr_array_remove_fast(hub->streams, s);
    mine = GPOINTER_TO_UINT(g_hash_table_lookup(hub->per_user, s->user_id));
    if (mine > 1)
        g_hash_table_insert(hub->per_user, g_strdup(s->user_id), GUINT_TO_POINTER(mine - 1));
    else
        g_hash_table_remove(hub->per_user, s->user_id);
    g_mutex_unlock(&hub->lock);
    g_string_free(s->pending, TRUE);
    g_free(s->user_id);
    g_free(s);
}

static bool
visible(const SvcEventStream *s, const DbEvent *ev)
{
    return s->role == DB_ROLE_ADMIN || (s->role == DB_ROLE_SERVICE && ev->owner_is_user) ||
           g_strcmp0(ev->owner_id, s->user_id) == 0 ||
           g_strcmp0(ev->requested_by, s->user_id) == 0;
}

/* Under the lock: formats what is new for @s. */
static void
collect(SvcEventStream *s)
{
    SvcEvents *hub = s->hub;
    const DbEvent *oldest = g_queue_peek_head(&hub->ring);

    if (oldest && s->cursor < oldest->id - 1) {
        /* Fell behind the ring: the client reloads, then follows from now. */
        g_string_append_printf(s->pending, "id: %" G_GINT64_FORMAT "\nevent: reset\ndata: {}\n\n",
                               hub->newest);
        s->cursor = hub->newest;
        return;
    }
    for (GList *l = hub->ring.head; l; l = l->next) {
        const DbEvent *ev = l->data;
        if (ev->id <= s->cursor)
            continue;
        s->cursor = ev->id;
        if (visible(s, ev))
            g_string_append_printf(s->pending, "id: %" G_GINT64_FORMAT "\nevent: %s\ndata: %s\n\n",
                                   ev->id, ev->kind, ev->payload);
    }
}

/**
 * svc_events_end_streams:
 * @hub: the hub
 *
 * At shutdown: every stream ends once it has sent what it holds (a browser's EventSource
 * reconnects, to another broker or to this one once it is back).
 */
void
svc_events_end_streams(SvcEvents *hub)
{
    g_mutex_lock(&hub->lock);
    hub->ending = true;
    g_mutex_unlock(&hub->lock);
    wake_all(hub);
}

gssize
svc_event_stream_read(SvcEventStream *s, char *buf, size_t max)
{
    SvcEvents *hub = s->hub;
    gint64 now = g_get_monotonic_time();
    size_t n;

    g_mutex_lock(&hub->lock);
    if (!s->pending->len && hub->ending) {
        g_mutex_unlock(&hub->lock);
        return -1;
    }
    if (!s->pending->len)
        collect(s);
    if (!s->pending->len &&
        now - s->last_sent_us >= (gint64) hub->opts.keepalive_s * G_TIME_SPAN_SECOND)
        g_string_append(s->pending, ": keep-alive\n\n");
    n = MIN(max, s->pending->len);
    memcpy(buf, s->pending->str, n);
    g_string_erase(s->pending, 0, (gssize) n);
    if (n)
        s->last_sent_us = now;
    g_mutex_unlock(&hub->lock);
    return (gssize) n;
}
