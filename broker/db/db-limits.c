// SPDX-License-Identifier: LGPL-2.1-or-later
// broker_limits: read by the vms trigger that refuses running VMs over a user's limit.
#include "db-limits.h"

#include "vmb-error.h"

/**
 * db_limits_set_max_running:
 * @conn: a connection
 * @max_running_per_user: VMs in `creating` or `running` a non-admin may have; negative to
 *   stop enforcing the limit in SQL
 * @error: return location for an error
 *
 * Returns: true on success.
 */
bool
db_limits_set_max_running(DbConn *conn, int max_running_per_user, GError **error)
{
    g_autofree char *v = max_running_per_user < 0 ? NULL
                                                  : g_strdup_printf("%d", max_running_per_user);
    const char *params[] = { v };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_COMMAND_OK,
        "UPDATE broker_limits SET max_running_per_user = $1::int", 1, params, error);

    return res != NULL;
}
