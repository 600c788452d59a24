// SPDX-License-Identifier: LGPL-2.1-or-later
// Port leases on real PostgreSQL: range sync, exhaustion, cool-down, quarantine of ports a
// foreign socket holds, 64 concurrent clients, a backend killed inside a lease, and the
// holder-key migration (0006) keeping the leases a VM holds.
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "db-migrate.h"
#include "db-ports.h"
#include "db-vms.h"
#include "test-db.h"
#include "test-pg.h"
#include "test.h"
#include "vmb-error.h"
#include "vmb-net.h"

/* Ports below the kernel's ephemeral range, so no outgoing connection lands on them. */
#define VNC_FIRST 29500u
#define WS_FIRST 29700u

typedef struct {
    TestDb *db;
    const char *name;
    const DbPortLeaseOptions *lease;
    unsigned cooldown_s;
    const char *vm_id;
    DbVm *vm;           /* out of create_tx */
} VmTx;

static bool
create_tx(DbConn *conn, void *data, GError **error)
{
    VmTx *t = data;
    DbVmSpec spec = { .name = t->name, .owner_id = t->db->alice_id, .template_name = "tiny",
                      .host_id = t->db->host_id };

    g_clear_pointer(&t->vm, db_vm_free); /* a retried attempt starts over */
    t->vm = db_vms_insert(conn, &spec, t->lease, error);
    return t->vm != NULL;
}

static bool
delete_tx(DbConn *conn, void *data, GError **error)
{
    VmTx *t = data;
    return db_vms_delete(conn, t->vm_id, NULL, t->cooldown_s, error);
}

/* Creates VM @name; NULL with @error set on failure. */
static DbVm *
create_vm(TestDb *db, const char *name, const DbPortLeaseOptions *lease, GError **error)
{
    VmTx t = { .db = db, .name = name, .lease = lease };

    if (!db_pool_transaction(db->pool, create_tx, &t, error)) {
        db_vm_free(t.vm);
        return NULL;
    }
    return t.vm;
}

static void
delete_vm(TestDb *db, const char *id, unsigned cooldown_s)
{
    g_autoptr(GError) err = NULL;
    VmTx t = { .db = db, .vm_id = id, .cooldown_s = cooldown_s };

    g_assert_true(db_pool_transaction(db->pool, delete_tx, &t, &err));
    g_assert_no_error(err);
}

static DbPortCounts
counts(TestDb *db, const char *kind)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(DbConn) conn = db_pool_acquire(db->pool, &err);
    DbPortCounts c = { 0 };

    g_assert_nonnull(conn);
    g_assert_true(db_ports_count(conn, db->host_id, kind, &c, &err));
    return c;
}

