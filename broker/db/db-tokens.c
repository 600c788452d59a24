// SPDX-License-Identifier: LGPL-2.1-or-later
// api_tokens: insert.
#include "db-tokens.h"

#include <stdlib.h>
#include <string.h>

#include "vmb-error.h"

/**
 * db_tokens_insert:
 * @conn: a connection
 * @user_id: the owner's uuid
 * @name: a label, 1 to 100 characters
 * @secret_hash: hex SHA-256 of the token
 * @expires_in_s: seconds until expiry, 0 for never
 * @parent_hash: (nullable): hex SHA-256 of the token it is minted with, which becomes its
 *   parent: revoking that one revokes this one
 * @ret_id: (out) (optional): the token's id
 * @error: return location for an error
 *
 * Returns: true on success.
 */
bool
db_tokens_insert(DbConn *conn, const char *user_id, const char *name,
                 const char *secret_hash, gint64 expires_in_s, const char *parent_hash,
                 char **ret_id, GError **error)
{
    g_autofree char *expires = expires_in_s > 0 ? g_strdup_printf("%" G_GINT64_FORMAT,
                                                                  expires_in_s) : NULL;
    const char *params[] = { user_id, name, secret_hash, expires, parent_hash };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "INSERT INTO api_tokens (user_id, name, secret_hash, expires_at, parent_id)"
        " VALUES ($1, $2, $3, now() + make_interval(secs => $4::bigint),"
        "         (SELECT id FROM api_tokens WHERE secret_hash = $5))"
        " RETURNING id", 5, params, error);

    if (!res)
        return false;
    if (ret_id)
        *ret_id = g_strdup(PQgetvalue(res, 0, 0));
    return true;
}

/**
 * db_token_free:
 * @token: (nullable): a listed token
 */
void
db_token_free(DbToken *token)
{
    if (!token)
        return;
    g_free(token->id);
    g_free(token->username);
    g_free(token->name);
    g_free(token->created_at);
    g_free(token->expires_at);
    g_free(token->last_used_at);
    g_free(token);
}

/**
 * db_tokens_authenticate:
 * @conn: a connection
 * @secret_hash: hex SHA-256 of the presented token
 * @ret_expires_at: (out) (optional): when the token expires (Unix seconds, rounded down),
 *     0 for never
 * @ret_stamp_due_s: (out) (optional): seconds until last_used_at is next due a stamp
 * @error: return location for an error
 *
 * Stamps last_used_at when it is a minute old or more (to the minute, so the requests of a
 * client do not all write, and wait on, the token's row).
 *
 * Returns: (transfer full): the token's user, or NULL (VMB_ERROR_UNAUTHORIZED when the
 * token is unknown, revoked or expired, or its user is disabled).
 */
DbUser *
db_tokens_authenticate(DbConn *conn, const char *secret_hash, gint64 *ret_expires_at,
                       unsigned *ret_stamp_due_s, GError **error)
{
    const char *params[] = { secret_hash };
    g_autoptr(PGresult) res = db_exec_prepared(conn, PGRES_TUPLES_OK, "tokens_authenticate",
        "SELECT " DB_USERS_COLUMNS ", t.id,"
        " coalesce(floor(extract(epoch FROM t.expires_at))::bigint, 0),"
        " coalesce(60 - extract(epoch FROM now() - t.last_used_at)::bigint, 0)"
        " FROM api_tokens t JOIN users u ON u.id = t.user_id"
        " WHERE t.secret_hash = $1 AND NOT u.disabled"
        "   AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())",
        1, params, error);
    gint64 due;

    if (!res)
        return NULL;
    if (PQntuples(res) == 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAUTHORIZED,
                    "The API token is unknown, revoked or expired.");
        return NULL;
    }
    due = g_ascii_strtoll(PQgetvalue(res, 0, 7), NULL, 10);
    if (due <= 0) {
        const char *id[] = { PQgetvalue(res, 0, 5) };
        g_autoptr(PGresult) stamped = db_exec_stamp(conn, "tokens_touch",
            "UPDATE api_tokens SET last_used_at = now() WHERE id = $1", 1, id, error);
        if (!stamped)
            return NULL;
        due = 60;
    }
    if (ret_expires_at)
        *ret_expires_at = g_ascii_strtoll(PQgetvalue(res, 0, 6), NULL, 10);
    if (ret_stamp_due_s)
        *ret_stamp_due_s = (unsigned) MIN(due, 60);
    return db_users_from_row(res, 0, 0);
}

