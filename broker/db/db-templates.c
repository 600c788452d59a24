// SPDX-License-Identifier: LGPL-2.1-or-later
// templates: the loader's upsert. A VM records the version it was made from.
#include "db-templates.h"

#include <stdlib.h>

#include "vmb-error.h"

/**
 * db_templates_upsert:
 * @conn: a connection
 * @name: the template's name
 * @kind: its kind (as the template file says)
 * @definition: the file's text
 * @ret_version: (out) (optional): the version now stored
 * @error: return location for an error
 *
 * Returns: true on success.
 */
bool
db_templates_upsert(DbConn *conn, const char *name, const char *kind, const char *definition,
                    int *ret_version, GError **error)
{
    const char *params[] = { name, kind, definition };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "INSERT INTO templates AS t (name, kind, sha256, definition)"
        " VALUES ($1, $2, encode(sha256(convert_to($3, 'UTF8')), 'hex'), $3)"
        " ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind,"
        "  definition = EXCLUDED.definition, sha256 = EXCLUDED.sha256, loaded_at = now(),"
        "  version = t.version + (t.sha256 <> EXCLUDED.sha256)::int"
        " RETURNING version", 3, params, error);

    if (!res)
        return false;
    if (ret_version)
        *ret_version = (int) strtol(PQgetvalue(res, 0, 0), NULL, 10);
    return true;
}
