// SPDX-License-Identifier: LGPL-2.1-or-later
// Queries on sessions and on the credential lookups that authenticate a request.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"
#include "db-users.h"

/* A session's timeouts: idle since last use, and absolute since login. */
bool db_sessions_insert(DbConn *conn, const char *user_id, const char *secret_hash,
                        const char *csrf_hash, unsigned max_age_s, const char *remote_addr,
                        GError **error);
/* The user of a live session (not expired, used within @idle_s), touching last_seen_at;
 * @ret_csrf_hash gets the session's CSRF digest, @ret_expires_at (optional) its absolute
 * end in Unix seconds. VMB_ERROR_UNAUTHORIZED when none. */
DbUser *db_sessions_authenticate(DbConn *conn, const char *secret_hash, unsigned idle_s,
                                 char **ret_csrf_hash, gint64 *ret_expires_at,
                                 GError **error);
bool db_sessions_delete(DbConn *conn, const char *secret_hash, GError **error);
/* Whether @user_id is enabled and @credential (nullable: "s:" or "t:" and the digest of a
 * session or API token of that user) is still live: what a console stays open on. */
bool db_sessions_access_live(DbConn *conn, const char *user_id, const char *credential,
                             bool *ret_live, GError **error);
/* Drops sessions that have expired or idled out; @ret_count (optional) counts them. */
bool db_sessions_purge(DbConn *conn, unsigned idle_s, unsigned *ret_count, GError **error);
