// SPDX-License-Identifier: LGPL-2.1-or-later
// The VM service's operations: what a request queues (start, reboot, delete; a create and a
// stop queue theirs in svc-vms-create.c and svc-vms-power.c, in the transaction that changes
// the row) and the runners the operation workers call. A runner that takes over an operation
// a broker left unfinished has the VM reconciled with libvirt first, then finishes or undoes
// what the row says.
#include "svc-vms-private.h"

#include "db-console-history.h"
#include "db-pools.h"
#include "db-users.h"
#include "vmb-error.h"
#include "vmb-log.h"

/* The operation the calling worker runs, for svc_vms_step(). */
static GPrivate current_op;

/**
 * svc_vms_op_spec:
 * @vms: the service
 * @kind: what to do
 * @caller: (nullable): who asks; NULL for the system
 * @remote_addr: (nullable): the request's address
 * @params: (nullable): JSON object text the kind's runner reads
 *
 * Returns: an operation to queue (vm_id left for the caller); users' operations count
 * against the per-user cap, admins' and service accounts' do not.
 */
DbOpSpec
svc_vms_op_spec(SvcVms *vms, DbOpKind kind, const DbUser *caller, const char *remote_addr,
                const char *params)
{
    return (DbOpSpec) {
        .kind = kind,
        .requested_by = caller ? caller->id : NULL,
        .remote_addr = remote_addr,
        .params = params,
        .max_active_per_user = caller && caller->role == DB_ROLE_USER
                                   ? svc_ops_max_active_per_user(vms->opts.ops) : 0,
    };
}

/* From the code a runner calls: records what the operation does now. */
void
svc_vms_step(SvcVms *vms, const char *step, unsigned progress)
{
    const DbOp *op = g_private_get(&current_op);

    if (op)
        svc_ops_step(vms->opts.ops, op, step, progress);
}

typedef struct {
    const DbOpSpec *spec;
    DbOp *op;      /* out */
    DbOp *active;  /* out */
} QueueTx;

static bool
queue_tx(DbConn *conn, void *data, GError **error)
{
    QueueTx *tx = data;

    g_clear_pointer(&tx->op, db_op_free);
    g_clear_pointer(&tx->active, db_op_free);
    tx->op = db_ops_insert(conn, tx->spec, &tx->active, error);
    return tx->op != NULL;
}

/**
 * svc_vms_queue:
 * @vms: the service
 * @caller: who asks
 * @id: the VM
 * @kind: DB_OP_START, DB_OP_REBOOT or DB_OP_DELETE
 * @remote_addr: (nullable): for the audit log
 * @ret_vm: (out) (optional): the VM as it is now
 * @ret_active: (out) (optional): with VMB_ERROR_CONFLICT, the VM's active operation
 * @error: return location for an error
 *
 * Returns: (transfer full): the queued operation, or NULL: VMB_ERROR_NOT_FOUND for a VM the
 * caller cannot see, CONFLICT while another operation works on it (or a reboot of a VM that
 * does not run), TOO_MANY at the caller's cap.
 */
DbOp *
svc_vms_queue(SvcVms *vms, const DbUser *caller, const char *id, DbOpKind kind,
              const char *remote_addr, DbVm **ret_vm, DbOp **ret_active, GError **error)
{
    g_autoptr(DbVm) vm = svc_vms_get(vms, caller, id, error);
    DbOpSpec spec;

    g_return_val_if_fail(kind == DB_OP_START || kind == DB_OP_REBOOT || kind == DB_OP_DELETE,
                         NULL);
    if (!vm)
        return NULL;
    if (kind == DB_OP_REBOOT && vm->state != DB_VM_RUNNING && vm->state != DB_VM_PAUSED) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT, "The VM is %s, not running.",
                    db_vm_state_to_string(vm->state));
        return NULL;
    }
    spec = svc_vms_op_spec(vms, kind, caller, remote_addr, NULL);
    spec.vm_id = vm->id;
    return svc_vms_queue_spec(vms, &spec, &vm, ret_vm, ret_active, error);
}

/**
 * svc_vms_queue_spec:
 * @vms: the service
 * @spec: the operation, its vm_id set
 * @vm: (inout): the VM as the caller read it; moved to @ret_vm on success
 * @ret_vm: (out) (optional): the VM
 * @ret_active: (out) (optional): with VMB_ERROR_CONFLICT, the VM's active operation
 * @error: return location for an error
 *
 * Returns: (transfer full): the queued operation (the workers are woken), or NULL.
 */
