// SPDX-License-Identifier: LGPL-2.1-or-later
// isos: look-ups by id with the visibility rule of README (HTTP API): shared ISOs of admins and
// service accounts, a user's own for that user.
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

#define ISO_COLUMNS "id, owner_id, name, sha256, size, volume, visibility = 'public'"

static DbIso *
iso_from_row(const PGresult *res, int row)
{
    DbIso *iso = g_new0(DbIso, 1);

    iso->id = g_strdup(PQgetvalue(res, row, 0));
    iso->owner_id = g_strdup(PQgetvalue(res, row, 1));
    iso->name = g_strdup(PQgetvalue(res, row, 2));
    iso->sha256 = g_strdup(PQgetvalue(res, row, 3));
    iso->size = g_ascii_strtoll(PQgetvalue(res, row, 4), NULL, 10);
    iso->volume = g_strdup(PQgetvalue(res, row, 5));
    iso->is_public = strcmp(PQgetvalue(res, row, 6), "t") == 0;
    return iso;
}

/**
 * db_isos_insert:
 * @conn: a connection
 * @owner_id: the uploader
 * @name: the uploader's label
 * @sha256: hex digest of the content
 * @size: bytes
 * @volume: volume name in the ISO pool
 * @is_public: usable by every user (uploads of admins and service accounts)
 * @ret_existed: (out): the owner had this content already; that row is returned
 * @error: return location for an error
 *
 * Returns: (transfer full): the owner's row for the content, or NULL.
 */
DbIso *
db_isos_insert(DbConn *conn, const char *owner_id, const char *name, const char *sha256,
               gint64 size, const char *volume, bool is_public, bool *ret_existed,
               GError **error)
{
    g_autofree char *sz = g_strdup_printf("%" G_GINT64_FORMAT, size);
    const char *params[] = { owner_id, name, sha256, sz, volume, is_public ? "public" : "private" };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "WITH ins AS (INSERT INTO isos (owner_id, name, sha256, size, volume, visibility)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (owner_id, sha256) DO NOTHING"
        " RETURNING " ISO_COLUMNS ", false)"
        " SELECT * FROM ins UNION ALL"
        " SELECT " ISO_COLUMNS ", true FROM isos WHERE owner_id = $1 AND sha256 = $3"
        "   AND NOT EXISTS (SELECT 1 FROM ins)", 6, params, error);

    if (!res)
        return NULL;
    if (PQntuples(res) == 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT, "The ISO changed meanwhile; retry.");
        return NULL;
    }
    *ret_existed = strcmp(PQgetvalue(res, 0, 7), "t") == 0;
    return iso_from_row(res, 0);
}

/**
 * db_isos_list:
 * @conn: a connection
 * @user_id: (nullable): whose view; NULL for an admin's (every ISO)
 * @error: return location for an error
 *
 * Returns: (transfer full) (element-type DbIso): the usable ISOs, newest first.
 */
GPtrArray *
db_isos_list(DbConn *conn, const char *user_id, GError **error)
{
    const char *params[] = { user_id };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "SELECT " ISO_COLUMNS " FROM isos"
        " WHERE $1::uuid IS NULL OR owner_id = $1::uuid OR visibility = 'public'"
        " ORDER BY created_at DESC, id", 1, params, error);
    GPtrArray *out;

    if (!res)
        return NULL;
    out = g_ptr_array_new_with_free_func((GDestroyNotify) db_iso_free);
    for (int i = 0; i < PQntuples(res); i++)
        g_ptr_array_add(out, iso_from_row(res, i));
    return out;
}

/**
 * db_isos_owner_bytes:
 * @conn: a connection
 * @owner_id: the uploader
 * @ret_bytes: (out): the sizes of their ISOs, summed
 * @error: return location for an error
 *
 * Returns: true on success.
 */
bool
db_isos_owner_bytes(DbConn *conn, const char *owner_id, gint64 *ret_bytes, GError **error)
{
    const char *params[] = { owner_id };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "SELECT coalesce(sum(size), 0) FROM isos WHERE owner_id = $1", 1, params, error);

    if (!res)
        return false;
    *ret_bytes = g_ascii_strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    return true;
}

/**
 * db_isos_delete:
 * @conn: a connection
 * @id: the ISO (any text: a malformed id is simply not found)
 * @owner_id: (nullable): only this owner's ISO; NULL for an admin
 * @ret_volume: (out): its volume name
 * @ret_volume_unused: (out): no other row refers to that volume any more
 * @error: return location for an error
 *
 * Returns: true when deleted.
 */
bool
db_isos_delete(DbConn *conn, const char *id, const char *owner_id, char **ret_volume,
               bool *ret_volume_unused, GError **error)
{
    const char *params[] = { id, owner_id };
    g_autoptr(PGresult) res = db_exec_result(conn,
        "WITH d AS (DELETE FROM isos WHERE id::text = $1"
        "   AND ($2::uuid IS NULL OR owner_id = $2::uuid) RETURNING volume)"
        " SELECT d.volume, NOT EXISTS (SELECT 1 FROM isos i WHERE i.volume = d.volume"
        "   AND i.id::text <> $1) FROM d", 2, params);

    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        if (strcmp(db_sqlstate(res), "23503") == 0) { /* a VM refers to it */
            g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT,
                        "A VM uses this ISO; delete the VM first.");
            return false;
        }
        db_set_error(conn, res, error);
        return false;
    }
    if (PQntuples(res) == 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_NOT_FOUND, "No such ISO.");
        return false;
    }
    *ret_volume = g_strdup(PQgetvalue(res, 0, 0));
    *ret_volume_unused = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    return true;
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
        "SELECT " ISO_COLUMNS " FROM isos"
        " WHERE id::text = $1"
        "   AND ($2::uuid IS NULL OR owner_id = $2::uuid OR visibility = 'public')",
        2, params, error);

    if (!res)
        return NULL;
    if (PQntuples(res) == 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_NOT_FOUND, "No such ISO.");
        return NULL;
    }
    return iso_from_row(res, 0);
}

/**
 * db_isos_find_by_name:
 * @conn: a connection
 * @name: the ISO's name (the uploader's label)
 * @owner_id: whose ISOs come first
 * @any_owner: whether others' private ISOs count too (for an admin)
 * @ret_ties: (out): how many ISOs of the same rank have that name (above 1: ambiguous)
 * @error: return location for an error
 *
 * Ranks: the owner's own ISOs, then shared ones, then (with @any_owner) anyone's.
 *
 * Returns: (transfer full): the newest ISO of the best rank, or NULL (VMB_ERROR_NOT_FOUND
 * when none is usable).
 */
DbIso *
db_isos_find_by_name(DbConn *conn, const char *name, const char *owner_id, bool any_owner,
                     unsigned *ret_ties, GError **error)
{
    const char *params[] = { name, owner_id, any_owner ? "true" : "false" };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "SELECT " ISO_COLUMNS ", count(*) OVER (PARTITION BY rank) FROM ("
        "   SELECT *, CASE WHEN owner_id = $2::uuid THEN 0"
        "                  WHEN visibility = 'public' THEN 1 ELSE 2 END AS rank"
        "   FROM isos WHERE name = $1"
        "     AND (owner_id = $2::uuid OR visibility = 'public' OR $3::boolean)) s"
        " ORDER BY rank, created_at DESC LIMIT 1", 3, params, error);

    if (!res)
        return NULL;
    if (PQntuples(res) == 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_NOT_FOUND, "No such ISO.");
        return NULL;
    }
    *ret_ties = (unsigned) strtoul(PQgetvalue(res, 0, 7), NULL, 10);
    return iso_from_row(res, 0);
}
