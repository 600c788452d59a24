// SPDX-License-Identifier: LGPL-2.1-or-later
// broker/db/db-hosts.c's host leases: one owner at a time, renewals keep the epoch, a takeover
// of an expired lease bumps it, and the old owner's fenced writes are refused.
#include "db-hosts.h"
#include "db-vms.h"
#include "test-db.h"
#include "test.h"
#include "vmb-error.h"

#define VNC_FIRST 29640u
#define WS_FIRST 29840u

typedef struct {
    DbVmSpec spec;
    DbVm *vm;
} InsertTx;

static bool
insert_tx(DbConn *conn, void *data, GError **error)
{
    InsertTx *t = data;

    g_clear_pointer(&t->vm, db_vm_free);
    t->vm = db_vms_insert(conn, &t->spec, NULL, error);
    return t->vm != NULL;
}

typedef struct {
    const char *host_id;
    const char *vm_id;
    const char *owner;
    gint64 epoch;
} LeaseCheckTx;

static bool
lease_check_tx(DbConn *conn, void *data, GError **error)
{
    LeaseCheckTx *t = data;

    return db_host_lease_check(conn, t->host_id, t->vm_id, t->owner, t->epoch, error);
}

/* Host leases: one owner at a time, renewals keep the epoch, a takeover of an expired lease
 * bumps it, and the old owner's fenced writes are refused unless it runs the VM's operation. */
TEST(host_leases_fence_the_old_owner)
{
    g_autoptr(TestDb) db = test_db_new("host_leases", 2, VNC_FIRST, WS_FIRST, 4);
    g_autoptr(GError) err = NULL;
    g_autoptr(DbConn) conn = db_pool_acquire(db->pool, &err);
    InsertTx ins = { .spec = { .name = "leased", .owner_id = db->alice_id,
                               .template_name = "tiny", .host_id = db->host_id } };
    g_autoptr(DbVm) vm = db_pool_transaction(db->pool, insert_tx, &ins, &err) ? ins.vm : NULL;
    gint64 a = 0, b = 0, again = 0;
    LeaseCheckTx check = { db->host_id, NULL, "broker-a", 0 };

    g_assert_nonnull(vm);
    check.vm_id = vm->id;
    g_assert_true(db_host_lease_take(conn, db->host_id, "broker-a", 60, &a, &err));
    g_assert_cmpint(a, ==, 1);
    g_assert_true(db_host_lease_take(conn, db->host_id, "broker-b", 60, &b, &err));
    g_assert_cmpint(b, ==, 0);      /* A's runs */
    g_assert_true(db_host_lease_take(conn, db->host_id, "broker-a", 60, &again, &err));
    g_assert_cmpint(again, ==, a);  /* a renewal */
    check.epoch = a;
    g_assert_true(db_pool_transaction(db->pool, lease_check_tx, &check, &err));

    /* A's lease runs out (A died, or froze): B takes it over at a new epoch. */
    test_db_exec(db, "UPDATE host_leases SET expires_at = now() - interval '1 second'");
    g_assert_true(db_host_lease_take(conn, db->host_id, "broker-b", 60, &b, &err));
    g_assert_cmpint(b, ==, a + 1);
    g_assert_false(db_pool_transaction(db->pool, lease_check_tx, &check, &err));
    g_assert_error(err, VMB_ERROR, VMB_ERROR_CONFLICT);
    g_clear_error(&err);
    g_assert_true(db_host_lease_take(conn, db->host_id, "broker-a", 60, &again, &err));
    g_assert_cmpint(again, ==, 0);
    /* Unless A runs the VM's operation: that one is fenced by the operation's takeover. */
    test_db_exec(db, "INSERT INTO operations (vm_id, kind, state, broker, started_at)"
                     " SELECT id, 'stop', 'running', 'broker-a', now() FROM vms");
    g_assert_true(db_pool_transaction(db->pool, lease_check_tx, &check, &err));
    g_assert_no_error(err);

    /* B stops cleanly: its lease ends at once, and A takes it at yet another epoch. */
    g_assert_true(db_host_lease_release(conn, db->host_id, "broker-b", &err));
    g_assert_true(db_host_lease_take(conn, db->host_id, "broker-a", 60, &again, &err));
    g_assert_cmpint(again, ==, b + 1);
}

TEST_MAIN()
