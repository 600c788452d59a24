// SPDX-License-Identifier: LGPL-2.1-or-later
// broker/db/db-vms.c and the schema's own guarantees: impossible states are refused by
// PostgreSQL itself, whatever SQL tries to store them.
#include <string.h>

#include "db-audit.h"
#include "db-hosts.h"
#include "db-limits.h"
#include "db-ports.h"
#include "db-templates.h"
#include "db-vms.h"
#include "test-db.h"
#include "test.h"
#include "vmb-error.h"

#define VNC_FIRST 29600u
#define WS_FIRST 29800u

typedef struct {
    TestDb *db;
    DbVmSpec spec;
    const char *id;
    DbVmState to;
    const char *reason;
    DbVm *vm;
} Tx;

static bool
insert_tx(DbConn *conn, void *data, GError **error)
{
    Tx *t = data;

    g_clear_pointer(&t->vm, db_vm_free);
    t->vm = db_vms_insert(conn, &t->spec, NULL, error);
    return t->vm != NULL;
}

static bool
set_state_tx(DbConn *conn, void *data, GError **error)
{
    Tx *t = data;

    g_clear_pointer(&t->vm, db_vm_free);
    t->vm = db_vms_set_state(conn, t->id, t->to, t->reason, 0, error);
    return t->vm != NULL;
}

static bool
start_tx(DbConn *conn, void *data, GError **error)
{
    Tx *t = data;

    g_clear_pointer(&t->vm, db_vm_free);
    t->vm = db_vms_start(conn, t->id, NULL, error);
    return t->vm != NULL;
}

static bool
delete_tx(DbConn *conn, void *data, GError **error)
{
    Tx *t = data;
    return db_vms_delete(conn, t->id, t->spec.owner_id, 0, error);
}

static DbVm *
insert_vm(TestDb *db, const char *name, const char *owner_id, GError **error)
{
    Tx t = { .db = db, .spec = { .name = name, .owner_id = owner_id, .template_name = "tiny",
                                 .host_id = db->host_id } };

    if (!db_pool_transaction(db->pool, insert_tx, &t, error))
        return NULL;
    return t.vm;
}

static DbVm *
set_state(TestDb *db, const char *id, DbVmState to, const char *reason, GError **error)
{
    Tx t = { .db = db, .id = id, .to = to, .reason = reason };

    if (!db_pool_transaction(db->pool, set_state_tx, &t, error))
        return NULL;
    return t.vm;
}

