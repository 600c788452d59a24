// SPDX-License-Identifier: LGPL-2.1-or-later
// isos: look-ups by id with the visibility rule of API.md.
#include "db-isos.h"

#include <stdlib.h>
#include <string.h>

#include "vmb-error.h"

/**
 * db_iso_free:
 * @iso: (nullable): an ISO record
 */
void
db_iso_free(DbIso *iso)
{
    if (!iso)
        return;
    g_free(iso->id);
    g_free(iso->owner_id);
    g_free(iso->name);
    g_free(iso->sha256);
    g_free(iso->volume);
    g_free(iso);
}

/**
 * db_isos_get_usable:
 * @conn: a connection
 * @id: the ISO's id (any text: a malformed id is simply not found)
 * @user_id: (nullable): the user who wants it; NULL for an admin
 * @error: return location for an error
 *
 * Returns: (transfer full): the ISO, or NULL (VMB_ERROR_NOT_FOUND when absent or not
 * usable by @user_id).
 */
DbIso *
db_isos_get_usable(DbConn *conn, const char *id, const char *user_id, GError **error)
{
    const char *params[] = { id, user_id };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "SELECT id, owner_id, name, sha256, size, volume, visibility = 'public' FROM isos"
        " WHERE id::text = $1"
        "   AND ($2::uuid IS NULL OR owner_id = $2::uuid OR visibility = 'public')",
        2, params, error);
    DbIso *iso;

    if (!res)
        return NULL;
    if (PQntuples(res) == 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_NOT_FOUND, "No such ISO.");
        return NULL;
    }
    iso = g_new0(DbIso, 1);
    iso->id = g_strdup(PQgetvalue(res, 0, 0));
    iso->owner_id = g_strdup(PQgetvalue(res, 0, 1));
    iso->name = g_strdup(PQgetvalue(res, 0, 2));
    iso->sha256 = g_strdup(PQgetvalue(res, 0, 3));
    iso->size = g_ascii_strtoll(PQgetvalue(res, 0, 4), NULL, 10);
    iso->volume = g_strdup(PQgetvalue(res, 0, 5));
    iso->is_public = strcmp(PQgetvalue(res, 0, 6), "t") == 0;
    return iso;
}
