// SPDX-License-Identifier: LGPL-2.1-or-later
// One-time console tickets: stored as SHA-256, bound to a user and a VM, 60 s at most.
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
