// SPDX-License-Identifier: LGPL-2.1-or-later
// Queries on the templates table (templates as last loaded) and on api_templates (those an
// admin defined through the API, as given).
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"

/* Stores template @name; its version grows by one when @definition changed.
 * @ret_version (optional) gets the version now stored. */
bool db_templates_upsert(DbConn *conn, const char *name, const char *kind,
                         const char *definition, int *ret_version, GError **error);

/* The API's templates: name and JSON text, in pairs (element-type utf8), by name. */
GPtrArray *db_api_templates_list(DbConn *conn, GError **error);
/* Stores API template @name: a new one (@create; VMB_ERROR_CONFLICT when it exists) or a
 * replacement (VMB_ERROR_NOT_FOUND when it does not). */
bool db_api_templates_put(DbConn *conn, const char *name, const char *definition,
                          const char *user_id, bool create, GError **error);
/* Deletes API template @name unless a VM row names it (VMB_ERROR_CONFLICT); NOT_FOUND. */
bool db_api_templates_delete(DbConn *conn, const char *name, GError **error);
