// SPDX-License-Identifier: LGPL-2.1-or-later
// A migrated database with a pool, a host, a template and a few users: the fixture of the
// broker/db integration tests.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"

typedef struct {
    char *conninfo;   /* the test's own database */
    DbPool *pool;     /* over it */
    char *host_id;    /* host `local` */
    char *alice_id;   /* role user */
    char *bob_id;     /* role user */
    char *admin_id;   /* role admin */
} TestDb;

/* A fresh database (test_pg_create_db), migrated, with a pool of @pool_size and port ranges
 * vnc @vnc_first.. and ws @ws_first.. of @pairs ports each. Template `tiny` exists. */
TestDb *test_db_new(const char *tag, unsigned pool_size, unsigned vnc_first,
                    unsigned ws_first, unsigned pairs);
/* Frees the pool and drops the database. */
void test_db_free(TestDb *db);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TestDb, test_db_free)

/* One statement on a pooled connection, aborting the test on failure. */
void test_db_exec(TestDb *db, const char *sql);
/* The first column of the first row of @sql, as an integer. */
long test_db_scalar(TestDb *db, const char *sql);
/* The SQLSTATE @sql fails with ("" when it succeeds), run in a transaction rolled back. */
char *test_db_fails_with(TestDb *db, const char *sql);
