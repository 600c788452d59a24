// SPDX-License-Identifier: LGPL-2.1-or-later
// bench/alloc: port lease + release cycles per second through db_ports_* (FOR UPDATE SKIP
// LOCKED) against a naive allocator (LOCK TABLE; SELECT min(port) ...; INSERT) in the same
// run, on the same PostgreSQL, at 1, 8 and 64 clients. Uses the runner's cluster when
// VMB_PG_HOST is set, else starts a private one with contrib/pg-private.
//   bench-alloc [SECONDS_PER_RUN]   (default 2; each cell is the median of 3 runs)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    long postmaster;             /* for server CPU accounting; 0 when not local */
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

/* CPU time (clock ticks) of the PostgreSQL server whose postmaster is @postmaster: its own,
 * its reaped children's, and its live backends'. 0 when it cannot be read. */
static guint64
server_cpu_ticks(long postmaster)
{
    g_autoptr(GDir) proc = g_dir_open("/proc", 0, NULL);
    const char *name;
    guint64 total = 0;

    if (!proc || postmaster <= 0)
        return 0;
    while ((name = g_dir_read_name(proc))) {
        g_autofree char *path = NULL, *text = NULL;
        g_auto(GStrv) f = NULL;
        const char *rest;
        long pid;

        if (!g_ascii_isdigit(name[0]))
            continue;
        pid = strtol(name, NULL, 10);
        path = g_strdup_printf("/proc/%s/stat", name);
        if (!g_file_get_contents(path, &text, NULL, NULL) || !(rest = strrchr(text, ')')))
            continue;
        /* After "pid (comm)": state ppid ... utime(14) stime(15) cutime(16) cstime(17). */
        f = g_strsplit(rest + 2, " ", 0);
        if (g_strv_length(f) < 15)
            continue;
        if (pid == postmaster)
            total += g_ascii_strtoull(f[11], NULL, 10) + g_ascii_strtoull(f[12], NULL, 10) +
                     g_ascii_strtoull(f[13], NULL, 10) + g_ascii_strtoull(f[14], NULL, 10);
        else if (strtol(f[1], NULL, 10) == postmaster)
            total += g_ascii_strtoull(f[11], NULL, 10) + g_ascii_strtoull(f[12], NULL, 10);
    }
    return total;
}

/* The postmaster's pid from DATA/postmaster.pid, 0 when unknown. */
static long
postmaster_pid(const char *data_dir)
{
    g_autofree char *path = data_dir ? g_build_filename(data_dir, "postmaster.pid", NULL) : NULL;
    g_autofree char *text = NULL;

    if (!path || !g_file_get_contents(path, &text, NULL, NULL))
        return 0;
    return strtol(text, NULL, 10);
}

typedef struct {
    double per_s;       /* cycles per second (wall clock) */
    double server_us;   /* PostgreSQL CPU per cycle, µs; < 0 when unknown */
} Result;

/* Cycles per second of @nclients clients for @seconds, and the server's CPU per cycle. */
static Result
run(Bench *b, int nclients, bool naive, double seconds)
{
    Client clients[MAX_CLIENTS] = { 0 };
    GThread *threads[MAX_CLIENTS];
    gint64 start, end;
    guint64 total = 0;

    guint64 cpu_before = server_cpu_ticks(b->postmaster), cpu_after;
    Result r;

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
    cpu_after = server_cpu_ticks(b->postmaster);
    for (int i = 0; i < nclients; i++) {
        if (clients[i].error) {
            fprintf(stderr, "bench/alloc: client %d (%s): %s\n", i,
                    naive ? "naive" : "skip-locked", clients[i].error);
            exit(1);
        }
        total += clients[i].cycles;
    }
    r.per_s = (double) total * G_USEC_PER_SEC / (double) (end - start);
    r.server_us = cpu_before && total ? (double) (cpu_after - cpu_before) * 1e6 /
                                        (double) sysconf(_SC_CLK_TCK) / (double) total : -1;
    return r;
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
    if (!db_hosts_ensure_configured(conn, &(DbHostSpec) { DB_HOST_CONFIGURED, "qemu:///system",
                                                          "127.0.0.1", ranges, 0 },
                                    ret_host_id, &err) ||
        !db_ports_sync(conn, *ret_host_id, &ranges, &err) ||
        !db_templates_upsert(conn, "bench", "iso", "bench\n", NULL, &err) ||
        !db_users_insert(conn, "bench", DB_ROLE_USER, NULL, &user_id, &err))
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
    b.postmaster = postmaster_pid(cluster ? NULL : g_getenv("VMB_PG_DATA"));
    if (cluster) {
        g_autofree char *data = g_build_filename(cluster->dir, "data", NULL);
        b.postmaster = postmaster_pid(data);
    }
    opts.conninfo = conninfo;
    b.pool = db_pool_new(&opts);
    setup(&b, &host_id);

    printf("bench/alloc: lease+release cycles/s, %u port pairs, median of %d alternating "
           "runs of %.1f s;\n  server us/cycle = PostgreSQL CPU per cycle (less sensitive to "
           "other load on the machine)\n", PAIRS, ROUNDS, seconds);
    printf("%7s %13s %9s %6s | %15s %9s %6s\n", "clients", "skip-locked/s", "naive/s",
           "ratio", "server us/cycle", "naive us", "ratio");
    for (size_t i = 0; i < G_N_ELEMENTS(levels); i++) {
        double ours[ROUNDS], naive[ROUNDS], ours_us[ROUNDS], naive_us[ROUNDS];

        /* Alternating, so a burst of load elsewhere on the machine hits both sides. */
        for (int r = 0; r < ROUNDS; r++) {
            Result o = run(&b, levels[i], false, seconds);
            Result n = run(&b, levels[i], true, seconds);
            ours[r] = o.per_s;
            ours_us[r] = o.server_us;
            naive[r] = n.per_s;
            naive_us[r] = n.server_us;
        }
        printf("%7d %13.0f %9.0f %5.2fx | %15.0f %9.0f %5.2fx\n", levels[i], median3(ours),
               median3(naive), median3(ours) / median3(naive), median3(ours_us),
               median3(naive_us), median3(naive_us) / median3(ours_us));
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