static char *
nullable_value(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : g_strdup(PQgetvalue(res, row, col));
}

/**
 * db_tokens_list:
 * @conn: a connection
 * @user_id: (nullable): the owner; NULL for every user's tokens, with their names
 * @error: return location for an error
 *
 * Returns: (transfer full) (element-type DbToken): the tokens, or NULL on error.
 */
GPtrArray *
db_tokens_list(DbConn *conn, const char *user_id, GError **error)
{
    const char *params[] = { user_id };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "SELECT id, name,"
        " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
        " to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
        " to_char(last_used_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
        " revoked_at IS NOT NULL, (SELECT username FROM users u WHERE u.id = user_id)"
        " FROM api_tokens WHERE $1::uuid IS NULL OR user_id = $1::uuid"
        " ORDER BY created_at DESC, id", 1, params, error);
    GPtrArray *out;

    if (!res)
        return NULL;
    out = g_ptr_array_new_with_free_func((GDestroyNotify) db_token_free);
    for (int i = 0; i < PQntuples(res); i++) {
        DbToken *t = g_new0(DbToken, 1);
        t->id = g_strdup(PQgetvalue(res, i, 0));
        t->name = g_strdup(PQgetvalue(res, i, 1));
        t->created_at = g_strdup(PQgetvalue(res, i, 2));
        t->expires_at = nullable_value(res, i, 3);
        t->last_used_at = nullable_value(res, i, 4);
        t->revoked = strcmp(PQgetvalue(res, i, 5), "t") == 0;
        t->username = user_id ? NULL : nullable_value(res, i, 6);
        g_ptr_array_add(out, t);
    }
    return out;
}

bool
db_tokens_count_live(DbConn *conn, const char *user_id, unsigned *ret_count, GError **error)
{
    const char *params[] = { user_id };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "WITH u AS (SELECT id FROM users WHERE id = $1 FOR UPDATE)"
        " SELECT count(*) FROM api_tokens t JOIN u ON t.user_id = u.id"
        " WHERE t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())",
        1, params, error);

    if (!res)
        return false;
    *ret_count = (unsigned) strtoul(PQgetvalue(res, 0, 0), NULL, 10);
    return true;
}

/**
 * db_tokens_revoke:
 * @conn: a connection
 * @user_id: (nullable): the caller, who must own the token; NULL for any owner (admins)
 * @token_id: the token's id (any text: a malformed id is simply not found)
 * @error: return location for an error
 *
 * The tokens minted through it (and through those, down the line) are revoked with it.
 * Revoking any of a user's tokens also ends their console sessions: a portal that withdraws
 * a user's access withdraws the consoles it opened for them.
 *
 * Returns: true when a token of @user_id was revoked (or already was).
 */
bool
db_tokens_revoke(DbConn *conn, const char *user_id, const char *token_id, GError **error)
{
    const char *params[] = { user_id, token_id };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "WITH RECURSIVE tree AS (SELECT id, true AS asked FROM api_tokens"
        "   WHERE ($1::uuid IS NULL OR user_id = $1::uuid) AND id::text = $2"
        "   UNION SELECT c.id, false FROM api_tokens c JOIN tree ON c.parent_id = tree.id),"
        " t AS (UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now())"
        "   WHERE id IN (SELECT id FROM tree) RETURNING user_id),"
        " c AS (DELETE FROM console_sessions WHERE user_id IN (SELECT user_id FROM t))"
        " SELECT count(*) FROM tree WHERE asked", 2, params, error);

    if (!res)
        return false;
    if (strcmp(PQgetvalue(res, 0, 0), "0") == 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_NOT_FOUND, "No such token.");
        return false;
    }
    return true;
}
