// SPDX-License-Identifier: LGPL-2.1-or-later
// User creation, password hashing with argon2id (PHC strings) and API token minting.
// Tokens are "vmb_" + 256 random bits; only their SHA-256 is stored.
#include "svc-users.h"

#include <argon2.h>
#include <string.h>

#include "db-tokens.h"
#include "db-users.h"
#include "vmb-error.h"
#include "vmb-secret.h"

#define SALT_BYTES 16
#define HASH_BYTES 32
/* Longer passwords are refused: argon2 would accept them, but they only cost CPU. */
#define PASSWORD_MAX 1024

/**
 * svc_users_name_valid:
 * @username: a candidate login name
 *
 * The documented charset: a lower-case letter or digit, then up to 63 of [a-z0-9._-].
 * The same rule is a CHECK constraint in the users table.
 *
 * Returns: true when @username follows it.
 */
bool
svc_users_name_valid(const char *username)
{
    size_t len = strlen(username);

    if (len < 1 || len > 64 || !g_ascii_isalnum(username[0]) || g_ascii_isupper(username[0]))
        return false;
    for (size_t i = 1; i < len; i++) {
        char c = username[i];
        if (!(g_ascii_islower(c) || g_ascii_isdigit(c) || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/**
 * svc_users_hash_password:
 * @password: the password, 1 to 1024 bytes
 * @params: argon2id cost
 * @error: return location for an error
 *
 * Returns: (transfer full): an argon2id PHC string with a fresh random salt, or NULL.
 */
char *
svc_users_hash_password(const char *password, const SvcArgon2Params *params, GError **error)
{
    unsigned char salt[SALT_BYTES];
    size_t pwlen = strlen(password);
    size_t enclen;
    g_autofree char *encoded = NULL;
    int rc;

    if (pwlen < 1 || pwlen > PASSWORD_MAX) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID,
                    "a password has 1 to %d bytes", PASSWORD_MAX);
        return NULL;
    }
    if (!vmb_secret_random(salt, sizeof(salt), error))
        return NULL;
    enclen = argon2_encodedlen(params->iterations, params->memory_kib, params->lanes,
                               SALT_BYTES, HASH_BYTES, Argon2_id);
    encoded = g_malloc0(enclen);
    rc = argon2id_hash_encoded(params->iterations, params->memory_kib, params->lanes,
                               password, pwlen, salt, SALT_BYTES, HASH_BYTES, encoded, enclen);
    if (rc != ARGON2_OK) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INTERNAL, "argon2id: %s",
                    argon2_error_message(rc));
        return NULL;
    }
    return g_steal_pointer(&encoded);
}

/**
 * svc_users_verify_password:
 * @phc_hash: an argon2id PHC string
 * @password: the password to check
 *
 * Returns: true when @password matches.
 */
bool
svc_users_verify_password(const char *phc_hash, const char *password)
{
    size_t pwlen = strlen(password);

    if (pwlen < 1 || pwlen > PASSWORD_MAX || !g_str_has_prefix(phc_hash, "$argon2id$"))
        return false;
    return argon2id_verify(phc_hash, password, pwlen) == ARGON2_OK;
}

/**
 * svc_users_add:
 * @pool: the database
 * @username: login name, checked against the documented charset
 * @role: "admin", "user" or "service"
 * @password: (nullable): the password; NULL for an account without password login
 * @ret_id: (out) (optional): the new user's id
 * @error: return location for an error (VMB_ERROR_INVALID, VMB_ERROR_CONFLICT, ...)
 *
 * Returns: true when the user was created.
 */
bool
svc_users_add(DbPool *pool, const char *username, const char *role, const char *password,
              char **ret_id, GError **error)
{
    g_autofree char *hash = NULL;
    g_autoptr(DbConn) conn = NULL;
    DbRole r;

    if (!svc_users_name_valid(username)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID,
                    "invalid user name: use 1 to 64 of [a-z0-9._-], starting with a letter or "
                    "digit");
        return false;
    }
    if (!db_role_from_string(role, &r)) {
        g_autofree char *all = g_strjoinv("|", (char **) db_role_names);
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID, "invalid role '%s': use %s", role, all);
        return false;
    }
    if (password) {
        hash = svc_users_hash_password(password, &SVC_ARGON2_DEFAULTS, error);
        if (!hash)
            return false;
    }
    conn = db_pool_acquire(pool, error);
    if (!conn)
        return false;
    return db_users_insert(conn, username, r, hash, ret_id, error);
}

/**
 * svc_users_token_lifetime:
 * @requested_s: the lifetime asked for, seconds, 0 for none
 * @parent_end: when the credential the request came with ends (Unix seconds), 0 for never
 * @now: the time now (Unix seconds)
 * @ret_lifetime_s: (out): the lifetime to give, seconds, 0 for none
 * @error: return location for an error
 *
 * A token minted through a session or another token never outlives it: the lifetime is cut
 * to what the parent has left (a request for no end gets just that much).
 *
 * Returns: true; false (VMB_ERROR_UNAUTHORIZED) when the parent has no whole second left.
 */
