// SPDX-License-Identifier: LGPL-2.1-or-later
// Creating a VM, and what a start shares with it: the plan (ISO, disk, domain type,
// password), define and start (once more as TCG after a KVM failure), undo. The order of a
// create and its crash points are described in svc-vms.c.
#include "svc-vms-private.h"

#include <string.h>

#include "db-audit.h"
#include "db-isos.h"
#include "db-tickets.h"
#include "dom-accel.h"
#include "dom-lifecycle.h"
#include "dom-network.h"
#include "dom-storage.h"
#include "dom-virt.h"
#include "dom-xml.h"
#include "svc-users.h"
#include "vmb-crash.h"
#include "vmb-error.h"
#include "vmb-log.h"
#include "vmb-net.h"
#include "vmb-secret.h"

/* --- create --- */

typedef struct {
    DbVmSpec *spec;
    const char *pin;          /* (nullable) the host it must go to */
    const char *actor_id;
    const char *remote_addr;
    DbOpSpec op_spec;
    DbVm *vm; /* out */
    DbOp *op; /* out */
    SvcVms *vms;
    const DomTemplate *tmpl;
} InsertTx;

/* The row, its leases and its create operation, together or not at all. */
static bool
insert_tx(DbConn *conn, void *data, GError **error)
{
    InsertTx *tx = data;

    g_clear_pointer(&tx->vm, db_vm_free); /* a retried transaction runs this again */
    g_clear_pointer(&tx->op, db_op_free);
    tx->vm = svc_vms_place_tx(tx->vms, conn, tx->spec, tx->tmpl, tx->pin, error);
    if (!tx->vm || !svc_vms_audit(conn, tx->actor_id, "vm.create", tx->vm->id,
                                  tx->remote_addr, NULL, error))
        return false;
    tx->op_spec.vm_id = tx->vm->id;
    tx->op = db_ops_insert(conn, &tx->op_spec, NULL, error);
    return tx->op != NULL;
}

static bool
state_tx(DbConn *conn, void *data, GError **error)
{
    StateTx *tx = data;

    g_clear_pointer(&tx->vm, db_vm_free);
    g_clear_pointer(&tx->op, db_op_free);
    g_clear_pointer(&tx->active, db_op_free);
    if (tx->op_spec && !(tx->op = db_ops_insert(conn, tx->op_spec, &tx->active, error)))
        return false;
    tx->vm = db_vms_set_state(conn, tx->id, tx->to, tx->reason, tx->cooldown_s, error);
    return tx->vm && (!tx->action || svc_vms_audit(conn, tx->actor_id, tx->action, tx->id,
                                                   tx->remote_addr, NULL, error));
}

/* Runs @tx (cooldown filled in); on failure frees what it made. */
bool
svc_vms_state_tx(SvcVms *vms, StateTx *tx, GError **error)
{
    tx->cooldown_s = vms->opts.port_cooldown_s;
    if (db_pool_transaction(vms->opts.db, state_tx, tx, error))
        return true;
    g_clear_pointer(&tx->vm, db_vm_free);
    g_clear_pointer(&tx->op, db_op_free);
    return false;
}

DbVm *
svc_vms_set_state(SvcVms *vms, const char *id, DbVmState to, const char *reason,
                  const char *actor_id, const char *action, const char *remote_addr,
                  GError **error)
{
    StateTx tx = { .id = id, .to = to, .reason = reason, .actor_id = actor_id,
                   .action = action, .remote_addr = remote_addr };

    return svc_vms_state_tx(vms, &tx, error) ? tx.vm : NULL;
}

/* On an added host: vmbroker's pools, and the uploaded ISO and base image @vm boots,
 * copied from the configured host when missing. */
static bool
host_storage(SvcVms *vms, virConnectPtr conn, const DbVm *vm, const DomTemplate *tmpl,
             const DbIso *iso, GError **error)
{
    if (!svc_vms_host_volume(vms, conn, vm, DOM_POOL_DISKS, NULL, NULL, error))
        return false;
    if (iso && !tmpl->iso_path &&
        !svc_vms_host_volume(vms, conn, vm, DOM_POOL_ISOS, iso->volume, iso->sha256, error))
        return false;
    return tmpl->kind != DOM_TEMPLATE_KIND_OVERLAY ||
           svc_vms_host_volume(vms, conn, vm, DOM_POOL_BASE, tmpl->base_image, NULL, error);
}