static void
assert_sqlstate(TestDb *db, const char *want, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

/* Runs the formatted SQL, rolled back, and checks the SQLSTATE it fails with. */
static void
assert_sqlstate(TestDb *db, const char *want, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *sql = NULL;
    g_autofree char *got = NULL;

    va_start(ap, fmt);
    sql = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    got = test_db_fails_with(db, sql);
    if (strcmp(got, want) != 0)
        g_error("%s: SQLSTATE '%s', expected '%s'", sql, got, want);
}

TEST(schema_refuses_impossible_states)
{
    g_autoptr(TestDb) db = test_db_new("vms_schema", 2, VNC_FIRST, WS_FIRST, 4);
    g_autoptr(GError) err = NULL;
    g_autoptr(DbVm) a = insert_vm(db, "a", db->alice_id, &err);
    g_autoptr(DbVm) b = insert_vm(db, "b", db->bob_id, &err);

    g_assert_no_error(err);
    /* The statements themselves are fine: */
    assert_sqlstate(db, "", "UPDATE vms SET state_reason = 'x' WHERE id = '%s'", a->id);
    /* A port leased twice: a second row for it, whatever the kind ... */
    assert_sqlstate(db, "23505", "INSERT INTO port_leases (host_id, port, kind)"
                    " VALUES ('%s', %u, 'ws')", db->host_id, a->vnc_port);
    /* ... or a second VM pointing at it. */
    assert_sqlstate(db, "23503", "UPDATE vms SET vnc_port = %u WHERE id = '%s'",
                    a->vnc_port, b->id);
    /* A VM's port that is not leased to it. */
    assert_sqlstate(db, "23503", "UPDATE vms SET vnc_port = %u WHERE id = '%s'",
                    VNC_FIRST + 3, a->id);
    /* Ports of the wrong kind. */
    assert_sqlstate(db, "23503", "UPDATE vms SET vnc_port = ws_port, ws_port = vnc_port"
                    " WHERE id = '%s'", a->id);
    /* A lease given up, or its row deleted, while its VM still names the port. */
    assert_sqlstate(db, "23503", "UPDATE port_leases SET vm_id = NULL, leased_at = NULL"
                    " WHERE vm_id = '%s' AND kind = 'ws'", a->id);
    assert_sqlstate(db, "23503", "DELETE FROM port_leases WHERE vm_id = '%s' AND kind = 'vnc'",
                    a->id);
    /* One port and not the other. */
    assert_sqlstate(db, "23514", "UPDATE vms SET ws_port = NULL WHERE id = '%s'", a->id);
    /* A lease whose VM is gone, by deleting the VM ... */
    assert_sqlstate(db, "23503", "DELETE FROM vms WHERE id = '%s'", a->id);
    /* ... or by pointing a lease at no VM. */
    assert_sqlstate(db, "23503", "UPDATE port_leases SET vm_id = gen_random_uuid(),"
                    " leased_at = now() WHERE port = %u", VNC_FIRST + 3);
    /* A lease with no holder but a lease time, or the reverse. */
    assert_sqlstate(db, "23514", "UPDATE port_leases SET leased_at = now() WHERE port = %u",
                    VNC_FIRST + 3);
    /* Two leases of one kind for one VM. */
    assert_sqlstate(db, "23505", "UPDATE port_leases SET vm_id = '%s', leased_at = now()"
                    " WHERE port = %u", a->id, VNC_FIRST + 3);
    /* States: unknown, stopped with ports, running or paused without. */
    assert_sqlstate(db, "23514", "UPDATE vms SET state = 'hibernating' WHERE id = '%s'", a->id);
    assert_sqlstate(db, "23514", "UPDATE vms SET state = 'paused', vnc_port = NULL,"
                    " ws_port = NULL WHERE id = '%s'", a->id);
    assert_sqlstate(db, "23514", "UPDATE vms SET state = 'stopped' WHERE id = '%s'", a->id);
    assert_sqlstate(db, "23514", "UPDATE vms SET state = 'running', vnc_port = NULL,"
                    " ws_port = NULL WHERE id = '%s'", a->id);
    /* A console ticket may live 60 s at most. */
    assert_sqlstate(db, "23514", "INSERT INTO console_tickets (secret_hash, user_id, vm_id,"
                    " expires_at) VALUES (repeat('a', 64), '%s', '%s', now() + interval '61 s')",
                    db->alice_id, a->id);
    assert_sqlstate(db, "", "INSERT INTO console_tickets (secret_hash, user_id, vm_id,"
                    " expires_at) VALUES (repeat('a', 64), '%s', '%s', now() + interval '60 s')",
                    db->alice_id, a->id);
}

/* Paused and resumed: ports kept, a new reason taken, the start time kept. */
static void
pause_and_resume(TestDb *db, const char *id, guint vnc_port)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(DbVm) before = NULL;
    g_autoptr(DbVm) paused = NULL;
    DbVm *now = NULL;

    now = set_state(db, id, DB_VM_PAUSED, "paused outside vmbroker (virsh suspend)", &err);
    g_assert_no_error(err);
    g_assert_cmpint(now->state, ==, DB_VM_PAUSED);
    g_assert_cmpuint(now->vnc_port, ==, vnc_port);
    db_vm_free(now);
    now = set_state(db, id, DB_VM_PAUSED, "paused by libvirt: I/O error", &err);
    g_assert_no_error(err);
    g_assert_cmpstr(now->state_reason, ==, "paused by libvirt: I/O error");
    db_vm_free(now);
    g_assert_null(set_state(db, id, DB_VM_CREATING, NULL, &err));
    g_assert_error(err, VMB_ERROR, VMB_ERROR_CONFLICT);
    g_clear_error(&err);
    before = set_state(db, id, DB_VM_RUNNING, NULL, &err);
    g_assert_no_error(err);
    g_assert_null(before->state_reason);
    paused = set_state(db, id, DB_VM_PAUSED, "paused by libvirt: internal error", &err);
    g_assert_no_error(err);
    now = set_state(db, id, DB_VM_RUNNING, NULL, &err);
    g_assert_no_error(err);
    g_assert_true(g_date_time_equal(now->started_at, before->started_at));
    db_vm_free(now);
    g_clear_pointer(&paused, db_vm_free);
    paused = set_state(db, id, DB_VM_PAUSED, "paused by libvirt: internal error", &err);
    g_assert_no_error(err);
}

