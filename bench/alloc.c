// SPDX-License-Identifier: LGPL-2.1-or-later
// bench/alloc: port lease + release cycles per second through db_ports_* (FOR UPDATE SKIP
// LOCKED) against a naive allocator (LOCK TABLE; SELECT min(port) ...; INSERT) in the same
// run, on the same PostgreSQL, at 1, 8 and 64 clients. Uses the runner's cluster when
// VMB_PG_HOST is set, else starts a private one with contrib/pg-private.
//   bench-alloc [SECONDS_PER_RUN]   (default 2; each cell is the median of 3 runs)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db-hosts.h"
#include "db-migrate.h"
#include "db-ports.h"
#include "db-templates.h"
#include "db-users.h"
#include "db-vms.h"
#include "test-pg.h"

#define VNC_FIRST 20000u
#define WS_FIRST 21000u
#define PAIRS 100u
#define MAX_CLIENTS 64
#define ROUNDS 3

typedef struct {
    DbPool *pool;
    const char *host_id;
    char *vm_ids[MAX_CLIENTS];   /* one stopped VM per client: the lease holder */
    gint stop;
} Bench;

typedef struct {
    Bench *b;
    int client;
    bool naive;
    guint64 cycles;
    char *error;
} Client;

static void
die(const char *what, const GError *err)
{
    fprintf(stderr, "bench/alloc: %s: %s\n", what, err ? err->message : "failed");
    exit(1);
}

static bool
lease_tx(DbConn *conn, void *data, GError **error)
{
    Client *c = data;
    DbPortPair pair;

    return db_ports_lease_pair(conn, c->b->host_id, c->b->vm_ids[c->client], NULL, &pair,
                               error);
}

static bool
release_tx(DbConn *conn, void *data, GError **error)
{
    Client *c = data;
    unsigned n = 0;

    if (!db_ports_release_vm(conn, c->b->vm_ids[c->client], 0, &n, error))
        return false;
    if (n != 2) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "released %u leases, not 2", n);
        return false;
    }
    return true;
}

/* The reference: one table lock serializes everyone; the lowest free port of each range is
 * found by scanning the range. Prepared like ours, and its rows reference the VM like ours,
 * so the comparison is of the allocation scheme. (SQL outside broker/db/ is allowed here:
 * this is the thing being compared against.) */
static bool
naive_lease_tx(DbConn *conn, void *data, GError **error)
{
    Client *c = data;
    g_autofree char *vf = g_strdup_printf("%u", VNC_FIRST);
    g_autofree char *vl = g_strdup_printf("%u", VNC_FIRST + PAIRS - 1);
    g_autofree char *wf = g_strdup_printf("%u", WS_FIRST);
    g_autofree char *wl = g_strdup_printf("%u", WS_FIRST + PAIRS - 1);
    const char *pick_params[] = { c->b->host_id, vf, vl, wf, wl };
    g_autoptr(PGresult) lock = NULL, pick = NULL, ins = NULL;

    lock = db_exec_prepared(conn, PGRES_COMMAND_OK, "naive_lock",
                            "LOCK TABLE naive_leases IN EXCLUSIVE MODE", 0, NULL, error);
    if (!lock)
        return false;
    pick = db_exec_prepared(conn, PGRES_TUPLES_OK, "naive_pick",
        "SELECT (SELECT min(p) FROM generate_series($2::int, $3::int) p WHERE NOT EXISTS"
        "         (SELECT 1 FROM naive_leases n WHERE n.host_id = $1 AND n.port = p)),"
        "       (SELECT min(p) FROM generate_series($4::int, $5::int) p WHERE NOT EXISTS"
        "         (SELECT 1 FROM naive_leases n WHERE n.host_id = $1 AND n.port = p))",
        5, pick_params, error);
    if (!pick)
        return false;
    if (PQgetisnull(pick, 0, 0) || PQgetisnull(pick, 0, 1)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOSPC, "naive: no free pair");
        return false;
    }
    {
        const char *ins_params[] = { c->b->host_id, PQgetvalue(pick, 0, 0),
                                     PQgetvalue(pick, 0, 1), c->b->vm_ids[c->client] };
        ins = db_exec_prepared(conn, PGRES_COMMAND_OK, "naive_insert",
            "INSERT INTO naive_leases (host_id, port, kind, vm_id)"
            " VALUES ($1, $2::int, 'vnc', $4), ($1, $3::int, 'ws', $4)", 4, ins_params, error);
    }
    return ins != NULL;
}

