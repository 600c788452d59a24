// SPDX-License-Identifier: LGPL-2.1-or-later
// Stop (ACPI, then destroy, in the background), start (fresh ports and password), reboot
// (a paused VM is restarted) and delete (domain and volumes before the row).
#include "svc-vms-private.h"

#include <string.h>
#include <json-c/json.h>

#include "db-audit.h"
#include "db-isos.h"
#include "db-tickets.h"
#include "dom-accel.h"
#include "dom-lifecycle.h"
#include "dom-snapshot.h"
#include "dom-storage.h"
#include "dom-virt.h"
#include "dom-xml.h"
#include "svc-users.h"
#include "vmb-crash.h"
#include "vmb-error.h"
#include "vmb-log.h"
#include "vmb-net.h"
#include "vmb-secret.h"

/* --- power --- */

/**
 * svc_vms_drop_ephemeral_disks:
 * @vms: the service
 * @conn: a libvirt connection
 * @vm: a VM that is off
 *
 * Deletes @vm's ephemeral volumes (by name, in the disks pool); a missing one is fine.
 */
void
svc_vms_drop_ephemeral_disks(SvcVms *vms, virConnectPtr conn, const DbVm *vm)
{
    for (char **v = vm->disk_volumes; v && *v; v++) {
        g_autofree char *path = dom_storage_volume_path(conn, vms->name_prefix, DOM_POOL_DISKS,
                                                        *v, NULL);
        if (path)
            dom_storage_delete_path(conn, path, NULL);
    }
}

/* Reads a stop's parameters: {"reason": TEXT, "drop_ephemeral": BOOL}. */
static void
stop_params(const DbOp *op, char **ret_reason, bool *ret_drop)
{
    g_autoptr(json_object) obj = json_tokener_parse(op->params ? op->params : "{}");
    json_object *v;

    *ret_reason = g_strdup(obj && json_object_object_get_ex(obj, "reason", &v)
                               ? json_object_get_string(v) : "stopped");
    *ret_drop = obj && json_object_object_get_ex(obj, "drop_ephemeral", &v) &&
                json_object_get_boolean(v);
}

/* Under @vm's claim: ACPI, then destroy after stop_timeout_s; the ephemeral disks go too
 * when asked. False with @error when the guest may still run. */
static bool
stop_domain(SvcVms *vms, const DbVm *vm, bool drop_ephemeral, GError **error)
{
    g_autoptr(virConnect) conn = svc_vms_conn(vms, vm, error);
    g_autoptr(virDomain) dom = NULL;
    g_autoptr(GError) err = NULL;

    if (!conn)
        return false;
    dom = dom_lifecycle_lookup(conn, vm->name, &err);
    /* A domain that is gone is as stopped as it gets; any other failure to find it
     * (libvirt busy or away) says nothing about the guest, which may still run. */
    if (!dom && vmb_error_kind(err) != VMB_ERROR_NOT_FOUND) {
        g_propagate_error(error, g_steal_pointer(&err));
        return false;
    }
    svc_vms_step(vms, "waiting for the guest to power off (ACPI), then destroying", 20);
    if (dom && !dom_lifecycle_stop(dom, vms->opts.stop_timeout_s * 1000, NULL, error))
        return false;
    vmb_crash_point("stop:after-destroy");
    if (drop_ephemeral) {
        svc_vms_step(vms, "removing the disks", 80);
        /* Their snapshots lived inside them: libvirt's records of those go too. */
        if (dom && vm->disk_volumes && *vm->disk_volumes)
            dom_snapshot_delete_all(dom, true, NULL);
        svc_vms_drop_ephemeral_disks(vms, conn, vm);
    }
    return true;
}

/**
 * svc_vms_run_stop:
 * @vms: the service
 * @op: the stop operation (a worker's); the row is `stopping` since it was queued
 * @error: return location for an error
 *
 * Returns: true when the VM is stopped.
 */
