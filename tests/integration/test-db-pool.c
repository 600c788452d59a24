// SPDX-License-Identifier: LGPL-2.1-or-later
// broker/db/db-pool.c and db-migrate.c on real PostgreSQL: migrations, retries of
// serialization failures and deadlocks, statement timeouts, killed backends, restarts.
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>

#include "db-migrate.h"
#include "db-pool.h"
#include "test-db.h"
#include "test-pg.h"
#include "test.h"
#include "vmb-error.h"

TEST(migrations_apply_once_and_check)
{
    g_autofree char *conninfo = test_pg_create_db("pool_migrate");
    DbPoolOptions opts = { .conninfo = conninfo, .size = 2, .acquire_timeout_ms = 10000 };
    g_autoptr(DbPool) pool = db_pool_new(&opts);
    g_autoptr(GError) err = NULL;
    int applied = -1, version = -1;

    {
        g_autoptr(DbConn) conn = db_pool_acquire(pool, &err);
        g_assert_no_error(err);
        g_assert_false(db_migrate_check(conn, &err));
        g_assert_error(err, VMB_ERROR, VMB_ERROR_CONFIG);
        g_clear_error(&err);
        g_assert_true(db_migrate_apply(conn, &applied, &err));
        g_assert_no_error(err);
        g_assert_cmpint(applied, ==, db_migrate_known_version());
        g_assert_cmpint(applied, >=, 4);
        g_assert_true(db_migrate_apply(conn, &applied, &err));
        g_assert_cmpint(applied, ==, 0);
        g_assert_true(db_migrate_current_version(conn, &version, &err));
        g_assert_cmpint(version, ==, db_migrate_known_version());
        g_assert_true(db_migrate_check(conn, &err));
        g_assert_no_error(err);
    }
    test_pg_drop_db(conninfo);
}

typedef struct {
    DbPool *pool;
    int applied;
    bool ok;
} MigrateArgs;

static gpointer
migrate_thread(gpointer data)
{
    MigrateArgs *a = data;
    g_autoptr(GError) err = NULL;
    g_autoptr(DbConn) conn = db_pool_acquire(a->pool, &err);

    a->ok = conn && db_migrate_apply(conn, &a->applied, &err);
    return NULL;
}

TEST(concurrent_migrations_apply_each_file_once)
{
    g_autofree char *conninfo = test_pg_create_db("pool_migrate_race");
    DbPoolOptions opts = { .conninfo = conninfo, .size = 4, .acquire_timeout_ms = 30000 };
    g_autoptr(DbPool) pool = db_pool_new(&opts);
    MigrateArgs args[4];
    GThread *threads[4];
    int total = 0;

    for (int i = 0; i < 4; i++) {
        args[i] = (MigrateArgs) { .pool = pool };
        threads[i] = g_thread_new("migrate", migrate_thread, &args[i]);
    }
    for (int i = 0; i < 4; i++) {
        g_thread_join(threads[i]);
        g_assert_true(args[i].ok);
        total += args[i].applied;
    }
    g_assert_cmpint(total, ==, db_migrate_known_version());
    test_pg_drop_db(conninfo);
}

typedef struct {
    unsigned calls;
    unsigned fail_first;   /* calls that fail */
    const char *sqlstate;  /* with this SQLSTATE */
} FlakyArgs;

static bool
flaky_tx(DbConn *conn, void *data, GError **error)
{
    FlakyArgs *a = data;
    g_autofree char *sql = NULL;
    g_autoptr(PGresult) res = NULL;

    a->calls++;
    res = db_exec(conn, PGRES_COMMAND_OK, "CREATE TEMP TABLE IF NOT EXISTS t (x int)", 0,
                  NULL, error);
    if (!res)
        return false;
    if (a->calls > a->fail_first)
        return true;
    g_clear_pointer(&res, PQclear);
    sql = g_strdup_printf("DO $$ BEGIN RAISE EXCEPTION 'injected' USING ERRCODE = '%s'; END $$",
                          a->sqlstate);
    res = db_exec(conn, PGRES_COMMAND_OK, sql, 0, NULL, error);
    return res != NULL;
}

