// SPDX-License-Identifier: LGPL-2.1-or-later
// The fixture behind test-db.h.
#include "test-db.h"

#include <stdlib.h>

#include "db-hosts.h"
#include "db-migrate.h"
#include "db-ports.h"
#include "db-templates.h"
#include "db-users.h"
#include "test-pg.h"

/* @ok is evaluated before @err is read (argument order is unspecified in C). */
#define check_ok(ok, err)                                                          \
    do {                                                                           \
        bool ok_ = (ok);                                                           \
        if (!ok_)                                                                  \
            g_error("fixture: %s: %s", #ok, (err) ? (err)->message : "no error");  \
    } while (0)

/**
 * test_db_new:
 * @tag: names the database
 * @pool_size: connections in the pool
 * @vnc_first: first VNC port
 * @ws_first: first websocket port
 * @pairs: ports per range
 *
 * Returns: (transfer full): the fixture.
 */
TestDb *
test_db_new(const char *tag, unsigned pool_size, unsigned vnc_first, unsigned ws_first,
            unsigned pairs)
{
    TestDb *db = g_new0(TestDb, 1);
    g_autoptr(GError) err = NULL;
    g_autoptr(DbConn) conn = NULL;
    DbPoolOptions opts = {
        .size = pool_size,
        .acquire_timeout_ms = 60000,
        .connect_timeout_s = 60, /* 64 clients connecting at once on two busy cores */
        .statement_timeout_ms = 30000,
        .max_retries = 5,
    };
    DbPortRanges ranges = { vnc_first, vnc_first + pairs - 1, ws_first, ws_first + pairs - 1 };

    db->conninfo = test_pg_create_db(tag);
    opts.conninfo = db->conninfo;
    db->pool = db_pool_new(&opts);
    conn = db_pool_acquire(db->pool, &err);
    check_ok(conn != NULL, err);
    check_ok(db_migrate_apply(conn, NULL, &err), err);
    check_ok(db_hosts_ensure_configured(conn, &(DbHostSpec) {
                 DB_HOST_CONFIGURED, "qemu:///system", "127.0.0.1", ranges, 0 },
                 &db->host_id, &err), err);
    check_ok(db_ports_sync(conn, db->host_id, &ranges, &err), err);
    check_ok(db_templates_upsert(conn, "tiny", "iso", "name = tiny\n", NULL, &err), err);
    check_ok(db_users_insert(conn, "alice", DB_ROLE_USER, NULL, &db->alice_id, &err), err);
    check_ok(db_users_insert(conn, "bob", DB_ROLE_USER, NULL, &db->bob_id, &err), err);
    check_ok(db_users_insert(conn, "root", DB_ROLE_ADMIN, NULL, &db->admin_id, &err), err);
    g_clear_pointer(&conn, db_conn_release);
    /* Open every connection now, one after the other: 64 clients connecting at once on a
     * loaded 2-core machine can exceed the pool's connect timeout, which is not what the
     * tests are about. */
    {
        g_autoptr(GPtrArray) held = g_ptr_array_new_with_free_func((GDestroyNotify) db_conn_release);
        for (unsigned i = 0; i < pool_size; i++) {
            DbConn *c = db_pool_acquire(db->pool, &err);
            check_ok(c != NULL, err);
            g_ptr_array_add(held, c);
        }
    }
    return db;
}

/**
 * test_db_free:
 * @db: (nullable): a fixture
 */
void
test_db_free(TestDb *db)
{
    if (!db)
        return;
    db_pool_free(db->pool);
    test_pg_drop_db(db->conninfo);
    g_free(db->conninfo);
    g_free(db->host_id);
    g_free(db->alice_id);
    g_free(db->bob_id);
    g_free(db->admin_id);
    g_free(db);
}

/**
 * test_db_exec:
 * @db: a fixture
 * @sql: a statement without parameters (test code only)
 */
void
test_db_exec(TestDb *db, const char *sql)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(DbConn) conn = db_pool_acquire(db->pool, &err);
    g_autoptr(PGresult) res = NULL;

    check_ok(conn != NULL, err);
    res = PQexec(conn->pg, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        g_error("fixture: %s: %s", sql, PQerrorMessage(conn->pg));
}

/**
 * test_db_scalar:
 * @db: a fixture
 * @sql: a query whose first value is an integer
 *
 * Returns: that value.
 */
long
test_db_scalar(TestDb *db, const char *sql)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(DbConn) conn = db_pool_acquire(db->pool, &err);
    g_autoptr(PGresult) res = NULL;

    check_ok(conn != NULL, err);
    res = db_exec(conn, PGRES_TUPLES_OK, sql, 0, NULL, &err);
    check_ok(res != NULL, err);
    g_assert_cmpint(PQntuples(res), ==, 1);
    return strtol(PQgetvalue(res, 0, 0), NULL, 10);
}

/**
 * test_db_fails_with:
 * @db: a fixture
 * @sql: statements to try (several allowed), inside BEGIN ... ROLLBACK; COMMIT is tried
 *   too, so deferred constraints are checked
 *
 * Returns: (transfer full): the SQLSTATE of the first failure, "" when all succeeded.
 */
char *
test_db_fails_with(TestDb *db, const char *sql)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(DbConn) conn = db_pool_acquire(db->pool, &err);
    g_autoptr(PGresult) begin = NULL, res = NULL, commit = NULL;
    char *state;

    check_ok(conn != NULL, err);
    begin = PQexec(conn->pg, "BEGIN");
    g_assert_cmpint(PQresultStatus(begin), ==, PGRES_COMMAND_OK);
    res = PQexec(conn->pg, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
        state = g_strdup(PQresultErrorField(res, PG_DIAG_SQLSTATE));
        g_clear_pointer(&commit, PQclear);
        commit = PQexec(conn->pg, "ROLLBACK");
        return state;
    }
    /* SET CONSTRAINTS ALL IMMEDIATE checks the deferred ones without committing. */
    commit = PQexec(conn->pg, "SET CONSTRAINTS ALL IMMEDIATE");
    state = g_strdup(PQresultStatus(commit) == PGRES_COMMAND_OK
                     ? "" : PQresultErrorField(commit, PG_DIAG_SQLSTATE));
    g_clear_pointer(&commit, PQclear);
    commit = PQexec(conn->pg, "ROLLBACK");
    return state;
}
