// SPDX-License-Identifier: LGPL-2.1-or-later
// Queries on the templates table: templates as last loaded from templates.dir.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"

/* Stores template @name; its version grows by one when @definition changed.
 * @ret_version (optional) gets the version now stored. */
bool db_templates_upsert(DbConn *conn, const char *name, const char *kind,
                         const char *definition, int *ret_version, GError **error);
