// SPDX-License-Identifier: LGPL-2.1-or-later
// Queries on the hosts table (one row, `local`, until placement across hosts exists).
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"

/* Inserts host @name or updates its URI; @ret_id gets its id. */
bool db_hosts_ensure(DbConn *conn, const char *name, const char *uri, char **ret_id,
                     GError **error);
