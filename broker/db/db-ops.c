// SPDX-License-Identifier: LGPL-2.1-or-later
// operations: insert (one active per VM), claim with SKIP LOCKED, steps, heartbeat, finish.
#include "db-ops.h"

#include <stdlib.h>
#include <string.h>

#include "vmb-error.h"

static const char *const kind_names[DB_OP_KIND_LAST] = {
    [DB_OP_CREATE] = "create", [DB_OP_START] = "start",   [DB_OP_STOP] = "stop",
    [DB_OP_REBOOT] = "reboot", [DB_OP_DELETE] = "delete", [DB_OP_SNAPSHOT] = "snapshot",
};

static const char *const state_names[DB_OP_STATE_LAST] = {
    [DB_OP_QUEUED] = "queued",       [DB_OP_RUNNING] = "running",
    [DB_OP_SUCCEEDED] = "succeeded", [DB_OP_FAILED] = "failed",
    [DB_OP_CANCELLED] = "cancelled",
};

const char *
db_op_kind_to_string(DbOpKind kind)
{
    return kind < DB_OP_KIND_LAST ? kind_names[kind] : "unknown";
}

const char *
db_op_state_to_string(DbOpState state)
{
    return state < DB_OP_STATE_LAST ? state_names[state] : "unknown";
}

static int
name_index(const char *const *names, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (names[i] && strcmp(names[i], name) == 0)
            return i;
    return -1;
}

#define OP_COLUMNS                                                                         \
    "o.id, o.vm_id, o.kind, o.state, o.requested_by, o.remote_addr, o.params::text,"        \
    " o.step, o.progress, o.error_kind, o.error_detail, o.error_admin, o.broker,"           \
    " o.attempts, " DB_US("o.created_at") ", " DB_US("o.started_at") ", "                   \
    DB_US("o.finished_at")

static DbOp *
op_from_row(const PGresult *res, int row)
{
    DbOp *op = g_new0(DbOp, 1);
    int c = 0, i;

    op->id = db_value_dup(res, row, c++);
    op->vm_id = db_value_dup(res, row, c++);
    i = name_index(kind_names, DB_OP_KIND_LAST, PQgetvalue(res, row, c++));
    op->kind = i < 0 ? DB_OP_KIND_LAST : (DbOpKind) i; /* a kind of a newer broker */
    i = name_index(state_names, DB_OP_STATE_LAST, PQgetvalue(res, row, c++));
    op->state = i < 0 ? DB_OP_FAILED : (DbOpState) i; /* the CHECK makes this unreachable */
    op->requested_by = db_value_dup(res, row, c++);
    op->remote_addr = db_value_dup(res, row, c++);
    op->params = db_value_dup(res, row, c++);
    op->step = db_value_dup(res, row, c++);
    op->progress = (unsigned) strtoul(PQgetvalue(res, row, c++), NULL, 10);
    op->error_kind = db_value_dup(res, row, c++);
    op->error_detail = db_value_dup(res, row, c++);
    op->error_admin = db_value_dup(res, row, c++);
    op->broker = db_value_dup(res, row, c++);
    op->attempts = (unsigned) strtoul(PQgetvalue(res, row, c++), NULL, 10);
    op->created_at = db_value_time(res, row, c++);
    op->started_at = db_value_time(res, row, c++);
    op->finished_at = db_value_time(res, row, c++);
    return op;
}

/**
 * db_op_free:
 * @op: (nullable): an operation
 */
void
db_op_free(DbOp *op)
{
    if (!op)
        return;
    g_free(op->id);
    g_free(op->vm_id);
    g_free(op->requested_by);
    g_free(op->remote_addr);
    g_free(op->params);
    g_free(op->step);
    g_free(op->error_kind);
    g_free(op->error_detail);
    g_free(op->error_admin);
    g_free(op->broker);
    g_clear_pointer(&op->created_at, g_date_time_unref);
    g_clear_pointer(&op->started_at, g_date_time_unref);
    g_clear_pointer(&op->finished_at, g_date_time_unref);
    g_free(op);
}

/* The first row of @res as an operation, or NULL (no error) when it has none. */
static DbOp *
first_op(PGresult *res)
{
    return res && PQntuples(res) > 0 ? op_from_row(res, 0) : NULL;
}

DbOp *
db_ops_active(DbConn *conn, const char *vm_id, GError **error)
{
    const char *params[] = { vm_id };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "SELECT " OP_COLUMNS " FROM operations o"
        " WHERE o.vm_id = $1 AND o.state IN ('queued', 'running')", 1, params, error);
    return first_op(res);
}