/* A paused VM is stopped from paused; stopping releases the ports. */
static void
stop_from_paused(TestDb *db, const char *id)
{
    g_autoptr(GError) err = NULL;
    DbVm *now = NULL;

    now = set_state(db, id, DB_VM_STOPPING, "user", &err);
    g_assert_no_error(err);
    db_vm_free(now);
    g_assert_null(set_state(db, id, DB_VM_PAUSED, NULL, &err));
    g_assert_error(err, VMB_ERROR, VMB_ERROR_CONFLICT);
    g_clear_error(&err);
    now = set_state(db, id, DB_VM_STOPPED, "reaper", &err);
    g_assert_no_error(err);
    g_assert_cmpint(now->state, ==, DB_VM_STOPPED);
    g_assert_cmpstr(now->state_reason, ==, "reaper");
    g_assert_cmpuint(now->vnc_port, ==, 0);
    g_assert_cmpuint(now->ws_port, ==, 0);
    g_assert_nonnull(now->stopped_at);
    db_vm_free(now);
    /* Stopping released the ports. */
    g_assert_cmpint(test_db_scalar(db, "SELECT count(*) FROM port_leases"
                                       " WHERE vm_id IS NOT NULL"), ==, 0);
    g_assert_null(set_state(db, id, DB_VM_STOPPED, NULL, &err));
    g_assert_error(err, VMB_ERROR, VMB_ERROR_CONFLICT);
    g_clear_error(&err);
    g_assert_null(set_state(db, id, DB_VM_RUNNING, NULL, &err));
    g_assert_error(err, VMB_ERROR, VMB_ERROR_CONFLICT);
    g_clear_error(&err);
}

/* Start again: fresh ports, back in creating. */
static void
start_again(TestDb *db, const char *id)
{
    g_autoptr(GError) err = NULL;
    Tx t = { .db = db, .id = id };

    g_assert_true(db_pool_transaction(db->pool, start_tx, &t, &err));
    g_assert_no_error(err);
    g_assert_cmpint(t.vm->state, ==, DB_VM_CREATING);
    g_assert_cmpuint(t.vm->vnc_port, !=, 0);
    g_assert_cmpuint(t.vm->ws_port, !=, 0);
    g_assert_null(t.vm->state_reason);
    db_vm_free(t.vm);
    /* Not twice. */
    t.vm = NULL;
    g_assert_false(db_pool_transaction(db->pool, start_tx, &t, &err));
    g_assert_error(err, VMB_ERROR, VMB_ERROR_CONFLICT);
    g_clear_error(&err);
}

TEST(state_machine)
{
    g_autoptr(TestDb) db = test_db_new("vms_states", 2, VNC_FIRST, WS_FIRST, 4);
    g_autoptr(GError) err = NULL;
    g_autoptr(DbVm) vm = insert_vm(db, "sm", db->alice_id, &err);
    DbVm *now = NULL;
    const char *id;

    g_assert_no_error(err);
    id = vm->id;
    g_assert_cmpint(vm->state, ==, DB_VM_CREATING);
    g_assert_cmpstr(vm->owner_name, ==, "alice");
    g_assert_cmpint(vm->template_version, ==, 1);
    g_assert_null(vm->started_at);
    g_assert_nonnull(vm->created_at);

    now = set_state(db, id, DB_VM_RUNNING, NULL, &err);
    g_assert_no_error(err);
    g_assert_cmpint(now->state, ==, DB_VM_RUNNING);
    g_assert_nonnull(now->started_at);
    g_assert_cmpuint(now->vnc_port, ==, vm->vnc_port);
    db_vm_free(now);

    /* Not allowed: back to creating, or running again. */
    g_assert_null(set_state(db, id, DB_VM_CREATING, NULL, &err));
    g_assert_error(err, VMB_ERROR, VMB_ERROR_CONFLICT);
    g_clear_error(&err);
    g_assert_null(set_state(db, id, DB_VM_RUNNING, NULL, &err));
    g_assert_error(err, VMB_ERROR, VMB_ERROR_CONFLICT);
    g_assert_nonnull(strstr(err->message, "the VM is running"));
    g_clear_error(&err);

    pause_and_resume(db, id, vm->vnc_port);
    stop_from_paused(db, id);
    start_again(db, id);
    /* error keeps the ports (QEMU may still hold them); stopped from error frees them. */
    now = set_state(db, id, DB_VM_ERROR, "define failed", &err);
    g_assert_no_error(err);
    g_assert_cmpuint(now->vnc_port, !=, 0);
    db_vm_free(now);
    now = set_state(db, id, DB_VM_STOPPED, NULL, &err);
    g_assert_no_error(err);
    db_vm_free(now);

    /* No such VM, and a malformed id. */
    g_assert_null(set_state(db, "00000000-0000-0000-0000-000000000000", DB_VM_STOPPED, NULL,
                            &err));
    g_assert_error(err, VMB_ERROR, VMB_ERROR_NOT_FOUND);
    g_clear_error(&err);
    g_assert_null(set_state(db, "nope", DB_VM_ERROR, NULL, &err));
    g_assert_error(err, VMB_ERROR, VMB_ERROR_UNPROCESSABLE);
}

