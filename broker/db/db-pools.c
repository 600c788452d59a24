// SPDX-License-Identifier: LGPL-2.1-or-later
// Warm pools in PostgreSQL: the sizes set through the API and the pool account's guests.
#include "db-pools.h"

#include <stdlib.h>
#include <string.h>

#include "vmb-error.h"

void
db_pool_member_free(DbPoolMember *m)
{
    if (!m)
        return;
    g_free(m->id);
    g_free(m->template_name);
    g_free(m);
}

void
db_pool_schedule_free(DbPoolSchedule *s)
{
    if (!s)
        return;
    g_free(s->id);
    g_free(s->template_name);
    g_clear_pointer(&s->starts_at, g_date_time_unref);
    g_clear_pointer(&s->ends_at, g_date_time_unref);
    g_free(s);
}

#define SCHEDULE_COLUMNS \
    "id, template_name, " DB_US("starts_at") ", " DB_US("ends_at") ", size"

static DbPoolSchedule *
schedule_from_row(const PGresult *res, int row)
{
    DbPoolSchedule *s = g_new0(DbPoolSchedule, 1);

    s->id = db_value_dup(res, row, 0);
    s->template_name = db_value_dup(res, row, 1);
    s->starts_at = db_value_time(res, row, 2);
    s->ends_at = db_value_time(res, row, 3);
    s->size = (unsigned) atoi(PQgetvalue(res, row, 4));
    return s;
}

DbPoolSchedule *
db_pools_add_schedule(DbConn *conn, const char *template_name, GDateTime *starts_at,
                      GDateTime *ends_at, unsigned size, GError **error)
{
    g_autofree char *from = g_date_time_format_iso8601(starts_at);
    g_autofree char *until = g_date_time_format_iso8601(ends_at);
    g_autofree char *n = g_strdup_printf("%u", size);
    g_autofree char *max = g_strdup_printf("%d", DB_POOL_SCHEDULES_MAX);
    const char *params[] = { template_name, from, until, n, max };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "INSERT INTO pool_schedules (template_name, starts_at, ends_at, size)"
        " SELECT $1, $2::timestamptz, $3::timestamptz, $4::int"
        " WHERE (SELECT count(*) FROM pool_schedules WHERE template_name = $1"
        "        AND ends_at > now()) < $5::int"
        " RETURNING " SCHEDULE_COLUMNS, 5, params, error);

    if (!res)
        return NULL;
    if (PQntuples(res) == 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_TOO_MANY,
                    "Template '%s' has %d schedules already.", template_name,
                    DB_POOL_SCHEDULES_MAX);
        return NULL;
    }
    return schedule_from_row(res, 0);
}

GPtrArray *
db_pools_schedules(DbConn *conn, GError **error)
{
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "SELECT " SCHEDULE_COLUMNS " FROM pool_schedules WHERE ends_at > now()"
        " ORDER BY template_name, starts_at, id", 0, NULL, error);
    GPtrArray *out;

    if (!res)
        return NULL;
    out = g_ptr_array_new_with_free_func((GDestroyNotify) db_pool_schedule_free);
    for (int i = 0; i < PQntuples(res); i++)
        g_ptr_array_add(out, schedule_from_row(res, i));
    return out;
}

GHashTable *
db_pools_scheduled(DbConn *conn, unsigned lead_s, GError **error)
{
    g_autofree char *lead = g_strdup_printf("%u", lead_s);
    const char *params[] = { lead };
    g_autoptr(PGresult) gone = db_exec(conn, PGRES_COMMAND_OK,
        "DELETE FROM pool_schedules WHERE ends_at <= now()", 0, NULL, error);
    g_autoptr(PGresult) res = gone ? db_exec(conn, PGRES_TUPLES_OK,
        "SELECT template_name, max(size) FROM pool_schedules"
        " WHERE starts_at <= now() + make_interval(secs => $1::int) AND ends_at > now()"
        " GROUP BY template_name", 1, params, error) : NULL;
    GHashTable *out;

    if (!res)
        return NULL;
    out = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (int i = 0; i < PQntuples(res); i++)
        g_hash_table_insert(out, g_strdup(PQgetvalue(res, i, 0)),
                            GINT_TO_POINTER(atoi(PQgetvalue(res, i, 1))));
    return out;
}

GHashTable *
db_pools_sizes(DbConn *conn, GError **error)
{
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "SELECT template_name, size FROM pools", 0, NULL, error);
    GHashTable *out;

    if (!res)
        return NULL;
    out = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (int i = 0; i < PQntuples(res); i++)
        g_hash_table_insert(out, g_strdup(PQgetvalue(res, i, 0)),
                            GINT_TO_POINTER(atoi(PQgetvalue(res, i, 1))));
    return out;
}

bool
db_pools_set_size(DbConn *conn, const char *template_name, unsigned size, GError **error)
{
    g_autofree char *n = g_strdup_printf("%u", size);
    const char *params[] = { template_name, n };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "INSERT INTO pools (template_name, size)"
        " SELECT name, $2::int FROM templates WHERE name = $1"
        " ON CONFLICT (template_name) DO UPDATE SET size = EXCLUDED.size, updated_at = now()"
        " RETURNING size", 2, params, error);

    if (!res)
        return false;
    if (PQntuples(res) == 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_NOT_FOUND, "No template '%s'.", template_name);
        return false;
    }
    return true;
}

