// SPDX-License-Identifier: LGPL-2.1-or-later
// Applies embedded migrations. The advisory lock is taken in the session, outside the
// per-file transactions, so a second broker waits and then finds nothing left to do.
#include "db-migrate.h"

#include <stdlib.h>
#include <string.h>

#include "vmb-error.h"

/* pg_advisory_lock key: "vmbroker" as ASCII, a constant no other vmbroker lock uses. */
#define MIGRATE_LOCK_KEY "8462098798393158002"

static const char create_table_sql[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY,"
    " name text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())";

/**
 * db_migrate_known_version:
 *
 * Returns: the highest migration version embedded in this binary.
 */
int
db_migrate_known_version(void)
{
    return db_migrations_count ? db_migrations[db_migrations_count - 1].version : 0;
}

/**
 * db_migrate_current_version:
 * @conn: a connection
 * @ret_version: (out): the highest applied version, 0 when none
 * @error: return location for an error
 *
 * Returns: true on success.
 */
bool
db_migrate_current_version(DbConn *conn, int *ret_version, GError **error)
{
    /* Two queries: one naming a missing table fails at parse time, whatever CASE says. */
    g_autoptr(PGresult) exists = db_exec(conn, PGRES_TUPLES_OK,
        "SELECT to_regclass('schema_migrations') IS NOT NULL", 0, NULL, error);
    g_autoptr(PGresult) res = NULL;

    if (!exists)
        return false;
    if (strcmp(PQgetvalue(exists, 0, 0), "t") != 0) {
        *ret_version = 0;
        return true;
    }
    res = db_exec(conn, PGRES_TUPLES_OK,
                  "SELECT coalesce(max(version), 0) FROM schema_migrations", 0, NULL, error);
    if (!res)
        return false;
    *ret_version = (int) strtol(PQgetvalue(res, 0, 0), NULL, 10);
    return true;
}

static bool
exec_cmd(DbConn *conn, const char *sql, int n, const char *const *params, GError **error)
{
    g_autoptr(PGresult) res = db_exec(conn, PGRES_COMMAND_OK, sql, n, params, error);
    return res != NULL;
}

static bool
apply_one(DbConn *conn, const DbMigration *m, GError **error)
{
    g_autofree char *version = g_strdup_printf("%d", m->version);
    const char *params[] = { version, m->name };
    g_autoptr(PGresult) res = NULL;
    g_autoptr(GError) err = NULL;

    if (!exec_cmd(conn, "BEGIN", 0, NULL, error))
        return false;
    /* A migration file holds several statements: PQexec, which allows that, with no
     * parameters. The text is our own, embedded at build time. */
    res = PQexec(conn->pg, m->sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
        db_set_error(conn, res, &err);
        g_set_error(error, VMB_ERROR, VMB_ERROR_INTERNAL, "migration %04d_%s failed: %s",
                    m->version, m->name, err->message);
        g_clear_pointer(&res, PQclear);
        res = PQexec(conn->pg, "ROLLBACK");
        return false;
    }
    if (!exec_cmd(conn, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                  2, params, error) ||
        !exec_cmd(conn, "COMMIT", 0, NULL, error)) {
        g_clear_pointer(&res, PQclear);
        res = PQexec(conn->pg, "ROLLBACK");
        return false;
    }
    return true;
}

static bool
apply_locked(DbConn *conn, int *ret_applied, GError **error)
{
    int current = 0, applied = 0;

    if (!exec_cmd(conn, create_table_sql, 0, NULL, error) ||
        !db_migrate_current_version(conn, &current, error))
        return false;
    if (current > db_migrate_known_version()) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_SCHEMA,
                    "database schema is at version %d, newer than this vmbroker knows (%d)",
                    current, db_migrate_known_version());
        return false;
    }
    for (size_t i = 0; i < db_migrations_count; i++) {
        if (db_migrations[i].version <= current)
            continue;
        if (!apply_one(conn, &db_migrations[i], error))
            return false;
        applied++;
    }
    if (ret_applied)
        *ret_applied = applied;
    return true;
}

/**
 * db_migrate_apply:
 * @conn: a connection with rights to create tables
 * @ret_applied: (out) (optional): how many files this call applied
 * @error: return location for an error
 *
 * Applies every embedded migration newer than the database, in order, each in its own
 * transaction. Concurrent callers serialize on an advisory lock.
 *
 * Returns: true when the database is at the known version.
 */
bool
db_migrate_apply(DbConn *conn, int *ret_applied, GError **error)
{
    const char *key[] = { MIGRATE_LOCK_KEY };
    g_autoptr(PGresult) unlock = NULL;
    bool ok;

    if (!exec_cmd(conn, "SET client_min_messages = warning", 0, NULL, error))
        return false;
    {
        g_autoptr(PGresult) lock = db_exec(conn, PGRES_TUPLES_OK,
                                           "SELECT pg_advisory_lock($1::bigint)", 1, key, error);
        if (!lock)
            return false;
    }
    ok = apply_locked(conn, ret_applied, error);
    unlock = PQexecParams(conn->pg, "SELECT pg_advisory_unlock($1::bigint)", 1, NULL, key,
                          NULL, NULL, 0);
    if (PQresultStatus(unlock) != PGRES_TUPLES_OK)
        conn->broken = true; /* closing the session frees the lock */
    return ok;
}

/**
 * db_migrate_check:
 * @conn: a connection
 * @error: return location for an error
 *
 * Returns: true when the database is exactly at the version this binary knows.
 */
bool
db_migrate_check(DbConn *conn, GError **error)
{
    int current = 0;

    if (!db_migrate_current_version(conn, &current, error))
        return false;
    if (current > db_migrate_known_version()) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_SCHEMA,
                    "database schema is at version %d, newer than this vmbroker knows (%d)",
                    current, db_migrate_known_version());
        return false;
    }
    if (current < db_migrate_known_version()) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFIG,
                    "database schema is at version %d, this vmbroker needs %d: "
                    "run `vmbroker migrate`", current, db_migrate_known_version());
        return false;
    }
    return true;
}
