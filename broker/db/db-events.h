// SPDX-License-Identifier: LGPL-2.1-or-later
// The events table (migration 0014): VM and operation changes in one global order, written
// by triggers, read by every broker for its event streams.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"

typedef struct {
    gint64 id;            /* the order; a stream's Last-Event-ID */
    char *kind;           /* "vm" or "operation" */
    char *owner_id;       /* (nullable) the VM's owner when it happened */
    bool owner_is_user;   /* that owner's role is 'user': a service account may see it */
    char *requested_by;   /* (nullable) who asked for the operation */
    char *payload;        /* JSON object text */
} DbEvent;

void db_event_free(DbEvent *ev);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DbEvent, db_event_free)

/* Events after @after_id, oldest first, at most @limit (element-type DbEvent). */
GPtrArray *db_events_after(DbConn *conn, gint64 after_id, unsigned limit, GError **error);
/* The newest event's id, 0 when there is none. */
bool db_events_last_id(DbConn *conn, gint64 *ret_id, GError **error);
/* Deletes events older than @keep_s. Returns how many, or -1. */
int db_events_purge(DbConn *conn, unsigned keep_s, GError **error);
