// SPDX-License-Identifier: LGPL-2.1-or-later
// Connection pool: a mutex-guarded stack of idle connections and a condition variable for
// callers waiting on a full pool. A connection found dead is closed and made anew.
#include "db-pool.h"

#include <poll.h>
#include <libpq-events.h>
#include <stdatomic.h>
#include <string.h>

#include "vmb-error.h"
#include "vmb-log.h"

struct DbPool {
    char *conninfo;
    unsigned size;
    unsigned acquire_timeout_ms;
    unsigned statement_timeout_ms;
    unsigned max_retries;
    unsigned connect_timeout_s;

    GMutex lock;
    GCond freed;
    GPtrArray *idle;     /* PGconn *, ready for use */
    unsigned in_use;     /* borrowed plus being connected */
    guint64 waits;
    atomic_uint_fast64_t changes; /* see db_pool_changes */
};

/**
 * db_pool_new:
 * @opts: pool settings; copied
 *
 * No connection is made until the first acquire.
 *
 * Returns: (transfer full): the pool.
 */
DbPool *
db_pool_new(const DbPoolOptions *opts)
{
    DbPool *pool = g_new0(DbPool, 1);

    pool->conninfo = g_strdup(opts->conninfo);
    pool->size = MAX(opts->size, 1u);
    pool->acquire_timeout_ms = opts->acquire_timeout_ms;
    pool->statement_timeout_ms = opts->statement_timeout_ms;
    pool->max_retries = opts->max_retries;
    pool->connect_timeout_s = opts->connect_timeout_s;
    g_mutex_init(&pool->lock);
    g_cond_init(&pool->freed);
    pool->idle = g_ptr_array_new_with_free_func((GDestroyNotify) PQfinish);
    return pool;
}

/**
 * db_pool_free:
 * @pool: (nullable): a pool whose connections have all been released
 */
void
db_pool_free(DbPool *pool)
{
    if (!pool)
        return;
    g_ptr_array_unref(pool->idle);
    g_mutex_clear(&pool->lock);
    g_cond_clear(&pool->freed);
    g_free(pool->conninfo);
    g_free(pool);
}

/* Per-connection state kept by libpq itself (instance data of a libpq event procedure),
 * so it lives and dies with the PGconn: the names of the statements prepared on it. */
static int
conn_event(PGEventId id, void *info, void *pass_through)
{
    switch (id) {
    case PGEVT_REGISTER: {
        PGEventRegister *e = info;
        return PQsetInstanceData(e->conn, conn_event,
                                 g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL));
    }
    case PGEVT_CONNRESET: {
        PGEventConnReset *e = info;
        GHashTable *prepared = PQinstanceData(e->conn, conn_event);
        if (prepared)
            g_hash_table_remove_all(prepared);
        return 1;
    }
    case PGEVT_CONNDESTROY: {
        PGEventConnDestroy *e = info;
        GHashTable *prepared = PQinstanceData(e->conn, conn_event);
        if (prepared)
            g_hash_table_unref(prepared);
        return 1;
    }
    default:
        return 1;
    }
}

/* PostgreSQL's NOTICEs and WARNINGs (a migration's "already exists, skipping") go to the
 * daemon's log, in its format, instead of libpq's bare stderr lines. */
static void
pool_notice(void *data, const char *message)
{
    g_autofree char *msg = g_strdup(message);

    g_strdelimit(g_strstrip(msg), "\n\t", ' ');
    if (g_str_has_prefix(msg, "WARNING"))
        vmb_warning("postgresql: %s", msg);
    else
        vmb_info("postgresql: %s", msg);
}