DbOp *
svc_vms_queue_spec(SvcVms *vms, const DbOpSpec *spec, DbVm **vm, DbVm **ret_vm,
                   DbOp **ret_active, GError **error)
{
    QueueTx tx = { spec, NULL, NULL };

    if (!db_pool_transaction(vms->opts.db, queue_tx, &tx, error)) {
        if (ret_active)
            *ret_active = g_steal_pointer(&tx.active);
        db_op_free(tx.active);
        return NULL;
    }
    svc_ops_kick(vms->opts.ops);
    if (ret_vm)
        *ret_vm = g_steal_pointer(vm);
    return tx.op;
}

typedef struct {
    const DbOpSpec *spec;
    bool queued;   /* out */
} PoolDeleteTx;

static bool
pool_delete_tx(DbConn *conn, void *data, GError **error)
{
    PoolDeleteTx *tx = data;
    g_autoptr(DbOp) op = NULL;
    bool member = false;

    tx->queued = false;
    if (!db_pools_lock_member(conn, tx->spec->vm_id, &member, error))
        return false;
    if (!member)
        return true;
    op = db_ops_insert(conn, tx->spec, NULL, error);
    tx->queued = op != NULL;
    return op != NULL;
}

/**
 * svc_vms_delete_pool_guest:
 * @vms: the service
 * @pool: the pool account
 * @id: a VM of the pool account
 * @error: return location for an error (VMB_ERROR_CONFLICT when it has an operation)
 *
 * Queues its delete as the pool account, unless a create took it meanwhile (the row lock
 * orders the two: a guest is never deleted under its new owner).
 *
 * Returns: true when the delete is queued or the guest is no longer the pool's.
 */
bool
svc_vms_delete_pool_guest(SvcVms *vms, const DbUser *pool, const char *id, GError **error)
{
    DbOpSpec spec = svc_vms_op_spec(vms, DB_OP_DELETE, pool, NULL, NULL);
    PoolDeleteTx tx = { &spec, false };

    spec.vm_id = id;
    if (!db_pool_transaction(vms->opts.db, pool_delete_tx, &tx, error))
        return false;
    if (tx.queued)
        svc_ops_kick(vms->opts.ops);
    return true;
}

/* --- runners --- */

/* A taken-over operation: the VM's row is brought in line with libvirt before the runner
 * looks at it, under the VM's claim. */
static bool
reconcile_first(SvcVms *vms, const DbOp *op, GError **error)
{
    g_autoptr(DbConn) db = NULL;
    g_autoptr(DbVm) vm = NULL;
    g_autoptr(GError) err = NULL;

    if (op->attempts <= 1)
        return true;
    vmb_info("operation %s: taken over (attempt %u); reconciling VM %s first", op->id,
             op->attempts, op->vm_id);
    db = db_pool_acquire(vms->opts.db, &err);
    vm = db ? db_vms_get(db, op->vm_id, NULL, &err) : NULL;
    g_clear_pointer(&db, db_conn_release);
    if (!vm && vmb_error_kind(err) == VMB_ERROR_NOT_FOUND)
        return true; /* gone: the runner says so */
    if (!vm) {
        g_propagate_error(error, g_steal_pointer(&err));
        return false;
    }
    if (!svc_vms_claim_wait(vms, op->vm_id, error))
        return false;
    svc_vms_reconcile(vms, vm);
    svc_vms_release(vms, op->vm_id);
    return true;
}

static bool
run_user_op(SvcVms *vms, const DbOp *op, GError **error)
{
    g_autoptr(DbConn) db = db_pool_acquire(vms->opts.db, error);
    g_autoptr(DbUser) caller = NULL;
    g_autoptr(DbVm) vm = NULL;
    g_autoptr(GError) err = NULL;

    if (!db)
        return false;
    if (op->requested_by && !(caller = db_users_get_by_id(db, op->requested_by, &err)) &&
        vmb_error_kind(err) != VMB_ERROR_NOT_FOUND) {
        /* The database failed (a killed backend): not a missing user; tried again. */
        g_propagate_error(error, g_steal_pointer(&err));
        return false;
    }
    if (!caller) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT,
                    "The user who asked for this no longer exists.");
        return false;
    }
    g_clear_pointer(&db, db_conn_release);
    switch (op->kind) {
    case DB_OP_START:
        vm = svc_vms_start_now(vms, caller, op->vm_id, op->remote_addr, error);
        return vm != NULL;
    case DB_OP_REBOOT:
        vm = svc_vms_reboot_now(vms, caller, op->vm_id, op->remote_addr, error);
        return vm != NULL;
    case DB_OP_DELETE:
        return svc_vms_delete_now(vms, caller, op->vm_id, op->remote_addr, error);
    default:
        g_assert_not_reached();
    }
}