TEST(sync_adds_removes_and_keeps_leases)
{
    g_autoptr(TestDb) db = test_db_new("ports_sync", 2, VNC_FIRST, WS_FIRST, 5);
    g_autoptr(GError) err = NULL;
    g_autoptr(DbVm) vm = NULL;
    DbPortRanges shrunk = { VNC_FIRST + 2, VNC_FIRST + 4, WS_FIRST + 2, WS_FIRST + 4 };
    DbPortRanges overlap = { 6000, 6100, 6050, 6150 };
    DbPortRanges reversed = { 6000, 5999, 7000, 7001 };

    g_assert_cmpuint(counts(db, NULL).total, ==, 10);
    vm = create_vm(db, "sync1", NULL, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(vm->vnc_port, ==, VNC_FIRST);
    g_assert_cmpuint(vm->ws_port, ==, WS_FIRST);
    {
        g_autoptr(DbConn) conn = db_pool_acquire(db->pool, &err);
        g_assert_true(db_ports_sync(conn, db->host_id, &shrunk, &err));
        g_assert_no_error(err);
        /* Idempotent. */
        g_assert_true(db_ports_sync(conn, db->host_id, &shrunk, &err));
        g_assert_false(db_ports_sync(conn, db->host_id, &overlap, &err));
        g_assert_error(err, VMB_ERROR, VMB_ERROR_CONFIG);
        g_clear_error(&err);
        g_assert_false(db_ports_sync(conn, db->host_id, &reversed, &err));
        g_assert_error(err, VMB_ERROR, VMB_ERROR_CONFIG);
        g_clear_error(&err);
    }
    /* 6 rows in range, plus the VM's two leases that the new ranges no longer hold. */
    g_assert_cmpuint(counts(db, NULL).total, ==, 8);
    g_assert_cmpuint(counts(db, NULL).leased, ==, 2);
    {
        g_autoptr(DbVm) again = NULL;
        g_autoptr(DbConn) conn = db_pool_acquire(db->pool, &err);
        again = db_vms_get(conn, vm->id, NULL, &err);
        g_assert_cmpuint(again->vnc_port, ==, VNC_FIRST);
    }
    /* A new VM gets ports of the new ranges only. */
    {
        g_autoptr(DbVm) vm2 = create_vm(db, "sync2", NULL, &err);
        g_assert_no_error(err);
        g_assert_cmpuint(vm2->vnc_port, ==, VNC_FIRST + 2);
        g_assert_cmpuint(vm2->ws_port, ==, WS_FIRST + 2);
        delete_vm(db, vm2->id, 0);
    }
    /* Released, the out-of-range rows go away. */
    delete_vm(db, vm->id, 0);
    g_assert_cmpuint(counts(db, NULL).total, ==, 6);
    g_assert_cmpuint(counts(db, NULL).leased, ==, 0);
    /* Growing the range back brings them back. */
    {
        DbPortRanges full = { VNC_FIRST, VNC_FIRST + 4, WS_FIRST, WS_FIRST + 4 };
        g_autoptr(DbConn) conn = db_pool_acquire(db->pool, &err);
        g_assert_true(db_ports_sync(conn, db->host_id, &full, &err));
    }
    g_assert_cmpuint(counts(db, NULL).total, ==, 10);
    /* Swapped ranges: the free rows change kind. */
    {
        DbPortRanges swapped = { WS_FIRST, WS_FIRST + 4, VNC_FIRST, VNC_FIRST + 4 };
        g_autoptr(DbConn) conn = db_pool_acquire(db->pool, &err);
        g_assert_true(db_ports_sync(conn, db->host_id, &swapped, &err));
    }
    g_assert_cmpint(test_db_scalar(db, "SELECT count(*) FROM port_leases"
                                       " WHERE kind = 'vnc' AND port >= 29700"), ==, 5);
    g_assert_cmpuint(counts(db, "ws").total, ==, 5);
}

TEST(exhaustion_is_its_own_error_and_cooldown_holds_ports)
{
    g_autoptr(TestDb) db = test_db_new("ports_exhaust", 2, VNC_FIRST, WS_FIRST, 2);
    g_autoptr(GError) err = NULL;
    g_autoptr(DbVm) a = create_vm(db, "ex-a", NULL, &err);
    g_autoptr(DbVm) b = create_vm(db, "ex-b", NULL, &err);
    g_autoptr(DbVm) c = NULL;

    g_assert_no_error(err);
    g_assert_cmpuint(a->vnc_port, !=, b->vnc_port);
    g_assert_cmpuint(a->ws_port, !=, b->ws_port);
    c = create_vm(db, "ex-c", NULL, &err);
    g_assert_null(c);
    g_assert_error(err, VMB_ERROR, VMB_ERROR_EXHAUSTED);
    g_assert_nonnull(strstr(err->message, "no free vnc port: 2 of 2 leased"));
    g_clear_error(&err);
    /* The failed create left nothing behind. */
    g_assert_cmpint(test_db_scalar(db, "SELECT count(*) FROM vms"), ==, 2);
    g_assert_cmpuint(counts(db, NULL).leased, ==, 4);

    /* A release with a cool-down does not make the ports leasable at once. */
    delete_vm(db, a->id, 3600);
    g_assert_cmpuint(counts(db, NULL).cooling, ==, 2);
    c = create_vm(db, "ex-c", NULL, &err);
    g_assert_null(c);
    g_assert_error(err, VMB_ERROR, VMB_ERROR_EXHAUSTED);
    g_assert_nonnull(strstr(err->message, "1 cooling down"));
    g_clear_error(&err);

    /* One without a cool-down does, and hands out exactly its ports. */
    delete_vm(db, b->id, 0);
    c = create_vm(db, "ex-c", NULL, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(c->vnc_port, ==, b->vnc_port);
    g_assert_cmpuint(c->ws_port, ==, b->ws_port);

    /* The cooled-down ports come back once the cool-down is over. */
    test_db_exec(db, "UPDATE port_leases SET cooldown_until = now() - interval '1 s'"
                     " WHERE cooldown_until > now()");
    {
        g_autoptr(DbVm) d = create_vm(db, "ex-d", NULL, &err);
        g_assert_no_error(err);
        g_assert_cmpuint(d->vnc_port, ==, a->vnc_port);
    }
}

static bool
probe_loopback(const char *kind, unsigned port, void *data)
{
    unsigned *probes = data;

    (*probes)++;
    return vmb_net_port_is_free("127.0.0.1", port, NULL);
}

static int
listen_on(unsigned port)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g_assert_cmpint(fd, >=, 0);
    if (bind(fd, (struct sockaddr *) &sin, sizeof(sin)) != 0 || listen(fd, 1) != 0)
        g_error("cannot listen on 127.0.0.1:%u: %s (is something else using it?)", port,
                g_strerror(errno));
    return fd;
}

TEST(port_held_by_foreign_socket_is_quarantined_and_skipped)
{
    g_autoptr(TestDb) db = test_db_new("ports_quarantine", 2, VNC_FIRST, WS_FIRST, 4);
    g_autoptr(GError) err = NULL;
    unsigned probes = 0;
    DbPortLeaseOptions lease = { probe_loopback, &probes, 600 };
    int vnc_fd = listen_on(VNC_FIRST), ws_fd = listen_on(WS_FIRST + 0);
    int vnc_fd2 = listen_on(VNC_FIRST + 1);
    g_autoptr(DbVm) a = create_vm(db, "q-a", &lease, &err);

    g_assert_no_error(err);
    /* The first two vnc ports and the first ws port are ours: skipped. */
    g_assert_cmpuint(a->vnc_port, ==, VNC_FIRST + 2);
    g_assert_cmpuint(a->ws_port, ==, WS_FIRST + 1);
    g_assert_cmpuint(probes, ==, 5);
    g_assert_cmpuint(counts(db, "vnc").quarantined, ==, 2);
    g_assert_cmpuint(counts(db, "ws").quarantined, ==, 1);
    close(vnc_fd);
    close(vnc_fd2);
    close(ws_fd);
    /* Free again, but still in quarantine: not handed out, not even probed. */
    probes = 0;
    {
        g_autoptr(DbVm) b = create_vm(db, "q-b", &lease, &err);
        g_assert_no_error(err);
        g_assert_cmpuint(b->vnc_port, ==, VNC_FIRST + 3);
        g_assert_cmpuint(b->ws_port, ==, WS_FIRST + 2);
        g_assert_cmpuint(probes, ==, 2);
    }
    /* Only quarantined ports left: the error says so. */
    {
        g_autoptr(DbVm) c = create_vm(db, "q-c", &lease, &err);
        g_assert_null(c);
        g_assert_error(err, VMB_ERROR, VMB_ERROR_EXHAUSTED);
        g_assert_nonnull(strstr(err->message, "2 quarantined"));
        g_clear_error(&err);
    }
    /* Once the quarantine is over the ports are probed and leased again. */
    test_db_exec(db, "UPDATE port_leases SET quarantined_until = now() - interval '1 s'"
                     " WHERE quarantined_until IS NOT NULL");
    {
        g_autoptr(DbVm) d = create_vm(db, "q-d", &lease, &err);
        g_assert_no_error(err);
        g_assert_cmpuint(d->vnc_port, ==, VNC_FIRST);
        g_assert_cmpuint(d->ws_port, ==, WS_FIRST);
    }
}

/* --- 64 clients x 200 cycles on 50 pairs --- */

#define STRESS_CLIENTS 64
#define STRESS_CYCLES 200
#define STRESS_PAIRS 50

typedef struct {
    TestDb *db;
    gint holder[65536];        /* the test's own log: client + 1 holding each port, or 0 */
    gint violations;           /* a port found held by another client in that log */
    gint db_mismatches;        /* PostgreSQL disagreed with the VM's own ports */
    gint exhausted;            /* creates refused for want of a free pair */
    gint cycles;               /* completed lease + release cycles */
    gint failures;             /* any other error */
} Stress;

typedef struct {
    Stress *s;
    int client;
} StressClient;

/* Marks @port as held by @client in the test's log; false when another client holds it. */
static bool
log_take(Stress *s, unsigned port, int client)
{
    return g_atomic_int_compare_and_exchange(&s->holder[port], 0, client + 1);
}

static bool
log_give(Stress *s, unsigned port, int client)
{
    return g_atomic_int_compare_and_exchange(&s->holder[port], client + 1, 0);
}

/* What PostgreSQL says @vm holds, compared with what it was given. */
static bool
db_agrees(TestDb *db, const DbVm *vm)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(DbConn) conn = db_pool_acquire(db->pool, &err);
    const char *params[] = { vm->id };
    g_autoptr(PGresult) res = NULL;
    g_autofree char *want = NULL;

    if (!conn)
        return false;
    res = db_exec(conn, PGRES_TUPLES_OK,
        "SELECT string_agg(kind || ':' || port, ',' ORDER BY kind)"
        " FROM port_leases WHERE vm_id = $1", 1, params, &err);
    if (!res)
        return false;
    want = g_strdup_printf("vnc:%u,ws:%u", vm->vnc_port, vm->ws_port);
    return strcmp(PQgetvalue(res, 0, 0), want) == 0;
}

