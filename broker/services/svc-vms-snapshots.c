// SPDX-License-Identifier: LGPL-2.1-or-later
// Snapshots of a VM. Each create, revert or delete is an operation of kind "snapshot", so it
// never runs beside a stop, a start or another snapshot of the same VM, survives a broker's
// death and shows its progress. The worker checks the bounds (limits.snapshots_per_vm,
// .snapshots_per_user, .snapshot_disk_gib, .snapshot_gib_per_user) against libvirt, then asks dom-snapshot for an
// internal snapshot with the guest's memory (README: Snapshots says why).
#include "svc-vms-private.h"

#include <string.h>
#include <json-c/json.h>

#include "db-users.h"
#include "dom-lifecycle.h"
#include "dom-snapshot.h"
#include "vmb-error.h"
#include "vmb-json.h"

#define GIB (G_GUINT64_CONSTANT(1) << 30)
#define MIB (G_GUINT64_CONSTANT(1) << 20)

static const char *const ACTIONS[] = {
    [SVC_SNAPSHOT_CREATE] = "create",
    [SVC_SNAPSHOT_REVERT] = "revert",
    [SVC_SNAPSHOT_DELETE] = "delete",
};

/* Whether @vm's template gives it a disk that can hold internal snapshots. */
static bool
has_disk(SvcVms *vms, const DbVm *vm)
{
    g_autoptr(DomTemplateSet) set = svc_templates_get(vms->opts.templates);
    const DomTemplate *t = dom_template_set_lookup(set, vm->template_name);

    return t && (t->kind == DOM_TEMPLATE_KIND_OVERLAY || t->disk_gib > 0);
}

static bool
check_request(SvcVms *vms, const DbVm *vm, SvcSnapshotAction action, const char *name,
              GError **error)
{
    if (!svc_vms_short_name_valid(name)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID,
                    "A snapshot's name is 1 to 32 of a-z, 0-9 and '-', starting with a "
                    "letter or digit.");
        return false;
    }
    if (action == SVC_SNAPSHOT_DELETE ? vm->state != DB_VM_RUNNING && vm->state != DB_VM_STOPPED
                                      : vm->state != DB_VM_RUNNING) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT,
                    action == SVC_SNAPSHOT_DELETE
                        ? "The VM is %s; delete its snapshots while it runs or is stopped."
                        : "The VM is %s; snapshots are taken and reverted while it runs.",
                    db_vm_state_to_string(vm->state));
        return false;
    }
    if (action == SVC_SNAPSHOT_CREATE && !has_disk(vms, vm)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT,
                    "This VM has no disk: there is nothing to snapshot.");
        return false;
    }
    return true;
}

/**
 * svc_vms_snapshot_queue:
 * @vms: the service
 * @caller: who asks
 * @vm_id: a VM the caller sees
 * @action: what to do
 * @name: the snapshot
 * @remote_addr: (nullable): for the audit log
 * @ret_vm: (out) (optional): the VM as it is now
 * @ret_active: (out) (optional): with VMB_ERROR_CONFLICT, the VM's active operation
 * @error: return location for an error
 *
 * Returns: (transfer full): the queued operation, or NULL (VMB_ERROR_INVALID for a bad name,
 *   VMB_ERROR_CONFLICT for a VM in the wrong state, without a disk or busy).
 */
DbOp *
svc_vms_snapshot_queue(SvcVms *vms, const DbUser *caller, const char *vm_id,
                       SvcSnapshotAction action, const char *name, const char *remote_addr,
                       DbVm **ret_vm, DbOp **ret_active, GError **error)
{
    g_autoptr(DbVm) vm = svc_vms_get(vms, caller, vm_id, error);
    g_autoptr(json_object) params = json_object_new_object();
    DbOpSpec spec;

    if (!vm || !check_request(vms, vm, action, name, error))
        return NULL;
    json_object_object_add(params, "action", json_object_new_string(ACTIONS[action]));
    json_object_object_add(params, "name", json_object_new_string(name));
    spec = svc_vms_op_spec(vms, DB_OP_SNAPSHOT, caller, remote_addr,
                           json_object_to_json_string_ext(params, JSON_C_TO_STRING_PLAIN));
    spec.vm_id = vm->id;
    return svc_vms_queue_spec(vms, &spec, &vm, ret_vm, ret_active, error);
}

/* What the VMs of @vm's owner hold: their snapshots, and the host bytes of the disks of
 * those that hold any (their snapshots inside) or are @vm. */