/* Taken over after its first attempt: a start or reboot whose VM runs is done, and so is a
 * delete whose VM is gone. */
static bool
already_done(SvcVms *vms, const DbOp *op)
{
    g_autoptr(DbConn) db = NULL;
    g_autoptr(DbVm) vm = NULL;
    g_autoptr(GError) err = NULL;

    if (op->attempts <= 1 || op->kind == DB_OP_CREATE || op->kind == DB_OP_STOP ||
        op->kind == DB_OP_SNAPSHOT)
        return false;
    db = db_pool_acquire(vms->opts.db, NULL);
    vm = db ? db_vms_get(db, op->vm_id, NULL, &err) : NULL;
    if (op->kind == DB_OP_DELETE)
        return !vm && vmb_error_kind(err) == VMB_ERROR_NOT_FOUND;
    return vm && vm->state == DB_VM_RUNNING;
}

/* After a create or start that ran: the new guest's screen is watched for console-ready. */
static void
watch_ready(SvcVms *vms, const DbOp *op)
{
    g_autoptr(DbConn) db = NULL;
    g_autoptr(DbVm) vm = NULL;
    SvcReady *ready;

    if (op->kind != DB_OP_CREATE && op->kind != DB_OP_START)
        return;
    db = db_pool_acquire(vms->opts.db, NULL);
    vm = db ? db_vms_get(db, op->vm_id, NULL, NULL) : NULL;
    ready = vm ? svc_vms_host_ready(vms, vm->host_id) : NULL;
    if (ready && vm->state == DB_VM_RUNNING && !vm->console_ready_at)
        svc_ready_watch(ready, vm, op->created_at, "cold");
}

/**
 * svc_vms_watch_unready:
 * @vms: the service
 *
 * @host_id: a host this broker reaches
 *
 * Once the host is reconciled: watches again its VMs that started recently and whose
 * console is not ready yet, as the broker that started them (this one's previous run, or
 * one that died) would have.
 */
void
svc_vms_watch_unready(SvcVms *vms, const char *host_id)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DbConn) db = NULL;
    g_autoptr(GPtrArray) requested = NULL;
    g_autoptr(GPtrArray) list = NULL;
    SvcReady *ready = svc_vms_host_ready(vms, host_id);

    if (!ready)
        return;
    db = db_pool_acquire(vms->opts.db, &error);
    list = db ? db_vms_list_unready(db, host_id, SVC_READY_GIVE_UP_S, &requested, &error)
              : NULL;
    if (!list) {
        vmb_warning("console-ready watches after the restart: %s", error->message);
        return;
    }
    for (guint i = 0; i < list->len; i++)
        svc_ready_watch(ready, list->pdata[i], requested->pdata[i], "cold");
}

/**
 * svc_vms_hv_enter:
 * @vms: the service
 *
 * Waits for one of the HV_OPS_MAX places at libvirtd of work that may talk to it for long:
 * operations, and a warm pool's takes and saves. svc_vms_hv_leave() gives it back.
 */
void
svc_vms_hv_enter(SvcVms *vms)
{
    g_mutex_lock(&vms->claim_lock);
    while (vms->hv_calls >= HV_OPS_MAX)
        g_cond_wait(&vms->hv_call_freed, &vms->claim_lock);
    vms->hv_calls++;
    g_mutex_unlock(&vms->claim_lock);
}

void
svc_vms_hv_leave(SvcVms *vms)
{
    g_mutex_lock(&vms->claim_lock);
    vms->hv_calls--;
    g_cond_signal(&vms->hv_call_freed);
    g_mutex_unlock(&vms->claim_lock);
}