static gpointer
stress_client(gpointer data)
{
    StressClient *c = data;
    Stress *s = c->s;

    for (int cycle = 0; cycle < STRESS_CYCLES;) {
        g_autoptr(GError) err = NULL;
        g_autofree char *name = g_strdup_printf("st-%d-%d", c->client, cycle);
        g_autoptr(DbVm) vm = create_vm(s->db, name, NULL, &err);

        if (!vm) {
            if (g_error_matches(err, VMB_ERROR, VMB_ERROR_EXHAUSTED)) {
                g_atomic_int_inc(&s->exhausted);
                g_thread_yield();
                continue;
            }
            g_printerr("client %d: %s\n", c->client, err->message);
            g_atomic_int_inc(&s->failures);
            return NULL;
        }
        if (!log_take(s, vm->vnc_port, c->client) || !log_take(s, vm->ws_port, c->client))
            g_atomic_int_inc(&s->violations);
        if (!db_agrees(s->db, vm))
            g_atomic_int_inc(&s->db_mismatches);
        /* Given back in the log before the release starts, so a correct allocator can never
         * be blamed for the moment between our release and another client's lease. */
        if (!log_give(s, vm->vnc_port, c->client) || !log_give(s, vm->ws_port, c->client))
            g_atomic_int_inc(&s->violations);
        {
            VmTx t = { .db = s->db, .vm_id = vm->id, .cooldown_s = 0 };
            if (!db_pool_transaction(s->db->pool, delete_tx, &t, &err)) {
                g_printerr("client %d: %s\n", c->client, err->message);
                g_atomic_int_inc(&s->failures);
                return NULL;
            }
        }
        g_atomic_int_inc(&s->cycles);
        cycle++;
    }
    return NULL;
}

