// SPDX-License-Identifier: LGPL-2.1-or-later
// Databases and clusters for the integration tests, made with libpq and contrib/pg-private.
#include "test-pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <libpq-fe.h>

#ifndef TEST_PG_PRIVATE
#error "TEST_PG_PRIVATE (path of contrib/pg-private) must be defined by the build"
#endif

static const char *
need_env(const char *name)
{
    const char *v = g_getenv(name);

    if (!v || !*v) {
        fprintf(stderr, "test-pg: %s is not set. Run the tests through the test runner, or "
                "start PostgreSQL with `eval \"$(contrib/pg-private start DIR PORT)\"` and "
                "export its VMB_PG_* variables first.\n", name);
        exit(1);
    }
    return v;
}

/* A conninfo value in single quotes, with \ and ' escaped. */
static void
append_quoted(GString *s, const char *key, const char *value)
{
    g_string_append_printf(s, "%s%s='", s->len ? " " : "", key);
    for (const char *p = value; *p; p++) {
        if (*p == '\\' || *p == '\'')
            g_string_append_c(s, '\\');
        g_string_append_c(s, *p);
    }
    g_string_append_c(s, '\'');
}

static char *
make_conninfo(const char *host, const char *port, const char *user, const char *dbname)
{
    GString *s = g_string_new(NULL);

    append_quoted(s, "host", host);
    append_quoted(s, "port", port);
    append_quoted(s, "user", user);
    append_quoted(s, "dbname", dbname);
    return g_string_free(s, FALSE);
}

/* Runs one statement on the maintenance database of the cluster @conninfo points at. */
static void
exec_on_postgres_db(const char *conninfo, const char *sql)
{
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    GString *admin = g_string_new(NULL);
    PGconn *pg;
    PGresult *res;

    if (!opts)
        g_error("test-pg: bad conninfo %s", conninfo);
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (o->val && strcmp(o->keyword, "dbname") != 0)
            append_quoted(admin, o->keyword, o->val);
    }
    append_quoted(admin, "dbname", "postgres");
    PQconninfoFree(opts);
    pg = PQconnectdb(admin->str);
    if (PQstatus(pg) != CONNECTION_OK)
        g_error("test-pg: cannot connect (%s): %s", admin->str, PQerrorMessage(pg));
    res = PQexec(pg, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        g_error("test-pg: %s: %s", sql, PQerrorMessage(pg));
    PQclear(res);
    PQfinish(pg);
    g_string_free(admin, TRUE);
}

static char *
db_name_for(const char *tag)
{
    GString *name = g_string_new("vmbt_");

    for (const char *p = tag; *p && name->len < 30; p++)
        g_string_append_c(name, g_ascii_isalnum(*p) ? g_ascii_tolower(*p) : '_');
    g_string_append_printf(name, "_%d_%08x", (int) getpid(), g_random_int());
    return g_string_free(name, FALSE);
}

/**
 * test_pg_create_db:
 * @tag: a short name for the test file
 *
 * Returns: (transfer full): the conninfo of a new, empty database on the shared cluster.
 */
char *
test_pg_create_db(const char *tag)
{
    const char *host = need_env("VMB_PG_HOST");
    const char *port = need_env("VMB_PG_PORT");
    const char *user = need_env("VMB_PG_USER");
    g_autofree char *name = db_name_for(tag);
    char *conninfo = make_conninfo(host, port, user, name);
    g_autofree char *sql = g_strdup_printf("CREATE DATABASE \"%s\"", name);

    exec_on_postgres_db(conninfo, sql);
    return conninfo;
}

/**
 * test_pg_drop_db:
 * @conninfo: (nullable): what test_pg_create_db returned
 */
void
test_pg_drop_db(const char *conninfo)
{
    PQconninfoOption *opts;
    g_autofree char *sql = NULL;

    if (!conninfo)
        return;
    opts = PQconninfoParse(conninfo, NULL);
    if (!opts)
        g_error("test-pg: bad conninfo %s", conninfo);
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, "dbname") == 0 && o->val)
            sql = g_strdup_printf("DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", o->val);
    }
    PQconninfoFree(opts);
    g_assert_nonnull(sql);
    exec_on_postgres_db(conninfo, sql);
}

