// SPDX-License-Identifier: LGPL-2.1-or-later
// sessions: login sessions, looked up by the SHA-256 of the cookie value.
#include "db-sessions.h"

#include <stdlib.h>
#include <string.h>

#include "vmb-error.h"

/**
 * db_sessions_insert:
 * @conn: a connection
 * @user_id: the user's uuid
 * @secret_hash: hex SHA-256 of the cookie value
 * @csrf_hash: hex SHA-256 of the CSRF token
 * @max_age_s: absolute lifetime in seconds
 * @remote_addr: (nullable): the client's address
 * @error: return location for an error
 *
 * Returns: true on success.
 */
bool
db_sessions_insert(DbConn *conn, const char *user_id, const char *secret_hash,
                   const char *csrf_hash, unsigned max_age_s, const char *remote_addr,
                   GError **error)
{
    g_autofree char *age = g_strdup_printf("%u", max_age_s);
    const char *params[] = { user_id, secret_hash, csrf_hash, age, remote_addr };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_COMMAND_OK,
        "INSERT INTO sessions (user_id, secret_hash, csrf_hash, expires_at, remote_addr)"
        " VALUES ($1, $2, $3, now() + make_interval(secs => $4::int), $5::inet)",
        5, params, error);
    return res != NULL;
}

/**
 * db_sessions_authenticate:
 * @conn: a connection
 * @secret_hash: hex SHA-256 of the cookie value
 * @idle_s: a session unused for longer is dead
 * @ret_csrf_hash: (out): the session's CSRF digest
 * @ret_expires_at: (out) (optional): the session's absolute end (Unix seconds, rounded down)
 * @error: return location for an error
 *
 * Returns: (transfer full): the session's user, or NULL (VMB_ERROR_UNAUTHORIZED when the
 * session is unknown, expired, idle too long, or its user is disabled).
 */
DbUser *
db_sessions_authenticate(DbConn *conn, const char *secret_hash, unsigned idle_s,
                         char **ret_csrf_hash, gint64 *ret_expires_at, GError **error)
{
    g_autofree char *idle = g_strdup_printf("%u", idle_s);
    const char *params[] = { secret_hash, idle };
    /* A read, like token checks: a page polling every two seconds must not write its
     * session row each time. last_seen_at is kept to the minute. */
    g_autoptr(PGresult) res = db_exec_prepared(conn, PGRES_TUPLES_OK, "sessions_authenticate",
        "SELECT s.csrf_hash, " DB_USERS_COLUMNS ", s.id,"
        " s.last_seen_at < now() - interval '60 seconds',"
        " floor(extract(epoch FROM s.expires_at))::bigint"
        " FROM sessions s JOIN users u ON u.id = s.user_id"
        " WHERE s.secret_hash = $1 AND NOT u.disabled AND s.expires_at > now()"
        "   AND s.last_seen_at > now() - make_interval(secs => $2::int)", 2, params, error);

    if (!res)
        return NULL;
    if (PQntuples(res) == 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAUTHORIZED,
                    "The session has ended; sign in again.");
        return NULL;
    }
    if (strcmp(PQgetvalue(res, 0, 7), "t") == 0) {
        const char *id[] = { PQgetvalue(res, 0, 6) };
        g_autoptr(PGresult) touched = db_exec_stamp(conn, "sessions_touch",
            "UPDATE sessions SET last_seen_at = now() WHERE id = $1", 1, id, error);
        if (!touched)
            return NULL;
    }
    if (ret_expires_at)
        *ret_expires_at = g_ascii_strtoll(PQgetvalue(res, 0, 8), NULL, 10);
    *ret_csrf_hash = g_strdup(PQgetvalue(res, 0, 0));
    return db_users_from_row(res, 0, 1);
}

/**
 * db_sessions_delete:
 * @conn: a connection
 * @secret_hash: hex SHA-256 of the cookie value
 * @error: return location for an error
 *
 * Signing out also ends the user's console sessions.
 *
 * Returns: true on success, also when there was no such session.
 */
bool
db_sessions_delete(DbConn *conn, const char *secret_hash, GError **error)
{
    const char *params[] = { secret_hash };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_COMMAND_OK,
        "WITH s AS (DELETE FROM sessions WHERE secret_hash = $1 RETURNING user_id)"
        " DELETE FROM console_sessions WHERE user_id IN (SELECT user_id FROM s)",
        1, params, error);
    return res != NULL;
}

/**
 * db_sessions_purge:
 * @conn: a connection
 * @idle_s: the idle timeout
 * @ret_count: (out) (optional): sessions removed
 * @error: return location for an error
 *
 * Returns: true on success.
 */
bool
db_sessions_purge(DbConn *conn, unsigned idle_s, unsigned *ret_count, GError **error)
{
    g_autofree char *idle = g_strdup_printf("%u", idle_s);
    const char *params[] = { idle };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_COMMAND_OK,
        "DELETE FROM sessions WHERE expires_at <= now()"
        " OR last_seen_at <= now() - make_interval(secs => $1::int)", 1, params, error);

    if (!res)
        return false;
    if (ret_count)
        *ret_count = (unsigned) strtoul(PQcmdTuples(res), NULL, 10);
    return true;
}

/**
 * db_sessions_access_live:
 * @conn: a connection
 * @user_id: the user a console was opened for
 * @credential: (nullable): "s:<session digest>" or "t:<token digest>" it was opened through
 * @ret_live: (out): whether the user is enabled and the session (not past its absolute end)
 *     or token (not revoked, not expired) still stands with its own user enabled; false for
 *     an unknown user
 * @error: return location for an error
 *
 * Returns: true when @ret_live was set.
 */
bool
db_sessions_access_live(DbConn *conn, const char *user_id, const char *credential,
                        bool *ret_live, GError **error)
{
    const char *kind = credential && strlen(credential) > 2 ? credential : "-:";
    g_autofree char *k = g_strndup(kind, 1);
    const char *params[] = { user_id, k, kind + 2 };
    g_autoptr(PGresult) res = db_exec_prepared(conn, PGRES_TUPLES_OK, "sessions_access_live",
        /* The credential may be another user's (a service acting for a student): its
         * own user must be enabled too. */
        "SELECT NOT u.disabled AND CASE $2"
        "  WHEN 's' THEN EXISTS (SELECT 1 FROM sessions s JOIN users o ON o.id = s.user_id"
        "                         WHERE s.secret_hash = $3 AND NOT o.disabled"
        "                           AND s.expires_at > now())"
        "  WHEN 't' THEN EXISTS (SELECT 1 FROM api_tokens t JOIN users o ON o.id = t.user_id"
        "                         WHERE t.secret_hash = $3 AND NOT o.disabled"
        "                           AND t.revoked_at IS NULL"
        "                           AND (t.expires_at IS NULL OR t.expires_at > now()))"
        "  ELSE true END"
        " FROM users u WHERE u.id::text = $1", 3, params, error);

    if (!res)
        return false;
    *ret_live = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    return true;
}
