// SPDX-License-Identifier: LGPL-2.1-or-later
// The audit log as admins read it (GET /api/v1/audit, `vmbroker audit`), and the one way
// the services outside the VM life cycle write to it.
#pragma once

#include <stdbool.h>
#include <glib.h>
#include "vmb-json.h"

#include "db-audit.h"
#include "db-pool.h"
#include "db-users.h"

/* A page holds at most this many rows; the default page is SVC_AUDIT_PAGE_DEFAULT. */
#define SVC_AUDIT_PAGE_MAX 500
#define SVC_AUDIT_PAGE_DEFAULT 100

/* What a reader asks for, as the client spelled it; every field nullable. */
typedef struct {
    const char *since;  /* ISO 8601, or a span back from now: 90s, 30m, 12h, 7d */
    const char *until;  /* the same forms */
    const char *user;   /* a user name */
    const char *vm;     /* a VM id */
    const char *action; /* "vm.stop", or "vm." for every vm action */
    const char *cursor; /* the next_cursor of the previous page */
    gint64 limit;       /* 1..SVC_AUDIT_PAGE_MAX; 0 for the default */
} SvcAuditQuery;

/* Writes one row on @conn; @actor NULL for the command line or the system. @detail is
 * borrowed. */
bool svc_audit_write(DbConn *conn, const DbUser *actor, const char *action,
                     const char *object_kind, const char *object_id, const char *remote_addr,
                     json_object *detail, GError **error);

/* Admins only (VMB_ERROR_FORBIDDEN). VMB_ERROR_INVALID for a malformed time, cursor,
 * action or limit. Returns the rows (element-type DbAuditRow), newest first, and sets
 * *ret_next_cursor to the cursor of the next page, or NULL when this page is the last. */
GPtrArray *svc_audit_list(DbPool *pool, const DbUser *caller, const SvcAuditQuery *query,
                          char **ret_next_cursor, GError **error);

/* Checks @q and turns it into @f (which borrows from @q, *since and *until). */
bool svc_audit_filter(const SvcAuditQuery *q, gint64 now_us, DbAuditFilter *f, char **since,
                      char **until, GError **error);

/* An ISO 8601 time (UTC when it names no zone) or a span back from @now_us, as ISO 8601
 * UTC. VMB_ERROR_INVALID otherwise. */
char *svc_audit_parse_time(const char *text, gint64 now_us, GError **error);
