// SPDX-License-Identifier: LGPL-2.1-or-later
// console_history: written by the console service's event thread, read newest first.
#include "db-console-history.h"

#include "vmb-error.h"

#define ISO_UTC(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

void
db_console_conn_free(DbConsoleConn *c)
{
    if (!c)
        return;
    g_free(c->id);
    g_free(c->user_id);
    g_free(c->username);
    g_free(c->remote_addr);
    g_free(c->opened_at);
    g_free(c->closed_at);
    g_free(c->reason);
    g_free(c);
}

/**
 * db_console_history_open:
 * @conn: a connection
 * @id: the connection's id (a UUID the console service made)
 * @vm_id: its VM
 * @user_id: (nullable): whose ticket opened it
 * @remote_addr: (nullable): the client's address
 * @error: return location for an error
 *
 * Returns: true on success (also when the VM is gone by now: nothing is recorded).
 */
bool
db_console_history_open(DbConn *conn, const char *id, const char *vm_id, const char *user_id,
                        const char *remote_addr, GError **error)
{
    g_autofree char *keep = g_strdup_printf("%d", DB_CONSOLE_HISTORY_KEEP);
    const char *params[] = { id, vm_id, user_id, remote_addr, keep };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_COMMAND_OK,
        "WITH new AS (INSERT INTO console_history (id, vm_id, user_id, remote_addr)"
        "  SELECT $1, v.id, $3, $4::inet FROM vms v WHERE v.id = $2 RETURNING vm_id)"
        " DELETE FROM console_history WHERE vm_id = $2 AND id IN"
        "  (SELECT id FROM console_history WHERE vm_id = $2"
        "   ORDER BY opened_at DESC OFFSET $5::integer - 1)"
        " AND EXISTS (SELECT 1 FROM new)", 5, params, error);

    return res != NULL;
}

/**
 * db_console_history_close:
 * @conn: a connection
 * @id: the connection
 * @reason: why it closed (at most 200 characters kept)
 * @bytes_in: from the client to the guest
 * @bytes_out: from the guest to the client
 * @error: return location for an error
 *
 * Returns: true on success (also when the row is gone).
 */
bool
db_console_history_close(DbConn *conn, const char *id, const char *reason, guint64 bytes_in,
                         guint64 bytes_out, GError **error)
{
    g_autofree char *in = g_strdup_printf("%" G_GUINT64_FORMAT, bytes_in);
    g_autofree char *out = g_strdup_printf("%" G_GUINT64_FORMAT, bytes_out);
    const char *params[] = { id, reason, in, out };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_COMMAND_OK,
        "UPDATE console_history SET closed_at = now(), reason = left($2, 200),"
        " bytes_in = $3::bigint, bytes_out = $4::bigint WHERE id = $1", 4, params, error);

    return res != NULL;
}

/**
 * db_console_history_close_vm:
 * @conn: a connection (the transaction that stops the VM)
 * @vm_id: the VM
 * @reason: what the rows say
 * @error: return location for an error
 *
 * Returns: true on success.
 */
bool
db_console_history_close_vm(DbConn *conn, const char *vm_id, const char *reason,
                            GError **error)
{
    const char *params[] = { vm_id, reason };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_COMMAND_OK,
        "UPDATE console_history SET closed_at = now(), reason = left($2, 200)"
        " WHERE vm_id = $1 AND closed_at IS NULL", 2, params, error);

    return res != NULL;
}

/**
 * db_console_history_list:
 * @conn: a connection
 * @vm_id: the VM
 * @limit: at most this many (> 0)
 * @error: return location for an error
 *
 * Returns: (transfer full) (element-type DbConsoleConn): the newest first, or NULL.
 */
GPtrArray *
db_console_history_list(DbConn *conn, const char *vm_id, unsigned limit, GError **error)
{
    g_autofree char *n = g_strdup_printf("%u", limit);
    const char *params[] = { vm_id, n };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "SELECT h.id, h.user_id, u.username, host(h.remote_addr), " ISO_UTC("h.opened_at") ","
        " " ISO_UTC("h.closed_at") ", h.reason, h.bytes_in, h.bytes_out"
        " FROM console_history h LEFT JOIN users u ON u.id = h.user_id"
        " WHERE h.vm_id = $1 ORDER BY h.opened_at DESC, h.id LIMIT $2::integer",
        2, params, error);
    GPtrArray *out;

    if (!res)
        return NULL;
    out = g_ptr_array_new_with_free_func((GDestroyNotify) db_console_conn_free);
    for (int i = 0; i < PQntuples(res); i++) {
        DbConsoleConn *c = g_new0(DbConsoleConn, 1);
        c->id = db_value_dup(res, i, 0);
        c->user_id = db_value_dup(res, i, 1);
        c->username = db_value_dup(res, i, 2);
        c->remote_addr = db_value_dup(res, i, 3);
        c->opened_at = db_value_dup(res, i, 4);
        c->closed_at = db_value_dup(res, i, 5);
        c->reason = db_value_dup(res, i, 6);
        c->bytes_in = g_ascii_strtoull(PQgetvalue(res, i, 7), NULL, 10);
        c->bytes_out = g_ascii_strtoull(PQgetvalue(res, i, 8), NULL, 10);
        g_ptr_array_add(out, c);
    }
    return out;
}