TEST(concurrent_clients_never_share_a_port_and_leak_nothing)
{
    g_autofree Stress *s = g_new0(Stress, 1);
    StressClient clients[STRESS_CLIENTS];
    GThread *threads[STRESS_CLIENTS];

    s->db = test_db_new("ports_stress", STRESS_CLIENTS, VNC_FIRST, WS_FIRST, STRESS_PAIRS);
    for (int i = 0; i < STRESS_CLIENTS; i++) {
        clients[i] = (StressClient) { s, i };
        threads[i] = g_thread_new("client", stress_client, &clients[i]);
    }
    for (int i = 0; i < STRESS_CLIENTS; i++)
        g_thread_join(threads[i]);
    g_printerr("cycles %d, refused for exhaustion %d\n", s->cycles, s->exhausted);
    g_assert_cmpint(s->failures, ==, 0);
    g_assert_cmpint(s->violations, ==, 0);
    g_assert_cmpint(s->db_mismatches, ==, 0);
    g_assert_cmpint(s->cycles, ==, STRESS_CLIENTS * STRESS_CYCLES);
    /* More clients than pairs: some creates must have found none free. */
    g_assert_cmpint(s->exhausted, >, 0);
    /* Nothing leaked, nothing lost. */
    g_assert_cmpuint(counts(s->db, NULL).leased, ==, 0);
    g_assert_cmpuint(counts(s->db, NULL).total, ==, 2 * STRESS_PAIRS);
    g_assert_cmpint(test_db_scalar(s->db, "SELECT count(*) FROM vms"), ==, 0);
    for (unsigned p = 0; p < G_N_ELEMENTS(s->holder); p++)
        g_assert_cmpint(s->holder[p], ==, 0);
    test_db_free(s->db);
}

