// SPDX-License-Identifier: LGPL-2.1-or-later
// The operations table: a VM's long work as rows. A request inserts one (at most one active
// per VM, by a unique index); a broker's dispatcher claims queued ones with FOR UPDATE SKIP
// LOCKED, its workers record their steps and finish them; a broker that stops beating its
// heart loses its running operations to another.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"

typedef enum {
    DB_OP_CREATE = 0,
    DB_OP_START,
    DB_OP_STOP,
    DB_OP_REBOOT,
    DB_OP_DELETE,
    DB_OP_SNAPSHOT, /* params {"action": "create"|"revert"|"delete", "name": NAME} */

    DB_OP_KIND_LAST
} DbOpKind;

typedef enum {
    DB_OP_QUEUED = 0,
    DB_OP_RUNNING,
    DB_OP_SUCCEEDED,
    DB_OP_FAILED,
    DB_OP_CANCELLED,

    DB_OP_STATE_LAST
} DbOpState;

const char *db_op_kind_to_string(DbOpKind kind);
const char *db_op_state_to_string(DbOpState state);

typedef struct {
    char *id;             /* uuid */
    char *vm_id;          /* the VM (which may be gone: a delete's row stays) */
    DbOpKind kind;
    DbOpState state;
    char *requested_by;   /* users.id, NULL for the system */
    char *remote_addr;    /* (nullable) the request's address */
    char *params;         /* JSON object text: what the kind needs besides the VM */
    char *step;           /* what it does now: "queued", "defining", "starting" ... */
    unsigned progress;    /* 0 to 100 */
    char *error_kind;     /* (nullable) a vmb_error_kind_to_string() name */
    char *error_detail;   /* (nullable) for the user */
    char *error_admin;    /* (nullable) for admins and the log */
    char *broker;         /* (nullable) the broker instance running it */
    unsigned attempts;    /* times a broker took it */
    GDateTime *created_at;
    GDateTime *started_at;  /* (nullable) */
    GDateTime *finished_at; /* (nullable) */
} DbOp;

void db_op_free(DbOp *op);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DbOp, db_op_free)

typedef struct {
    const char *vm_id;
    DbOpKind kind;
    const char *requested_by; /* (nullable) */
    const char *remote_addr;  /* (nullable) */
    const char *params;       /* (nullable) JSON object text */
    unsigned max_active_per_user; /* 0: no cap; the system has none */
} DbOpSpec;

/* Inserts a queued operation, in the caller's transaction. VMB_ERROR_CONFLICT when the VM
 * has an active operation (*ret_active then set to it), VMB_ERROR_TOO_MANY when the
 * requester has max_active_per_user active ones. */
DbOp *db_ops_insert(DbConn *conn, const DbOpSpec *spec, DbOp **ret_active, GError **error);
/* Inserts an operation that succeeded already, in the caller's transaction. */
DbOp *db_ops_insert_done(DbConn *conn, const DbOpSpec *spec, GError **error);
/* Takes the oldest queued operation, or a running one whose heartbeat is older than
 * @stale_s, for @broker; NULL with no error when there is none. */
DbOp *db_ops_claim(DbConn *conn, const char *broker, unsigned stale_s, GError **error);
/* Hands the running operations of @broker back to the queue (a broker that starts under a
 * name its previous life used). Returns how many, or -1. */
int db_ops_requeue_broker(DbConn *conn, const char *broker, GError **error);
bool db_ops_heartbeat(DbConn *conn, const char *broker, GError **error);
bool db_ops_set_step(DbConn *conn, const char *id, const char *step, unsigned progress,
                     GError **error);
/* Ends an operation running for @broker: @state is SUCCEEDED or FAILED (then with the error
 * texts). VMB_ERROR_NOT_FOUND when another broker took it over. */
DbOp *db_ops_finish(DbConn *conn, const char *id, const char *broker, DbOpState state,
                    const char *error_kind, const char *error_detail, const char *error_admin,
                    GError **error);
DbOp *db_ops_get(DbConn *conn, const char *id, GError **error);
/* The VM's operations, newest first, at most @limit. */
GPtrArray *db_ops_list_vm(DbConn *conn, const char *vm_id, unsigned limit, GError **error);
/* The VM's active operation, or NULL (no error) when it has none. */
DbOp *db_ops_active(DbConn *conn, const char *vm_id, GError **error);
/* Deletes finished operations older than @keep_s. Returns how many, or -1. */
int db_ops_purge(DbConn *conn, unsigned keep_s, GError **error);