static bool
owner_usage(virConnectPtr conn, DbConn *db, const DbVm *vm, unsigned *ret_n,
            guint64 *ret_bytes, GError **error)
{
    g_autoptr(GPtrArray) mine = db_vms_list(db, vm->owner_id, error);

    *ret_n = 0;
    *ret_bytes = 0;
    for (guint i = 0; mine && i < mine->len; i++) {
        const DbVm *v = mine->pdata[i];
        g_autoptr(virDomain) dom = virDomainLookupByName(conn, v->name);
        int n = dom ? dom_snapshot_count(dom, NULL) : 0;
        guint64 bytes = 0;
        *ret_n += n > 0 ? (unsigned) n : 0;
        if (dom && (n > 0 || strcmp(v->id, vm->id) == 0) &&
            dom_snapshot_disk_bytes(dom, &bytes, NULL))
            *ret_bytes += bytes;
    }
    return mine != NULL;
}

static bool
refuse_space(GError **error, const char *whose, guint64 bytes, const char *key, unsigned gib)
{
    g_set_error(error, VMB_ERROR, VMB_ERROR_NO_SPACE,
                "%s disks already take %.1f GiB with their snapshots; another would pass "
                "limits.%s (%u GiB). Delete a snapshot first.", whose, (double) bytes / GIB,
                key, gib);
    return false;
}

/* The bounds a new snapshot of @vm must keep: per VM and, for a role-user owner, per user,
 * in number and in host bytes (a running guest's memory is saved too). */
static bool
check_room(SvcVms *vms, virConnectPtr conn, DbConn *db, const DbVm *vm, virDomainPtr dom,
           GError **error)
{
    g_autoptr(DomTemplateSet) set = svc_templates_get(vms->opts.templates);
    const DomTemplate *t = dom_template_set_lookup(set, vm->template_name);
    guint64 memory = (t ? t->memory_mib : 0) * MIB, bytes = 0, all_bytes = 0;
    int n = dom_snapshot_count(dom, error);
    unsigned all = 0;

    if (n < 0 || !dom_snapshot_disk_bytes(dom, &bytes, error))
        return false;
    if ((unsigned) n >= vms->opts.snapshots_per_vm) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_TOO_MANY,
                    "This VM holds %d snapshot(s), the most it may (limits.snapshots_per_vm); "
                    "delete one first.", n);
        return false;
    }
    if (bytes + memory > vms->opts.snapshot_disk_gib * GIB)
        return refuse_space(error, "This VM's", bytes, "snapshot_disk_gib",
                            vms->opts.snapshot_disk_gib);
    if (!vm->owner_is_user)
        return true;
    if (!owner_usage(conn, db, vm, &all, &all_bytes, error))
        return false;
    if (all >= vms->opts.snapshots_per_user) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_TOO_MANY,
                    "%s's VMs hold %u snapshot(s), the most they may "
                    "(limits.snapshots_per_user); delete one first.", vm->owner_name, all);
        return false;
    }
    if (all_bytes + memory > vms->opts.snapshot_gib_per_user * GIB) {
        g_autofree char *whose = g_strdup_printf("%s's", vm->owner_name);
        return refuse_space(error, whose, all_bytes, "snapshot_gib_per_user",
                            vms->opts.snapshot_gib_per_user);
    }
    return true;
}

/* Words a client may see for what libvirt refused. */
static void
publish(GError **error, const char *name)
{
    VmbErrorKind kind;

    if (!error || !*error || !vmb_error_is_private(*error))
        return;
    kind = vmb_error_kind(*error);
    if (kind != VMB_ERROR_NOT_FOUND && kind != VMB_ERROR_CONFLICT)
        return;
    g_clear_error(error);
    g_set_error(error, VMB_ERROR, kind, kind == VMB_ERROR_NOT_FOUND
                    ? "This VM has no snapshot named '%s'."
                    : "Snapshot '%s' cannot be used this way (a name in use, or a snapshot "
                      "that holds no running guest).", name);
}

static bool
run_action(SvcVms *vms, const DbOp *op, const DbVm *vm, const char *action, const char *name,
           GError **error)
{
    g_autoptr(virConnect) conn = svc_vms_conn(vms, vm, error);
    g_autoptr(virDomain) dom = conn ? dom_lifecycle_lookup(conn, vm->name, error) : NULL;
    g_autoptr(DbConn) db = NULL;

    if (!dom)
        return false;
    if (strcmp(action, "create") == 0) {
        g_autofree char *words = g_strdup_printf("vmbroker: snapshot '%s' of VM %s (owner %s)",
                                                 name, vm->id, vm->owner_name);
        svc_vms_step(vms, "checking the snapshot limits", 10);
        if (!(db = db_pool_acquire(vms->opts.db, error)) ||
            !check_room(vms, conn, db, vm, dom, error))
            return false;
        g_clear_pointer(&db, db_conn_release);
        svc_vms_step(vms, "saving the guest's disks and memory", 30);
        return dom_snapshot_create(dom, name, words, error);
    }
    if (strcmp(action, "revert") == 0) {
        svc_vms_step(vms, "bringing the guest back to the snapshot", 30);
        return dom_snapshot_revert(dom, name, error);
    }
    svc_vms_step(vms, "deleting the snapshot", 30);
    /* A delete taken over after it succeeded finds nothing left to delete. */
    return dom_snapshot_delete(dom, name, false, error) ||
           (op->attempts > 1 && vmb_error_kind(*error) == VMB_ERROR_NOT_FOUND &&
            (g_clear_error(error), true));
}