/* Paths and secrets of one start of @vm: resolves the ISO and makes the disk if missing. */
void
svc_vms_start_plan_clear(StartPlan *p)
{
    g_free(p->iso_path);
    g_free(p->disk_path);
    g_free(p->backing_path);
    g_free(p->domain_type);
    if (p->password)
        explicit_bzero(p->password, strlen(p->password));
    g_free(p->password);
    g_free(p->created);
}

bool
svc_vms_plan_start(SvcVms *vms, virConnectPtr conn, const DbVm *vm, const DomTemplate *tmpl,
                   const DbIso *iso, StartPlan *plan, GError **error)
{
    svc_vms_step(vms, "preparing the disk", 10);
    plan->domain_type = svc_accel_domain_type(vms->opts.accel, conn, error);
    if (!plan->domain_type || !host_storage(vms, conn, vm, tmpl, iso, error))
        return false;
    if (tmpl->iso_path)
        plan->iso_path = g_strdup(tmpl->iso_path);
    else if (iso && !(plan->iso_path = dom_storage_volume_path(
                          conn, vms->name_prefix, DOM_POOL_ISOS, iso->volume, error)))
        return false;
    if (tmpl->kind == DOM_TEMPLATE_KIND_OVERLAY && tmpl->persistent) {
        /* The owner's overlay of this template, kept across VMs and re-attached. */
        g_autofree char *vol = dom_storage_persistent_volume_name(vms->name_prefix,
                                                                  vm->owner_name, tmpl);
        if (!svc_vms_disk_quota(vms, conn, vm->owner_name, tmpl, error))
            return false;
        plan->disk_path = dom_storage_reuse_overlay(conn, vms->name_prefix, vol, tmpl,
                                                    &plan->backing_path, &plan->disk_made,
                                                    error);
        if (!plan->disk_path)
            return false;
    } else if (dom_template_has_disk(tmpl)) {
        /* An ephemeral disk survives a stop and start; the VM's delete removes it. */
        g_autofree char *vol = g_strdup_printf("%s-disk0.qcow2", vm->name);
        g_autoptr(GError) missing = NULL;
        plan->disk_path = dom_storage_volume_path(conn, vms->name_prefix, DOM_POOL_DISKS, vol,
                                                  &missing);
        if (plan->disk_path && !vm->started_at) {
            /* A create makes its disk: one already there is not this VM's (a left-over,
             * or someone else's), and booting it would hand its data to a new owner. */
            g_clear_pointer(&plan->disk_path, g_free);
            g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT,
                        "A disk named like this VM's exists already; choose another name, or "
                        "ask an admin to remove the left-over disk.");
            return false;
        }
        if (plan->disk_path && tmpl->kind == DOM_TEMPLATE_KIND_OVERLAY)
            plan->backing_path = dom_storage_volume_path(conn, vms->name_prefix, DOM_POOL_BASE,
                                                         tmpl->base_image, error);
        else if (!plan->disk_path && tmpl->kind == DOM_TEMPLATE_KIND_OVERLAY)
            plan->disk_path = dom_storage_create_overlay(conn, vms->name_prefix, vol, tmpl,
                                                         &plan->backing_path, error);
        else if (!plan->disk_path)
            plan->disk_path = dom_storage_create_blank(conn, vms->name_prefix, vol,
                                                       tmpl->disk_gib, error);
        if (!plan->disk_path || (tmpl->kind == DOM_TEMPLATE_KIND_OVERLAY && !plan->backing_path))
            return false;
        plan->disk_made = missing != NULL;
    }
    plan->password = vmb_secret_new_password(VNC_PASSWORD_LEN, error);
    if (!plan->password)
        return false;
    plan->created = g_date_time_format_iso8601(vm->created_at);
    return true;
}

/* Defines (or redefines, with this start's ports and password) and starts the domain as
 * plan->domain_type. */
