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

/**
 * db_console_sessions_insert:
 * @conn: a connection
 * @secret_hash: hex SHA-256 of the session's cookie value
 * @user_id: whose session it is
 * @vm_id: the one VM it opens
 * @max_age_s: absolute lifetime
 * @keep: how many sessions one user may hold on one VM; older ones are dropped
 * @error: return location for an error
 *
 * Returns: true on success.
 */
bool
db_console_sessions_insert(DbConn *conn, const char *secret_hash, const char *user_id,
                           const char *vm_id, unsigned max_age_s, unsigned keep, GError **error)
{
    g_autofree char *age = g_strdup_printf("%u", max_age_s);
    g_autofree char *kept = g_strdup_printf("%u", keep > 0 ? keep - 1 : 0);
    const char *params[] = { secret_hash, user_id, vm_id, age, kept };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_COMMAND_OK,
        "WITH old AS (DELETE FROM console_sessions WHERE id IN ("
        "   SELECT id FROM console_sessions WHERE user_id = $2 AND vm_id = $3"
        "   ORDER BY created_at DESC OFFSET $5::int))"
        " INSERT INTO console_sessions (secret_hash, user_id, vm_id, expires_at)"
        " VALUES ($1, $2, $3, now() + make_interval(secs => $4::int))", 5, params, error);
    return res != NULL;
}

/**
 * db_console_sessions_use:
 * @conn: a connection
 * @secret_hash: hex SHA-256 of the presented cookie value
 * @vm_id: the VM the request is for (any text: a malformed id matches nothing)
 * @idle_s: a session unused this long has ended
 * @ret_user_id: (out): the session's user
 * @error: return location for an error
 *
 * A live session (not expired, used within @idle_s, its user not disabled) is touched.
 *
 * Returns: true when the session is live; VMB_ERROR_UNAUTHORIZED when not.
 */
bool
db_console_sessions_use(DbConn *conn, const char *secret_hash, const char *vm_id,
                        unsigned idle_s, char **ret_user_id, GError **error)
{
    g_autofree char *idle = g_strdup_printf("%u", idle_s);
    const char *params[] = { secret_hash, vm_id, idle };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "UPDATE console_sessions c SET last_seen_at = now() FROM users u"
        " WHERE c.secret_hash = $1 AND c.vm_id::text = $2 AND u.id = c.user_id"
        "   AND NOT u.disabled AND c.expires_at > now()"
        "   AND c.last_seen_at > now() - make_interval(secs => $3::int)"
        " RETURNING c.user_id", 3, params, error);

    if (!res)
        return false;
    if (PQntuples(res) == 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAUTHORIZED,
                    "Your access to this console has ended; open it again from your "
                    "desktops or your course portal.");
        return false;
    }
    *ret_user_id = g_strdup(PQgetvalue(res, 0, 0));
    return true;
}

/**
 * db_console_sessions_end:
 * @conn: a connection
 * @user_id: (nullable): end this user's sessions
 * @vm_id: (nullable): end the sessions on this VM (any text)
 * @ret_count: (out) (optional): sessions ended
 * @error: return location for an error
 *
 * With both set, only that user's sessions on that VM end; with neither, nothing happens.
 *
 * Returns: true on success.
 */
bool
db_console_sessions_end(DbConn *conn, const char *user_id, const char *vm_id,
                        unsigned *ret_count, GError **error)
{
    const char *params[] = { user_id, vm_id };
    g_autoptr(PGresult) res = NULL;

    if (!user_id && !vm_id) {
        if (ret_count)
            *ret_count = 0;
        return true;
    }
    res = db_exec(conn, PGRES_COMMAND_OK,
        "DELETE FROM console_sessions WHERE ($1::text IS NULL OR user_id::text = $1)"
        " AND ($2::text IS NULL OR vm_id::text = $2)", 2, params, error);
    if (!res)
        return false;
    if (ret_count)
        *ret_count = (unsigned) strtoul(PQcmdTuples(res), NULL, 10);
    return true;
}

/**
 * db_console_sessions_purge:
 * @conn: a connection
 * @idle_s: sessions unused this long are gone too
 * @ret_count: (out) (optional): sessions removed
 * @error: return location for an error
 *
 * Returns: true on success.
 */
bool
db_console_sessions_purge(DbConn *conn, unsigned idle_s, unsigned *ret_count, GError **error)
{
    g_autofree char *idle = g_strdup_printf("%u", idle_s);
    const char *params[] = { idle };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_COMMAND_OK,
        "DELETE FROM console_sessions WHERE expires_at < now()"
        " OR last_seen_at < now() - make_interval(secs => $1::int)", 1, params, error);

    if (!res)
        return false;
    if (ret_count)
        *ret_count = (unsigned) strtoul(PQcmdTuples(res), NULL, 10);
    return true;
}
