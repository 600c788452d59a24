// SPDX-License-Identifier: LGPL-2.1-or-later
// The audit log: who did what to which object, when, from which address; written in the
// transaction of the change when there is one, read newest first in pages.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"

typedef struct {
    const char *actor_id;     /* users.id, NULL for the system (reaper, reconciler) */
    const char *action;       /* e.g. "vm.create" */
    const char *object_kind;  /* e.g. "vm" */
    const char *object_id;    /* nullable */
    const char *remote_addr;  /* client address, nullable */
    const char *detail_json;  /* a JSON object, nullable for {} */
} DbAuditEntry;

/* Every row this process writes from now on carries @origin ("cli:root"); NULL (the
 * default) for the daemon. Call once at start-up, before any thread writes. */
void db_audit_set_origin(const char *origin);
bool db_audit_insert(DbConn *conn, const DbAuditEntry *entry, GError **error);

/* Which rows a listing wants; every NULL or 0 field is no filter. */
typedef struct {
    const char *since;    /* ISO 8601: rows at or after */
    const char *until;    /* ISO 8601: rows before */
    const char *username; /* rows by this user, or about them (object kind user) */
    const char *vm_id;    /* rows about this VM */
    const char *action;   /* this action, or every action under it when it ends in '.' */
    gint64 before_id;     /* the cursor: rows with a smaller id */
    unsigned limit;       /* at most this many rows (> 0) */
} DbAuditFilter;

/* One row as read back. */
typedef struct {
    gint64 id;          /* increasing: the paging cursor */
    char *at;           /* ISO 8601 UTC with microseconds */
    char *actor_id;     /* NULL for the system and the command line */
    char *actor;        /* the actor's user name, NULL when none */
    char *origin;       /* "cli:USER" for the command line, NULL for the daemon */
    char *action;
    char *object_kind;
    char *object_id;    /* nullable */
    char *remote_addr;  /* nullable */
    char *detail_json;  /* a JSON object */
} DbAuditRow;

void db_audit_row_free(DbAuditRow *row);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DbAuditRow, db_audit_row_free)

/* The matching rows, newest first: a GPtrArray of DbAuditRow. */
GPtrArray *db_audit_list(DbConn *conn, const DbAuditFilter *filter, GError **error);