GPtrArray *
db_pools_members(DbConn *conn, GError **error)
{
    const char *params[] = { DB_POOL_ACCOUNT };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "SELECT v.id, v.template_name, v.template_version = t.version, v.state,"
        " v.state = 'running' AND v.console_ready_at IS NOT NULL,"
        " EXISTS (SELECT 1 FROM operations o WHERE o.vm_id = v.id"
        "         AND o.state IN ('queued', 'running')),"
        " v.state = 'stopped' AND v.saved_at IS NOT NULL,"
        " extract(epoch FROM clock_timestamp() - v.console_ready_at)"
        " FROM vms v JOIN users u ON u.id = v.owner_id AND u.username = $1"
        " LEFT JOIN templates t ON t.name = v.template_name"
        " ORDER BY v.created_at, v.id", 1, params, error);
    GPtrArray *out;

    if (!res)
        return NULL;
    out = g_ptr_array_new_with_free_func((GDestroyNotify) db_pool_member_free);
    for (int i = 0; i < PQntuples(res); i++) {
        DbPoolMember *m = g_new0(DbPoolMember, 1);

        m->id = g_strdup(PQgetvalue(res, i, 0));
        m->template_name = g_strdup(PQgetvalue(res, i, 1));
        m->current = PQgetvalue(res, i, 2)[0] == 't';
        if (!db_vm_state_from_string(PQgetvalue(res, i, 3), &m->state))
            m->state = DB_VM_ERROR;
        m->ready = PQgetvalue(res, i, 4)[0] == 't';
        m->busy = PQgetvalue(res, i, 5)[0] == 't';
        m->saved = PQgetvalue(res, i, 6)[0] == 't';
        m->ready_s = m->ready ? g_ascii_strtod(PQgetvalue(res, i, 7), NULL) : 0;
        g_ptr_array_add(out, m);
    }
    return out;
}

char *
db_pools_claim(DbConn *conn, const char *template_name, bool saved_only, bool *ret_saved,
               GError **error)
{
    const char *params[] = { template_name, DB_POOL_ACCOUNT, saved_only ? "t" : "f" };
    /* A running guest first: it is handed over at once, a saved one is restored. */
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "SELECT v.id, v.state = 'stopped'"
        " FROM vms v JOIN users u ON u.id = v.owner_id AND u.username = $2"
        " JOIN templates t ON t.name = v.template_name AND t.version = v.template_version"
        " JOIN hosts h ON h.id = v.host_id AND h.enabled"
        " WHERE v.template_name = $1"
        " AND (v.state = 'running' AND v.console_ready_at IS NOT NULL AND NOT $3::bool"
        "      OR v.state = 'stopped' AND v.saved_at IS NOT NULL)"
        " AND NOT EXISTS (SELECT 1 FROM operations o WHERE o.vm_id = v.id"
        "                 AND o.state IN ('queued', 'running'))"
        " ORDER BY v.state = 'stopped', coalesce(v.console_ready_at, v.saved_at)"
        " LIMIT 1 FOR UPDATE OF v SKIP LOCKED",
        3, params, error);

    if (!res || PQntuples(res) == 0)
        return NULL;
    *ret_saved = PQgetvalue(res, 0, 1)[0] == 't';
    return g_strdup(PQgetvalue(res, 0, 0));
}

bool
db_pools_mark_saved(DbConn *conn, const char *id, GError **error)
{
    const char *params[] = { id };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_COMMAND_OK,
        "UPDATE vms SET saved_at = clock_timestamp() WHERE id = $1 AND state = 'stopped'",
        1, params, error);

    return res != NULL;
}

bool
db_pools_lock_member(DbConn *conn, const char *id, bool *ret_member, GError **error)
{
    const char *params[] = { id, DB_POOL_ACCOUNT };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "SELECT 1 FROM vms v JOIN users u ON u.id = v.owner_id AND u.username = $2"
        " WHERE v.id = $1 FOR UPDATE OF v", 2, params, error);

    if (!res)
        return false;
    *ret_member = PQntuples(res) > 0;
    return true;
}

bool
db_pools_hand_over(DbConn *conn, const char *id, const char *owner_id,
                   const DbPortPair *restored, GError **error)
{
    g_autofree char *vnc = restored ? g_strdup_printf("%u", restored->vnc) : NULL;
    g_autofree char *ws = restored ? g_strdup_printf("%u", restored->ws) : NULL;
    const char *params[] = { id, owner_id, vnc, ws };
    g_autoptr(PGresult) res = db_exec_result(conn,
        "UPDATE vms SET owner_id = $2, started_at = t.at, console_ready_at = t.at,"
        " console_last_activity_at = t.at, updated_at = t.at, saved_at = NULL,"
        " state = 'running', state_reason = NULL,"
        " vnc_port = coalesce($3::int, vnc_port), ws_port = coalesce($4::int, ws_port)"
        " FROM (SELECT clock_timestamp() AS at) t WHERE id = $1", 4, params);
    const char *constraint = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;

    if (PQresultStatus(res) == PGRES_COMMAND_OK)
        return true;
    if (constraint && strcmp(constraint, "vms_running_limit") == 0)
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT,
                    "You already have as many running VMs as you may.");
    else
        db_set_error(conn, res, error);
    return false;
}
