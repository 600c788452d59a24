// SPDX-License-Identifier: LGPL-2.1-or-later
// Queries on isos: uploaded ISO images, one row per content.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"

typedef struct {
    char *id;        /* uuid */
    char *owner_id;  /* who uploaded it */
    char *name;      /* the uploader's label */
    char *sha256;    /* hex digest of the content */
    gint64 size;     /* bytes */
    char *volume;    /* volume name in the ISO pool */
    bool is_public;  /* uploaded by an admin or service: usable by everyone */
} DbIso;

void db_iso_free(DbIso *iso);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DbIso, db_iso_free)

/* Inserts @owner_id's row for content @sha256 (stored in @volume), or returns the row the
 * owner already has for that content (@ret_existed set). */
DbIso *db_isos_insert(DbConn *conn, const char *owner_id, const char *name, const char *sha256,
                      gint64 size, const char *volume, bool is_public, bool *ret_existed,
                      GError **error);
/* The ISOs @user_id may use (own and public; NULL: every ISO), newest first. */
GPtrArray *db_isos_list(DbConn *conn, const char *user_id, GError **error);
/* Bytes of the ISOs @owner_id uploaded. */
bool db_isos_owner_bytes(DbConn *conn, const char *owner_id, gint64 *ret_bytes, GError **error);
/* Deletes the ISO @id of @owner_id (NULL: any owner). VMB_ERROR_NOT_FOUND when absent,
 * VMB_ERROR_CONFLICT while a VM uses it. @ret_volume_unused: no row refers to its volume. */
bool db_isos_delete(DbConn *conn, const char *id, const char *owner_id, char **ret_volume,
                    bool *ret_volume_unused, GError **error);

/* The ISO @id if @user_id may use it (own or public; NULL user: an admin, any).
 * VMB_ERROR_NOT_FOUND otherwise. */
DbIso *db_isos_get_usable(DbConn *conn, const char *id, const char *user_id, GError **error);
/* The ISO @name names for @owner_id: their own first, then shared ones, then (@any_owner)
 * anyone's; @ret_ties counts the ISOs of that rank with that name. */
DbIso *db_isos_find_by_name(DbConn *conn, const char *name, const char *owner_id,
                            bool any_owner, unsigned *ret_ties, GError **error);