/* Alice's VM seen by her, by an admin and (not) by Bob; its domain recorded. */
static void
check_get_and_list(TestDb *db, const DbVm *a)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(DbConn) conn = db_pool_acquire(db->pool, &err);
    g_autoptr(DbVm) seen = db_vms_get(conn, a->id, db->alice_id, &err);
    g_autoptr(DbVm) as_admin = db_vms_get(conn, a->id, NULL, &err);
    g_autoptr(DbVm) as_bob = NULL;
    g_autoptr(GPtrArray) mine = db_vms_list(conn, db->alice_id, &err);
    g_autoptr(GPtrArray) all = db_vms_list(conn, NULL, &err);

    g_assert_no_error(err);
    g_assert_cmpstr(seen->name, ==, "crud");
    g_assert_cmpstr(as_admin->id, ==, a->id);
    as_bob = db_vms_get(conn, a->id, db->bob_id, &err);
    g_assert_null(as_bob);
    g_assert_error(err, VMB_ERROR, VMB_ERROR_NOT_FOUND);
    g_clear_error(&err);
    g_assert_cmpuint(mine->len, ==, 1);
    g_assert_cmpuint(all->len, ==, 2);
    g_assert_null(a->accelerator);
    g_assert_true(db_vms_set_domain(conn, a->id, "6b0c8a36-3a4c-4d5e-9f00-0123456789ab",
                                    "qemu", &err));
    g_clear_pointer(&seen, db_vm_free);
    seen = db_vms_get(conn, a->id, NULL, &err);
    g_assert_cmpstr(seen->domain_uuid, ==, "6b0c8a36-3a4c-4d5e-9f00-0123456789ab");
    g_assert_cmpstr(seen->accelerator, ==, "qemu");
    /* Outside a transaction, a multi-statement write refuses to run. */
    g_assert_false(db_vms_delete(conn, a->id, NULL, 0, &err));
    g_assert_error(err, VMB_ERROR, VMB_ERROR_INTERNAL);
    g_clear_error(&err);
}

TEST(insert_get_list_delete)
{
    g_autoptr(TestDb) db = test_db_new("vms_crud", 2, VNC_FIRST, WS_FIRST, 4);
    g_autoptr(GError) err = NULL;
    const char *volumes[] = { "vmbroker-a-disk0", "odd, \"name\" \\ here", NULL };
    Tx t = { .db = db, .spec = { .name = "crud", .owner_id = db->alice_id,
                                 .template_name = "tiny", .host_id = db->host_id,
                                 .disk_volumes = volumes } };
    g_autoptr(DbVm) a = NULL;

    g_assert_true(db_pool_transaction(db->pool, insert_tx, &t, &err));
    a = t.vm;
    g_assert_cmpuint(g_strv_length(a->disk_volumes), ==, 2);
    g_assert_cmpstr(a->disk_volumes[1], ==, volumes[1]);
    {
        g_autoptr(DbVm) b = insert_vm(db, "crud-b", db->bob_id, &err);
        g_assert_no_error(err);
    }
    /* Unknown template, owner, malformed owner; taken name. */
    t.vm = NULL;
    t.spec.name = "crud2";
    t.spec.template_name = "huge";
    g_assert_false(db_pool_transaction(db->pool, insert_tx, &t, &err));
    g_assert_error(err, VMB_ERROR, VMB_ERROR_UNPROCESSABLE);
    g_clear_error(&err);
    t.spec.template_name = "tiny";
    t.spec.owner_id = "00000000-0000-0000-0000-000000000000";
    g_assert_false(db_pool_transaction(db->pool, insert_tx, &t, &err));
    g_assert_error(err, VMB_ERROR, VMB_ERROR_UNPROCESSABLE);
    g_clear_error(&err);
    t.spec.owner_id = db->alice_id;
    t.spec.name = "crud";
    g_assert_false(db_pool_transaction(db->pool, insert_tx, &t, &err));
    g_assert_error(err, VMB_ERROR, VMB_ERROR_CONFLICT);
    g_clear_error(&err);
    /* None of the failures kept a lease. */
    g_assert_cmpint(test_db_scalar(db, "SELECT count(*) FROM port_leases"
                                       " WHERE vm_id IS NOT NULL"), ==, 4);

    check_get_and_list(db, a);
    /* Bob cannot delete Alice's VM; Alice can, and its ports are free again. */
    {
        Tx d = { .db = db, .id = a->id, .spec = { .owner_id = db->bob_id } };
        g_assert_false(db_pool_transaction(db->pool, delete_tx, &d, &err));
        g_assert_error(err, VMB_ERROR, VMB_ERROR_NOT_FOUND);
        g_clear_error(&err);
        d.spec.owner_id = db->alice_id;
        g_assert_true(db_pool_transaction(db->pool, delete_tx, &d, &err));
        g_assert_no_error(err);
    }
    g_assert_cmpint(test_db_scalar(db, "SELECT count(*) FROM port_leases"
                                       " WHERE vm_id IS NOT NULL"), ==, 2);
    g_assert_cmpint(test_db_scalar(db, "SELECT count(*) FROM vms"), ==, 1);
}