bool
svc_vms_run_stop(SvcVms *vms, const DbOp *op, GError **error)
{
    g_autofree char *reason = NULL;
    g_autoptr(DbConn) db = NULL;
    g_autoptr(DbVm) vm = NULL;
    g_autoptr(DbVm) done = NULL;
    g_autoptr(GError) err = NULL;
    bool drop, ok;

    stop_params(op, &reason, &drop);
    if (!svc_vms_claim_wait(vms, op->vm_id, error))
        return false;
    db = db_pool_acquire(vms->opts.db, error);
    vm = db ? db_vms_get(db, op->vm_id, NULL, error) : NULL;
    g_clear_pointer(&db, db_conn_release);
    if (!vm || vm->state == DB_VM_STOPPED) {
        svc_vms_release(vms, op->vm_id);
        return vm != NULL;
    }
    ok = stop_domain(vms, vm, drop, &err);
    /* Without libvirt the VM stays `stopping`: once libvirt is back, the resync finishes
     * the stop (svc-sync), rather than the VM ending in `error` over an outage. The reason
     * is shown to users: libvirt's words stay in the log. */
    if (ok || vmb_error_kind(err) != VMB_ERROR_UNAVAILABLE)
        done = svc_vms_set_state(vms, vm->id, ok ? DB_VM_STOPPED : DB_VM_ERROR,
                                 ok ? reason
                                    : "the stop failed; an administrator can see why in the "
                                      "broker's log",
                                 NULL, NULL, NULL, ok ? error : NULL);
    svc_vms_release(vms, vm->id);
    if (!ok)
        g_propagate_error(error, g_steal_pointer(&err));
    return ok && done;
}

/* The request half of a stop: the operation and the row's `stopping`, in one transaction;
 * the VM's consoles end now. */
static DbVm *
stop_as(SvcVms *vms, const DbVm *vm, const DbUser *caller, const char *action,
        const char *reason, const char *remote_addr, bool drop_ephemeral, DbOp **ret_op,
        DbOp **ret_active, GError **error)
{
    g_autoptr(json_object) params = json_object_new_object();
    g_autoptr(virConnect) conn = NULL;
    DbOpSpec spec;
    StateTx tx;

    /* A stop needs libvirt: without it, say so (503) rather than queue a stop that waits. */
    if (!(conn = svc_vms_conn(vms, vm, error)))
        return NULL;
    if (vm->state == DB_VM_STOPPED || vm->state == DB_VM_STOPPING) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT, "The VM is already %s.",
                    db_vm_state_to_string(vm->state));
        return NULL;
    }
    json_object_object_add(params, "reason", json_object_new_string(reason));
    json_object_object_add(params, "drop_ephemeral", json_object_new_boolean(drop_ephemeral));
    spec = svc_vms_op_spec(vms, DB_OP_STOP, caller, remote_addr,
                           json_object_to_json_string_ext(params, JSON_C_TO_STRING_PLAIN));
    spec.vm_id = vm->id;
    tx = (StateTx) { .id = vm->id, .to = DB_VM_STOPPING, .reason = reason,
                     .actor_id = caller ? caller->id : NULL, .action = action,
                     .remote_addr = remote_addr, .op_spec = &spec };
    if (!svc_vms_state_tx(vms, &tx, error)) {
        if (ret_active)
            *ret_active = g_steal_pointer(&tx.active);
        db_op_free(tx.active);
        return NULL;
    }
    vmb_crash_point("stop:after-stopping");
    svc_ops_kick(vms->opts.ops);
    /* No console outlives the decision to stop: its viewers learn why now. */
    svc_vms_end_consoles(vms, vm->id, reason);
    if (ret_op)
        *ret_op = g_steal_pointer(&tx.op);
    db_op_free(tx.op);
    return tx.vm;
}

/**
 * svc_vms_stop:
 * @vms: the service
 * @caller: who asks
 * @id: the VM
 * @reason: (nullable): why, shown on the VM; NULL: who stopped it (svc_vms_stop_words)
 * @remote_addr: (nullable): for the audit log
 * @ret_op: (out) (optional): the stop operation
 * @ret_active: (out) (optional): with VMB_ERROR_CONFLICT, the VM's active operation
 * @error: return location for an error
 *
 * Returns: (transfer full): the VM in state `stopping`, or NULL.
 */
DbVm *
svc_vms_stop(SvcVms *vms, const DbUser *caller, const char *id, const char *reason,
             const char *remote_addr, DbOp **ret_op, DbOp **ret_active, GError **error)
{
    g_autoptr(DbVm) vm = svc_vms_get(vms, caller, id, error);
    g_autofree char *words = NULL;

    if (!vm)
        return NULL;
    if (!reason)
        reason = words = svc_vms_stop_words(caller, vm);
    return stop_as(vms, vm, caller, "vm.stop", reason, remote_addr, false, ret_op, ret_active,
                   error);
}

