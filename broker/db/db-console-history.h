// SPDX-License-Identifier: LGPL-2.1-or-later
// console_history: each console connection a broker relayed, opened and closed by the
// console service, read by GET /api/v1/vms/{id}/connections.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"

/* How many connections each VM keeps (the newest). */
#define DB_CONSOLE_HISTORY_KEEP 100

typedef struct {
    char *id;
    char *user_id;      /* NULL when the user is gone */
    char *username;     /* NULL when the user is gone */
    char *remote_addr;  /* nullable */
    char *opened_at;    /* ISO 8601 UTC */
    char *closed_at;    /* NULL while open */
    char *reason;       /* nullable; why it closed */
    guint64 bytes_in;   /* from the client to the guest */
    guint64 bytes_out;  /* from the guest to the client */
} DbConsoleConn;

void db_console_conn_free(DbConsoleConn *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DbConsoleConn, db_console_conn_free)

/* Records connection @id to @vm_id as open, and forgets the VM's oldest past the keep. */
bool db_console_history_open(DbConn *conn, const char *id, const char *vm_id,
                             const char *user_id, const char *remote_addr, GError **error);
/* Records connection @id as closed, with why and its bytes. */
bool db_console_history_close(DbConn *conn, const char *id, const char *reason,
                              guint64 bytes_in, guint64 bytes_out, GError **error);
/* Closes the VM's rows that are still open (their broker died), as @reason. */
bool db_console_history_close_vm(DbConn *conn, const char *vm_id, const char *reason,
                                 GError **error);
/* The VM's newest @limit connections, newest first: a GPtrArray of DbConsoleConn. */
GPtrArray *db_console_history_list(DbConn *conn, const char *vm_id, unsigned limit,
                                   GError **error);
