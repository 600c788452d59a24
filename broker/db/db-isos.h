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

/* The ISO @id if @user_id may use it (own or public; NULL user: an admin, any).
 * VMB_ERROR_NOT_FOUND otherwise. */
DbIso *db_isos_get_usable(DbConn *conn, const char *id, const char *user_id, GError **error);
