// SPDX-License-Identifier: LGPL-2.1-or-later
// audit_log: append only.
#include "db-audit.h"

#include "vmb-error.h"

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
                             entry->object_id, entry->remote_addr, entry->detail_json };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_COMMAND_OK,
        "INSERT INTO audit_log (actor_id, action, object_kind, object_id, remote_addr, detail)"
        " VALUES ($1, $2, $3, $4, $5::inet, coalesce($6::jsonb, '{}'::jsonb))",
        6, params, error);

    return res != NULL;
}