/**
 * svc_vms_stop_system:
 * @vms: the service
 * @id: the VM
 * @action: what the audit log calls it, e.g. "vm.reap"
 * @reason: why, shown on the VM
 * @drop_ephemeral: delete the VM's ephemeral disks once it is off
 * @error: return location for an error
 *
 * Returns: (transfer full): the VM in state `stopping`, or NULL.
 */
DbVm *
svc_vms_stop_system(SvcVms *vms, const char *id, const char *action, const char *reason,
                    bool drop_ephemeral, GError **error)
{
    g_autoptr(DbConn) db = db_pool_acquire(vms->opts.db, error);
    g_autoptr(DbVm) vm = db ? db_vms_get(db, id, NULL, error) : NULL;

    if (!vm)
        return NULL;
    g_clear_pointer(&db, db_conn_release);
    return stop_as(vms, vm, NULL, action, reason, NULL, drop_ephemeral, NULL, NULL, error);
}

typedef struct {
    const DbVm *was;          /* the VM as it was, stopped */
    const char *actor_id;
    const char *remote_addr;
    DbVm *vm; /* out */
    SvcVms *vms;
    const DomTemplate *tmpl;
} StartTx;

/* The host (its own, or where a create would go for a VM that can move), the ports and the
 * memory budget, in one transaction as a create's. */
static bool
start_tx(DbConn *conn, void *data, GError **error)
{
    StartTx *tx = data;

    g_clear_pointer(&tx->vm, db_vm_free);
    tx->vm = svc_vms_place_start_tx(tx->vms, conn, tx->was, tx->tmpl, error);
    return tx->vm && svc_vms_audit(conn, tx->actor_id, "vm.start", tx->was->id,
                                   tx->remote_addr, NULL, error);
}

/* A VM that moved to another host leaves its definition on the old one: undefined there
 * (it is off). An old host out of reach keeps it; its reconciler ignores a domain whose row
 * names another host. */
static void
leave_old_host(SvcVms *vms, const DbVm *was, const DbVm *now)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(virConnect) old = NULL;
    g_autoptr(virDomain) dom = NULL;

    if (strcmp(was->host_id, now->host_id) == 0)
        return;
    vmb_info("vm %s: starts on host %s, moved from host %s", now->id, now->host_name,
             was->host_name);
    old = svc_vms_conn(vms, was, &err);
    dom = old ? dom_lifecycle_lookup(old, was->name, &err) : NULL;
    if (!dom ? vmb_error_kind(err) != VMB_ERROR_NOT_FOUND
             : !dom_lifecycle_undefine(dom, false, &err))
        vmb_warning("vm %s: its old definition on host %s stays: %s", was->id, was->host_name,
                    err->message);
}

/* Under @id's claim: a paused VM is powered off (domain destroyed, row stopped with its
 * ports released) so that a start can follow: a guest an error paused would only hit the
 * error again if resumed. Any other VM is left as it is. */
static bool
stop_if_paused(SvcVms *vms, const char *id, const char *actor_id, const char *remote_addr,
               GError **error)
{
    g_autoptr(DbConn) db = db_pool_acquire(vms->opts.db, error);
    g_autoptr(DbVm) vm = db ? db_vms_get(db, id, NULL, error) : NULL;
    g_autoptr(virConnect) conn = NULL;
    g_autoptr(virDomain) dom = NULL;
    g_autoptr(DbVm) stopped = NULL;
    g_autoptr(GError) err = NULL;

    g_clear_pointer(&db, db_conn_release);
    if (!vm)
        return false;
    if (vm->state != DB_VM_PAUSED)
        return true;
    conn = svc_vms_conn(vms, vm, error);
    if (!conn)
        return false;
    dom = dom_lifecycle_lookup(conn, vm->name, &err);
    if (!dom && vmb_error_kind(err) != VMB_ERROR_NOT_FOUND) {
        g_propagate_error(error, g_steal_pointer(&err));
        return false;
    }
    if (dom && !dom_lifecycle_destroy(dom, error))
        return false;
    svc_vms_end_consoles(vms, id, "the VM was restarted");
    stopped = svc_vms_set_state(vms, id, DB_VM_STOPPED, "powered off to restart it: it was paused",
                                actor_id, "vm.stop", remote_addr, error);
    return stopped != NULL;
}

