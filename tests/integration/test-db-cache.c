// SPDX-License-Identifier: LGPL-2.1-or-later
// broker/db/db-cache.c and db-listen.c on real PostgreSQL: the pool's own committed changes
// drop the cache at once, other sessions' changes arrive by NOTIFY from migration 0010's
// triggers (and bookkeeping stamps do not), a read that raced a change is not kept, and a
// lost LISTEN connection turns the cache off until it is back, with nothing kept across.
#include <string.h>
#include <libpq-fe.h>

#include "db-cache.h"
#include "test-db.h"
#include "test.h"

#define DEADLINE_US (10 * G_USEC_PER_SEC)

static gpointer
copy_string(gconstpointer s)
{
    return g_strdup(s);
}

/* The cached value of @key, or NULL. */
static char *
lookup(DbCache *cache, const char *key, guint64 *ret_gen)
{
    guint64 gen;

    return db_cache_lookup(cache, key, copy_string, ret_gen ? ret_gen : &gen);
}

/* Stores @value as @key's the way a reader does (lookup, read, store), until it is served:
 * a notification of an earlier change may still be on its way and refuse the store. */
static void
fill(DbCache *cache, const char *key, const char *value)
{
    gint64 deadline = g_get_monotonic_time() + DEADLINE_US;

    for (;;) {
        guint64 gen;
        g_autofree char *old = lookup(cache, key, &gen);
        g_autofree char *got = NULL;

        db_cache_store(cache, key, gen, g_strdup(value), g_free);
        got = lookup(cache, key, &gen);
        if (g_strcmp0(got, value) == 0)
            return;
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(1000);
    }
}

static void
assert_hit(DbCache *cache, const char *key, const char *value)
{
    g_autofree char *got = lookup(cache, key, NULL);
    g_assert_cmpstr(got, ==, value);
}

static void
assert_miss(DbCache *cache, const char *key)
{
    g_autofree char *got = lookup(cache, key, NULL);
    g_assert_null(got);
}

static bool
listening(DbCache *cache)
{
    DbCacheStats stats;

    db_cache_stats(cache, &stats);
    return stats.listening;
}

static void
wait_listening(DbCache *cache)
{
    gint64 deadline = g_get_monotonic_time() + DEADLINE_US;

    while (!listening(cache)) {
        g_assert_cmpint(g_get_monotonic_time(), <, deadline);
        g_usleep(10000);
    }
}

/* Waits for @key to stop being served (a notification on its way); false at the deadline. */
static bool
wait_miss(DbCache *cache, const char *key)
{
    gint64 deadline = g_get_monotonic_time() + DEADLINE_US;

    for (;;) {
        g_autofree char *got = lookup(cache, key, NULL);
        if (!got)
            return true;
        if (g_get_monotonic_time() > deadline)
            return false;
        g_usleep(1000);
    }
}

/* @sql on a session of its own: someone other than this process's pool. */
static void
exec_elsewhere(TestDb *db, const char *sql)
{
    g_autoptr(PGconn) pg = PQconnectdb(db->conninfo);
    g_autoptr(PGresult) res = NULL;

    g_assert_cmpint(PQstatus(pg), ==, CONNECTION_OK);
    res = PQexec(pg, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        g_error("%s: %s", sql, PQresultErrorMessage(res));
}

static void
exec_pooled(TestDb *db, const char *sql)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(DbConn) conn = db_pool_acquire(db->pool, &err);
    g_autoptr(PGresult) res = NULL;

    g_assert_no_error(err);
    res = db_exec(conn, g_str_has_prefix(sql, "WITH") ? PGRES_TUPLES_OK : PGRES_COMMAND_OK,
                  sql, 0, NULL, &err);
    g_assert_no_error(err);
}

typedef struct {
    TestDb *db;
    DbCache *cache;
} TxArgs;

/* Inside a transaction a change is not visible to anyone else yet: the cache still holds. */
static bool
update_in_tx(DbConn *conn, void *data, GError **error)
{
    TxArgs *a = data;
    g_autoptr(PGresult) res = db_exec(conn, PGRES_COMMAND_OK,
                                      "UPDATE hosts SET uri = uri", 0, NULL, error);

    if (!res)
        return false;
    assert_hit(a->cache, "k", "v");
    return true;
}

