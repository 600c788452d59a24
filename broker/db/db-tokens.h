// SPDX-License-Identifier: LGPL-2.1-or-later
// Queries on the api_tokens table. Tokens are stored as SHA-256 digests only.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"
#include "db-users.h"

/* @expires_in_s: lifetime in seconds, 0 for a token that does not expire. */
bool db_tokens_insert(DbConn *conn, const char *user_id, const char *name,
                      const char *secret_hash, gint64 expires_in_s, const char *parent_hash,
                      char **ret_id, GError **error);

/* One row of a token listing; the secret is never read back. */
typedef struct {
    char *id;           /* uuid */
    char *username;     /* the owner, set only by listings of every user's tokens */
    char *name;         /* label */
    char *created_at;   /* ISO 8601 */
    char *expires_at;   /* ISO 8601, NULL when it never expires */
    char *last_used_at; /* ISO 8601, NULL when never used */
    bool revoked;       /* revoked tokens are listed until they are purged */
} DbToken;

void db_token_free(DbToken *token);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DbToken, db_token_free)

/* The user of a live token (not revoked, not expired, user not disabled), marking it
 * used (to the minute). VMB_ERROR_UNAUTHORIZED when none. */
DbUser *db_tokens_authenticate(DbConn *conn, const char *secret_hash, gint64 *ret_expires_at,
                               unsigned *ret_stamp_due_s, GError **error);
/* @user_id's tokens (NULL: every user's, with their owner's name), newest first: a GPtrArray
 * of DbToken. */
GPtrArray *db_tokens_list(DbConn *conn, const char *user_id, GError **error);
/* How many of @user_id's tokens still work, counted under a lock on the user's row (inside a
 * transaction: two mints cannot both take the last place). */
bool db_tokens_count_live(DbConn *conn, const char *user_id, unsigned *ret_count,
                          GError **error);
/* Revokes @token_id if it belongs to @user_id (NULL: to anyone); VMB_ERROR_NOT_FOUND
 * otherwise. */
bool db_tokens_revoke(DbConn *conn, const char *user_id, const char *token_id,
                      GError **error);