/* The requester's cap, counted under a lock on the user's row so that two requests of one
 * user are counted one after the other. */
static bool
check_cap(DbConn *conn, const DbOpSpec *spec, GError **error)
{
    const char *params[] = { spec->requested_by };
    g_autoptr(PGresult) res = NULL;
    unsigned active;

    if (!spec->requested_by || !spec->max_active_per_user)
        return true;
    res = db_exec(conn, PGRES_TUPLES_OK,
        "SELECT (SELECT count(*) FROM operations"
        "         WHERE requested_by = u.id AND state IN ('queued', 'running'))"
        "  FROM users u WHERE u.id = $1 FOR NO KEY UPDATE", 1, params, error);
    if (!res)
        return false;
    active = PQntuples(res) ? (unsigned) strtoul(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    if (active < spec->max_active_per_user)
        return true;
    g_set_error(error, VMB_ERROR, VMB_ERROR_TOO_MANY,
                "You have %u operations waiting or running, the most allowed; wait for one "
                "to end.", active);
    return false;
}

/**
 * db_ops_insert:
 * @conn: a connection, in a transaction
 * @spec: the operation
 * @ret_active: (out) (optional): on VMB_ERROR_CONFLICT, the VM's active operation
 * @error: return location for an error
 *
 * Returns: (transfer full): the queued operation, or NULL.
 */
DbOp *
db_ops_insert(DbConn *conn, const DbOpSpec *spec, DbOp **ret_active, GError **error)
{
    const char *params[] = { spec->vm_id, db_op_kind_to_string(spec->kind), spec->requested_by,
                             spec->remote_addr, spec->params ? spec->params : "{}" };
    g_autoptr(PGresult) res = NULL;
    g_autoptr(DbOp) active = NULL;

    if (!check_cap(conn, spec, error))
        return NULL;
    /* ON CONFLICT waits for a concurrent insert for the same VM and then yields to it. */
    /* Plain INSERT/UPDATE ... RETURNING (not a CTE): its tag says whether it changed a row,
     * so a claim that found nothing does not count as a change (db-pool.c:note_change). */
    res = db_exec(conn, PGRES_TUPLES_OK,
        "INSERT INTO operations AS o (vm_id, kind, requested_by, remote_addr, params)"
        " VALUES ($1, $2, $3, $4, $5::jsonb)"
        " ON CONFLICT (vm_id) WHERE state IN ('queued', 'running') DO NOTHING"
        " RETURNING " OP_COLUMNS, 5, params, error);
    if (!res)
        return NULL;
    if (PQntuples(res) > 0)
        return op_from_row(res, 0);
    active = db_ops_active(conn, spec->vm_id, error);
    if (!active && error && *error)
        return NULL;
    g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT,
                "The VM is busy with another operation (%s); wait for it to end.",
                active ? db_op_kind_to_string(active->kind) : "just finished");
    if (ret_active)
        *ret_active = g_steal_pointer(&active);
    return NULL;
}

/**
 * db_ops_insert_done:
 * @conn: a connection inside the transaction that did the work
 * @spec: the operation
 * @error: return location for an error
 *
 * Records an operation done at once, in the request (a create that took a pool's guest).
 *
 * Returns: (transfer full): the succeeded operation, or NULL.
 */
DbOp *
db_ops_insert_done(DbConn *conn, const DbOpSpec *spec, GError **error)
{
    const char *params[] = { spec->vm_id, db_op_kind_to_string(spec->kind), spec->requested_by,
                             spec->remote_addr, spec->params ? spec->params : "{}" };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "INSERT INTO operations AS o (vm_id, kind, requested_by, remote_addr, params, state,"
        "  step, progress, started_at, finished_at)"
        " VALUES ($1, $2, $3, $4, $5::jsonb, 'succeeded', 'succeeded', 100, now(), now())"
        " RETURNING " OP_COLUMNS, 5, params, error);

    return first_op(res);
}

/**
 * db_ops_claim:
 * @conn: a connection
 * @broker: this broker's instance name
 * @stale_s: a running operation whose heartbeat is older than this is taken over
 * @error: return location for an error
 *
 * Returns: (transfer full): the operation, now running for @broker; NULL when none waits.
 */
DbOp *
db_ops_claim(DbConn *conn, const char *broker, unsigned stale_s, GError **error)
{
    g_autofree char *stale = g_strdup_printf("%u", stale_s);
    const char *params[] = { broker, stale };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "UPDATE operations AS o SET state = 'running', broker = $1, heartbeat_at = now(),"
        "       started_at = coalesce(started_at, now()), attempts = attempts + 1"
        " WHERE id = (SELECT id FROM operations"
        "              WHERE state = 'queued'"
        "                 OR (state = 'running'"
        "                     AND heartbeat_at < now() - make_interval(secs => $2::int))"
        "              ORDER BY created_at FOR UPDATE SKIP LOCKED LIMIT 1)"
        " RETURNING " OP_COLUMNS, 2, params, error);
    return first_op(res);
}