TEST(transaction_retries_serialization_failures_and_deadlocks)
{
    g_autoptr(TestDb) db = NULL;
    g_autoptr(GError) err = NULL;
    DbPoolOptions opts = { .size = 1, .acquire_timeout_ms = 10000, .max_retries = 3 };
    g_autoptr(DbPool) pool = NULL;
    FlakyArgs ser = { .fail_first = 3, .sqlstate = "40001" };
    FlakyArgs dead = { .fail_first = 2, .sqlstate = "40P01" };
    FlakyArgs too_many = { .fail_first = 4, .sqlstate = "40001" };
    FlakyArgs other = { .fail_first = 1, .sqlstate = "23505" };

    db = test_db_new("pool_retry", 1, 41000, 41100, 2);
    opts.conninfo = db->conninfo;
    pool = db_pool_new(&opts);
    g_assert_true(db_pool_transaction(pool, flaky_tx, &ser, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(ser.calls, ==, 4);
    g_assert_true(db_pool_transaction(pool, flaky_tx, &dead, &err));
    g_assert_cmpuint(dead.calls, ==, 3);
    /* Bounded: 1 try + 3 retries, then the error comes out. */
    g_assert_false(db_pool_transaction(pool, flaky_tx, &too_many, &err));
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(err->message, "40001"));
    g_assert_cmpuint(too_many.calls, ==, 4);
    g_clear_error(&err);
    /* Anything else is not retried. */
    g_assert_false(db_pool_transaction(pool, flaky_tx, &other, &err));
    g_assert_cmpuint(other.calls, ==, 1);
    g_clear_error(&err);
    g_assert_true(db_pool_ping(pool, &err));
}

typedef struct {
    int first, second;   /* rows to update, in this order */
    unsigned attempts;   /* calls of the body */
    GMutex *lock;        /* with @cond: both first updates are done before either second */
    GCond *cond;
    int *arrived;
} DeadlockArgs;

static bool
deadlock_tx(DbConn *conn, void *data, GError **error)
{
    DeadlockArgs *a = data;
    g_autofree char *first = g_strdup_printf("%d", a->first);
    g_autofree char *second = g_strdup_printf("%d", a->second);
    const char *p1[] = { first }, *p2[] = { second };
    g_autoptr(PGresult) r1 = NULL, r2 = NULL;

    a->attempts++;
    r1 = db_exec(conn, PGRES_COMMAND_OK, "UPDATE dl SET n = n + 1 WHERE id = $1::int", 1, p1,
                 error);
    if (!r1)
        return false;
    if (a->attempts == 1) {
        /* First attempt only: wait until the other transaction holds its first row. */
        g_mutex_lock(a->lock);
        (*a->arrived)++;
        g_cond_broadcast(a->cond);
        while (*a->arrived < 2)
            g_cond_wait(a->cond, a->lock);
        g_mutex_unlock(a->lock);
    }
    r2 = db_exec(conn, PGRES_COMMAND_OK, "UPDATE dl SET n = n + 1 WHERE id = $1::int", 1, p2,
                 error);
    return r2 != NULL;
}

typedef struct {
    DbPool *pool;
    DeadlockArgs *args;
    bool ok;
} DeadlockThread;

static gpointer
deadlock_thread(gpointer data)
{
    DeadlockThread *t = data;
    g_autoptr(GError) err = NULL;

    t->ok = db_pool_transaction(t->pool, deadlock_tx, t->args, &err);
    if (!t->ok)
        g_printerr("deadlock_tx: %s\n", err->message);
    return NULL;
}

TEST(real_deadlock_is_retried)
{
    /* Two transactions update two rows in opposite order; PostgreSQL kills one with 40P01
     * and the pool runs it again, so both commit. */
    g_autoptr(TestDb) db = test_db_new("pool_deadlock", 4, 41000, 41100, 2);

    test_db_exec(db, "CREATE TABLE dl (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);"
                     " INSERT INTO dl VALUES (1, 0), (2, 0)");
    for (int round = 0; round < 2; round++) {
        GMutex lock;
        GCond cond;
        int arrived = 0;
        DeadlockArgs a = { 1, 2, 0, &lock, &cond, &arrived };
        DeadlockArgs b = { 2, 1, 0, &lock, &cond, &arrived };
        DeadlockThread ta = { db->pool, &a, false }, tb = { db->pool, &b, false };
        GThread *t1, *t2;

        g_mutex_init(&lock);
        g_cond_init(&cond);
        t1 = g_thread_new("a", deadlock_thread, &ta);
        t2 = g_thread_new("b", deadlock_thread, &tb);
        g_thread_join(t1);
        g_thread_join(t2);
        g_mutex_clear(&lock);
        g_cond_clear(&cond);
        g_assert_true(ta.ok);
        g_assert_true(tb.ok);
        /* At least one was a deadlock victim and ran again (under load both detectors
         * can fire before either aborts, and then both run again). */
        g_assert_cmpuint(a.attempts + b.attempts, >=, 3);
    }
    g_assert_cmpint(test_db_scalar(db, "SELECT sum(n) FROM dl"), ==, 2 * 2 * 2);
}

static bool
sleep_tx(DbConn *conn, void *data, GError **error)
{
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK, "SELECT pg_sleep(30)", 0, NULL,
                                      error);
    return res != NULL;
}

