// SPDX-License-Identifier: LGPL-2.1-or-later
// The dispatcher and workers of operations. One lock guards the worker count, the wake-up
// flag and the waiters; no database or libvirt call is made under it.
#include "svc-ops.h"

#include "db-listen.h"
#include "vmb-crash.h"
#include "vmb-error.h"
#include "vmb-log.h"

#define OPS_CHANNEL "vmbroker_operations"
#define OPS_TICK_US (250 * G_TIME_SPAN_MILLISECOND)
/* Without news, the queue is still read this often: a stalled broker's operations become
 * claimable by time alone, which no notification announces. */
#define OPS_POLL_US (2 * G_TIME_SPAN_SECOND)
#define OPS_METRIC "vmbroker_operations_total"

typedef struct {
    SvcOpsDoneFunc fn;
    gpointer data;
    gint64 deadline_us;
} Waiter;

struct SvcOps {
    SvcOpsOptions opts;
    char *instance;
    char *conninfo;
    struct {
        SvcOpsRunFunc fn;
        gpointer data;
    } runners[DB_OP_KIND_LAST];
    DbListener *listener;
    GThreadPool *workers;
    GThread *dispatcher;
    GMutex lock;
    GCond wake;
    bool kicked;
    bool stopping;
    unsigned busy;          /* operations claimed and not yet finished */
    GHashTable *waiters;    /* operation id -> GSList of Waiter */
};

SvcOps *
svc_ops_new(const SvcOpsOptions *opts)
{
    SvcOps *ops = g_new0(SvcOps, 1);

    ops->opts = *opts;
    ops->opts.workers = MAX(opts->workers, 1);
    ops->opts.stale_s = MAX(opts->stale_s, 3);
    ops->instance = g_strdup(opts->instance);
    ops->conninfo = g_strdup(opts->conninfo);
    ops->opts.instance = ops->instance;
    ops->opts.conninfo = ops->conninfo;
    g_mutex_init(&ops->lock);
    g_cond_init(&ops->wake);
    ops->waiters = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    if (opts->metrics) {
        vmb_metrics_declare(opts->metrics, OPS_METRIC, VMB_METRIC_COUNTER,
                            "Operations this broker ended, by kind and result.", NULL, 0);
        /* Every series from the start, so that a rate over the first failure is not empty. */
        for (int k = 0; k < DB_OP_KIND_LAST; k++)
            for (int failed = 0; failed < 2; failed++)
                vmb_metrics_add(opts->metrics, OPS_METRIC, 0, "kind",
                                db_op_kind_to_string((DbOpKind) k), "result",
                                failed ? "failed" : "succeeded", NULL);
    }
    return ops;
}

void
svc_ops_set_runner(SvcOps *ops, DbOpKind kind, SvcOpsRunFunc fn, gpointer data)
{
    g_return_if_fail(kind < DB_OP_KIND_LAST);
    ops->runners[kind].fn = fn;
    ops->runners[kind].data = data;
}

unsigned
svc_ops_max_active_per_user(SvcOps *ops)
{
    return ops->opts.max_active_per_user;
}

void
svc_ops_kick(SvcOps *ops)
{
    g_mutex_lock(&ops->lock);
    ops->kicked = true;
    g_cond_signal(&ops->wake);
    g_mutex_unlock(&ops->lock);
}

void
svc_ops_step(SvcOps *ops, const DbOp *op, const char *step, unsigned progress)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(DbConn) conn = db_pool_acquire(ops->opts.db, &err);

    vmb_debug("operation %s (%s): %s", op->id, db_op_kind_to_string(op->kind), step);
    if (!conn || !db_ops_set_step(conn, op->id, step, progress, &err))
        vmb_warning("operation %s: recording step '%s': %s", op->id, step, err->message);
}

/* --- waiters --- */

static void
waiters_call(GSList *list, const DbOp *op)
{
    for (GSList *l = list; l; l = l->next) {
        Waiter *w = l->data;
        w->fn(op, w->data);
        g_free(w);
    }
    g_slist_free(list);
}