/**
 * start_now:
 * @vms: the service
 * @caller: who asks
 * @id: a stopped VM, or a paused one (powered off first: a restart)
 * @remote_addr: (nullable): for the audit log
 * @error: return location for an error
 *
 * Leases fresh ports, redefines the domain with them and a fresh VNC password, starts it.
 *
 * Returns: (transfer full): the running VM, or NULL (the VM is then stopped again).
 */
DbVm *
svc_vms_start_now(SvcVms *vms, const DbUser *caller, const char *id, const char *remote_addr,
                  GError **error)
{
    g_autoptr(DbVm) vm = svc_vms_get(vms, caller, id, error);
    g_autoptr(virConnect) conn = NULL;
    g_autoptr(DbConn) db = NULL;
    g_autoptr(DbIso) iso = NULL;
    g_auto(StartPlan) plan = { 0 };
    g_autoptr(GError) err = NULL;
    g_autoptr(DomTemplateSet) set = NULL;
    const DomTemplate *tmpl;
    bool defined = false;
    StartTx tx;

    if (!vm)
        return NULL;
    set = svc_templates_get(vms->opts.templates);
    tmpl = dom_template_set_lookup(set, vm->template_name);
    if (!tmpl) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT,
                    "Template '%s' of this VM is no longer offered.", vm->template_name);
        return NULL;
    }
    if (vm->iso_id) {
        db = db_pool_acquire(vms->opts.db, error);
        iso = db ? db_isos_get_usable(db, vm->iso_id, NULL, error) : NULL;
        if (!iso)
            return NULL;
        g_clear_pointer(&db, db_conn_release);
    }
    if (!svc_vms_claim_wait(vms, vm->id, error))
        return NULL;
    if (!stop_if_paused(vms, vm->id, caller->id, remote_addr, error)) {
        svc_vms_release(vms, vm->id);
        return NULL;
    }
    tx = (StartTx) { vm, caller->id, remote_addr, NULL, vms, tmpl };
    if (!db_pool_transaction(vms->opts.db, start_tx, &tx, error)) {
        db_vm_free(tx.vm);
        svc_vms_release(vms, vm->id);
        return NULL;
    }
    vmb_crash_point("start:after-lease");
    leave_old_host(vms, vm, tx.vm);
    conn = svc_vms_conn(vms, tx.vm, &err);
    if (!conn ||
        !svc_vms_plan_start(vms, conn, tx.vm, tmpl, iso, &plan, &err) ||
        !svc_vms_define_and_start(vms, conn, tx.vm, tmpl, &plan, &defined, &err)) {
        g_autoptr(DbVm) back = NULL;
        bool off = !conn || !defined;
        /* A domain that did start (the failure came after) must not run portless. */
        if (!off && vmb_error_kind(err) != VMB_ERROR_UNAVAILABLE) {
            g_autoptr(virDomain) dom = dom_lifecycle_lookup(conn, tx.vm->name, NULL);
            off = !dom || dom_lifecycle_destroy(dom, NULL);
        }
        /* Otherwise the row stays `creating`, for the resync to finish once libvirt is
         * back. */
        if (off)
            back = svc_vms_set_state(vms, tx.vm->id, DB_VM_STOPPED, "failed to start", NULL, NULL,
                                     NULL, NULL);
        db_vm_free(tx.vm);
        svc_vms_release(vms, vm->id);
        g_propagate_error(error, g_steal_pointer(&err));
        return NULL;
    }
    db_vm_free(tx.vm);
    {
        DbVm *running = svc_vms_set_state(vms, vm->id, DB_VM_RUNNING, NULL, NULL, NULL, NULL,
                                          error);
        svc_vms_release(vms, vm->id);
        return running;
    }
}