int
db_ops_requeue_broker(DbConn *conn, const char *broker, GError **error)
{
    const char *params[] = { broker };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_COMMAND_OK,
        "UPDATE operations SET state = 'queued', broker = NULL, heartbeat_at = NULL"
        " WHERE state = 'running' AND broker = $1", 1, params, error);
    return res ? (int) strtol(PQcmdTuples(res), NULL, 10) : -1;
}

bool
db_ops_heartbeat(DbConn *conn, const char *broker, GError **error)
{
    const char *params[] = { broker };
    g_autoptr(PGresult) res = db_exec_stamp(conn, "ops_heartbeat",
        "UPDATE operations SET heartbeat_at = now() WHERE state = 'running' AND broker = $1",
        1, params, error);
    return res != NULL;
}

bool
db_ops_set_step(DbConn *conn, const char *id, const char *step, unsigned progress,
                GError **error)
{
    g_autofree char *pct = g_strdup_printf("%u", MIN(progress, 100));
    const char *params[] = { id, step, pct };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_COMMAND_OK,
        "UPDATE operations SET step = $2, progress = $3::smallint"
        " WHERE id = $1 AND state = 'running'", 3, params, error);
    return res != NULL;
}

/**
 * db_ops_finish:
 * @conn: a connection
 * @id: a running operation
 * @broker: the broker running it
 * @state: DB_OP_SUCCEEDED or DB_OP_FAILED
 * @error_kind: (nullable): for a failure, the error's kind
 * @error_detail: (nullable): for a failure, what the user is told
 * @error_admin: (nullable): for a failure, what admins and the log are told
 * @error: return location for an error
 *
 * Returns: (transfer full): the finished operation; VMB_ERROR_NOT_FOUND when it was not
 * running for @broker (another broker took it over while this one stalled).
 */
DbOp *
db_ops_finish(DbConn *conn, const char *id, const char *broker, DbOpState state,
              const char *error_kind, const char *error_detail, const char *error_admin,
              GError **error)
{
    const char *params[] = { id, db_op_state_to_string(state), error_kind, error_detail,
                             error_admin, broker };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "UPDATE operations AS o SET state = $2, finished_at = now(), heartbeat_at = NULL,"
        "       step = $2, progress = CASE WHEN $2 = 'succeeded' THEN 100 ELSE o.progress END,"
        "       error_kind = $3, error_detail = $4, error_admin = $5"
        " WHERE id = $1 AND state = 'running' AND broker = $6"
        " RETURNING " OP_COLUMNS, 6, params, error);
    DbOp *op = first_op(res);

    if (res && !op)
        g_set_error(error, VMB_ERROR, VMB_ERROR_NOT_FOUND,
                    "Operation %s is not running here any more.", id);
    return op;
}

DbOp *
db_ops_get(DbConn *conn, const char *id, GError **error)
{
    const char *params[] = { id };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "SELECT " OP_COLUMNS " FROM operations o WHERE o.id::text = $1", 1, params, error);
    DbOp *op = first_op(res);

    if (res && !op)
        g_set_error(error, VMB_ERROR, VMB_ERROR_NOT_FOUND, "No such operation.");
    return op;
}

GPtrArray *
db_ops_list_vm(DbConn *conn, const char *vm_id, unsigned limit, GError **error)
{
    g_autofree char *lim = g_strdup_printf("%u", limit);
    const char *params[] = { vm_id, lim };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "SELECT " OP_COLUMNS " FROM operations o WHERE o.vm_id::text = $1"
        " ORDER BY o.created_at DESC LIMIT $2::int", 2, params, error);
    GPtrArray *out;

    if (!res)
        return NULL;
    out = g_ptr_array_new_with_free_func((GDestroyNotify) db_op_free);
    for (int i = 0; i < PQntuples(res); i++)
        g_ptr_array_add(out, op_from_row(res, i));
    return out;
}

int
db_ops_purge(DbConn *conn, unsigned keep_s, GError **error)
{
    g_autofree char *keep = g_strdup_printf("%u", keep_s);
    const char *params[] = { keep };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_COMMAND_OK,
        "DELETE FROM operations WHERE finished_at < now() - make_interval(secs => $1::int)",
        1, params, error);
    return res ? (int) strtol(PQcmdTuples(res), NULL, 10) : -1;
}