/* Calls the waiters of @op, which ended. */
static void
waiters_fire(SvcOps *ops, const DbOp *op)
{
    GSList *list = NULL;

    g_mutex_lock(&ops->lock);
    g_hash_table_steal_extended(ops->waiters, op->id, NULL, (gpointer *) &list);
    g_mutex_unlock(&ops->lock);
    waiters_call(list, op);
}

void
svc_ops_wait(SvcOps *ops, const char *op_id, unsigned timeout_ms, SvcOpsDoneFunc fn,
             gpointer data)
{
    Waiter *w = g_new0(Waiter, 1);
    GSList *list;
    bool stopping;

    w->fn = fn;
    w->data = data;
    w->deadline_us = g_get_monotonic_time() + (gint64) timeout_ms * G_TIME_SPAN_MILLISECOND;
    g_mutex_lock(&ops->lock);
    stopping = ops->stopping;
    if (!stopping) {
        list = g_hash_table_lookup(ops->waiters, op_id);
        g_hash_table_insert(ops->waiters, g_strdup(op_id), g_slist_prepend(list, w));
        /* It may have ended already: the dispatcher looks at once. */
        ops->kicked = true;
        g_cond_signal(&ops->wake);
    }
    g_mutex_unlock(&ops->lock);
    if (stopping)
        waiters_call(g_slist_prepend(NULL, w), NULL);
}

/* Waiters whose bound passed get NULL. */
static void
waiters_expire(SvcOps *ops, gint64 now)
{
    GSList *expired = NULL;
    GHashTableIter it;
    gpointer key, value;

    g_mutex_lock(&ops->lock);
    g_hash_table_iter_init(&it, ops->waiters);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        GSList *list = value, *keep = NULL;
        for (GSList *l = list; l; l = l->next) {
            Waiter *w = l->data;
            if (w->deadline_us <= now)
                expired = g_slist_prepend(expired, w);
            else
                keep = g_slist_prepend(keep, w);
        }
        g_slist_free(list);
        if (keep)
            g_hash_table_iter_replace(&it, keep);
        else
            g_hash_table_iter_remove(&it);
    }
    g_mutex_unlock(&ops->lock);
    waiters_call(expired, NULL);
}

/* Operations waited for that ended elsewhere (another broker, or before the wait began). */
static void
waiters_poll(SvcOps *ops)
{
    g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(DbConn) conn = NULL;
    GHashTableIter it;
    gpointer key;

    g_mutex_lock(&ops->lock);
    g_hash_table_iter_init(&it, ops->waiters);
    while (g_hash_table_iter_next(&it, &key, NULL))
        g_ptr_array_add(ids, g_strdup(key));
    g_mutex_unlock(&ops->lock);
    if (!ids->len || !(conn = db_pool_acquire(ops->opts.db, NULL)))
        return;
    for (guint i = 0; i < ids->len; i++) {
        g_autoptr(DbOp) op = db_ops_get(conn, ids->pdata[i], NULL);
        if (op && op->finished_at)
            waiters_fire(ops, op);
    }
}

/* --- workers --- */

static bool
stopping(SvcOps *ops)
{
    bool out;

    g_mutex_lock(&ops->lock);
    out = ops->stopping;
    g_mutex_unlock(&ops->lock);
    return out;
}

/* Writes the end of @op, retrying while PostgreSQL cannot be reached: an end left unwritten
 * would keep the operation "running" under this broker's live heartbeat for good. At
 * shutdown it gives up; the next start under this name requeues the operation. */