static bool
define_and_start_as(SvcVms *vms, virConnectPtr conn, const DbVm *vm, const DomTemplate *tmpl,
                    const StartPlan *plan, bool *ret_defined, GError **error)
{
    g_autofree char *listen = svc_vms_console_address(vms, vm);
    DomInstance inst = {
        .domain_type = plan->domain_type,
        .name = vm->name,
        .uuid = vm->domain_uuid,
        .vm_id = vm->id,
        .owner = vm->owner_name,
        .created = plan->created,
        .iso_path = plan->iso_path,
        .disk_path = plan->disk_path,
        .backing_path = plan->backing_path,
        .backing_format = plan->backing_path
                              ? dom_template_image_format_to_string(tmpl->base_format) : NULL,
        .disk_ephemeral = plan->disk_path && !tmpl->persistent,
        .vnc_port = vm->vnc_port,
        .ws_port = vm->ws_port,
        .listen = listen,
        .vnc_password = plan->password,
        .guest_network = vms->guest_network,
    };
    g_autofree char *xml = NULL;
    g_autoptr(virDomain) dom = NULL;
    g_autoptr(DbConn) db = NULL;
    char uuid[VIR_UUID_STRING_BUFLEN];

    if (!listen) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE,
                    "This broker has no connection to the VM's host yet.");
        return false;
    }
    if (!(xml = dom_xml_build_string(tmpl, &inst, error)))
        return false;
    /* Every start checks it: a host may be new, or its network may have been removed. */
    if (tmpl->network == DOM_NETWORK_ISOLATED &&
        !dom_network_ensure(conn, vms->guest_network, vms->guest_subnet, error))
        return false;
    vmb_crash_point(vm->started_at ? "start:after-disk" : "create:after-disk");
    svc_vms_step(vms, "defining the domain", 40);
    dom = dom_lifecycle_define(conn, xml, error);
    if (!dom)
        return false;
    *ret_defined = true;
    vmb_crash_point(vm->started_at ? "start:after-define" : "create:after-define");
    if (virDomainGetUUIDString(dom, uuid) < 0) {
        dom_virt_set_error(error, "reading the uuid of domain '%s'", vm->name);
        return false;
    }
    db = db_pool_acquire(vms->opts.db, error);
    if (!db || !db_vms_set_domain(db, vm->id, uuid, plan->domain_type, error))
        return false;
    g_clear_pointer(&db, db_conn_release);
    svc_vms_step(vms, "starting the guest", 60);
    return dom_lifecycle_start(dom, error);
}

/* define_and_start_as(), and once more as TCG when a start under KVM failed for a KVM reason
 * that the probe did not foresee (auto mode only): a user never sees a KVM failure. */
bool
svc_vms_define_and_start(SvcVms *vms, virConnectPtr conn, const DbVm *vm, const DomTemplate *tmpl,
                         StartPlan *plan, bool *ret_defined, GError **error)
{
    g_autoptr(GError) err = NULL;

    if (define_and_start_as(vms, conn, vm, tmpl, plan, ret_defined, &err))
        return true;
    if (strcmp(plan->domain_type, "kvm") != 0 || !dom_accel_is_kvm_failure(err->message) ||
        !svc_accel_demote(vms->opts.accel, err->message)) {
        g_propagate_error(error, g_steal_pointer(&err));
        return false;
    }
    vmb_warning("vm %s: the start under KVM failed (%s); starting it again under TCG", vm->id,
                err->message);
    g_free(plan->domain_type);
    plan->domain_type = g_strdup("qemu");
    return define_and_start_as(vms, conn, vm, tmpl, plan, ret_defined, error);
}

/* Removes the domain (if defined) and, when this create made it, the disk.
 * Returns: false when something may be left behind. */
static bool
undo_domain(SvcVms *vms, virConnectPtr conn, const DbVm *vm, const StartPlan *plan,
            bool defined)
{
    g_autoptr(GError) err = NULL;
    bool ok = true;

    if (defined) {
        g_autoptr(virDomain) dom = dom_lifecycle_lookup(conn, vm->name, &err);
        if (dom)
            ok = dom_lifecycle_destroy(dom, NULL) && dom_lifecycle_undefine(dom, false, NULL);
        else
            ok = vmb_error_kind(err) == VMB_ERROR_NOT_FOUND;
        g_clear_error(&err);
    }
    if (plan->disk_made && plan->disk_path && !dom_storage_delete_path(conn, plan->disk_path,
                                                                       &err))
        ok = ok && vmb_error_kind(err) == VMB_ERROR_NOT_FOUND;
    return ok;
}