static PGconn *
pool_connect(DbPool *pool, GError **error)
{
    g_autofree char *options = g_strdup_printf("-c statement_timeout=%u -c lock_timeout=%u",
                                               pool->statement_timeout_ms,
                                               pool->statement_timeout_ms);
    const char *const keys[] = { "dbname", "options", "application_name",
                                 "connect_timeout", NULL };
    g_autofree char *timeout = g_strdup_printf("%u", pool->connect_timeout_s);
    const char *const values[] = { pool->conninfo, options, "vmbroker",
                                   pool->connect_timeout_s ? timeout : NULL, NULL };
    g_autoptr(PGconn) pg = PQconnectdbParams(keys, values, 1);

    if (!pg || PQstatus(pg) != CONNECTION_OK) {
        g_autofree char *msg = g_strdup(pg ? PQerrorMessage(pg) : "out of memory");
        g_strdelimit(g_strstrip(msg), "\n\t", ' ');
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE, "database unavailable: %s", msg);
        return NULL;
    }
    PQsetNoticeProcessor(pg, pool_notice, NULL);
    if (!PQregisterEventProc(pg, conn_event, "vmbroker-pool", NULL)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INTERNAL, "cannot register a libpq event");
        return NULL;
    }
    return g_steal_pointer(&pg);
}

/* An idle session receives nothing (pooled sessions do not LISTEN), so anything readable on its
 * socket (the FATAL a terminated backend sends, or EOF) means it is gone. PQstatus alone
 * only learns that when a query fails. */
static bool
idle_conn_alive(PGconn *pg)
{
    struct pollfd pfd = { .fd = PQsocket(pg), .events = POLLIN };

    if (PQstatus(pg) != CONNECTION_OK || pfd.fd < 0)
        return false;
    if (poll(&pfd, 1, 0) != 0)
        return false;
    return true;
}

/**
 * db_pool_acquire:
 * @pool: the pool
 * @error: return location for an error
 *
 * Borrows an idle connection, makes one if the pool has room, or waits up to the acquire
 * timeout for one to be released.
 *
 * Returns: (transfer full): the connection, or NULL with VMB_ERROR_UNAVAILABLE.
 */
DbConn *
db_pool_acquire(DbPool *pool, GError **error)
{
    gint64 deadline = g_get_monotonic_time() + (gint64) pool->acquire_timeout_ms * 1000;
    PGconn *pg = NULL;
    DbConn *conn;
    bool waited = false;

    g_mutex_lock(&pool->lock);
    for (;;) {
        if (pool->idle->len > 0) {
            pg = g_ptr_array_steal_index_fast(pool->idle, pool->idle->len - 1);
            pool->in_use++;
            break;
        }
        if (pool->in_use < pool->size) {
            pool->in_use++;
            break;
        }
        if (!waited) {
            pool->waits++;
            waited = true;
        }
        if (!g_cond_wait_until(&pool->freed, &pool->lock, deadline)) {
            g_mutex_unlock(&pool->lock);
            g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE,
                        "database busy: no connection free within %u ms",
                        pool->acquire_timeout_ms);
            return NULL;
        }
    }
    g_mutex_unlock(&pool->lock);

    /* An idle connection may have died with a PostgreSQL restart: replace it. */
    if (pg && !idle_conn_alive(pg)) {
        PQfinish(pg);
        pg = NULL;
    }
    if (!pg) {
        pg = pool_connect(pool, error);
        if (!pg) {
            g_mutex_lock(&pool->lock);
            pool->in_use--;
            g_cond_signal(&pool->freed);
            g_mutex_unlock(&pool->lock);
            return NULL;
        }
    }
    conn = g_new0(DbConn, 1);
    conn->pool = pool;
    conn->pg = pg;
    return conn;
}

/**
 * db_conn_release:
 * @conn: (nullable): a borrowed connection
 *
 * Gives the connection back; a broken one, or one left inside a transaction, is closed.
 */
void
db_conn_release(DbConn *conn)
{
    DbPool *pool;

    if (!conn)
        return;
    pool = conn->pool;
    /* A transaction that ended without db_pool_transaction's COMMIT (or rolled back):
     * counted anyway, since a reader may only be told too often, never too rarely. */
    if (conn->changed)
        atomic_fetch_add(&pool->changes, 1);
    if (conn->broken || PQstatus(conn->pg) != CONNECTION_OK ||
        PQtransactionStatus(conn->pg) != PQTRANS_IDLE) {
        PQfinish(conn->pg);
        conn->pg = NULL;
    }
    g_mutex_lock(&pool->lock);
    if (conn->pg)
        g_ptr_array_add(pool->idle, conn->pg);
    pool->in_use--;
    g_cond_signal(&pool->freed);
    g_mutex_unlock(&pool->lock);
    g_free(conn);
}