static bool
run(const char *const *argv, char **ret_stdout)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *out = NULL, *errout = NULL;
    int status = 0;

    if (!g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                      &out, &errout, &status, &err)) {
        fprintf(stderr, "test-pg: %s: %s\n", argv[0], err->message);
        return false;
    }
    if (!g_spawn_check_wait_status(status, &err)) {
        fprintf(stderr, "test-pg: %s failed: %s\n%s", argv[0], err->message, errout);
        return false;
    }
    if (ret_stdout)
        *ret_stdout = g_steal_pointer(&out);
    return true;
}

/**
 * test_pg_private_start:
 *
 * Starts a cluster of this test's own (in a new temporary folder, on a port derived from the
 * pid; its socket is in that folder, so no other cluster is touched).
 *
 * Returns: (transfer full): the cluster; aborts when it cannot start.
 */
TestPgCluster *
test_pg_private_start(void)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = g_dir_make_tmp("vmbt-pg-XXXXXX", &err);
    g_autofree char *port = NULL, *out = NULL;
    g_auto(GStrv) words = NULL;
    TestPgCluster *c;

    if (!dir)
        g_error("test-pg: %s", err->message);
    port = g_strdup_printf("%u", 20000 + (unsigned) getpid() % 20000);
    {
        const char *argv[] = { TEST_PG_PRIVATE, "start", dir, port, NULL };
        if (!run(argv, &out))
            g_error("test-pg: cannot start a private cluster in %s", dir);
    }
    c = g_new0(TestPgCluster, 1);
    c->dir = g_steal_pointer(&dir);
    c->port = (unsigned) g_ascii_strtoull(port, NULL, 10);
    words = g_strsplit_set(g_strstrip(out), " \n", -1);
    for (char **w = words; *w; w++) {
        if (g_str_has_prefix(*w, "VMB_PG_HOST="))
            c->host = g_strdup(*w + strlen("VMB_PG_HOST="));
        else if (g_str_has_prefix(*w, "VMB_PG_BIN="))
            c->bin = g_strdup(*w + strlen("VMB_PG_BIN="));
    }
    g_assert_nonnull(c->host);
    g_assert_nonnull(c->bin);
    return c;
}

/**
 * test_pg_private_restart:
 * @cluster: a private cluster
 *
 * Restarts the server in fast mode (every session is terminated), as its owner.
 *
 * Returns: true when the server runs again.
 */
bool
test_pg_private_restart(TestPgCluster *cluster)
{
    g_autofree char *pg_ctl = g_build_filename(cluster->bin, "pg_ctl", NULL);
    g_autofree char *data = g_build_filename(cluster->dir, "data", NULL);
    g_autofree char *log = g_build_filename(cluster->dir, "postgres.log", NULL);
    const char *argv_user[] = { pg_ctl, "-D", data, "-l", log, "-m", "fast", "-w",
                                "-t", "60", "restart", NULL };
    const char *argv_root[] = { "runuser", "-u", "postgres", "--", pg_ctl, "-D", data,
                                "-l", log, "-m", "fast", "-w", "-t", "60", "restart", NULL };

    return run(geteuid() == 0 ? argv_root : argv_user, NULL);
}

/**
 * test_pg_private_stop:
 * @cluster: (nullable): a private cluster
 */
void
test_pg_private_stop(TestPgCluster *cluster)
{
    const char *argv[] = { TEST_PG_PRIVATE, "stop", NULL, NULL };
    const char *rm[] = { "rm", "-rf", NULL, NULL };

    if (!cluster)
        return;
    argv[2] = cluster->dir;
    rm[2] = cluster->dir;
    run(argv, NULL);
    run(rm, NULL);
    g_free(cluster->dir);
    g_free(cluster->host);
    g_free(cluster->bin);
    g_free(cluster);
}

/**
 * test_pg_private_conninfo:
 * @cluster: a private cluster
 * @dbname: a database on it
 *
 * Returns: (transfer full): the conninfo.
 */
char *
test_pg_private_conninfo(TestPgCluster *cluster, const char *dbname)
{
    g_autofree char *port = g_strdup_printf("%u", cluster->port);

    return make_conninfo(cluster->host, port, "vmbroker", dbname);
}