/**
 * svc_vms_run_snapshot:
 * @vms: the service
 * @op: a snapshot operation: params {action, name}
 * @error: return location for an error
 *
 * Returns: true when libvirt did what @op asks; audited as vm.snapshot.ACTION.
 */
bool
svc_vms_run_snapshot(SvcVms *vms, const DbOp *op, GError **error)
{
    g_autoptr(json_object) params = json_tokener_parse(op->params ? op->params : "{}");
    json_object *a = NULL, *n = NULL;
    const char *action = params && json_object_object_get_ex(params, "action", &a)
                             ? json_object_get_string(a) : NULL;
    const char *name = params && json_object_object_get_ex(params, "name", &n)
                           ? json_object_get_string(n) : NULL;
    g_autoptr(DbConn) db = db_pool_acquire(vms->opts.db, error);
    g_autoptr(DbVm) vm = db ? db_vms_get(db, op->vm_id, NULL, error) : NULL;
    g_autofree char *audit = NULL;
    g_autoptr(json_object) detail = json_object_new_object();

    if (!vm)
        return false;
    g_clear_pointer(&db, db_conn_release);
    if (!action || !name) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INTERNAL, "snapshot operation without params");
        return false;
    }
    if (!run_action(vms, op, vm, action, name, error)) {
        publish(error, name);
        return false;
    }
    audit = g_strdup_printf("vm.snapshot.%s", action);
    json_object_object_add(detail, "name", json_object_new_string(name));
    db = db_pool_acquire(vms->opts.db, error);
    return db && svc_vms_audit(db, op->requested_by, audit, vm->id, op->remote_addr,
                               json_object_to_json_string_ext(detail, JSON_C_TO_STRING_PLAIN),
                               error);
}

typedef struct {
    DomHypervisor *hv;
    char *name;
    GPtrArray *list;  /* out */
    GError *error;    /* out */
} ListJob;

static void
list_job_free(gpointer data)
{
    ListJob *job = data;

    g_free(job->name);
    g_clear_pointer(&job->list, g_ptr_array_unref);
    g_clear_error(&job->error);
    g_free(job);
}

static void
list_job_run(gpointer data)
{
    ListJob *job = data;
    g_autoptr(virConnect) conn = dom_hypervisor_get(job->hv, &job->error);
    g_autoptr(virDomain) dom = conn ? dom_lifecycle_lookup(conn, job->name, &job->error)
                                    : NULL;

    if (dom)
        job->list = dom_snapshot_list(dom, &job->error);
    else if (vmb_error_kind(job->error) == VMB_ERROR_NOT_FOUND) {
        g_clear_error(&job->error); /* no domain (yet): no snapshots */
        job->list = g_ptr_array_new_with_free_func((GDestroyNotify) dom_snapshot_free);
    }
}

/**
 * svc_vms_snapshots:
 * @vms: the service
 * @caller: who asks
 * @vm_id: a VM the caller sees
 * @error: return location for an error (VMB_ERROR_UNAVAILABLE when libvirt does not answer
 *   within call_timeout_s)
 *
 * Returns: (transfer full) (element-type DomSnapshot): its snapshots, newest first.
 */
GPtrArray *
svc_vms_snapshots(SvcVms *vms, const DbUser *caller, const char *vm_id, GError **error)
{
    g_autoptr(DbVm) vm = svc_vms_get(vms, caller, vm_id, error);
    DomHypervisor *hv;
    ListJob *job;
    GPtrArray *list;

    if (!vm || !(hv = svc_vms_hv(vms, vm->host_id, error)))
        return NULL;
    job = g_new0(ListJob, 1);
    job->hv = hv;
    job->name = g_strdup(vm->name);
    if (!vmb_bounded_run(vms->opts.bounded, list_job_run, job, list_job_free,
                         vms->opts.call_timeout_s * 1000, NULL)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE,
                    "libvirt did not list the snapshots within %u s; try again shortly.",
                    vms->opts.call_timeout_s);
        return NULL;
    }
    list = g_steal_pointer(&job->list);
    if (!list)
        g_propagate_error(error, g_steal_pointer(&job->error));
    list_job_free(job);
    return list;
}