static bool
naive_release_tx(DbConn *conn, void *data, GError **error)
{
    Client *c = data;
    const char *params[] = { c->b->vm_ids[c->client] };
    g_autoptr(PGresult) res = db_exec_prepared(conn, PGRES_COMMAND_OK, "naive_delete",
        "DELETE FROM naive_leases WHERE vm_id = $1", 1, params, error);

    return res != NULL;
}

static gpointer
client_main(gpointer data)
{
    Client *c = data;

    while (!g_atomic_int_get(&c->b->stop)) {
        g_autoptr(GError) err = NULL;

        if (!db_pool_transaction(c->b->pool, c->naive ? naive_lease_tx : lease_tx, c, &err) ||
            !db_pool_transaction(c->b->pool, c->naive ? naive_release_tx : release_tx, c,
                                 &err)) {
            c->error = g_strdup(err->message);
            return NULL;
        }
        c->cycles++;
    }
    return NULL;
}

/* Cycles per second of @nclients clients for @seconds. */
static double
run(Bench *b, int nclients, bool naive, double seconds)
{
    Client clients[MAX_CLIENTS] = { 0 };
    GThread *threads[MAX_CLIENTS];
    gint64 start, end;
    guint64 total = 0;

    g_atomic_int_set(&b->stop, 0);
    start = g_get_monotonic_time();
    for (int i = 0; i < nclients; i++) {
        clients[i] = (Client) { .b = b, .client = i, .naive = naive };
        threads[i] = g_thread_new("client", client_main, &clients[i]);
    }
    g_usleep((gulong) (seconds * G_USEC_PER_SEC));
    g_atomic_int_set(&b->stop, 1);
    for (int i = 0; i < nclients; i++)
        g_thread_join(threads[i]);
    end = g_get_monotonic_time();
    for (int i = 0; i < nclients; i++) {
        if (clients[i].error) {
            fprintf(stderr, "bench/alloc: client %d (%s): %s\n", i,
                    naive ? "naive" : "skip-locked", clients[i].error);
            exit(1);
        }
        total += clients[i].cycles;
    }
    return (double) total * G_USEC_PER_SEC / (double) (end - start);
}

static double
median3(const double v[ROUNDS])
{
    double a = v[0], b = v[1], c = v[2];

    if ((a <= b && b <= c) || (c <= b && b <= a))
        return b;
    if ((b <= a && a <= c) || (c <= a && a <= b))
        return a;
    return c;
}