TEST(statement_timeout_applies)
{
    g_autoptr(TestDb) db = test_db_new("pool_timeout", 1, 41000, 41100, 2);
    DbPoolOptions opts = { .size = 1, .acquire_timeout_ms = 10000,
                           .statement_timeout_ms = 200 };
    g_autoptr(DbPool) pool = NULL;
    g_autoptr(GError) err = NULL;

    opts.conninfo = db->conninfo;
    pool = db_pool_new(&opts);
    g_assert_false(db_pool_transaction(pool, sleep_tx, NULL, &err));
    g_assert_error(err, VMB_ERROR, VMB_ERROR_UNAVAILABLE);
    g_assert_nonnull(strstr(err->message, "57014"));
    g_clear_error(&err);
    g_assert_true(db_pool_ping(pool, &err));
    g_assert_no_error(err);
}

TEST(full_pool_times_out)
{
    g_autoptr(TestDb) db = test_db_new("pool_full", 1, 41000, 41100, 2);
    DbPoolOptions opts = { .size = 1, .acquire_timeout_ms = 50 };
    g_autoptr(DbPool) pool = NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(DbConn) held = NULL;
    g_autoptr(DbConn) second = NULL;

    opts.conninfo = db->conninfo;
    pool = db_pool_new(&opts);
    held = db_pool_acquire(pool, &err);
    g_assert_nonnull(held);
    second = db_pool_acquire(pool, &err);
    g_assert_null(second);
    g_assert_error(err, VMB_ERROR, VMB_ERROR_UNAVAILABLE);
    g_assert_cmpuint(db_pool_waits(pool), ==, 1);
    g_clear_pointer(&held, db_conn_release);
    g_clear_error(&err);
    second = db_pool_acquire(pool, &err);
    g_assert_nonnull(second);
}

/* Terminates backend @pid from a session of its own and waits until it is gone. */
static void
terminate_backend(const char *conninfo, int pid)
{
    g_autoptr(PGconn) pg = PQconnectdb(conninfo);
    g_autofree char *p = g_strdup_printf("%d", pid);
    const char *params[] = { p };

    g_assert_cmpint(PQstatus(pg), ==, CONNECTION_OK);
    {
        g_autoptr(PGresult) r = PQexecParams(pg, "SELECT pg_terminate_backend($1::int)", 1,
                                             NULL, params, NULL, NULL, 0);
        g_assert_cmpint(PQresultStatus(r), ==, PGRES_TUPLES_OK);
        g_assert_cmpstr(PQgetvalue(r, 0, 0), ==, "t");
    }
    for (;;) {
        g_autoptr(PGresult) r = PQexecParams(pg,
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int", 1, NULL, params,
            NULL, NULL, 0);
        g_assert_cmpint(PQresultStatus(r), ==, PGRES_TUPLES_OK);
        if (strcmp(PQgetvalue(r, 0, 0), "0") == 0)
            break;
        g_usleep(10000);
    }
}

static bool
pid_tx(DbConn *conn, void *data, GError **error)
{
    *(int *) data = PQbackendPID(conn->pg);
    return true;
}

TEST(terminated_idle_connection_is_replaced)
{
    g_autoptr(TestDb) db = test_db_new("pool_terminate", 1, 41000, 41100, 2);
    g_autoptr(GError) err = NULL;
    int before = 0, after = 0;

    g_assert_true(db_pool_transaction(db->pool, pid_tx, &before, &err));
    /* A live idle session is reused, not replaced. */
    for (int i = 0; i < 3; i++) {
        g_assert_true(db_pool_transaction(db->pool, pid_tx, &after, &err));
        g_assert_cmpint(after, ==, before);
    }
    terminate_backend(db->conninfo, before);
    /* The next transaction runs on a new session, without an error. */
    g_assert_true(db_pool_transaction(db->pool, pid_tx, &after, &err));
    g_assert_no_error(err);
    g_assert_cmpint(after, !=, before);
    g_assert_true(db_pool_ping(db->pool, &err));
}