/* --- a backend killed inside the lease transaction --- */

typedef struct {
    TestDb *db;
    DbPortPair leased;   /* what the doomed transaction had leased */
} KillArgs;

static bool
lease_then_die_tx(DbConn *conn, void *data, GError **error)
{
    KillArgs *k = data;
    DbVmSpec spec = { .name = "doomed", .owner_id = k->db->alice_id, .template_name = "tiny",
                      .host_id = k->db->host_id };
    g_autoptr(DbVm) vm = db_vms_insert(conn, &spec, NULL, error);
    g_autofree char *pid = g_strdup_printf("%d", PQbackendPID(conn->pg));
    const char *params[] = { pid };
    g_autoptr(PGconn) killer = NULL;
    g_autoptr(PGresult) res = NULL;

    if (!vm)
        return false;
    k->leased = (DbPortPair) { vm->vnc_port, vm->ws_port };
    killer = PQconnectdb(k->db->conninfo);
    g_assert_cmpint(PQstatus(killer), ==, CONNECTION_OK);
    res = PQexecParams(killer, "SELECT pg_terminate_backend($1::int)", 1, NULL, params, NULL,
                       NULL, 0);
    g_assert_cmpint(PQresultStatus(res), ==, PGRES_TUPLES_OK);
    g_assert_cmpstr(PQgetvalue(res, 0, 0), ==, "t");
    return true; /* the COMMIT that follows finds the session gone */
}

TEST(killed_backend_inside_lease_loses_and_leaks_nothing)
{
    g_autoptr(TestDb) db = test_db_new("ports_kill", 2, VNC_FIRST, WS_FIRST, 3);
    g_autoptr(GError) err = NULL;
    KillArgs k = { .db = db };

    g_assert_false(db_pool_transaction(db->pool, lease_then_die_tx, &k, &err));
    g_assert_error(err, VMB_ERROR, VMB_ERROR_UNAVAILABLE);
    g_clear_error(&err);
    g_assert_cmpuint(k.leased.vnc, ==, VNC_FIRST);
    /* Nothing committed, nothing held, every row still there. */
    g_assert_cmpint(test_db_scalar(db, "SELECT count(*) FROM vms"), ==, 0);
    g_assert_cmpuint(counts(db, NULL).leased, ==, 0);
    g_assert_cmpuint(counts(db, NULL).total, ==, 6);
    g_assert_cmpint(test_db_scalar(db, "SELECT count(*) FROM port_leases"
                                       " WHERE released_at IS NOT NULL"
                                       " OR quarantined_until IS NOT NULL"), ==, 0);
    /* The very ports the dead transaction had are the next ones handed out. */
    {
        g_autoptr(DbVm) vm = create_vm(db, "after", NULL, &err);
        g_assert_no_error(err);
        g_assert_cmpuint(vm->vnc_port, ==, k.leased.vnc);
        g_assert_cmpuint(vm->ws_port, ==, k.leased.ws);
    }
}

/* --- backends killed at random under load --- */

#define FAULT_CLIENTS 8
#define FAULT_CYCLES 40

typedef struct {
    Stress s;           /* shared counters and log */
    gint done;          /* clients finished */
    gint kills;         /* backends terminated */
    gint unavailable;   /* operations that failed with a lost connection */
} Fault;