bool
svc_users_token_lifetime(gint64 requested_s, gint64 parent_end, gint64 now,
                         gint64 *ret_lifetime_s, GError **error)
{
    gint64 left = parent_end - now;

    if (!parent_end) {
        *ret_lifetime_s = requested_s;
        return true;
    }
    if (left < 1) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAUTHORIZED,
                    "The credential used has ended; sign in again.");
        return false;
    }
    *ret_lifetime_s = requested_s && requested_s < left ? requested_s : left;
    return true;
}

/**
 * svc_users_create_token:
 * @pool: the database
 * @username: the token's owner
 * @name: a label, 1 to 100 characters
 * @expires_in_s: lifetime in seconds, 0 for none
 * @ret_id: (out) (optional): the token's id
 * @error: return location for an error
 *
 * Returns: (transfer full): the token, shown to the caller once; NULL on error.
 */
char *
svc_users_create_token(DbPool *pool, const char *username, const char *name,
                       gint64 expires_in_s, char **ret_id, GError **error)
{
    g_autoptr(DbConn) conn = NULL;
    g_autoptr(DbUser) user = NULL;
    g_autofree char *token = NULL;
    g_autofree char *digest = NULL;
    glong namelen = g_utf8_validate(name, -1, NULL) ? g_utf8_strlen(name, -1) : -1;

    if (namelen < 1 || namelen > 100) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID,
                    "a token name has 1 to 100 characters of valid UTF-8");
        return NULL;
    }
    if (expires_in_s < 0 || expires_in_s > G_GINT64_CONSTANT(10) * 365 * 86400) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID,
                    "expires_in is 0 (never) to 315360000 seconds (10 years)");
        return NULL;
    }
    conn = db_pool_acquire(pool, error);
    if (!conn)
        return NULL;
    user = db_users_get_by_name(conn, username, error);
    if (!user)
        return NULL;
    token = vmb_secret_new_token("vmb_", error);
    if (!token)
        return NULL;
    digest = vmb_secret_sha256_hex(token, strlen(token));
    if (!db_tokens_insert(conn, user->id, name, digest, expires_in_s, ret_id, error))
        return NULL;
    return g_steal_pointer(&token);
}

static bool
require_admin(const DbUser *caller, GError **error)
{
    if (caller->role == DB_ROLE_ADMIN)
        return true;
    g_set_error(error, VMB_ERROR, VMB_ERROR_FORBIDDEN, "Only admins manage users.");
    return false;
}

/**
 * svc_users_list:
 * @pool: the database
 * @caller: who asks: an admin
 * @error: return location for an error (VMB_ERROR_FORBIDDEN for others)
 *
 * Returns: (transfer full) (element-type DbUser): every user, or NULL.
 */
GPtrArray *
svc_users_list(DbPool *pool, const DbUser *caller, GError **error)
{
    g_autoptr(DbConn) conn = NULL;

    if (!require_admin(caller, error) || !(conn = db_pool_acquire(pool, error)))
        return NULL;
    return db_users_list(conn, error);
}

/**
 * svc_users_set_disabled:
 * @pool: the database
 * @caller: who asks: an admin
 * @id: the user
 * @disabled: disable (their sessions end, their tokens stop working) or enable
 * @error: return location for an error (FORBIDDEN, NOT_FOUND, CONFLICT for oneself)
 *
 * Returns: true on success.
 */
bool
svc_users_set_disabled(DbPool *pool, const DbUser *caller, const char *id, bool disabled,
                       GError **error)
{
    g_autoptr(DbConn) conn = NULL;

    if (!require_admin(caller, error))
        return false;
    if (disabled && strcmp(id, caller->id) == 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT, "You cannot disable yourself.");
        return false;
    }
    conn = db_pool_acquire(pool, error);
    return conn && db_users_set_disabled(conn, id, disabled, error);
}

/**
 * svc_users_tokens:
 * @pool: the database
 * @caller: whose tokens
 * @error: return location for an error
 *
 * Returns: (transfer full) (element-type DbToken): the caller's tokens, or NULL.
 */
GPtrArray *
svc_users_tokens(DbPool *pool, const DbUser *caller, GError **error)
{
    g_autoptr(DbConn) conn = db_pool_acquire(pool, error);

    return conn ? db_tokens_list(conn, caller->id, error) : NULL;
}

/**
 * svc_users_revoke_token:
 * @pool: the database
 * @caller: whose token
 * @token_id: the token
 * @error: return location for an error (VMB_ERROR_NOT_FOUND for another's token)
 *
 * Returns: true on success.
 */
bool
svc_users_revoke_token(DbPool *pool, const DbUser *caller, const char *token_id,
                       GError **error)
{
    g_autoptr(DbConn) conn = db_pool_acquire(pool, error);

    return conn && db_tokens_revoke(conn, caller->id, token_id, error);
}