typedef struct {
    bool fail;     /* roll back after the statement */
    long prepared; /* statements prepared on the session, seen inside the transaction */
    int pid;
} PrepArgs;

static bool
prepared_tx(DbConn *conn, void *data, GError **error)
{
    PrepArgs *a = data;
    const char *params[] = { "41" };
    g_autoptr(PGresult) res = db_exec_prepared(conn, PGRES_TUPLES_OK, "test_add_one",
                                               "SELECT $1::int + 1", 1, params, error);
    g_autoptr(PGresult) count = NULL;

    if (!res)
        return false;
    g_assert_cmpstr(PQgetvalue(res, 0, 0), ==, "42");
    count = db_exec(conn, PGRES_TUPLES_OK, "SELECT count(*) FROM pg_prepared_statements", 0,
                    NULL, error);
    a->prepared = strtol(PQgetvalue(count, 0, 0), NULL, 10);
    a->pid = PQbackendPID(conn->pg);
    if (a->fail) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT, "roll back");
        return false;
    }
    return true;
}

TEST(prepared_statements_outlive_rollbacks_and_follow_reconnects)
{
    g_autoptr(TestDb) db = test_db_new("pool_prepared", 1, 41000, 41100, 2);
    g_autoptr(GError) err = NULL;
    PrepArgs a = { .fail = true };
    int first_pid;

    g_assert_false(db_pool_transaction(db->pool, prepared_tx, &a, &err));
    g_clear_error(&err);
    first_pid = a.pid;
    a.fail = false;
    g_assert_true(db_pool_transaction(db->pool, prepared_tx, &a, &err));
    g_assert_no_error(err);
    g_assert_cmpint(a.pid, ==, first_pid);
    g_assert_cmpint(a.prepared, ==, 1);
    /* A new session prepares it again. */
    terminate_backend(db->conninfo, first_pid);
    g_assert_true(db_pool_transaction(db->pool, prepared_tx, &a, &err));
    g_assert_no_error(err);
    g_assert_cmpint(a.pid, !=, first_pid);
    g_assert_cmpint(a.prepared, ==, 1);
}

TEST(pool_survives_postgres_restart)
{
    /* A cluster of this test's own: the shared one is never restarted. */
    TestPgCluster *cluster = test_pg_private_start();
    g_autofree char *conninfo = test_pg_private_conninfo(cluster, "postgres");
    DbPoolOptions opts = { .conninfo = conninfo, .size = 3, .acquire_timeout_ms = 10000,
                           .statement_timeout_ms = 10000, .max_retries = 3 };
    g_autoptr(DbPool) pool = db_pool_new(&opts);
    g_autoptr(GError) err = NULL;
    int pids[3] = { 0 }, pid = 0;

    /* Fill the pool with three idle sessions. */
    {
        g_autoptr(DbConn) a = db_pool_acquire(pool, &err);
        g_autoptr(DbConn) b = db_pool_acquire(pool, &err);
        g_autoptr(DbConn) c = db_pool_acquire(pool, &err);
        g_assert_no_error(err);
        pids[0] = PQbackendPID(a->pg);
        pids[1] = PQbackendPID(b->pg);
        pids[2] = PQbackendPID(c->pg);
    }
    g_assert_true(test_pg_private_restart(cluster));
    /* The very next request succeeds, and so do the ones after it (every idle session
     * died with the restart). */
    g_assert_true(db_pool_ping(pool, &err));
    g_assert_no_error(err);
    for (int i = 0; i < 3; i++) {
        g_assert_true(db_pool_transaction(pool, pid_tx, &pid, &err));
        g_assert_no_error(err);
        g_assert_cmpint(pid, !=, pids[0]);
        g_assert_cmpint(pid, !=, pids[1]);
        g_assert_cmpint(pid, !=, pids[2]);
    }
    {
        g_autoptr(DbConn) a = db_pool_acquire(pool, &err);
        g_autoptr(DbConn) b = db_pool_acquire(pool, &err);
        g_autoptr(DbConn) c = db_pool_acquire(pool, &err);
        g_autoptr(PGresult) r = NULL;
        g_assert_no_error(err);
        r = db_exec(c, PGRES_TUPLES_OK, "SELECT 1", 0, NULL, &err);
        g_assert_no_error(err);
    }
    g_clear_pointer(&pool, db_pool_free);
    test_pg_private_stop(cluster);
}

TEST_MAIN()