static void
set_limit(TestDb *db, int limit)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(DbConn) conn = db_pool_acquire(db->pool, &err);

    g_assert_true(db_limits_set_max_running(conn, limit, &err));
}

TEST(running_limit_enforced_in_sql)
{
    g_autoptr(TestDb) db = test_db_new("vms_limit", 2, VNC_FIRST, WS_FIRST, 8);
    g_autoptr(GError) err = NULL;
    g_autoptr(DbVm) a1 = NULL, a2 = NULL, r1 = NULL, r2 = NULL;

    set_limit(db, 1);
    a1 = insert_vm(db, "lim-a1", db->alice_id, &err);
    g_assert_no_error(err);
    a2 = insert_vm(db, "lim-a2", db->alice_id, &err);
    g_assert_null(a2);
    g_assert_error(err, VMB_ERROR, VMB_ERROR_CONFLICT);
    g_assert_nonnull(strstr(err->message, "limit is 1"));
    g_clear_error(&err);
    /* Admins are exempt. */
    r1 = insert_vm(db, "lim-r1", db->admin_id, &err);
    r2 = insert_vm(db, "lim-r2", db->admin_id, &err);
    g_assert_no_error(err);
    /* Raw SQL cannot get around it either: handing an admin's VM to Alice. */
    assert_sqlstate(db, "23514", "UPDATE vms SET owner_id = '%s' WHERE id = '%s'",
                    db->alice_id, r1->id);
    assert_sqlstate(db, "", "UPDATE vms SET owner_id = '%s' WHERE id = '%s'",
                    db->bob_id, r1->id);
    /* A stopped VM does not count, and starting it again does. */
    g_clear_pointer(&a2, db_vm_free);
    {
        DbVm *s = set_state(db, a1->id, DB_VM_STOPPED, NULL, &err);
        g_assert_no_error(err);
        db_vm_free(s);
    }
    a2 = insert_vm(db, "lim-a2", db->alice_id, &err);
    g_assert_no_error(err);
    {
        Tx t = { .db = db, .id = a1->id };
        g_assert_false(db_pool_transaction(db->pool, start_tx, &t, &err));
        g_assert_error(err, VMB_ERROR, VMB_ERROR_CONFLICT);
        g_clear_error(&err);
    }
    /* A paused VM counts as running: it still holds a QEMU, and its resume is never refused. */
    {
        DbVm *s = set_state(db, a2->id, DB_VM_RUNNING, NULL, &err);
        g_assert_no_error(err);
        db_vm_free(s);
        s = set_state(db, a2->id, DB_VM_PAUSED, "paused outside vmbroker (virsh suspend)", &err);
        g_assert_no_error(err);
        db_vm_free(s);
        g_assert_null(insert_vm(db, "lim-a4", db->alice_id, &err));
        g_assert_error(err, VMB_ERROR, VMB_ERROR_CONFLICT);
        g_clear_error(&err);
        s = set_state(db, a2->id, DB_VM_RUNNING, NULL, &err);
        g_assert_no_error(err);
        db_vm_free(s);
    }
    /* Off: no limit. */
    set_limit(db, -1);
    {
        g_autoptr(DbVm) a3 = insert_vm(db, "lim-a3", db->alice_id, &err);
        g_assert_no_error(err);
    }
}

/* --- many creates of one user at once: exactly the limit succeeds --- */

#define RACERS 12

