// SPDX-License-Identifier: LGPL-2.1-or-later
// api_tokens: insert.
#include "db-tokens.h"

#include "vmb-error.h"

/**
 * db_tokens_insert:
 * @conn: a connection
 * @user_id: the owner's uuid
 * @name: a label, 1 to 100 characters
 * @secret_hash: hex SHA-256 of the token
 * @expires_in_s: seconds until expiry, 0 for never
 * @ret_id: (out) (optional): the token's id
 * @error: return location for an error
 *
 * Returns: true on success.
 */
bool
db_tokens_insert(DbConn *conn, const char *user_id, const char *name,
                 const char *secret_hash, gint64 expires_in_s, char **ret_id, GError **error)
{
    g_autofree char *expires = expires_in_s > 0 ? g_strdup_printf("%" G_GINT64_FORMAT,
                                                                  expires_in_s) : NULL;
    const char *params[] = { user_id, name, secret_hash, expires };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "INSERT INTO api_tokens (user_id, name, secret_hash, expires_at)"
        " VALUES ($1, $2, $3, now() + make_interval(secs => $4::bigint)) RETURNING id",
        4, params, error);

    if (!res)
        return false;
    if (ret_id)
        *ret_id = g_strdup(PQgetvalue(res, 0, 0));
    return true;
}
