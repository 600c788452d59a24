// SPDX-License-Identifier: LGPL-2.1-or-later
// hosts: made or updated from the config at start.
#include "db-hosts.h"

#include "vmb-error.h"

/**
 * db_hosts_ensure:
 * @conn: a connection
 * @name: the host's name (`local` for the configured libvirt.uri)
 * @uri: its libvirt URI
 * @ret_id: (out): the host's id
 * @error: return location for an error
 *
 * Returns: true on success.
 */
bool
db_hosts_ensure(DbConn *conn, const char *name, const char *uri, char **ret_id,
                GError **error)
{
    const char *params[] = { name, uri };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "INSERT INTO hosts (name, uri) VALUES ($1, $2)"
        " ON CONFLICT (name) DO UPDATE SET uri = EXCLUDED.uri, updated_at = now()"
        " WHERE hosts.uri <> EXCLUDED.uri RETURNING id", 2, params, error);

    if (!res)
        return false;
    if (PQntuples(res) == 0) {
        /* Unchanged: DO UPDATE ... WHERE returned nothing. */
        g_clear_pointer(&res, PQclear);
        res = db_exec(conn, PGRES_TUPLES_OK, "SELECT id FROM hosts WHERE name = $1",
                      1, params, error);
        if (!res)
            return false;
        if (PQntuples(res) == 0) {
            g_set_error(error, VMB_ERROR, VMB_ERROR_INTERNAL, "host '%s' vanished", name);
            return false;
        }
    }
    *ret_id = g_strdup(PQgetvalue(res, 0, 0));
    return true;
}
