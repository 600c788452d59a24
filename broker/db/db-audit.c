// SPDX-License-Identifier: LGPL-2.1-or-later
// audit_log: append only; read newest first by id.
#include "db-audit.h"

#include "vmb-error.h"

/* Set once at start-up (db_audit_set_origin), read by every insert after. */
static char *audit_origin;

/**
 * db_audit_set_origin:
 * @origin: (nullable): what the rows this process writes say in `origin`
 *
 * The command line calls it with "cli:<OS user>" so its rows are told apart from the
 * daemon's, whose actor is an API caller (or the system).
 */
void
db_audit_set_origin(const char *origin)
{
    g_free(audit_origin);
    audit_origin = g_strdup(origin);
}

/**
 * db_audit_insert:
 * @conn: a connection (in the transaction of the change it records, when there is one)
 * @entry: the entry
 * @error: return location for an error
 *
 * Returns: true on success.
 */
bool
db_audit_insert(DbConn *conn, const DbAuditEntry *entry, GError **error)
{
    const char *params[] = { entry->actor_id, entry->action, entry->object_kind,
                             entry->object_id, entry->remote_addr, entry->detail_json,
                             audit_origin };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_COMMAND_OK,
        "INSERT INTO audit_log (actor_id, action, object_kind, object_id, remote_addr, detail,"
        " origin)"
        " VALUES ($1, $2, $3, $4, $5::inet, coalesce($6::jsonb, '{}'::jsonb), $7)",
        7, params, error);

    return res != NULL;
}

/**
 * db_audit_row_free:
 * @row: (nullable): a row
 */
void
db_audit_row_free(DbAuditRow *row)
{
    if (!row)
        return;
    g_free(row->at);
    g_free(row->actor_id);
    g_free(row->actor);
    g_free(row->origin);
    g_free(row->action);
    g_free(row->object_kind);
    g_free(row->object_id);
    g_free(row->remote_addr);
    g_free(row->detail_json);
    g_free(row);
}

static char *
nullable_value(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : g_strdup(PQgetvalue(res, row, col));
}

/**
 * db_audit_list:
 * @conn: a connection
 * @filter: which rows, how many, from which cursor
 * @error: return location for an error
 *
 * A user filter matches what the user did and what was done to their account (a failed
 * login on their name, an admin disabling them).
 *
 * Returns: (transfer full) (element-type DbAuditRow): the rows, newest first, or NULL.
 */
GPtrArray *
db_audit_list(DbConn *conn, const DbAuditFilter *filter, GError **error)
{
    g_autofree char *before = filter->before_id > 0
        ? g_strdup_printf("%" G_GINT64_FORMAT, filter->before_id) : NULL;
    g_autofree char *limit = g_strdup_printf("%u", filter->limit);
    const char *params[] = { filter->since, filter->until, filter->username, filter->vm_id,
                             filter->action, before, limit };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "SELECT a.id,"
        " to_char(a.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
        " a.actor_id, u.username, a.origin, a.action, a.object_kind, a.object_id,"
        " host(a.remote_addr), a.detail::text"
        " FROM audit_log a LEFT JOIN users u ON u.id = a.actor_id"
        " WHERE ($1::timestamptz IS NULL OR a.at >= $1::timestamptz)"
        " AND ($2::timestamptz IS NULL OR a.at < $2::timestamptz)"
        " AND ($3::text IS NULL OR u.username = $3 OR (a.object_kind = 'user' AND"
        "      a.object_id = (SELECT id::text FROM users WHERE username = $3)))"
        " AND ($4::text IS NULL OR (a.object_kind = 'vm' AND a.object_id = $4))"
        " AND ($5::text IS NULL OR a.action = $5 OR"
        "      (right($5, 1) = '.' AND left(a.action, length($5)) = $5))"
        " AND ($6::bigint IS NULL OR a.id < $6::bigint)"
        " ORDER BY a.id DESC LIMIT $7::integer", 7, params, error);
    GPtrArray *out;

    if (!res)
        return NULL;
    out = g_ptr_array_new_with_free_func((GDestroyNotify) db_audit_row_free);
    for (int i = 0; i < PQntuples(res); i++) {
        DbAuditRow *r = g_new0(DbAuditRow, 1);
        r->id = g_ascii_strtoll(PQgetvalue(res, i, 0), NULL, 10);
        r->at = g_strdup(PQgetvalue(res, i, 1));
        r->actor_id = nullable_value(res, i, 2);
        r->actor = nullable_value(res, i, 3);
        r->origin = nullable_value(res, i, 4);
        r->action = g_strdup(PQgetvalue(res, i, 5));
        r->object_kind = g_strdup(PQgetvalue(res, i, 6));
        r->object_id = nullable_value(res, i, 7);
        r->remote_addr = nullable_value(res, i, 8);
        r->detail_json = g_strdup(PQgetvalue(res, i, 9));
        g_ptr_array_add(out, r);
    }
    return out;
}
