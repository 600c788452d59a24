// SPDX-License-Identifier: LGPL-2.1-or-later
// console_tickets: mint and consume. Consuming is one UPDATE, so two connections presenting
// the same ticket at once cannot both win.
#include "db-tickets.h"

#include <stdlib.h>

#include "vmb-error.h"

/**
 * db_tickets_insert:
 * @conn: a connection
 * @secret_hash: hex SHA-256 of the ticket
 * @purpose: "page" or "ws"
 * @user_id: who may use it
 * @vm_id: the VM it opens
 * @ttl_s: lifetime, 1 to 60 seconds (the table refuses more)
 * @error: return location for an error
 *
 * Returns: true on success.
 */
bool
db_tickets_insert(DbConn *conn, const char *secret_hash, const char *purpose,
                  const char *user_id, const char *vm_id, unsigned ttl_s, GError **error)
{
    g_autofree char *ttl = g_strdup_printf("%u", ttl_s);
    const char *params[] = { secret_hash, user_id, vm_id, ttl, purpose };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_COMMAND_OK,
        "INSERT INTO console_tickets (secret_hash, user_id, vm_id, created_at, expires_at,"
        " purpose) VALUES ($1, $2, $3, now(), now() + make_interval(secs => $4::int), $5)",
        5, params, error);
    return res != NULL;
}

/**
 * db_tickets_consume:
 * @conn: a connection
 * @secret_hash: hex SHA-256 of the presented ticket
 * @purpose: what it is presented for: "page" or "ws"
 * @vm_id: the VM the request is for (any text: a malformed id matches nothing)
 * @ret_user_id: (out): the ticket's user
 * @error: return location for an error
 *
 * Returns: true when the ticket was live and is now used.
 */
bool
db_tickets_consume(DbConn *conn, const char *secret_hash, const char *purpose,
                   const char *vm_id, char **ret_user_id, GError **error)
{
    const char *params[] = { secret_hash, vm_id, purpose };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "UPDATE console_tickets SET used_at = now()"
        " WHERE secret_hash = $1 AND vm_id::text = $2 AND purpose = $3 AND used_at IS NULL"
        "   AND expires_at > now() RETURNING user_id", 3, params, error);

    if (!res)
        return false;
    if (PQntuples(res) == 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAUTHORIZED,
                    "The console ticket is unknown, used or expired; ask for a new one.");
        return false;
    }
    *ret_user_id = g_strdup(PQgetvalue(res, 0, 0));
    return true;
}

/**
 * db_tickets_purge:
 * @conn: a connection
 * @ret_count: (out) (optional): tickets removed
 * @error: return location for an error
 *
 * Deletes tickets that expired more than a minute ago (used or not).
 *
 * Returns: true on success.
 */
bool
db_tickets_purge(DbConn *conn, unsigned *ret_count, GError **error)
{
    g_autoptr(PGresult) res = db_exec(conn, PGRES_COMMAND_OK,
        "DELETE FROM console_tickets WHERE expires_at < now() - interval '1 minute'",
        0, NULL, error);

    if (!res)
        return false;
    if (ret_count)
        *ret_count = (unsigned) strtoul(PQcmdTuples(res), NULL, 10);
    return true;
}
