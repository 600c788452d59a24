// SPDX-License-Identifier: LGPL-2.1-or-later
// Users and their credentials: name rules, argon2id password hashes, API tokens.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"
#include "db-users.h"

/* argon2id cost, in the units of libargon2 (memory in KiB). */
typedef struct {
    unsigned memory_kib; /* m, default 19456 */
    unsigned iterations; /* t, default 2 */
    unsigned lanes;      /* p, default 1 */
} SvcArgon2Params;

#define SVC_ARGON2_DEFAULTS ((SvcArgon2Params) { 19456, 2, 1 })

/* Accounts and their API tokens, over PostgreSQL. */
typedef struct SvcUsers SvcUsers;

typedef struct {
    DbPool *db;             /* PostgreSQL */
    SvcArgon2Params argon2; /* cost of the password hashes it makes */
} SvcUsersOptions;

SvcUsers *svc_users_new(const SvcUsersOptions *opts);
void svc_users_free(SvcUsers *users);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SvcUsers, svc_users_free)

bool svc_users_name_valid(const char *username);

char *svc_users_hash_password(const char *password, const SvcArgon2Params *params,
                              GError **error);
bool svc_users_verify_password(const char *phc_hash, const char *password);

/* @caller NULL: the command line (audited with the process's origin). */
bool svc_users_add(SvcUsers *users, const DbUser *caller, const char *username, const char *role,
                   const char *password, char **ret_id, GError **error);

/* Admins only (VMB_ERROR_FORBIDDEN otherwise): every user (element-type DbUser). */
GPtrArray *svc_users_list(SvcUsers *users, const DbUser *caller, GError **error);
/* Admins only; nobody disables themselves (VMB_ERROR_CONFLICT). */
bool svc_users_set_disabled(SvcUsers *users, const DbUser *caller, const char *id, bool disabled,
                            const char *remote_addr, GError **error);
/* Admins only: a new password for user @id, whose sessions end. */
bool svc_users_set_password(SvcUsers *users, const DbUser *caller, const char *id,
                            const char *password, const char *remote_addr, GError **error);
/* Admins only: the user @username (VMB_ERROR_NOT_FOUND). */
DbUser *svc_users_get(SvcUsers *users, const DbUser *caller, const char *username,
                      GError **error);
/* The caller's own API tokens (element-type DbToken), and revoking one of them (with
 * @any_owner, an admin revokes anyone's). */
GPtrArray *svc_users_tokens(SvcUsers *users, const DbUser *caller, GError **error);
bool svc_users_revoke_token(SvcUsers *users, const DbUser *caller, const char *token_id,
                            bool any_owner, const char *remote_addr, GError **error);
/* Admins only: @username's tokens, or every user's when NULL, with the owner's name. */
GPtrArray *svc_users_all_tokens(SvcUsers *users, const DbUser *caller, const char *username,
                                GError **error);

/* Caps a new token's lifetime to what its parent credential has left. */
bool svc_users_token_lifetime(gint64 requested_s, gint64 parent_end, gint64 now,
                              gint64 *ret_lifetime_s, GError **error);
/* The command line's admin account: made on first use, enabled, without a password. */
#define SVC_USERS_CLI_ACCOUNT "vmbroker-cli"
DbUser *svc_users_cli_account(SvcUsers *users, GError **error);

/* Tokens that still work (not revoked, not expired) a user may hold when minting through the
 * API; one more answers VMB_ERROR_TOO_MANY. The command line is not bound. */
#define SVC_USERS_MAX_TOKENS 100

/* Creates an API token for @username; returns the token (shown once) or NULL. @caller NULL:
 * the command line. */
char *svc_users_create_token(SvcUsers *users, const DbUser *caller, const char *username,
                             const char *name, gint64 expires_in_s, const char *parent_hash,
                             char **ret_id, GError **error);
