// SPDX-License-Identifier: LGPL-2.1-or-later
// The broker_limits row: limits the schema itself enforces, synced from the config.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"

/* limits.max_running_per_user; a negative value turns enforcement in SQL off. */
bool db_limits_set_max_running(DbConn *conn, int max_running_per_user, GError **error);