/**
 * db_pool_waits:
 * @pool: the pool
 *
 * Returns: how many acquires had to wait for a connection.
 */
guint64
db_pool_waits(DbPool *pool)
{
    guint64 n;

    g_mutex_lock(&pool->lock);
    n = pool->waits;
    g_mutex_unlock(&pool->lock);
    return n;
}

/**
 * db_pool_changes:
 * @pool: the pool
 *
 * A statement that may have changed rows counts once it is committed: at once outside a
 * transaction, at COMMIT (or when the connection is released) inside one.
 *
 * Returns: how many such statements (or transactions) there have been.
 */
guint64
db_pool_changes(DbPool *pool)
{
    return atomic_load(&pool->changes);
}

/* Whether @sql names a command that writes (in a CTE too, or as SELECT ... FOR UPDATE). */
static bool
sql_may_write(const char *sql)
{
    static const char *const verbs[] = { "INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE" };

    for (const char *p = sql; *p; p++) {
        if (p != sql && (g_ascii_isalnum(p[-1]) || p[-1] == '_'))
            continue;
        for (size_t i = 0; i < G_N_ELEMENTS(verbs); i++) {
            size_t n = strlen(verbs[i]);
            if (g_ascii_strncasecmp(p, verbs[i], n) == 0 &&
                !(g_ascii_isalnum(p[n]) || p[n] == '_'))
                return true;
        }
    }
    return false;
}

/* Counts the change @sql made, if it may have made one, once it is committed. A statement
 * whose own tag says it changed no rows made none; a write inside a SELECT's CTE has the
 * tag SELECT, so the text decides. */
static void
note_change(DbConn *conn, const char *sql, const PGresult *res)
{
    const char *status = PQcmdStatus((PGresult *) res);
    bool tagged = g_str_has_prefix(status, "INSERT") || g_str_has_prefix(status, "UPDATE") ||
                  g_str_has_prefix(status, "DELETE") || g_str_has_prefix(status, "MERGE");

    if (conn->stamping || (tagged && strcmp(PQcmdTuples((PGresult *) res), "0") == 0) ||
        !(tagged || sql_may_write(sql)))
        return;
    if (PQtransactionStatus(conn->pg) == PQTRANS_IDLE)
        atomic_fetch_add(&conn->pool->changes, 1);
    else
        conn->changed = true;
}

/**
 * db_sqlstate:
 * @res: (nullable): a result
 *
 * Returns: the five-character SQLSTATE of a failed result, or "".
 */
const char *
db_sqlstate(const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return state ? state : "";
}

static bool
sqlstate_is_retryable(const char *state)
{
    return strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0;
}

/**
 * db_set_error:
 * @conn: the connection the result came from
 * @res: (nullable): the failed result, NULL when libpq returned none
 * @error: return location for the error
 *
 * Maps SQLSTATE classes to kinds: lost connections, shutdowns and timeouts are
 * VMB_ERROR_UNAVAILABLE; the rest VMB_ERROR_INTERNAL (the message is for logs only).
 */
void
db_set_error(DbConn *conn, const PGresult *res, GError **error)
{
    const char *state = db_sqlstate(res);
    g_autofree char *msg = g_strdup(res ? PQresultErrorMessage(res) : PQerrorMessage(conn->pg));
    VmbErrorKind kind = VMB_ERROR_INTERNAL;

    g_strdelimit(g_strstrip(msg), "\n\t", ' ');
    g_strlcpy(conn->sqlstate, state, sizeof(conn->sqlstate));
    if (PQstatus(conn->pg) != CONNECTION_OK || g_str_has_prefix(state, "08") ||
        g_str_has_prefix(state, "57P") || !res) {
        conn->broken = true;
        kind = VMB_ERROR_UNAVAILABLE;
    } else if (strcmp(state, "57014") == 0 || strcmp(state, "55P03") == 0) {
        kind = VMB_ERROR_UNAVAILABLE; /* statement or lock timeout */
    }
    g_set_error(error, VMB_ERROR, kind, "database [%s]: %s", *state ? state : "-", msg);
}