/* hosts has no trigger: what drops the cache here is the pool's own count, with no
 * notification to wait for. */
TEST(own_committed_changes_drop_the_cache_at_once)
{
    g_autoptr(TestDb) db = test_db_new("cache_own", 2, 42000, 43000, 2);
    g_autoptr(DbCache) cache = db_cache_new(db->pool, db->conninfo, 100);
    g_autoptr(GError) err = NULL;
    TxArgs args = { db, cache };

    wait_listening(cache);
    assert_miss(cache, "k");
    fill(cache, "k", "v");
    assert_hit(cache, "k", "v");

    /* A statement that changed nothing changes nothing. */
    exec_pooled(db, "UPDATE hosts SET uri = uri WHERE false");
    assert_hit(cache, "k", "v");

    /* An autocommit change. */
    exec_pooled(db, "UPDATE hosts SET uri = uri");
    assert_miss(cache, "k");
    fill(cache, "k", "v");

    /* A write inside a SELECT's CTE: its tag is SELECT. */
    exec_pooled(db, "WITH u AS (UPDATE hosts SET uri = uri RETURNING 1) SELECT count(*) FROM u");
    assert_miss(cache, "k");
    fill(cache, "k", "v");

    /* Callers that examine failures themselves. */
    {
        g_autoptr(DbConn) conn = db_pool_acquire(db->pool, &err);
        g_autoptr(PGresult) res = db_exec_result(conn, "UPDATE hosts SET uri = uri", 0, NULL);
        g_assert_cmpint(PQresultStatus(res), ==, PGRES_COMMAND_OK);
    }
    assert_miss(cache, "k");
    fill(cache, "k", "v");

    /* A plain read is not a change. */
    exec_pooled(db, "WITH h AS (SELECT uri FROM hosts) SELECT v.updated_at FROM vms v, h");
    assert_hit(cache, "k", "v");

    /* In a transaction: counted at COMMIT. */
    g_assert_true(db_pool_transaction(db->pool, update_in_tx, &args, &err));
    g_assert_no_error(err);
    assert_miss(cache, "k");
    fill(cache, "k", "v");

    /* A last-used stamp is bookkeeping. */
    {
        g_autoptr(DbConn) conn = db_pool_acquire(db->pool, &err);
        g_autoptr(PGresult) res = db_exec_stamp(conn, "test_stamp",
                                                "UPDATE hosts SET uri = uri", 0, NULL, &err);
        g_assert_no_error(err);
        g_assert_cmpstr(PQcmdTuples(res), ==, "1");
    }
    assert_hit(cache, "k", "v");

    /* On a table with a trigger, the broker's own change drops the cache before its
     * notification comes back. */
    exec_pooled(db, "UPDATE users SET disabled = false WHERE username = 'bob'");
    assert_miss(cache, "k");
}

TEST(a_read_that_raced_a_change_is_not_kept)
{
    g_autoptr(TestDb) db = test_db_new("cache_race", 2, 42000, 43000, 2);
    g_autoptr(DbCache) cache = db_cache_new(db->pool, db->conninfo, 100);
    g_autofree char *none = NULL;
    guint64 gen = 0;

    wait_listening(cache);
    none = lookup(cache, "k", &gen);
    g_assert_null(none);
    g_assert_cmpuint(gen, !=, 0);
    /* The change commits while the reader is reading: what it read may predate it. */
    exec_pooled(db, "UPDATE hosts SET uri = uri");
    db_cache_store(cache, "k", gen, g_strdup("stale"), g_free);
    assert_miss(cache, "k");
    fill(cache, "k", "fresh");
    assert_hit(cache, "k", "fresh");
}