bool
svc_vms_delete_tx(DbConn *conn, void *data, GError **error)
{
    DeleteTx *tx = data;

    return db_vms_delete(conn, tx->id, NULL, tx->cooldown_s, error) &&
           svc_vms_audit(conn, tx->actor_id, "vm.delete", tx->id, tx->remote_addr, NULL, error);
}

/* Owner checks of a create; fills @ret_owner. */
static bool
resolve_owner(SvcVms *vms, DbConn *conn, const SvcVmRequest *req, DbUser **ret_owner,
              GError **error)
{
    DbUser *owner;

    if (!req->owner || strcmp(req->owner, req->caller->username) == 0) {
        owner = db_users_get_by_name(conn, req->caller->username, error);
    } else if (!svc_vms_sees_all(req->caller)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_FORBIDDEN,
                    "Only admin and service accounts may create VMs for other users.");
        return false;
    } else if (!svc_users_name_valid(req->owner)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID,
                    "'owner' is not a valid user name: 1 to 64 of a-z, 0-9, '.', '_', '-'.");
        return false;
    } else {
        /* The portal flow: a student's first VM creates the student (no password). */
        owner = db_users_ensure(conn, req->owner, DB_ROLE_USER, error);
    }
    if (!owner)
        return false;
    /* A service account acts for students only: acting for an admin would lend it the
     * admin's exemptions (no running limit, every ISO), for a disabled user it would undo
     * the disabling. Admins keep the power to act for anyone. */
    if (req->caller->role == DB_ROLE_SERVICE &&
        strcmp(owner->id, req->caller->id) != 0 &&
        (owner->role != DB_ROLE_USER || owner->disabled)) {
        db_user_free(owner);
        g_set_error(error, VMB_ERROR, VMB_ERROR_FORBIDDEN,
                    "A service account acts only for enabled users of role 'user'.");
        return false;
    }
    *ret_owner = owner;
    return true;
}

/* The running limit (the memory budget is checked with the leases: insert_tx). */
static bool
check_capacity(SvcVms *vms, DbConn *conn, const DbUser *owner, const DomTemplate *tmpl,
               GPtrArray **ret_running, GError **error)
{
    g_autoptr(GPtrArray) all = db_vms_list(conn, NULL, error);
    g_autoptr(GPtrArray) mine = g_ptr_array_new_with_free_func((GDestroyNotify) db_vm_free);

    if (!all)
        return false;
    for (guint i = all->len; i-- > 0;) {
        DbVm *vm = all->pdata[i];
        if (!svc_vms_vm_is_active(vm))
            continue;
        if (db_vm_state_counts_as_running(vm->state) && strcmp(vm->owner_id, owner->id) == 0)
            g_ptr_array_add(mine, g_ptr_array_steal_index(all, i));
    }
    if (owner->role != DB_ROLE_ADMIN && vms->opts.max_running_per_user &&
        mine->len >= vms->opts.max_running_per_user) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT,
                    "%s already has %u running VM(s), the most allowed; stop one first.",
                    owner->username, mine->len);
        if (ret_running)
            *ret_running = g_steal_pointer(&mine);
        return false;
    }
    return true;
}

/* What @need means for a person, and what an admin does about it. */
static void
need_words(const DomTemplate *tmpl, DomTemplateNeed need, const char *prefix, char **ret_reason,
           char **ret_hint)
{
    switch (need) {
    case DOM_NEED_BASE_IMAGE:
        *ret_reason = g_strdup_printf("Its base image %s is not on this server yet.",
                                      tmpl->base_image);
        *ret_hint = g_strdup_printf("An admin copies the image %s into the folder of the "
                                    "storage pool %sbase (storage.dir/base); vmbroker finds it "
                                    "there at the next look.", tmpl->base_image, prefix);
        return;
    case DOM_NEED_ISO_FILE:
        *ret_reason = g_strdup("Its installer ISO is missing on this server.");
        *ret_hint = g_strdup_printf("An admin puts the ISO file where template '%s' says "
                                    "(iso_path), or corrects the template.", tmpl->name);
        return;
    case DOM_NEED_NETWORK:
        *ret_reason = g_strdup_printf("Its network %s is not available on this server.",
                                      tmpl->network_name);
        *ret_hint = g_strdup_printf("An admin defines and starts the libvirt network %s "
                                    "(virsh net-start %s; net-autostart keeps it).",
                                    tmpl->network_name, tmpl->network_name);
        return;
    case DOM_NEED_NOTHING:
    default:
        *ret_reason = NULL;
        *ret_hint = NULL;
        return;
    }
}

