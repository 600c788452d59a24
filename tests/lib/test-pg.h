// SPDX-License-Identifier: LGPL-2.1-or-later
// PostgreSQL for tests: a fresh database per test file on the runner's shared cluster
// (VMB_PG_* from contrib/pg-private), or a private cluster for tests that restart it.
#pragma once

#include <stdbool.h>
#include <glib.h>

/* --- the shared cluster --- */
/* Creates a database of its own for @tag ([a-z0-9_], made unique); returns its conninfo.
 * Exits with a clear message when VMB_PG_HOST is unset. */
char *test_pg_create_db(const char *tag);
/* Drops the database of @conninfo (made by test_pg_create_db), closing its sessions. */
void test_pg_drop_db(const char *conninfo);

/* --- a private cluster (for restarts: never restart the shared one) --- */
typedef struct {
    char *dir;      /* temporary folder holding data/ and socket/ */
    char *host;     /* its socket folder */
    unsigned port;  /* its port */
    char *bin;      /* PostgreSQL server binaries */
} TestPgCluster;

/* Starts a cluster with contrib/pg-private in a new temporary folder. */
TestPgCluster *test_pg_private_start(void);
/* pg_ctl restart -m fast; true when the server is back. */
bool test_pg_private_restart(TestPgCluster *cluster);
/* Stops the cluster and removes its folder. */
void test_pg_private_stop(TestPgCluster *cluster);
/* Conninfo of database @dbname on @cluster. */
char *test_pg_private_conninfo(TestPgCluster *cluster, const char *dbname);