static gpointer
fault_client(gpointer data)
{
    StressClient *c = data;
    Fault *f = (Fault *) c->s;
    Stress *s = c->s;

    for (int cycle = 0; cycle < FAULT_CYCLES;) {
        g_autoptr(GError) err = NULL;
        g_autofree char *name = g_strdup_printf("f-%d-%d", c->client, cycle);
        g_autoptr(DbVm) vm = create_vm(s->db, name, NULL, &err);

        if (!vm) {
            if (g_error_matches(err, VMB_ERROR, VMB_ERROR_EXHAUSTED)) {
                g_thread_yield();
                continue;
            }
            if (g_error_matches(err, VMB_ERROR, VMB_ERROR_UNAVAILABLE)) {
                /* The COMMIT may or may not have happened: the final sweep finds out. */
                g_atomic_int_inc(&f->unavailable);
                cycle++;
                continue;
            }
            g_printerr("client %d: %s\n", c->client, err->message);
            g_atomic_int_inc(&s->failures);
            break;
        }
        if (!log_take(s, vm->vnc_port, c->client) || !log_take(s, vm->ws_port, c->client))
            g_atomic_int_inc(&s->violations);
        if (!log_give(s, vm->vnc_port, c->client) || !log_give(s, vm->ws_port, c->client))
            g_atomic_int_inc(&s->violations);
        for (;;) {
            VmTx t = { .db = s->db, .vm_id = vm->id, .cooldown_s = 0 };
            g_clear_error(&err);
            if (db_pool_transaction(s->db->pool, delete_tx, &t, &err) ||
                g_error_matches(err, VMB_ERROR, VMB_ERROR_NOT_FOUND))
                break;
            if (!g_error_matches(err, VMB_ERROR, VMB_ERROR_UNAVAILABLE)) {
                g_printerr("client %d: %s\n", c->client, err->message);
                g_atomic_int_inc(&s->failures);
                break;
            }
            g_atomic_int_inc(&f->unavailable);
        }
        cycle++;
    }
    g_atomic_int_inc(&f->done);
    return NULL;
}

TEST(backends_killed_under_load_leak_nothing)
{
    g_autofree Fault *f = g_new0(Fault, 1);
    StressClient clients[FAULT_CLIENTS];
    GThread *threads[FAULT_CLIENTS];
    g_autoptr(PGconn) killer = NULL;
    g_autoptr(GError) err = NULL;

    f->s.db = test_db_new("ports_faults", FAULT_CLIENTS, VNC_FIRST, WS_FIRST, 20);
    killer = PQconnectdb(f->s.db->conninfo);
    g_assert_cmpint(PQstatus(killer), ==, CONNECTION_OK);
    for (int i = 0; i < FAULT_CLIENTS; i++) {
        clients[i] = (StressClient) { &f->s, i };
        threads[i] = g_thread_new("client", fault_client, &clients[i]);
    }
    /* Terminate one of the pool's busy sessions, whichever, until the clients are done. */
    while (g_atomic_int_get(&f->done) < FAULT_CLIENTS) {
        g_autoptr(PGresult) r = PQexec(killer,
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM"
            " (SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            "  AND application_name = 'vmbroker' AND state <> 'idle'"
            "  ORDER BY random() LIMIT 1) AS victim");
        g_assert_cmpint(PQresultStatus(r), ==, PGRES_TUPLES_OK);
        f->kills += (gint) strtol(PQgetvalue(r, 0, 0), NULL, 10);
        g_usleep(20000);
    }
    for (int i = 0; i < FAULT_CLIENTS; i++)
        g_thread_join(threads[i]);
    g_printerr("kills %d, operations that lost their connection %d\n", f->kills,
               f->unavailable);
    g_assert_cmpint(f->s.failures, ==, 0);
    g_assert_cmpint(f->s.violations, ==, 0);
    g_assert_cmpint(f->kills, >, 0);
    /* Creates whose COMMIT went through before the kill left VMs: each holds exactly its
     * own pair (the schema says so); deleting them frees everything. */
    {
        g_autoptr(DbConn) conn = db_pool_acquire(f->s.db->pool, &err);
        g_autoptr(GPtrArray) left = db_vms_list(conn, NULL, &err);
        g_assert_no_error(err);
        g_assert_cmpint(test_db_scalar(f->s.db, "SELECT count(*) FROM port_leases"
                                                " WHERE vm_id IS NOT NULL"), ==, 2 * left->len);
        g_clear_pointer(&conn, db_conn_release);
        for (unsigned i = 0; i < left->len; i++)
            delete_vm(f->s.db, ((DbVm *) left->pdata[i])->id, 0);
    }
    g_assert_cmpuint(counts(f->s.db, NULL).leased, ==, 0);
    g_assert_cmpuint(counts(f->s.db, NULL).total, ==, 40);
    g_assert_cmpint(test_db_scalar(f->s.db, "SELECT count(*) FROM vms"), ==, 0);
    test_db_free(f->s.db);
}

