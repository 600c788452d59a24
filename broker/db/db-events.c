// SPDX-License-Identifier: LGPL-2.1-or-later
// events: read in order, newest id, purge.
#include "db-events.h"

#include <stdlib.h>

void
db_event_free(DbEvent *ev)
{
    if (!ev)
        return;
    g_free(ev->kind);
    g_free(ev->owner_id);
    g_free(ev->requested_by);
    g_free(ev->payload);
    g_free(ev);
}

GPtrArray *
db_events_after(DbConn *conn, gint64 after_id, unsigned limit, GError **error)
{
    g_autofree char *after = g_strdup_printf("%" G_GINT64_FORMAT, after_id);
    g_autofree char *lim = g_strdup_printf("%u", limit);
    const char *params[] = { after, lim };
    g_autoptr(PGresult) res = db_exec_prepared(conn, PGRES_TUPLES_OK, "events_after",
        "SELECT e.id, e.kind, e.owner_id, e.requested_by, e.payload::text,"
        "       coalesce(u.role = 'user', false)"
        " FROM events e LEFT JOIN users u ON u.id = e.owner_id"
        " WHERE e.id > $1::bigint ORDER BY e.id LIMIT $2::int", 2, params, error);
    GPtrArray *out;

    if (!res)
        return NULL;
    out = g_ptr_array_new_with_free_func((GDestroyNotify) db_event_free);
    for (int i = 0; i < PQntuples(res); i++) {
        DbEvent *ev = g_new0(DbEvent, 1);
        ev->id = g_ascii_strtoll(PQgetvalue(res, i, 0), NULL, 10);
        ev->kind = db_value_dup(res, i, 1);
        ev->owner_id = db_value_dup(res, i, 2);
        ev->requested_by = db_value_dup(res, i, 3);
        ev->payload = db_value_dup(res, i, 4);
        ev->owner_is_user = PQgetvalue(res, i, 5)[0] == 't';
        g_ptr_array_add(out, ev);
    }
    return out;
}

bool
db_events_last_id(DbConn *conn, gint64 *ret_id, GError **error)
{
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "SELECT coalesce(max(id), 0) FROM events", 0, NULL, error);

    if (!res)
        return false;
    *ret_id = g_ascii_strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    return true;
}

int
db_events_purge(DbConn *conn, unsigned keep_s, GError **error)
{
    g_autofree char *keep = g_strdup_printf("%u", keep_s);
    const char *params[] = { keep };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_COMMAND_OK,
        "DELETE FROM events WHERE at < now() - make_interval(secs => $1::int)", 1, params,
        error);
    return res ? (int) strtol(PQcmdTuples(res), NULL, 10) : -1;
}
