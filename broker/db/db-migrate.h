// SPDX-License-Identifier: LGPL-2.1-or-later
// Schema migrations: the numbered files of migrations/, embedded at build time, applied in
// order, each in its own transaction, under an advisory lock so concurrent brokers apply
// each file exactly once.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <glib.h>

#include "db-pool.h"

typedef struct {
    int version;       /* 1..N, from the file name */
    const char *name;  /* the rest of the file name */
    const char *sql;   /* the file's text */
} DbMigration;

extern const DbMigration db_migrations[];
extern const size_t db_migrations_count;

/* The newest version this binary knows. */
int db_migrate_known_version(void);
/* The database's version (0 for an empty database). */
bool db_migrate_current_version(DbConn *conn, int *ret_version, GError **error);
/* Applies what is missing; @ret_applied (nullable) counts the files applied by this call. */
bool db_migrate_apply(DbConn *conn, int *ret_applied, GError **error);
/* Fails with VMB_ERROR_SCHEMA when the database is newer than this binary, or
 * VMB_ERROR_CONFIG when it is older (run `vmbroker migrate`). */
bool db_migrate_check(DbConn *conn, GError **error);
