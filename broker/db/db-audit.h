// SPDX-License-Identifier: LGPL-2.1-or-later
// The audit log: who did what to which object, when, from which address.
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

bool db_audit_insert(DbConn *conn, const DbAuditEntry *entry, GError **error);