/**
 * svc_vms_template_need_now:
 * @vms: the service
 * @tmpl: a loaded template
 * @ret_reason: (out): why a VM of @tmpl cannot be made now, for users; NULL when it can
 * @ret_hint: (out): what an admin does about it; NULL when nothing is missing
 * @error: return location for an error
 *
 * Asks libvirt directly: call it from a libvirt worker (svc_vms_template_need runs it on the
 * bounded pool).
 *
 * Returns: true when libvirt could be asked.
 */
bool
svc_vms_template_need_now(SvcVms *vms, const DomTemplate *tmpl, char **ret_reason,
                          char **ret_hint, GError **error)
{
    g_autoptr(virConnect) conn = dom_hypervisor_get(vms->opts.hv, error);
    DomTemplateNeed need = DOM_NEED_NOTHING;

    if (!conn || !dom_storage_template_need(conn, vms->name_prefix, tmpl, &need, error))
        return false;
    need_words(tmpl, need, vms->name_prefix, ret_reason, ret_hint);
    return true;
}

/* A create from a template the host cannot serve is 422 with the reason, before anything
 * is made. */
static bool
check_template(SvcVms *vms, const DomTemplate *tmpl, GError **error)
{
    g_autofree char *reason = NULL;
    g_autofree char *hint = NULL;

    if (!svc_vms_template_need(vms, tmpl, &reason, &hint, error))
        return false;
    if (!reason)
        return true;
    g_set_error(error, VMB_ERROR, VMB_ERROR_UNPROCESSABLE,
                "Template '%s' cannot be used right now: %s", tmpl->name, reason);
    return false;
}

/* An ISO by name: the owner's own first, then shared ones (admins: then anyone's); two of
 * the best rank with that name are ambiguous. */
static DbIso *
iso_by_name(DbConn *db, const char *name, const DbUser *owner, GError **error)
{
    g_autoptr(GError) err = NULL;
    unsigned ties = 0;
    g_autoptr(DbIso) iso = db_isos_find_by_name(db, name, owner->id,
                                                owner->role == DB_ROLE_ADMIN, &ties, &err);

    if (!iso) {
        if (vmb_error_kind(err) == VMB_ERROR_NOT_FOUND)
            g_set_error(error, VMB_ERROR, VMB_ERROR_UNPROCESSABLE,
                        "No usable ISO '%s': give the id or the name of one of your ISOs or "
                        "of a shared one (GET /api/v1/isos lists them).", name);
        else
            g_propagate_error(error, g_steal_pointer(&err));
        return NULL;
    }
    if (ties > 1) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNPROCESSABLE,
                    "%u ISOs are named '%s': give the id of the one you mean (GET "
                    "/api/v1/isos lists them).", ties, name);
        return NULL;
    }
    return g_steal_pointer(&iso);
}

/* The ISO a create names, by id or by name: required by templates that boot the user's ISO,
 * refused by the others; the owner's own or a shared one (admins: any). */
static bool
resolve_iso(DbConn *db, const DomTemplate *tmpl, const char *iso_ref, const DbUser *owner,
            DbIso **ret_iso, GError **error)
{
    g_autoptr(GError) err = NULL;

    if (!dom_template_needs_iso(tmpl)) {
        if (!iso_ref)
            return true;
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNPROCESSABLE, "Template '%s' takes no ISO.",
                    tmpl->name);
        return false;
    }
    if (!iso_ref) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNPROCESSABLE,
                    "Template '%s' boots an ISO of your choice: give 'iso' (its id or name).",
                    tmpl->name);
        return false;
    }
    *ret_iso = db_isos_get_usable(db, iso_ref, owner->role == DB_ROLE_ADMIN ? NULL : owner->id,
                                  &err);
    if (*ret_iso)
        return true;
    if (vmb_error_kind(err) != VMB_ERROR_NOT_FOUND) {
        g_propagate_error(error, g_steal_pointer(&err));
        return false;
    }
    *ret_iso = iso_by_name(db, iso_ref, owner, error);
    return *ret_iso != NULL;
}