/* Applies the embedded migrations up to and including version @upto on @pg. */
static void
apply_migrations_upto(PGconn *pg, int upto)
{
    for (size_t i = 0; i < db_migrations_count && db_migrations[i].version <= upto; i++) {
        g_autoptr(PGresult) r = PQexec(pg, db_migrations[i].sql);
        if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
            g_error("migration %d: %s", db_migrations[i].version, PQerrorMessage(pg));
    }
}

TEST(holder_key_migration_keeps_existing_leases)
{
    /* A database at version 5 with a VM holding its ports, then 0006 (per-kind holder
     * keys): the VM and its leases survive, and the keys guard them as before. */
    g_autofree char *conninfo = test_pg_create_db("vms_upgrade");
    g_autoptr(PGconn) pg = PQconnectdb(conninfo);
    g_autoptr(PGresult) r = NULL;
    g_autofree char *state = NULL;
    TestDb db = { .conninfo = conninfo };

    g_assert_cmpint(PQstatus(pg), ==, CONNECTION_OK);
    g_assert_cmpint(db_migrate_known_version(), >=, 6);
    g_assert_cmpstr(db_migrations[5].name, ==, "port_holder_keys");
    apply_migrations_upto(pg, 5);
    r = PQexec(pg,
        "INSERT INTO hosts (id, name, uri) VALUES ('00000000-0000-0000-0000-00000000000a',"
        "  'local', 'x');"
        "INSERT INTO port_leases (host_id, port, kind) VALUES"
        "  ('00000000-0000-0000-0000-00000000000a', 20000, 'vnc'),"
        "  ('00000000-0000-0000-0000-00000000000a', 20001, 'vnc'),"
        "  ('00000000-0000-0000-0000-00000000000a', 21000, 'ws');"
        "INSERT INTO users (id, username, role) VALUES"
        "  ('00000000-0000-0000-0000-0000000000bb', 'u', 'user');"
        "INSERT INTO templates (name, kind, sha256, definition)"
        "  VALUES ('t', 'iso', repeat('a', 64), 'x');"
        "BEGIN;"
        "UPDATE port_leases SET vm_id = '00000000-0000-0000-0000-000000000110',"
        "  leased_at = now() WHERE port IN (20000, 21000);"
        "INSERT INTO vms (id, name, owner_id, template_name, template_version, host_id,"
        "  vnc_port, ws_port) VALUES ('00000000-0000-0000-0000-000000000110', 'vm1',"
        "  '00000000-0000-0000-0000-0000000000bb', 't', 1,"
        "  '00000000-0000-0000-0000-00000000000a', 20000, 21000);"
        "COMMIT;"
        /* As db_migrate_apply would have recorded versions 1..5. */
        "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
        "  applied_at timestamptz NOT NULL DEFAULT now());"
        "INSERT INTO schema_migrations (version, name) SELECT g, 'old' FROM generate_series(1, 5) g");
    g_assert_cmpint(PQresultStatus(r), ==, PGRES_COMMAND_OK);
    {
        DbPoolOptions opts = { .conninfo = conninfo, .size = 2, .acquire_timeout_ms = 10000 };
        g_autoptr(GError) err = NULL;
        int applied = 0;
        db.pool = db_pool_new(&opts);
        {
            g_autoptr(DbConn) conn = db_pool_acquire(db.pool, &err);
            g_assert_true(db_migrate_apply(conn, &applied, &err));
            g_assert_no_error(err);
        }
        g_assert_cmpint(applied, ==, db_migrate_known_version() - 5);
        g_assert_cmpint(test_db_scalar(&db, "SELECT count(*) FROM vms v JOIN port_leases l"
                                            " ON l.vm_id = v.id"), ==, 2);
        /* Pointing the VM at a port it does not hold, or at the other kind's port, fails. */
        state = test_db_fails_with(&db, "UPDATE vms SET vnc_port = 20001");
        g_assert_cmpstr(state, ==, "23503");
        g_free(state);
        state = test_db_fails_with(&db, "UPDATE vms SET vnc_port = ws_port, ws_port = vnc_port");
        g_assert_cmpstr(state, ==, "23503");
        db_pool_free(db.pool);
    }
    g_clear_pointer(&pg, PQfinish);
    test_pg_drop_db(conninfo);
}

TEST_MAIN()