static DbOp *
record_end(SvcOps *ops, const DbOp *op, const GError *failure, VmbErrorKind kind,
           const char *detail)
{
    for (unsigned attempt = 0;; attempt++) {
        g_autoptr(GError) err = NULL;
        g_autoptr(DbConn) conn = db_pool_acquire(ops->opts.db, &err);
        DbOp *done = conn ? db_ops_finish(conn, op->id, ops->instance,
                                          failure ? DB_OP_FAILED : DB_OP_SUCCEEDED,
                                          failure ? vmb_error_kind_to_string(kind) : NULL,
                                          detail, failure ? failure->message : NULL, &err)
                          : NULL;

        if (done)
            return done;
        if (attempt == 0 || g_error_matches(err, VMB_ERROR, VMB_ERROR_NOT_FOUND))
            vmb_warning("operation %s: recording its end: %s", op->id, err->message);
        if (g_error_matches(err, VMB_ERROR, VMB_ERROR_NOT_FOUND) || stopping(ops))
            return NULL;
        g_clear_pointer(&conn, db_conn_release);
        g_usleep(MIN(250u << MIN(attempt, 4u), 4000u) * G_TIME_SPAN_MILLISECOND);
    }
}

/* Records the end of @op; returns the finished row (NULL when another broker took it). */
static DbOp *
finish(SvcOps *ops, const DbOp *op, const GError *failure)
{
    VmbErrorKind kind = vmb_error_kind(failure);
    const char *detail = NULL;

    if (failure) {
        vmb_warning("operation %s: %s of VM %s failed: %s", op->id,
                    db_op_kind_to_string(op->kind), op->vm_id, failure->message);
        /* An unexpected failure's words are the log's, not the requester's. */
        detail = kind == VMB_ERROR_INTERNAL
                     ? "The operation failed; an administrator can see why in the log."
                     : failure->message;
    }
    if (ops->opts.metrics)
        vmb_metrics_add(ops->opts.metrics, OPS_METRIC, 1, "kind",
                        db_op_kind_to_string(op->kind), "result",
                        failure ? "failed" : "succeeded", NULL);
    return record_end(ops, op, failure, kind, detail);
}

static void
worker_run(gpointer data, gpointer user_data)
{
    SvcOps *ops = user_data;
    g_autoptr(DbOp) op = data;
    g_autoptr(GError) err = NULL;
    g_autoptr(DbOp) done = NULL;
    SvcOpsRunFunc fn = op->kind < DB_OP_KIND_LAST ? ops->runners[op->kind].fn : NULL;

    vmb_info("operation %s: %s of VM %s (attempt %u)", op->id, db_op_kind_to_string(op->kind),
             op->vm_id, op->attempts);
    vmb_crash_point("op:after-claim");
    if (!fn)
        g_set_error(&err, VMB_ERROR, VMB_ERROR_INTERNAL, "no runner for this kind");
    else if (!fn(ops, op, ops->runners[op->kind].data, &err) && !err)
        g_set_error(&err, VMB_ERROR, VMB_ERROR_INTERNAL, "failed without saying why");
    vmb_crash_point("op:before-finish");
    done = finish(ops, op, err);
    g_mutex_lock(&ops->lock);
    ops->busy--;
    ops->kicked = true;
    g_cond_signal(&ops->wake);
    g_mutex_unlock(&ops->lock);
    if (done)
        waiters_fire(ops, done);
}

/* --- dispatcher --- */

/* Claims queued operations while a worker is free. */
static void
claim_while_free(SvcOps *ops)
{
    g_autoptr(DbConn) conn = NULL;
    g_autoptr(GError) err = NULL;

    for (;;) {
        DbOp *op;
        g_mutex_lock(&ops->lock);
        if (ops->stopping || ops->busy >= ops->opts.workers) {
            g_mutex_unlock(&ops->lock);
            return;
        }
        g_mutex_unlock(&ops->lock);
        if (!conn && !(conn = db_pool_acquire(ops->opts.db, &err)))
            break;
        op = db_ops_claim(conn, ops->instance, ops->opts.stale_s, &err);
        if (!op)
            break;
        g_mutex_lock(&ops->lock);
        ops->busy++;
        g_mutex_unlock(&ops->lock);
        g_thread_pool_push(ops->workers, op, NULL);
    }
    if (err)
        vmb_warning("operations: claiming: %s", err->message);
}