/**
 * db_exec:
 * @conn: a borrowed connection
 * @expect: the status a success has (PGRES_TUPLES_OK or PGRES_COMMAND_OK)
 * @sql: one statement with $1.. placeholders
 * @nparams: number of parameters
 * @params: (array length=nparams): text values, NULL for SQL NULL
 * @error: return location for an error
 *
 * Returns: (transfer full): the result, or NULL with @error set.
 */
PGresult *
db_exec(DbConn *conn, ExecStatusType expect, const char *sql,
        int nparams, const char *const *params, GError **error)
{
    g_autoptr(PGresult) res = db_exec_result(conn, sql, nparams, params);

    if (!res || PQresultStatus(res) != expect) {
        db_set_error(conn, res, error);
        return NULL;
    }
    return g_steal_pointer(&res);
}

/**
 * db_exec_result:
 * @conn: a borrowed connection
 * @sql: one statement with $1.. placeholders
 * @nparams: number of parameters
 * @params: (array length=nparams): text values, NULL for SQL NULL
 *
 * PQexecParams for callers that tell failures apart themselves (a constraint's name, a
 * SQLSTATE); a change it makes is counted like db_exec's.
 *
 * Returns: (transfer full) (nullable): the result, whatever its status.
 */
PGresult *
db_exec_result(DbConn *conn, const char *sql, int nparams, const char *const *params)
{
    PGresult *res = PQexecParams(conn->pg, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType status = PQresultStatus(res);

    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
        note_change(conn, sql, res);
    return res;
}

/**
 * db_exec_prepared:
 * @conn: a borrowed connection
 * @expect: the status a success has
 * @name: a name for @sql, unique among vmbroker's statements ("ports_lease_pair")
 * @sql: one statement with $1.. placeholders; always the same text for @name
 * @nparams: number of parameters
 * @params: (array length=nparams): text values, NULL for SQL NULL
 * @error: return location for an error
 *
 * Like db_exec, for statements run often: @sql is parsed and planned once per connection
 * (PQprepare on first use; prepared statements outlive transaction rollbacks).
 *
 * Returns: (transfer full): the result, or NULL with @error set.
 */
PGresult *
db_exec_prepared(DbConn *conn, ExecStatusType expect, const char *name, const char *sql,
                 int nparams, const char *const *params, GError **error)
{
    GHashTable *prepared = PQinstanceData(conn->pg, conn_event);
    g_autoptr(PGresult) res = NULL;

    if (!prepared)
        return db_exec(conn, expect, sql, nparams, params, error);
    if (!g_hash_table_contains(prepared, name)) {
        g_autoptr(PGresult) prep = PQprepare(conn->pg, name, sql, nparams, NULL);
        if (!prep || PQresultStatus(prep) != PGRES_COMMAND_OK) {
            db_set_error(conn, prep, error);
            return NULL;
        }
        g_hash_table_add(prepared, g_strdup(name));
    }
    res = PQexecPrepared(conn->pg, name, nparams, params, NULL, NULL, 0);
    if (!res || PQresultStatus(res) != expect) {
        db_set_error(conn, res, error);
        return NULL;
    }
    note_change(conn, sql, res);
    return g_steal_pointer(&res);
}

/**
 * db_exec_stamp:
 * @conn: a borrowed connection
 * @name: as for db_exec_prepared
 * @sql: an UPDATE of bookkeeping columns only (ones no cached read depends on)
 * @nparams: number of parameters
 * @params: (array length=nparams): text values, NULL for SQL NULL
 * @error: return location for an error
 *
 * Returns: (transfer full): the result, or NULL with @error set.
 */
PGresult *
db_exec_stamp(DbConn *conn, const char *name, const char *sql, int nparams,
              const char *const *params, GError **error)
{
    PGresult *res;

    conn->stamping = true;
    res = db_exec_prepared(conn, PGRES_COMMAND_OK, name, sql, nparams, params, error);
    conn->stamping = false;
    return res;
}

/* BEGIN, COMMIT: the simple protocol, one message and no planning. */
static bool
exec_simple(DbConn *conn, const char *sql, GError **error)
{
    g_autoptr(PGresult) res = PQexec(conn->pg, sql);

    if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
        db_set_error(conn, res, error);
        return false;
    }
    return true;
}

