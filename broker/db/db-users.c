// SPDX-License-Identifier: LGPL-2.1-or-later
// users: insert and look up.
#include "db-users.h"

#include <string.h>

#include "vmb-error.h"

const char *const db_role_names[DB_ROLE_LAST + 1] = {
    [DB_ROLE_ADMIN] = "admin",
    [DB_ROLE_USER] = "user",
    [DB_ROLE_SERVICE] = "service",
    [DB_ROLE_LAST] = NULL,
};

/**
 * db_role_to_string:
 * @role: a role
 *
 * Returns: its name; "user" for a value out of range.
 */
const char *
db_role_to_string(DbRole role)
{
    return (unsigned) role < DB_ROLE_LAST ? db_role_names[role] : db_role_names[DB_ROLE_USER];
}

/**
 * db_role_from_string:
 * @name: a role's name
 * @ret_role: (out): the role
 *
 * Returns: true when @name names a role.
 */
bool
db_role_from_string(const char *name, DbRole *ret_role)
{
    for (int r = 0; name && r < DB_ROLE_LAST; r++) {
        if (strcmp(name, db_role_names[r]) == 0) {
            *ret_role = (DbRole) r;
            return true;
        }
    }
    return false;
}

/**
 * db_user_free:
 * @user: (nullable): a user record
 */
void
db_user_free(DbUser *user)
{
    if (!user)
        return;
    g_free(user->id);
    g_free(user->username);
    g_free(user->password_hash);
    g_free(user);
}

/**
 * db_user_copy:
 * @user: a user record
 *
 * Returns: (transfer full): a deep copy.
 */
DbUser *
db_user_copy(const DbUser *user)
{
    DbUser *copy = g_new0(DbUser, 1);

    copy->id = g_strdup(user->id);
    copy->username = g_strdup(user->username);
    copy->role = user->role;
    copy->password_hash = g_strdup(user->password_hash);
    copy->disabled = user->disabled;
    return copy;
}

/**
 * db_users_from_row:
 * @res: a result holding DB_USERS_COLUMNS
 * @row: the row
 * @col: the column of the first of DB_USERS_COLUMNS
 *
 * Returns: (transfer full): the user of that row.
 */
DbUser *
db_users_from_row(const PGresult *res, int row, int col)
{
    DbUser *user = g_new0(DbUser, 1);

    user->id = g_strdup(PQgetvalue(res, row, col));
    user->username = g_strdup(PQgetvalue(res, row, col + 1));
    /* The column's CHECK admits only the three; anything else gets the least. */
    if (!db_role_from_string(PQgetvalue(res, row, col + 2), &user->role))
        user->role = DB_ROLE_USER;
    user->disabled = strcmp(PQgetvalue(res, row, col + 3), "t") == 0;
    if (!PQgetisnull(res, row, col + 4))
        user->password_hash = g_strdup(PQgetvalue(res, row, col + 4));
    return user;
}

/**
 * db_users_insert:
 * @conn: a connection
 * @username: a name already checked against the documented charset
 * @role: the role
 * @password_hash: (nullable): PHC string, NULL for no password login
 * @ret_id: (out) (optional): the new user's id
 * @error: return location for an error
 *
 * Returns: true on success; VMB_ERROR_CONFLICT when the name is taken.
 */
bool
db_users_insert(DbConn *conn, const char *username, DbRole role,
                const char *password_hash, char **ret_id, GError **error)
{
    const char *params[] = { username, db_role_to_string(role), password_hash };
    g_autoptr(PGresult) res = db_exec_result(conn,
        "INSERT INTO users (username, role, password_hash) VALUES ($1, $2, $3)"
        " ON CONFLICT (username) DO NOTHING RETURNING id", 3, params);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_set_error(conn, res, error);
        return false;
    }
    if (PQntuples(res) == 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT, "user '%s' already exists", username);
        return false;
    }
    if (ret_id)
        *ret_id = g_strdup(PQgetvalue(res, 0, 0));
    return true;
}

/* The one user @where (over alias u, $1 = @key) selects; @what names it in the error. */
static DbUser *
get_one(DbConn *conn, const char *where, const char *key, const char *what, GError **error)
{
    const char *params[] = { key };
    g_autofree char *sql = g_strconcat("SELECT " DB_USERS_COLUMNS " FROM users u WHERE ", where,
                                       NULL);
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK, sql, 1, params, error);

    if (!res)
        return NULL;
    if (PQntuples(res) == 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_NOT_FOUND, "no user %s '%s'", what, key);
        return NULL;
    }
    return db_users_from_row(res, 0, 0);
}

