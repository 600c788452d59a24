// SPDX-License-Identifier: LGPL-2.1-or-later
// One-time console tickets (stored as SHA-256, bound to a user and a VM, 60 s at most) and
// the console sessions a redeemed page ticket starts.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"

/* @purpose: "page" (the console page) or "ws" (the websocket). */
bool db_tickets_insert(DbConn *conn, const char *secret_hash, const char *purpose,
                       const char *user_id, const char *vm_id, unsigned ttl_s, GError **error);
/* Marks the ticket used if it is live, of @purpose and for @vm_id; @ret_user_id gets its
 * user. VMB_ERROR_UNAUTHORIZED for an unknown, used, expired or other VM's ticket. */
bool db_tickets_consume(DbConn *conn, const char *secret_hash, const char *purpose,
                        const char *vm_id, char **ret_user_id, GError **error);
/* Deletes tickets that expired more than a minute ago. */
bool db_tickets_purge(DbConn *conn, unsigned *ret_count, GError **error);

/* Console sessions: a browser's lasting access to one VM's console (see
 * migrations/0013_console_sessions.sql). @keep bounds the sessions of one user on one VM. */
bool db_console_sessions_insert(DbConn *conn, const char *secret_hash, const char *user_id,
                                const char *vm_id, unsigned max_age_s, unsigned keep,
                                GError **error);
/* The user of a live session on @vm_id, touching it; VMB_ERROR_UNAUTHORIZED when none. */
bool db_console_sessions_use(DbConn *conn, const char *secret_hash, const char *vm_id,
                             unsigned idle_s, char **ret_user_id, GError **error);
/* Ends the sessions of @user_id, of @vm_id, or of that user on that VM. */
bool db_console_sessions_end(DbConn *conn, const char *user_id, const char *vm_id,
                             unsigned *ret_count, GError **error);
/* Deletes expired and idle sessions. */
bool db_console_sessions_purge(DbConn *conn, unsigned idle_s, unsigned *ret_count,
                               GError **error);