TEST(other_sessions_changes_arrive_by_notification)
{
    g_autoptr(TestDb) db = test_db_new("cache_notify", 2, 42000, 43000, 2);
    g_autoptr(DbCache) cache = db_cache_new(db->pool, db->conninfo, 100);
    static const char *const changes[] = {
        "UPDATE users SET disabled = true WHERE username = 'bob'",
        "INSERT INTO users (username, role) VALUES ('carol', 'user')",
        /* Statement triggers fire when no row matched, too. */
        "DELETE FROM vms WHERE false",
        "UPDATE api_tokens SET revoked_at = now()",
        "UPDATE api_tokens SET expires_at = now()",
        "DELETE FROM api_tokens WHERE false",
    };

    g_autofree char *insert = g_strdup_printf("INSERT INTO api_tokens (user_id, name,"
                                              " secret_hash) VALUES ('%s', 't',"
                                              " repeat('a', 64))", db->alice_id);

    wait_listening(cache);
    exec_pooled(db, insert);
    for (size_t i = 0; i < G_N_ELEMENTS(changes); i++) {
        fill(cache, "k", "v");
        assert_hit(cache, "k", "v");
        exec_elsewhere(db, changes[i]);
        if (!wait_miss(cache, "k"))
            g_error("no notification of: %s", changes[i]);
    }

    /* last_used_at is the token's bookkeeping: no notification. The positive control after
     * it shows the quiet was not a slow delivery. */
    fill(cache, "k", "v");
    exec_elsewhere(db, "UPDATE api_tokens SET last_used_at = now()");
    exec_elsewhere(db, "SELECT 1");
    g_usleep(G_USEC_PER_SEC / 2);
    assert_hit(cache, "k", "v");
    exec_elsewhere(db, "UPDATE api_tokens SET last_used_at = now(), revoked_at = NULL");
    g_assert_true(wait_miss(cache, "k"));
}

TEST(a_lost_listener_turns_the_cache_off_until_it_is_back)
{
    g_autoptr(TestDb) db = test_db_new("cache_lost", 2, 42000, 43000, 2);
    g_autoptr(DbCache) cache = db_cache_new(db->pool, db->conninfo, 100);
    DbCacheStats before, after;

    wait_listening(cache);
    fill(cache, "k", "v");
    assert_hit(cache, "k", "v");
    exec_elsewhere(db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                       " WHERE application_name = 'vmbroker-listen:vmbroker_changed'"
                       "   AND datname = current_database()");
    /* Once the listener has read the FATAL it is sent (or the end of the connection), the
     * cache answers nothing. */
    g_assert_true(wait_miss(cache, "k"));
    /* A change while nobody listens... */
    exec_elsewhere(db, "UPDATE users SET disabled = true WHERE username = 'bob'");
    wait_listening(cache);
    /* ... is never covered up by what was cached before: reconnecting empties the cache. */
    assert_miss(cache, "k");
    fill(cache, "k", "v2");
    db_cache_stats(cache, &before);
    assert_hit(cache, "k", "v2");
    db_cache_stats(cache, &after);
    g_assert_cmpuint(after.hits, ==, before.hits + 1);
    g_assert_cmpuint(after.misses, ==, before.misses);
}

TEST(entries_are_bounded_and_zero_turns_the_cache_off)
{
    g_autoptr(TestDb) db = test_db_new("cache_bound", 2, 42000, 43000, 2);
    g_autoptr(DbCache) cache = db_cache_new(db->pool, db->conninfo, 2);
    g_autoptr(DbCache) off = db_cache_new(db->pool, db->conninfo, 0);

    wait_listening(cache);
    fill(cache, "a", "1");
    fill(cache, "b", "2");
    assert_hit(cache, "a", "1");
    assert_hit(cache, "b", "2");
    fill(cache, "c", "3");
    assert_miss(cache, "a");
    assert_miss(cache, "b");
    assert_hit(cache, "c", "3");
    /* Replacing a key is not growth. */
    fill(cache, "c", "4");
    fill(cache, "d", "5");
    assert_hit(cache, "c", "4");
    assert_hit(cache, "d", "5");

    g_assert_false(listening(off));
    {
        guint64 gen;
        g_autofree char *none = lookup(off, "a", &gen);
        g_assert_cmpuint(gen, ==, 0);
        db_cache_store(off, "a", gen, g_strdup("1"), g_free);
        assert_miss(off, "a");
    }
}

TEST_MAIN()