/* The libvirt half of a create, on the committed `creating` row @vm: disk, define, start,
 * then `running`; on failure the domain and disk are removed first and the row last. */
static DbVm *
start_or_undo(SvcVms *vms, const DbVm *vm, const DomTemplate *tmpl, const DbIso *iso,
              const char *actor_id, const char *remote_addr, GError **error)
{
    g_autoptr(virConnect) conn = svc_vms_conn(vms, vm, error);
    g_auto(StartPlan) plan = { 0 };
    g_autoptr(GError) err = NULL;
    DeleteTx undo = { vm->id, vms->opts.port_cooldown_s, actor_id, remote_addr };
    bool defined = false, undone;
    DbVm *running = NULL;

    if (!conn) { /* nothing reached libvirt: the row goes */
        db_pool_transaction(vms->opts.db, svc_vms_delete_tx, &undo, NULL);
        return NULL;
    }
    if (svc_vms_plan_start(vms, conn, vm, tmpl, iso, &plan, &err) &&
        svc_vms_define_and_start(vms, conn, vm, tmpl, &plan, &defined, &err)) {
        vmb_crash_point("create:after-start");
        running = svc_vms_set_state(vms, vm->id, DB_VM_RUNNING, NULL, NULL, NULL, NULL, &err);
        if (running)
            return running;
    }
    /* When libvirt went away mid-create, a step may have happened without us hearing of it
     * (a volume made, its answer lost): the row, which names the domain and the disk, stays
     * `creating` for the resync to roll back once libvirt is back. */
    svc_vms_step(vms, "undoing", 90);
    undone = vmb_error_kind(err) != VMB_ERROR_UNAVAILABLE &&
             undo_domain(vms, conn, vm, &plan, defined);
    if (undone)
        db_pool_transaction(vms->opts.db, svc_vms_delete_tx, &undo, NULL);
    g_propagate_error(error, g_steal_pointer(&err));
    return NULL;
}

/* The checks of a create that need the database; fills @ret_owner and @ret_iso. */
static bool
check_create(SvcVms *vms, const SvcVmRequest *req, const DomTemplate *tmpl,
             DbUser **ret_owner, DbIso **ret_iso, GPtrArray **ret_running, GError **error)
{
    g_autoptr(DbConn) db = NULL;

    if (!tmpl) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNPROCESSABLE, "No template '%s'.",
                    req->template_name);
        return false;
    }
    if (req->name && !svc_vms_short_name_valid(req->name)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID,
                    "'name' has 1 to 32 of a-z, 0-9 and '-', starting with a letter or digit.");
        return false;
    }
    if (req->host && req->caller->role != DB_ROLE_ADMIN) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_FORBIDDEN,
                    "Only admins choose the host of a VM ('host').");
        return false;
    }
    if (!check_template(vms, tmpl, error))
        return false;
    db = db_pool_acquire(vms->opts.db, error);
    return db && resolve_owner(vms, db, req, ret_owner, error) &&
           resolve_iso(db, tmpl, req->iso_id, *ret_owner, ret_iso, error) &&
           check_capacity(vms, db, *ret_owner, tmpl, ret_running, error) &&
           svc_accel_check(vms->opts.accel, error);
}

/**
 * svc_vms_create:
 * @vms: the service
 * @req: what to create, for whom, asked by whom
 * @ret_running: (out) (optional): with VMB_ERROR_CONFLICT at the limit, the owner's VMs
 * @ret_op: (out): the create operation, queued
 * @error: return location for an error
 *
 * The checks, then one transaction: the row (`creating`), its leases and its operation.
 * A worker does the rest (svc_vms_run_create).
 *
 * Returns: (transfer full): the VM in state `creating`, or NULL with nothing left behind.
 */
