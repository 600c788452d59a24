// SPDX-License-Identifier: LGPL-2.1-or-later
// User creation, password hashing with argon2id (PHC strings) and API token minting.
// Tokens are "vmb_" + 256 random bits; only their SHA-256 is stored.
#include "svc-users.h"

#include <argon2.h>
#include <string.h>

#include "db-tokens.h"
#include "db-users.h"
#include "svc-audit.h"
#include "vmb-error.h"
#include "vmb-secret.h"

#define SALT_BYTES 16
#define HASH_BYTES 32
/* Longer passwords are refused: argon2 would accept them, but they only cost CPU. */
#define PASSWORD_MAX 1024

struct SvcUsers {
    SvcUsersOptions opts;
};

SvcUsers *
svc_users_new(const SvcUsersOptions *opts)
{
    SvcUsers *users = g_new0(SvcUsers, 1);

    users->opts = *opts;
    return users;
}

void
svc_users_free(SvcUsers *users)
{
    g_free(users);
}

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

typedef struct {
    const DbUser *caller; /* nullable: the command line */
    const char *username;
    DbRole role;
    const char *hash;
    char *id;             /* out */
} AddTx;

static bool
add_tx(DbConn *conn, void *data, GError **error)
{
    AddTx *tx = data;
    g_autoptr(json_object) detail = json_object_new_object();

    g_clear_pointer(&tx->id, g_free);
    if (!db_users_insert(conn, tx->username, tx->role, tx->hash, &tx->id, error))
        return false;
    json_object_object_add(detail, "username", json_object_new_string(tx->username));
    json_object_object_add(detail, "role", json_object_new_string(db_role_to_string(tx->role)));
    return svc_audit_write(conn, tx->caller, "user.create", "user", tx->id, NULL, detail, error);
}

/**
 * svc_users_add:
 * @users: the service
 * @caller: (nullable): who creates the user, for the audit log; NULL for the command line
 * @username: login name, checked against the documented charset
 * @role: "admin", "user" or "service"
 * @password: (nullable): the password; NULL for an account without password login
 * @ret_id: (out) (optional): the new user's id
 * @error: return location for an error (VMB_ERROR_INVALID, VMB_ERROR_CONFLICT, ...)
 *
 * Returns: true when the user was created.
 */
bool
svc_users_add(SvcUsers *users, const DbUser *caller, const char *username, const char *role,
              const char *password, char **ret_id, GError **error)
{
    g_autofree char *hash = NULL;
    AddTx tx = { caller, username, DB_ROLE_USER, NULL, NULL };

    if (!svc_users_name_valid(username)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID,
                    "invalid user name: use 1 to 64 of [a-z0-9._-], starting with a letter or "
                    "digit");
        return false;
    }
    if (!db_role_from_string(role, &tx.role)) {
        g_autofree char *all = g_strjoinv("|", (char **) db_role_names);
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID, "invalid role '%s': use %s", role, all);
        return false;
    }
    if (password) {
        hash = svc_users_hash_password(password, &users->opts.argon2, error);
        if (!hash)
            return false;
    }
    tx.hash = hash;
    if (!db_pool_transaction(users->opts.db, add_tx, &tx, error)) {
        g_free(tx.id);
        return false;
    }
    if (ret_id)
        *ret_id = tx.id;
    else
        g_free(tx.id);
    return true;
}

typedef struct {
    const DbUser *caller;    /* nullable: the command line */
    const char *username;    /* the token's owner */
    const char *name;
    const char *digest;
    gint64 expires_in_s;
    const char *parent_hash; /* nullable: the token it is minted with */
    char *id;                /* out */
} TokenTx;

static bool
token_tx(DbConn *conn, void *data, GError **error)
{
    TokenTx *tx = data;
    g_autoptr(DbUser) user = db_users_get_by_name(conn, tx->username, error);
    g_autoptr(json_object) detail = json_object_new_object();
    unsigned live = 0;

    g_clear_pointer(&tx->id, g_free);
    if (!user || (tx->caller && !db_tokens_count_live(conn, user->id, &live, error)))
        return false;
    if (live >= SVC_USERS_MAX_TOKENS) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_TOO_MANY,
                    "You have %u API tokens that still work, the most allowed; revoke one "
                    "first.", live);
        return false;
    }
    if (!db_tokens_insert(conn, user->id, tx->name, tx->digest, tx->expires_in_s,
                          tx->parent_hash, &tx->id, error))
        return false;
    json_object_object_add(detail, "user", json_object_new_string(user->username));
    json_object_object_add(detail, "name", json_object_new_string(tx->name));
    return svc_audit_write(conn, tx->caller, "token.create", "token", tx->id, NULL, detail,
                           error);
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
 * @users: the service
 * @caller: (nullable): who asks, for the audit log; NULL for the command line
 * @username: the token's owner
 * @name: a label, 1 to 100 characters
 * @expires_in_s: lifetime in seconds, 0 for none
 * @parent_hash: (nullable): hex SHA-256 of the token the request came with: revoking that
 *   one revokes this one
 * @ret_id: (out) (optional): the token's id
 * @error: return location for an error
 *
 * Returns: (transfer full): the token, shown to the caller once; NULL on error.
 */