typedef struct {
    TestDb *db;
    GMutex lock;
    GCond go;
    bool started;
    gint ok, conflict, other;
} Race;

typedef struct {
    Race *r;
    int i;
} Racer;


/* The running limit has one definition: for every state, the SQL guard refuses a second
 * VM of the same user exactly when db_vm_state_counts_as_running() says the first counts. */
TEST(running_limit_counts_the_states_the_service_counts)
{
    /* The transitions that reach each state from `creating` (creating ends the path). */
    static const DbVmState path[DB_VM_STATE_LAST][2] = {
        [DB_VM_CREATING] = { DB_VM_CREATING, DB_VM_CREATING },
        [DB_VM_RUNNING] = { DB_VM_RUNNING, DB_VM_CREATING },
        [DB_VM_PAUSED] = { DB_VM_RUNNING, DB_VM_PAUSED },
        [DB_VM_STOPPING] = { DB_VM_STOPPING, DB_VM_CREATING },
        [DB_VM_STOPPED] = { DB_VM_STOPPED, DB_VM_CREATING },
        [DB_VM_ERROR] = { DB_VM_ERROR, DB_VM_CREATING },
    };

    for (int st = 0; st < DB_VM_STATE_LAST; st++) {
        g_autofree char *label = g_strdup_printf("vms_lim_%s",
                                                 db_vm_state_to_string((DbVmState) st));
        g_autoptr(TestDb) db = test_db_new(label, 2, VNC_FIRST, WS_FIRST, 8);
        g_autoptr(GError) err = NULL;
        g_autoptr(DbVm) first = NULL, second = NULL;
        bool counts = db_vm_state_counts_as_running((DbVmState) st);

        set_limit(db, 1);
        first = insert_vm(db, "lim-first", db->alice_id, &err);
        g_assert_no_error(err);
        for (int k = 0; k < 2 && path[st][k] != DB_VM_CREATING; k++) {
            DbVm *moved = set_state(db, first->id, path[st][k], NULL, &err);
            g_assert_no_error(err);
            db_vm_free(moved);
        }
        second = insert_vm(db, "lim-second", db->alice_id, &err);
        g_test_message("first VM %s: counts %d, second %s", db_vm_state_to_string((DbVmState) st),
                       counts, second ? "made" : err->message);
        if (counts) {
            g_assert_null(second);
            g_assert_error(err, VMB_ERROR, VMB_ERROR_CONFLICT);
            g_assert_nonnull(strstr(err->message, "limit is 1"));
        } else {
            g_assert_no_error(err);
            g_assert_nonnull(second);
        }
    }
}

static gpointer
racer(gpointer data)
{
    Racer *me = data;
    Race *r = me->r;
    g_autoptr(GError) err = NULL;
    g_autofree char *name = g_strdup_printf("race-%d", me->i);
    g_autoptr(DbVm) vm = NULL;

    g_mutex_lock(&r->lock);
    while (!r->started)
        g_cond_wait(&r->go, &r->lock);
    g_mutex_unlock(&r->lock);
    vm = insert_vm(r->db, name, r->db->bob_id, &err);
    if (vm)
        g_atomic_int_inc(&r->ok);
    else if (g_error_matches(err, VMB_ERROR, VMB_ERROR_CONFLICT))
        g_atomic_int_inc(&r->conflict);
    else
        g_atomic_int_inc(&r->other);
    return NULL;
}

TEST(running_limit_holds_under_concurrent_creates)
{
    g_autoptr(TestDb) db = test_db_new("vms_limit_race", RACERS, VNC_FIRST, WS_FIRST, 20);
    Race r = { .db = db };
    Racer racers[RACERS];
    GThread *threads[RACERS];

    set_limit(db, 2);
    g_mutex_init(&r.lock);
    g_cond_init(&r.go);
    for (int i = 0; i < RACERS; i++) {
        racers[i] = (Racer) { &r, i };
        threads[i] = g_thread_new("racer", racer, &racers[i]);
    }
    g_mutex_lock(&r.lock);
    r.started = true;
    g_cond_broadcast(&r.go);
    g_mutex_unlock(&r.lock);
    for (int i = 0; i < RACERS; i++)
        g_thread_join(threads[i]);
    g_assert_cmpint(r.other, ==, 0);
    g_assert_cmpint(r.ok, ==, 2);
    g_assert_cmpint(r.conflict, ==, RACERS - 2);
    g_assert_cmpint(test_db_scalar(db, "SELECT count(*) FROM vms"), ==, 2);
    g_assert_cmpint(test_db_scalar(db, "SELECT count(*) FROM port_leases"
                                       " WHERE vm_id IS NOT NULL"), ==, 4);
    g_mutex_clear(&r.lock);
    g_cond_clear(&r.go);
}