static bool
run_op_now(SvcVms *vms, const DbOp *op, GError **error)
{
    bool ok;

    if (!reconcile_first(vms, op, error))
        return false;
    if (already_done(vms, op))
        return true;
    g_private_set(&current_op, (gpointer) op);
    switch (op->kind) {
    case DB_OP_CREATE:
        ok = svc_vms_run_create(vms, op, error);
        break;
    case DB_OP_STOP:
        ok = svc_vms_run_stop(vms, op, error);
        break;
    case DB_OP_SNAPSHOT:
        ok = svc_vms_run_snapshot(vms, op, error);
        break;
    default:
        ok = run_user_op(vms, op, error);
        break;
    }
    g_private_set(&current_op, NULL);
    if (ok)
        watch_ready(vms, op);
    return ok;
}

static bool
run_op(SvcOps *ops, const DbOp *op, gpointer data, GError **error)
{
    SvcVms *vms = data;
    bool ok;

    svc_vms_hv_enter(vms);
    ok = run_op_now(vms, op, error);
    svc_vms_hv_leave(vms);
    return ok;
}

/* Called by svc_vms_new(). */
void
svc_vms_set_runners(SvcVms *vms)
{
    static const DbOpKind kinds[] = { DB_OP_CREATE, DB_OP_START, DB_OP_STOP, DB_OP_REBOOT,
                                      DB_OP_DELETE, DB_OP_SNAPSHOT };

    for (size_t i = 0; i < G_N_ELEMENTS(kinds); i++)
        svc_ops_set_runner(vms->opts.ops, kinds[i], run_op, vms);
}

/* --- reads --- */

/* An operation is visible to whoever may see its VM, and to who asked for it. */
static bool
op_visible(SvcVms *vms, const DbUser *caller, const DbOp *op)
{
    g_autoptr(DbVm) vm = NULL;

    if (caller->role == DB_ROLE_ADMIN || g_strcmp0(op->requested_by, caller->id) == 0)
        return true;
    vm = svc_vms_get(vms, caller, op->vm_id, NULL);
    return vm != NULL;
}

/**
 * svc_vms_operation:
 * @vms: the service
 * @caller: who asks
 * @op_id: an operation
 * @error: return location for an error
 *
 * Returns: (transfer full): the operation, or NULL (VMB_ERROR_NOT_FOUND when not visible).
 */
DbOp *
svc_vms_operation(SvcVms *vms, const DbUser *caller, const char *op_id, GError **error)
{
    g_autoptr(DbConn) db = db_pool_acquire(vms->opts.db, error);
    g_autoptr(DbOp) op = db ? db_ops_get(db, op_id, error) : NULL;

    if (!op)
        return NULL;
    g_clear_pointer(&db, db_conn_release);
    if (!op_visible(vms, caller, op)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_NOT_FOUND, "No such operation.");
        return NULL;
    }
    return g_steal_pointer(&op);
}

/**
 * svc_vms_operations:
 * @vms: the service
 * @caller: who asks
 * @vm_id: a VM the caller can see
 * @error: return location for an error
 *
 * Returns: (transfer full) (element-type DbOp): the VM's last 100 operations, newest first.
 */
GPtrArray *
svc_vms_operations(SvcVms *vms, const DbUser *caller, const char *vm_id, GError **error)
{
    g_autoptr(DbVm) vm = svc_vms_get(vms, caller, vm_id, error);
    g_autoptr(DbConn) db = NULL;

    if (!vm || !(db = db_pool_acquire(vms->opts.db, error)))
        return NULL;
    return db_ops_list_vm(db, vm->id, 100, error);
}

/**
 * svc_vms_connections:
 * @vms: the service
 * @caller: who asks
 * @vm_id: a VM the caller can see
 * @error: return location for an error
 *
 * Returns: (transfer full) (element-type DbConsoleConn): the VM's last console connections
 *   (DB_CONSOLE_HISTORY_KEEP), newest first.
 */
GPtrArray *
svc_vms_connections(SvcVms *vms, const DbUser *caller, const char *vm_id, GError **error)
{
    g_autoptr(DbVm) vm = svc_vms_get(vms, caller, vm_id, error);
    g_autoptr(DbConn) db = NULL;

    if (!vm || !(db = db_pool_acquire(vms->opts.db, error)))
        return NULL;
    return db_console_history_list(db, vm->id, DB_CONSOLE_HISTORY_KEEP, error);
}