/**
 * db_pool_transaction:
 * @pool: the pool
 * @fn: the transaction's body, run between BEGIN and COMMIT
 * @data: passed to @fn
 * @error: return location for an error
 *
 * Runs @fn in a transaction on a pooled connection. A serialization failure or deadlock
 * (40001, 40P01), in @fn or at COMMIT, rolls back and runs @fn again, up to max_retries
 * times; @fn must therefore keep no side effects outside the database. A connection lost
 * before BEGIN went through is replaced once; one lost later is not retried (the COMMIT may
 * have happened).
 *
 * Returns: true when the transaction committed.
 */
bool
db_pool_transaction(DbPool *pool, DbTxFunc fn, void *data, GError **error)
{
    bool lost_at_begin = false;

    for (unsigned attempt = 0;; attempt++) {
        g_autoptr(DbConn) conn = db_pool_acquire(pool, error);
        g_autoptr(GError) err = NULL;
        bool ok, began;

        if (!conn)
            return false;
        began = exec_simple(conn, "BEGIN", &err);
        ok = began && fn(conn, data, &err) && exec_simple(conn, "COMMIT", &err);
        if (ok) {
            if (conn->changed)
                atomic_fetch_add(&pool->changes, 1);
            conn->changed = false;
            return true;
        }
        if (!conn->broken && PQtransactionStatus(conn->pg) != PQTRANS_IDLE) {
            g_autoptr(PGresult) rb = PQexec(conn->pg, "ROLLBACK");
            if (PQresultStatus(rb) != PGRES_COMMAND_OK)
                conn->broken = true;
        }
        if (!began && conn->broken && !lost_at_begin) {
            /* The connection died before BEGIN went through (a race with a restart that
             * the idle check missed): nothing ran, so one more try is safe. */
            lost_at_begin = true;
            attempt--;
            continue;
        }
        if (attempt < pool->max_retries && sqlstate_is_retryable(conn->sqlstate)) {
            g_usleep((1u << MIN(attempt, 6u)) * 1000); /* 1, 2, 4 ... ms */
            continue;
        }
        g_propagate_error(error, g_steal_pointer(&err));
        return false;
    }
}

/**
 * db_pool_ping:
 * @pool: the pool
 * @error: return location for an error
 *
 * A connection found dead is replaced and the query tried once more on a new one.
 *
 * Returns: true when PostgreSQL answers a query on a pooled connection.
 */
bool
db_pool_ping(DbPool *pool, GError **error)
{
    for (int attempt = 0;; attempt++) {
        g_autoptr(DbConn) conn = db_pool_acquire(pool, error);
        g_autoptr(PGresult) res = NULL;
        g_autoptr(GError) err = NULL;

        if (!conn)
            return false;
        res = db_exec(conn, PGRES_TUPLES_OK, "SELECT 1", 0, NULL, &err);
        if (res)
            return true;
        /* A connection that died since its idle check: one fresh try. */
        if (attempt == 0 && conn->broken)
            continue;
        g_propagate_error(error, g_steal_pointer(&err));
        return false;
    }
}

/* --- values --- */

char *
db_value_dup(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : g_strdup(PQgetvalue(res, row, col));
}

GDateTime *
db_value_time(const PGresult *res, int row, int col)
{
    gint64 us;
    g_autoptr(GDateTime) secs = NULL;

    if (PQgetisnull(res, row, col))
        return NULL;
    us = g_ascii_strtoll(PQgetvalue(res, row, col), NULL, 10);
    secs = g_date_time_new_from_unix_utc(us / G_USEC_PER_SEC);
    return g_date_time_add(secs, us % G_USEC_PER_SEC);
}