char *
svc_users_create_token(SvcUsers *users, const DbUser *caller, const char *username,
                       const char *name, gint64 expires_in_s, const char *parent_hash,
                       char **ret_id, GError **error)
{
    g_autofree char *token = NULL;
    g_autofree char *digest = NULL;
    glong namelen = g_utf8_validate(name, -1, NULL) ? g_utf8_strlen(name, -1) : -1;
    TokenTx tx = { caller, username, name, NULL, expires_in_s, parent_hash, NULL };

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
    token = vmb_secret_new_token("vmb_", error);
    if (!token)
        return NULL;
    digest = vmb_secret_sha256_hex(token, strlen(token));
    tx.digest = digest;
    if (!db_pool_transaction(users->opts.db, token_tx, &tx, error)) {
        g_free(tx.id);
        return NULL;
    }
    if (ret_id)
        *ret_id = tx.id;
    else
        g_free(tx.id);
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
 * @users: the service
 * @caller: who asks: an admin
 * @error: return location for an error (VMB_ERROR_FORBIDDEN for others)
 *
 * Returns: (transfer full) (element-type DbUser): every user, or NULL.
 */
GPtrArray *
svc_users_list(SvcUsers *users, const DbUser *caller, GError **error)
{
    g_autoptr(DbConn) conn = NULL;

    if (!require_admin(caller, error) || !(conn = db_pool_acquire(users->opts.db, error)))
        return NULL;
    return db_users_list(conn, error);
}

/* A change to one user's account and its audit row, in one transaction. */
typedef struct {
    const DbUser *caller;
    const char *id;
    bool disabled;           /* for set_disabled */
    const char *hash;        /* for set_password; NULL for set_disabled */
    const char *remote_addr;
} AccountTx;

static bool
account_tx(DbConn *conn, void *data, GError **error)
{
    AccountTx *tx = data;
    const char *action;

    if (tx->hash) {
        if (!db_users_set_password(conn, tx->id, tx->hash, error))
            return false;
        action = "user.password";
    } else {
        if (!db_users_set_disabled(conn, tx->id, tx->disabled, error))
            return false;
        action = tx->disabled ? "user.disable" : "user.enable";
    }
    /* The command line's caller has no users row: its id is NULL, its rows carry origin. */
    return svc_audit_write(conn, tx->caller->id ? tx->caller : NULL, action, "user", tx->id,
                           tx->remote_addr, NULL, error);
}

/**
 * svc_users_set_disabled:
 * @users: the service
 * @caller: who asks: an admin
 * @id: the user
 * @disabled: disable (their sessions end, their tokens stop working) or enable
 * @remote_addr: (nullable): the caller's address, for the audit log
 * @error: return location for an error (FORBIDDEN, NOT_FOUND, CONFLICT for oneself)
 *
 * Returns: true on success.
 */
bool
svc_users_set_disabled(SvcUsers *users, const DbUser *caller, const char *id, bool disabled,
                       const char *remote_addr, GError **error)
{
    AccountTx tx = { caller, id, disabled, NULL, remote_addr };

    if (!require_admin(caller, error))
        return false;
    if (disabled && caller->id && strcmp(id, caller->id) == 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT, "You cannot disable yourself.");
        return false;
    }
    return db_pool_transaction(users->opts.db, account_tx, &tx, error);
}

/**
 * svc_users_set_password:
 * @users: the service
 * @caller: who asks: an admin
 * @id: the user
 * @password: the new password, 1 to 1024 bytes
 * @remote_addr: (nullable): the caller's address, for the audit log
 * @error: return location for an error (FORBIDDEN, INVALID, NOT_FOUND)
 *
 * The user's sessions end; their API tokens stay.
 *
 * Returns: true on success.
 */
bool
svc_users_set_password(SvcUsers *users, const DbUser *caller, const char *id,
                       const char *password, const char *remote_addr, GError **error)
{
    g_autofree char *hash = NULL;
    AccountTx tx = { caller, id, false, NULL, remote_addr };

    if (!require_admin(caller, error))
        return false;
    hash = svc_users_hash_password(password, &users->opts.argon2, error);
    if (!hash)
        return false;
    tx.hash = hash;
    return db_pool_transaction(users->opts.db, account_tx, &tx, error);
}

