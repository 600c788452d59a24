// SPDX-License-Identifier: LGPL-2.1-or-later
// Queries on the api_tokens table. Tokens are stored as SHA-256 digests only.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"

/* @expires_in_s: lifetime in seconds, 0 for a token that does not expire. */
bool db_tokens_insert(DbConn *conn, const char *user_id, const char *name,
                      const char *secret_hash, gint64 expires_in_s, char **ret_id,
                      GError **error);