static void
heartbeat(SvcOps *ops)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(DbConn) conn = db_pool_acquire(ops->opts.db, &err);

    if (!conn || !db_ops_heartbeat(conn, ops->instance, &err))
        vmb_warning("operations: heartbeat: %s", err->message);
}

static gpointer
dispatch_thread(gpointer data)
{
    SvcOps *ops = data;
    guint64 seen = G_MAXUINT64, gen = 0;
    gint64 next_poll = 0, next_beat = 0;
    gint64 beat_us = (gint64) ops->opts.stale_s * G_TIME_SPAN_SECOND / 3;

    g_mutex_lock(&ops->lock);
    while (!ops->stopping) {
        gint64 now = g_get_monotonic_time();
        bool news = ops->kicked;

        ops->kicked = false;
        g_mutex_unlock(&ops->lock);
        db_listener_current(ops->listener, &gen);
        if (news || gen != seen || now >= next_poll) {
            seen = gen;
            next_poll = now + OPS_POLL_US;
            claim_while_free(ops);
            waiters_poll(ops);
        }
        if (now >= next_beat) {
            next_beat = now + beat_us;
            heartbeat(ops);
        }
        waiters_expire(ops, now);
        g_mutex_lock(&ops->lock);
        if (!ops->kicked && !ops->stopping)
            g_cond_wait_until(&ops->wake, &ops->lock, g_get_monotonic_time() + OPS_TICK_US);
    }
    g_mutex_unlock(&ops->lock);
    return NULL;
}

/**
 * svc_ops_start:
 * @ops: the service, with its runners set
 * @error: return location for an error
 *
 * A broker that starts under the name of one that died hands that one's running operations
 * back to the queue (at once rather than after stale_s), then starts dispatching.
 *
 * Returns: false when the database could not be reached.
 */
bool
svc_ops_start(SvcOps *ops, GError **error)
{
    g_autoptr(DbConn) conn = db_pool_acquire(ops->opts.db, error);
    int requeued;

    if (!conn || (requeued = db_ops_requeue_broker(conn, ops->instance, error)) < 0)
        return false;
    if (requeued)
        vmb_info("operations: %d left running by this broker's previous run queued again",
                 requeued);
    g_clear_pointer(&conn, db_conn_release);
    ops->listener = db_listener_start(ops->conninfo, OPS_CHANNEL, 10);
    ops->workers = g_thread_pool_new(worker_run, ops, (gint) ops->opts.workers, FALSE, NULL);
    ops->dispatcher = g_thread_new("vmb-ops", dispatch_thread, ops);
    return true;
}

void
svc_ops_free(SvcOps *ops)
{
    GHashTableIter it;
    gpointer value;

    if (!ops)
        return;
    g_mutex_lock(&ops->lock);
    ops->stopping = true;
    g_cond_signal(&ops->wake);
    g_mutex_unlock(&ops->lock);
    if (ops->dispatcher)
        g_thread_join(ops->dispatcher);
    if (ops->workers)
        g_thread_pool_free(ops->workers, FALSE, TRUE);
    g_clear_pointer(&ops->listener, db_listener_stop);
    g_hash_table_iter_init(&it, ops->waiters);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        waiters_call(value, NULL);
        g_hash_table_iter_remove(&it);
    }
    g_hash_table_unref(ops->waiters);
    g_mutex_clear(&ops->lock);
    g_cond_clear(&ops->wake);
    g_free(ops->instance);
    g_free(ops->conninfo);
    g_free(ops);
}

/**
 * svc_ops_error:
 * @op: a failed operation
 *
 * Returns: (transfer full): its error, with its kind and the user's words.
 */
GError *
svc_ops_error(const DbOp *op)
{
    return g_error_new_literal(VMB_ERROR, vmb_error_kind_from_string(op->error_kind),
                               op->error_detail ? op->error_detail : "The operation failed.");
}