/**
 * svc_users_get:
 * @users: the service
 * @caller: who asks: an admin
 * @username: the user
 * @error: return location for an error (FORBIDDEN, NOT_FOUND)
 *
 * Returns: (transfer full): the user, or NULL.
 */
DbUser *
svc_users_get(SvcUsers *users, const DbUser *caller, const char *username, GError **error)
{
    g_autoptr(DbConn) conn = NULL;

    if (!require_admin(caller, error) || !(conn = db_pool_acquire(users->opts.db, error)))
        return NULL;
    return db_users_get_by_name(conn, username, error);
}

/**
 * svc_users_tokens:
 * @users: the service
 * @caller: whose tokens
 * @error: return location for an error
 *
 * Returns: (transfer full) (element-type DbToken): the caller's tokens, or NULL.
 */
GPtrArray *
svc_users_tokens(SvcUsers *users, const DbUser *caller, GError **error)
{
    g_autoptr(DbConn) conn = db_pool_acquire(users->opts.db, error);

    return conn ? db_tokens_list(conn, caller->id, error) : NULL;
}

/**
 * svc_users_all_tokens:
 * @users: the service
 * @caller: who asks: an admin
 * @username: (nullable): whose tokens; NULL for every user's
 * @error: return location for an error (FORBIDDEN, NOT_FOUND for an unknown user)
 *
 * Returns: (transfer full) (element-type DbToken): the tokens with their owners' names.
 */
GPtrArray *
svc_users_all_tokens(SvcUsers *users, const DbUser *caller, const char *username,
                     GError **error)
{
    g_autoptr(DbConn) conn = NULL;
    g_autoptr(DbUser) user = NULL;
    GPtrArray *tokens;

    if (!require_admin(caller, error) || !(conn = db_pool_acquire(users->opts.db, error)))
        return NULL;
    if (!username)
        return db_tokens_list(conn, NULL, error);
    user = db_users_get_by_name(conn, username, error);
    if (!user || !(tokens = db_tokens_list(conn, user->id, error)))
        return NULL;
    for (guint i = 0; i < tokens->len; i++)
        ((DbToken *) tokens->pdata[i])->username = g_strdup(user->username);
    return tokens;
}

typedef struct {
    const DbUser *caller;
    const char *owner_id;    /* nullable: any owner (admins) */
    const char *token_id;
    const char *remote_addr;
} RevokeTx;

static bool
revoke_tx(DbConn *conn, void *data, GError **error)
{
    RevokeTx *tx = data;

    return db_tokens_revoke(conn, tx->owner_id, tx->token_id, error) &&
           svc_audit_write(conn, tx->caller->id ? tx->caller : NULL, "token.revoke", "token",
                           tx->token_id, tx->remote_addr, NULL, error);
}

/**
 * svc_users_revoke_token:
 * @users: the service
 * @caller: whose token
 * @token_id: the token
 * @any_owner: an admin revokes anyone's token (the command line); else only the caller's
 * @remote_addr: (nullable): the caller's address, for the audit log
 * @error: return location for an error (VMB_ERROR_NOT_FOUND for another's token)
 *
 * Returns: true on success.
 */
bool
svc_users_revoke_token(SvcUsers *users, const DbUser *caller, const char *token_id,
                       bool any_owner, const char *remote_addr, GError **error)
{
    RevokeTx tx = { caller, caller->id, token_id, remote_addr };

    if (any_owner) {
        if (!require_admin(caller, error))
            return false;
        tx.owner_id = NULL;
    }
    return db_pool_transaction(users->opts.db, revoke_tx, &tx, error);
}

/**
 * svc_users_cli_account:
 * @users: the service
 * @error: return location for an error (VMB_ERROR_CONFLICT when a user of that name exists
 *   that is not such an account)
 *
 * The command line's own admin account, SVC_USERS_CLI_ACCOUNT, made on first use without a
 * password (nobody signs in as it). VM operations need a requester with a users row: the
 * broker that runs one acts as its requester.
 *
 * Returns: (transfer full): the account, or NULL.
 */
DbUser *
svc_users_cli_account(SvcUsers *users, GError **error)
{
    g_autoptr(DbConn) conn = db_pool_acquire(users->opts.db, error);
    g_autoptr(DbUser) user = conn ? db_users_ensure(conn, SVC_USERS_CLI_ACCOUNT, DB_ROLE_ADMIN,
                                                    error)
                                  : NULL;

    if (!user)
        return NULL;
    if (user->role != DB_ROLE_ADMIN || user->password_hash || user->disabled) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT,
                    "user %s exists but is not the command line's account (an enabled admin "
                    "without a password)", SVC_USERS_CLI_ACCOUNT);
        return NULL;
    }
    return g_steal_pointer(&user);
}