static PGconn *
connect_or_die(const char *conninfo)
{
    PGconn *pg = PQconnectdb(conninfo);

    if (PQstatus(pg) != CONNECTION_OK)
        g_error("connect: %s", PQerrorMessage(pg));
    return pg;
}

static char *
exec_state(PGconn *pg, const char *sql)
{
    g_autoptr(PGresult) r = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(r);

    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return g_strdup("");
    return g_strdup(PQresultErrorField(r, PG_DIAG_SQLSTATE));
}

static void
exec_ok(PGconn *pg, const char *sql)
{
    g_autofree char *state = exec_state(pg, sql);

    if (*state)
        g_error("%s: SQLSTATE %s: %s", sql, state, PQerrorMessage(pg));
}

/* Whether the backend of @pid waits for a lock. */
static bool
waits_for_lock(TestDb *db, int pid)
{
    g_autofree char *sql = g_strdup_printf("SELECT count(*) FROM pg_stat_activity"
                                           " WHERE pid = %d AND wait_event_type = 'Lock'", pid);
    return test_db_scalar(db, sql) == 1;
}

TEST(lease_release_races_the_vm_naming_its_ports)
{
    /* A VM naming its ports and the leases of those ports being given up, in two
     * transactions at once: whichever order they commit in, the second one fails. */
    g_autoptr(TestDb) db = test_db_new("vms_lease_race", 2, VNC_FIRST, WS_FIRST, 4);
    g_autoptr(GError) err = NULL;
    g_autoptr(DbVm) vm = insert_vm(db, "race", db->alice_id, &err);
    g_autoptr(DbVm) stopped = NULL;
    g_autoptr(PGconn) namer = NULL, releaser = NULL;
    g_autofree char *lease = NULL, *name = NULL, *release = NULL;

    g_assert_no_error(err);
    stopped = set_state(db, vm->id, DB_VM_STOPPED, "test", &err);
    g_assert_no_error(err);
    lease = g_strdup_printf("UPDATE port_leases SET vm_id = '%s', leased_at = now()"
                            " WHERE port IN (%u, %u)", vm->id, vm->vnc_port, vm->ws_port);
    name = g_strdup_printf("UPDATE vms SET state = 'running', vnc_port = %u, ws_port = %u"
                           " WHERE id = '%s'", vm->vnc_port, vm->ws_port, vm->id);
    release = g_strdup_printf("UPDATE port_leases SET vm_id = NULL, leased_at = NULL"
                              " WHERE vm_id = '%s'", vm->id);
    namer = connect_or_die(db->conninfo);
    releaser = connect_or_die(db->conninfo);

    /* 1. The release commits first: the VM's check at its commit finds no lease. */
    test_db_exec(db, lease);
    exec_ok(namer, "BEGIN");
    exec_ok(namer, name);
    exec_ok(releaser, "BEGIN");
    exec_ok(releaser, release);
    exec_ok(releaser, "COMMIT");
    {
        g_autofree char *state = exec_state(namer, "COMMIT");
        g_assert_cmpstr(state, ==, "23503");
    }

    /* 2. The VM's check runs first and holds the leases: the release waits for it, then
     * finds the VM naming the ports at its own check. */
    test_db_exec(db, lease);
    exec_ok(namer, "BEGIN");
    exec_ok(namer, name);
    exec_ok(namer, "SET CONSTRAINTS ALL IMMEDIATE");
    exec_ok(releaser, "BEGIN");
    g_assert_cmpint(PQsendQuery(releaser, release), ==, 1);
    for (int i = 0; !waits_for_lock(db, PQbackendPID(releaser)); i++) {
        g_assert_cmpint(i, <, 300);
        g_usleep(20 * 1000);
    }
    exec_ok(namer, "COMMIT");
    {
        g_autoptr(PGresult) r = PQgetResult(releaser);
        g_autoptr(PGresult) end = PQgetResult(releaser);
        g_autofree char *state = NULL;

        g_assert_cmpint(PQresultStatus(r), ==, PGRES_COMMAND_OK);
        g_assert_null(end);
        state = exec_state(releaser, "COMMIT");
        g_assert_cmpstr(state, ==, "23503");
    }
    g_assert_cmpint(test_db_scalar(db, "SELECT count(*) FROM port_leases l JOIN vms v"
                                       " ON l.vm_id = v.id AND l.port IN (v.vnc_port, v.ws_port)"),
                    ==, 2);
}