static void
setup(Bench *b, char **ret_host_id)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(DbConn) conn = db_pool_acquire(b->pool, &err);
    g_autofree char *user_id = NULL;
    DbPortRanges ranges = { VNC_FIRST, VNC_FIRST + PAIRS - 1, WS_FIRST, WS_FIRST + PAIRS - 1 };

    if (!conn)
        die("connect", err);
    if (!db_migrate_apply(conn, NULL, &err))
        die("migrate", err);
    if (!db_hosts_ensure(conn, "local", "qemu:///system", ret_host_id, &err) ||
        !db_ports_sync(conn, *ret_host_id, &ranges, &err) ||
        !db_templates_upsert(conn, "bench", "iso", "bench\n", NULL, &err) ||
        !db_users_insert(conn, "bench", "user", NULL, &user_id, &err))
        die("setup", err);
    {
        g_autoptr(PGresult) res = db_exec(conn, PGRES_COMMAND_OK,
            "CREATE TABLE naive_leases (host_id uuid NOT NULL, port integer NOT NULL,"
            " kind text NOT NULL, vm_id uuid NOT NULL REFERENCES vms (id),"
            " PRIMARY KEY (host_id, port))",
            0, NULL, &err);
        if (!res)
            die("naive table", err);
    }
    /* One VM per client, stopped: each client leases to and releases from its own. */
    b->host_id = *ret_host_id;
    for (int i = 0; i < MAX_CLIENTS; i++) {
        g_autofree char *name = g_strdup_printf("bench-%d", i);
        DbVmSpec spec = { .name = name, .owner_id = user_id, .template_name = "bench",
                          .host_id = *ret_host_id };
        g_autoptr(DbVm) vm = NULL, stopped = NULL;
        g_autoptr(PGresult) begin = db_exec(conn, PGRES_COMMAND_OK, "BEGIN", 0, NULL, &err);
        g_autoptr(PGresult) commit = NULL;

        vm = begin ? db_vms_insert(conn, &spec, NULL, &err) : NULL;
        stopped = vm ? db_vms_set_state(conn, vm->id, DB_VM_STOPPED, "bench", 0, &err) : NULL;
        commit = stopped ? db_exec(conn, PGRES_COMMAND_OK, "COMMIT", 0, NULL, &err) : NULL;
        if (!commit)
            die("vm", err);
        b->vm_ids[i] = g_strdup(vm->id);
    }
}

int
main(int argc, char **argv)
{
    const int levels[] = { 1, 8, 64 };
    double seconds = argc > 1 ? g_ascii_strtod(argv[1], NULL) : 2.0;
    TestPgCluster *cluster = NULL;
    g_autofree char *conninfo = NULL, *host_id = NULL;
    DbPoolOptions opts = { .size = MAX_CLIENTS, .acquire_timeout_ms = 60000,
                           .statement_timeout_ms = 30000, .max_retries = 5 };
    Bench b = { 0 };

    if (seconds <= 0)
        seconds = 2.0;
    if (g_getenv("VMB_PG_HOST")) {
        conninfo = test_pg_create_db("bench_alloc");
    } else {
        cluster = test_pg_private_start();
        conninfo = test_pg_private_conninfo(cluster, "postgres");
    }
    opts.conninfo = conninfo;
    b.pool = db_pool_new(&opts);
    setup(&b, &host_id);

    printf("bench/alloc: lease+release cycles/s, %u port pairs, median of %d alternating "
           "runs of %.1f s\n", PAIRS, ROUNDS, seconds);
    printf("%8s %14s %14s %8s\n", "clients", "skip-locked/s", "naive/s", "ratio");
    for (size_t i = 0; i < G_N_ELEMENTS(levels); i++) {
        double ours[ROUNDS], naive[ROUNDS];

        /* Alternating, so a burst of load elsewhere on the machine hits both sides. */
        for (int r = 0; r < ROUNDS; r++) {
            ours[r] = run(&b, levels[i], false, seconds);
            naive[r] = run(&b, levels[i], true, seconds);
        }
        printf("%8d %14.0f %14.0f %7.2fx\n", levels[i], median3(ours), median3(naive),
               median3(ours) / median3(naive));
        fflush(stdout);
    }
    {
        g_autoptr(GError) err = NULL;
        g_autoptr(DbConn) conn = db_pool_acquire(b.pool, &err);
        DbPortCounts counts = { 0 };
        if (!conn || !db_ports_count(conn, host_id, NULL, &counts, &err))
            die("count", err);
        if (counts.leased != 0) {
            fprintf(stderr, "bench/alloc: %u leases left behind\n", counts.leased);
            return 1;
        }
    }
    for (int i = 0; i < MAX_CLIENTS; i++)
        g_free(b.vm_ids[i]);
    db_pool_free(b.pool);
    if (cluster)
        test_pg_private_stop(cluster);
    else
        test_pg_drop_db(conninfo);
    return 0;
}
