// SPDX-License-Identifier: LGPL-2.1-or-later
// templates: the loader's upsert. A VM records the version it was made from.
#include "db-templates.h"

#include <stdlib.h>
#include <string.h>

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

/**
 * db_api_templates_list:
 * @conn: a connection
 * @error: return location for an error
 *
 * Returns: (transfer full) (element-type utf8): name, definition, name, definition ...
 */
GPtrArray *
db_api_templates_list(DbConn *conn, GError **error)
{
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "SELECT name, definition FROM api_templates ORDER BY name", 0, NULL, error);
    GPtrArray *out;

    if (!res)
        return NULL;
    out = g_ptr_array_new_with_free_func(g_free);
    for (int i = 0; i < PQntuples(res); i++) {
        g_ptr_array_add(out, g_strdup(PQgetvalue(res, i, 0)));
        g_ptr_array_add(out, g_strdup(PQgetvalue(res, i, 1)));
    }
    return out;
}

bool
db_api_templates_put(DbConn *conn, const char *name, const char *definition,
                     const char *user_id, bool create, GError **error)
{
    const char *params[] = { name, definition, user_id };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK, create
        ? "INSERT INTO api_templates (name, definition, updated_by) VALUES ($1, $2, $3)"
          " ON CONFLICT (name) DO NOTHING RETURNING name"
        : "UPDATE api_templates SET definition = $2, updated_by = $3, updated_at = now()"
          " WHERE name = $1 RETURNING name", 3, params, error);

    if (!res)
        return false;
    if (PQntuples(res) == 0) {
        g_set_error(error, VMB_ERROR, create ? VMB_ERROR_CONFLICT : VMB_ERROR_NOT_FOUND,
                    create ? "A template named %s exists; change it with PUT."
                           : "No template named %s was defined through the API.", name);
        return false;
    }
    return true;
}

bool
db_api_templates_delete(DbConn *conn, const char *name, GError **error)
{
    const char *params[] = { name };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "WITH used AS (SELECT count(*) AS n FROM vms WHERE template_name = $1),"
        " gone AS (DELETE FROM api_templates WHERE name = $1"
        "          AND (SELECT n FROM used) = 0 RETURNING name)"
        " SELECT (SELECT n FROM used), (SELECT count(*) FROM gone),"
        "        EXISTS (SELECT 1 FROM api_templates WHERE name = $1)", 1, params, error);

    if (!res)
        return false;
    if (strcmp(PQgetvalue(res, 0, 1), "1") == 0)
        return true;
    if (strcmp(PQgetvalue(res, 0, 2), "t") != 0)
        g_set_error(error, VMB_ERROR, VMB_ERROR_NOT_FOUND,
                    "No template named %s was defined through the API.", name);
    else
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT,
                    "%s VM(s) use template %s; delete them first.", PQgetvalue(res, 0, 0), name);
    return false;
}