TEST(hosts_templates_audit)
{
    g_autoptr(TestDb) db = test_db_new("vms_misc", 2, VNC_FIRST, WS_FIRST, 2);
    g_autoptr(GError) err = NULL;
    g_autoptr(DbConn) conn = db_pool_acquire(db->pool, &err);
    g_autofree char *same = NULL, *moved = NULL, *other = NULL;
    int version = 0;
    DbAuditEntry entry = { .actor_id = db->alice_id, .action = "vm.create",
                           .object_kind = "vm", .object_id = "x",
                           .remote_addr = "2001:db8::1", .detail_json = "{\"template\": \"tiny\"}" };

    DbHostSpec local = { DB_HOST_CONFIGURED, "qemu:///system", "127.0.0.1",
                         { VNC_FIRST, VNC_FIRST + 1, WS_FIRST, WS_FIRST + 1 }, 0 };
    DbHostSpec hv2 = { "hv2", "qemu+ssh://hv2/system", "10.0.0.2",
                       { 5900, 5999, 5700, 5799 }, 4096 };

    g_assert_true(db_hosts_ensure_configured(conn, &local, &same, &err));
    g_assert_cmpstr(same, ==, db->host_id);
    local.uri = "qemu+ssh://hv1/system";
    g_assert_true(db_hosts_ensure_configured(conn, &local, &moved, &err));
    g_assert_cmpstr(moved, ==, db->host_id);
    {
        g_autoptr(DbHost) h = db_hosts_insert(conn, &hv2, &err);
        g_autoptr(DbHost) again = NULL;
        g_autoptr(DbHost) got = NULL;

        g_assert_nonnull(h);
        other = g_strdup(h->id);
        g_assert_cmpstr(other, !=, db->host_id);
        g_assert_cmpuint(h->memory_mib, ==, 4096);
        g_assert_false(h->from_config);
        again = db_hosts_insert(conn, &hv2, &err);
        g_assert_error(err, VMB_ERROR, VMB_ERROR_CONFLICT);
        g_clear_error(&err);
        got = db_hosts_get(conn, DB_HOST_CONFIGURED, false, &err);
        g_assert_cmpstr(got->uri, ==, "qemu+ssh://hv1/system");
        g_assert_true(got->from_config && got->enabled);
    }
    /* A disabled host takes no new VMs; one with VMs is not removed. */
    g_assert_true(db_hosts_set_enabled(conn, db->host_id, false, &err));
    g_assert_null(insert_vm(db, "refused", db->alice_id, &err));
    g_assert_error(err, VMB_ERROR, VMB_ERROR_EXHAUSTED);
    g_clear_error(&err);
    g_assert_true(db_hosts_set_enabled(conn, db->host_id, true, &err));
    g_assert_true(db_hosts_delete(conn, other, &err));

    /* The version grows with the content only. */
    g_assert_true(db_templates_upsert(conn, "tiny", "iso", "name = tiny\n", &version, &err));
    g_assert_cmpint(version, ==, 1);
    g_assert_true(db_templates_upsert(conn, "tiny", "iso", "name = tiny\nmemory = 64\n",
                                      &version, &err));
    g_assert_cmpint(version, ==, 2);
    g_assert_true(db_templates_upsert(conn, "tiny", "iso", "name = tiny\nmemory = 64\n",
                                      &version, &err));
    g_assert_cmpint(version, ==, 2);
    {
        g_autoptr(DbVm) vm = insert_vm(db, "versioned", db->alice_id, &err);
        g_assert_no_error(err);
        g_assert_cmpint(vm->template_version, ==, 2);
    }

    g_assert_true(db_audit_insert(conn, &entry, &err));
    g_assert_no_error(err);
    entry.detail_json = NULL;
    entry.remote_addr = NULL;
    entry.actor_id = NULL;
    g_assert_true(db_audit_insert(conn, &entry, &err));
    entry.detail_json = "[1]";
    g_assert_false(db_audit_insert(conn, &entry, &err));
    g_clear_error(&err);
    g_assert_cmpint(test_db_scalar(db, "SELECT count(*) FROM audit_log"
                                       " WHERE detail ->> 'template' = 'tiny'"
                                       " AND remote_addr = '2001:db8::1'"), ==, 1);
    g_assert_cmpint(test_db_scalar(db, "SELECT count(*) FROM audit_log"), ==, 2);
}

TEST_MAIN()
