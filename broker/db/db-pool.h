// SPDX-License-Identifier: LGPL-2.1-or-later
// A bounded pool of libpq connections shared by the daemon's threads. Connections are made
// on demand, carry a statement timeout, and are replaced when PostgreSQL drops them.
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <libpq-fe.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC(PGresult, PQclear)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PGconn, PQfinish)

typedef struct DbPool DbPool;

typedef struct {
    const char *conninfo;          /* libpq connection string */
    unsigned size;                 /* connections at most, >= 1 */
    unsigned acquire_timeout_ms;   /* how long a caller waits for a free connection */
    unsigned statement_timeout_ms; /* per statement, 0 for none */
    unsigned max_retries;          /* retries of a transaction on 40001/40P01 */
    unsigned connect_timeout_s;    /* a new connection's handshake, 0 for libpq's default */
} DbPoolOptions;

/* A connection borrowed from a pool; give it back with db_conn_release (or g_autoptr). */
typedef struct {
    DbPool *pool;   /* the owner */
    PGconn *pg;     /* the libpq connection */
    bool broken;    /* set when a query failed in a way that needs a new connection */
    char sqlstate[6]; /* SQLSTATE of the last failure seen by db_set_error, "" if none */
    bool changed;   /* changed rows in the open transaction: counted at its end */
    bool stamping;  /* inside db_exec_stamp: the change is not counted */
} DbConn;

/* --- pool --- */
DbPool *db_pool_new(const DbPoolOptions *opts);
void db_pool_free(DbPool *pool);
DbConn *db_pool_acquire(DbPool *pool, GError **error);
void db_conn_release(DbConn *conn);
bool db_pool_ping(DbPool *pool, GError **error);
/* Callers that had to wait for a connection since the pool was made (for /metrics). */
guint64 db_pool_waits(DbPool *pool);
/* Statements of this pool that may have changed rows, counted once committed: a reader that
 * saw the same count before and after reading has read nothing this process changed since. */
guint64 db_pool_changes(DbPool *pool);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(DbPool, db_pool_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DbConn, db_conn_release)

/* --- transactions --- */
/* The body of a transaction; return false with @error set to roll back. */
typedef bool (*DbTxFunc)(DbConn *conn, void *data, GError **error);
bool db_pool_transaction(DbPool *pool, DbTxFunc fn, void *data, GError **error);

/* --- queries --- */
/* PQexecParams with text parameters; NULL (and @error) unless the status is @expect. */
PGresult *db_exec(DbConn *conn, ExecStatusType expect, const char *sql,
                  int nparams, const char *const *params, GError **error);
/* PQexecParams, counting a change like db_exec, for callers that examine failures
 * themselves: the result whatever its status (NULL when out of memory). */
PGresult *db_exec_result(DbConn *conn, const char *sql, int nparams,
                         const char *const *params);
/* Like db_exec, with @sql prepared once per connection under @name (for hot statements). */
PGresult *db_exec_prepared(DbConn *conn, ExecStatusType expect, const char *name,
                           const char *sql, int nparams, const char *const *params,
                           GError **error);
/* Like db_exec_prepared, for a bookkeeping UPDATE (a last-used stamp) that changes nothing
 * a reader caches: it does not count in db_pool_changes. */
PGresult *db_exec_stamp(DbConn *conn, const char *name, const char *sql, int nparams,
                        const char *const *params, GError **error);
/* Turns a failed result (or a lost connection) into a VMB_ERROR and marks @conn broken
 * when the connection itself is at fault. */
void db_set_error(DbConn *conn, const PGresult *res, GError **error);
/* The SQLSTATE of a failed result, "" if none. */
const char *db_sqlstate(const PGresult *res);

/* --- values --- */
/* A timestamptz column selected as microseconds since the epoch, for db_value_time. */
#define DB_US(col) "(extract(epoch FROM " col ") * 1000000)::bigint"
/* The text of a column, or NULL for SQL NULL. */
char *db_value_dup(const PGresult *res, int row, int col);
/* A column selected with DB_US, or NULL for SQL NULL. */
GDateTime *db_value_time(const PGresult *res, int row, int col);