/**
 * reboot_now:
 * @vms: the service
 * @caller: who asks
 * @id: a running VM, or a paused one
 * @remote_addr: (nullable): for the audit log
 * @error: return location for an error
 *
 * A running guest is asked to reboot (ACPI, else a reset). A paused one hears neither: it
 * is powered off and started again, as svc_vms_start() does (fresh ports and VNC password,
 * disks kept).
 *
 * Returns: (transfer full): the VM, or NULL (VMB_ERROR_CONFLICT unless it runs or is paused).
 */
DbVm *
svc_vms_reboot_now(SvcVms *vms, const DbUser *caller, const char *id, const char *remote_addr,
                   GError **error)
{
    g_autoptr(DbVm) vm = svc_vms_get(vms, caller, id, error);
    g_autoptr(virConnect) conn = NULL;
    g_autoptr(virDomain) dom = NULL;
    g_autoptr(DbConn) db = NULL;

    if (!vm)
        return NULL;
    if (vm->state == DB_VM_PAUSED)
        return svc_vms_start_now(vms, caller, id, remote_addr, error);
    if (vm->state != DB_VM_RUNNING) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT, "The VM is %s, not running.",
                    db_vm_state_to_string(vm->state));
        return NULL;
    }
    conn = svc_vms_conn(vms, vm, error);
    dom = conn ? dom_lifecycle_lookup(conn, vm->name, error) : NULL;
    svc_vms_step(vms, "rebooting the guest", 50);
    if (!dom || !dom_lifecycle_reboot(dom, error))
        return NULL;
    db = db_pool_acquire(vms->opts.db, error);
    if (!db || !svc_vms_audit(db, caller->id, "vm.reboot", vm->id, remote_addr, NULL, error))
        return NULL;
    return g_steal_pointer(&vm);
}

/**
 * delete_now:
 * @vms: the service
 * @caller: who asks
 * @id: the VM
 * @remote_addr: (nullable): for the audit log
 * @error: return location for an error
 *
 * Destroys and undefines the domain (with its ephemeral volumes), then deletes the row,
 * releasing its ports.
 *
 * Returns: true on success.
 */
bool
svc_vms_delete_now(SvcVms *vms, const DbUser *caller, const char *id, const char *remote_addr,
                   GError **error)
{
    g_autoptr(DbVm) vm = svc_vms_get(vms, caller, id, error);
    g_autoptr(virConnect) conn = NULL;
    g_autoptr(virDomain) dom = NULL;
    g_autoptr(GError) err = NULL;
    DeleteTx tx;
    bool ok;

    if (!vm)
        return false;
    conn = svc_vms_conn(vms, vm, error);
    if (!conn || !svc_vms_claim_wait(vms, vm->id, error))
        return false;
    dom = dom_lifecycle_lookup(conn, vm->name, &err);
    if (!dom && vmb_error_kind(err) != VMB_ERROR_NOT_FOUND) {
        g_propagate_error(error, g_steal_pointer(&err));
        svc_vms_release(vms, vm->id);
        return false;
    }
    /* The domain (with its volumes) goes before the row: a crash in between leaves a row
     * whose domain is gone, which reconciliation stops (ports released, disks dropped). */
    svc_vms_step(vms, "destroying the domain", 20);
    if (dom && !dom_lifecycle_destroy(dom, error)) {
        svc_vms_release(vms, vm->id);
        return false;
    }
    vmb_crash_point("delete:after-destroy");
    svc_vms_step(vms, "removing the domain and its disks", 60);
    /* Snapshots inside a disk that stays (a persistent overlay) are deleted from it; an
     * ephemeral disk takes its own with it. */
    if (dom)
        dom_snapshot_delete_all(dom, vm->disk_volumes && *vm->disk_volumes, NULL);
    if (dom && !dom_lifecycle_undefine(dom, true, error)) {
        svc_vms_release(vms, vm->id);
        return false;
    }
    /* An ephemeral disk the domain's metadata did not list (a domain redefined by hand). */
    svc_vms_drop_ephemeral_disks(vms, conn, vm);
    vmb_crash_point("delete:after-undefine");
    tx = (DeleteTx) { vm->id, vms->opts.port_cooldown_s, caller->id, remote_addr };
    ok = db_pool_transaction(vms->opts.db, svc_vms_delete_tx, &tx, error);
    if (ok)
        svc_vms_end_consoles(vms, vm->id, "the VM was deleted");
    svc_vms_release(vms, vm->id);
    return ok;
}