/**
 * db_users_get_by_name:
 * @conn: a connection
 * @username: the login name
 * @error: return location for an error
 *
 * Returns: (transfer full): the user, or NULL (VMB_ERROR_NOT_FOUND when absent).
 */
DbUser *
db_users_get_by_name(DbConn *conn, const char *username, GError **error)
{
    return get_one(conn, "u.username = $1", username, "named", error);
}

/**
 * db_users_get_by_id:
 * @conn: a connection
 * @id: a users.id (any text: a malformed id matches nothing)
 * @error: return location for an error
 *
 * Returns: (transfer full): the user, or NULL (VMB_ERROR_NOT_FOUND when absent).
 */
DbUser *
db_users_get_by_id(DbConn *conn, const char *id, GError **error)
{
    return get_one(conn, "u.id::text = $1", id, "with id", error);
}

/**
 * db_users_ensure:
 * @conn: a connection
 * @username: a name already checked against the documented charset
 * @role: the role of a user created now
 * @error: return location for an error
 *
 * Returns: (transfer full): the existing or new user, or NULL.
 */
DbUser *
db_users_ensure(DbConn *conn, const char *username, DbRole role, GError **error)
{
    const char *params[] = { username, db_role_to_string(role) };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_COMMAND_OK,
        "INSERT INTO users (username, role) VALUES ($1, $2) ON CONFLICT (username) DO NOTHING",
        2, params, error);

    if (!res)
        return NULL;
    return db_users_get_by_name(conn, username, error);
}

/**
 * db_users_list:
 * @conn: a connection
 * @error: return location for an error
 *
 * Returns: (transfer full) (element-type DbUser): every user, by name, without hashes.
 */
GPtrArray *
db_users_list(DbConn *conn, GError **error)
{
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "SELECT u.id, u.username, u.role, u.disabled, NULL FROM users u ORDER BY u.username",
        0, NULL, error);
    GPtrArray *out;

    if (!res)
        return NULL;
    out = g_ptr_array_new_with_free_func((GDestroyNotify) db_user_free);
    for (int i = 0; i < PQntuples(res); i++)
        g_ptr_array_add(out, db_users_from_row(res, i, 0));
    return out;
}

/* For a statement whose one row counts the users it changed: false (VMB_ERROR_NOT_FOUND)
 * when none was. */
static bool
changed_a_user(const PGresult *res, GError **error)
{
    if (!res)
        return false;
    if (strcmp(PQgetvalue(res, 0, 0), "0") == 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_NOT_FOUND, "No such user.");
        return false;
    }
    return true;
}

/**
 * db_users_set_disabled:
 * @conn: a connection
 * @id: the user (any text: a malformed id is simply not found)
 * @disabled: the new setting
 * @error: return location for an error
 *
 * A disabled user can neither sign in nor use a token; their sessions and console sessions
 * end at once.
 *
 * Returns: true on success.
 */
bool
db_users_set_disabled(DbConn *conn, const char *id, bool disabled, GError **error)
{
    const char *params[] = { id, disabled ? "true" : "false" };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "WITH u AS (UPDATE users SET disabled = $2::boolean WHERE id::text = $1 RETURNING id),"
        " s AS (DELETE FROM sessions WHERE $2::boolean AND user_id IN (SELECT id FROM u)),"
        " c AS (DELETE FROM console_sessions WHERE $2::boolean AND user_id IN (SELECT id FROM u))"
        " SELECT count(*) FROM u", 2, params, error);


    return changed_a_user(res, error);
}

/**
 * db_users_set_password:
 * @conn: a connection
 * @id: the user
 * @password_hash: the new argon2id PHC string
 * @error: return location for an error
 *
 * The user's sessions end: whoever knew the old password is signed out.
 *
 * Returns: true on success; VMB_ERROR_NOT_FOUND when there is no such user.
 */
bool
db_users_set_password(DbConn *conn, const char *id, const char *password_hash, GError **error)
{
    const char *params[] = { id, password_hash };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "WITH u AS (UPDATE users SET password_hash = $2 WHERE id::text = $1 RETURNING id),"
        " s AS (DELETE FROM sessions WHERE user_id IN (SELECT id FROM u))"
        " SELECT count(*) FROM u", 2, params, error);


    return changed_a_user(res, error);
}