DbVm *
svc_vms_create(SvcVms *vms, const SvcVmRequest *req, GPtrArray **ret_running, DbOp **ret_op,
               GError **error)
{
    g_autoptr(DomTemplateSet) set = svc_templates_get(vms->opts.templates);
    const DomTemplate *tmpl = dom_template_set_lookup(set, req->template_name);
    g_autoptr(DbUser) owner = NULL;
    g_autoptr(DbIso) iso = NULL;
    g_autofree char *id = g_uuid_string_random();
    g_autofree char *name = NULL;
    g_autofree char *volume = NULL;
    const char *volumes[2] = { NULL, NULL };
    InsertTx tx;

    if (!check_create(vms, req, tmpl, &owner, &iso, ret_running, error))
        return NULL;
    if (svc_vms_take_possible(req, owner, tmpl)) {
        DbVm *taken = svc_vms_take(vms, req, owner, tmpl, ret_op);
        if (taken)
            return taken;
    }
    name = req->name ? dom_xml_domain_name_named(vms->name_prefix, owner->username, req->name)
                     : dom_xml_domain_name(vms->name_prefix, owner->username, id);
    if (dom_template_has_disk(tmpl) && !tmpl->persistent) {
        volume = g_strdup_printf("%s-disk0.qcow2", name);
        volumes[0] = volume;
    }
    tx = (InsertTx) {
        .spec = &(DbVmSpec) {
            .id = id,
            .name = name,
            .owner_id = owner->id,
            .template_name = tmpl->name,
            .iso_id = iso ? iso->id : NULL,
            .disk_volumes = volumes,
        },
        .pin = req->host,
        .vms = vms,
        .tmpl = tmpl,
        .actor_id = req->caller->id,
        .remote_addr = req->remote_addr,
        .op_spec = svc_vms_op_spec(vms, DB_OP_CREATE, req->caller, req->remote_addr, NULL),
    };
    if (!db_pool_transaction(vms->opts.db, insert_tx, &tx, error)) {
        db_vm_free(tx.vm);
        db_op_free(tx.op);
        return NULL;
    }
    vmb_crash_point("create:after-insert");
    svc_ops_kick(vms->opts.ops);
    *ret_op = tx.op;
    return tx.vm;
}

/**
 * svc_vms_run_create:
 * @vms: the service
 * @op: the create operation (a worker's)
 * @error: return location for an error
 *
 * The libvirt half of a create, under the VM's claim; a failure undoes every step, row
 * last.
 *
 * Returns: true when the VM runs.
 */
bool
svc_vms_run_create(SvcVms *vms, const DbOp *op, GError **error)
{
    g_autoptr(DbConn) db = db_pool_acquire(vms->opts.db, error);
    g_autoptr(DbVm) vm = db ? db_vms_get(db, op->vm_id, NULL, error) : NULL;
    g_autoptr(DbIso) iso = NULL;
    g_autoptr(DbVm) running = NULL;
    g_autoptr(DomTemplateSet) set = NULL;
    const DomTemplate *tmpl;

    if (!vm)
        return false;
    if (vm->state != DB_VM_CREATING) {
        /* Taken over after a crash: the reconciliation before this decided. */
        if (vm->state == DB_VM_RUNNING)
            return true;
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT,
                    "The create was interrupted and undone; the VM is %s.",
                    db_vm_state_to_string(vm->state));
        return false;
    }
    set = svc_templates_get(vms->opts.templates);
    tmpl = dom_template_set_lookup(set, vm->template_name);
    if (!tmpl) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT, "Template '%s' is no longer offered.",
                    vm->template_name);
        return false;
    }
    if (vm->iso_id && !(iso = db_isos_get_usable(db, vm->iso_id, NULL, error)))
        return false;
    g_clear_pointer(&db, db_conn_release);
    running = start_or_undo(vms, vm, tmpl, iso, op->requested_by, op->remote_addr, error);
    if (!running)
        return false;
    vmb_crash_point("create:after-running");
    if (vms->opts.metrics) {
        g_autoptr(GDateTime) now = g_date_time_new_now_utc();
        vmb_metrics_observe(vms->opts.metrics, SPAWN_METRIC,
                            (double) g_date_time_difference(now, op->created_at) /
                                G_USEC_PER_SEC, NULL);
    }
    return true;
}
