// SPDX-License-Identifier: LGPL-2.1-or-later
// The VM life cycle. The order of a create is: checks, one transaction that leases ports
// and inserts the row (state `creating`), then libvirt (disk, define, start), then
// `running`. Whatever fails after the row exists is undone in reverse, row last, so no
// domain, volume or lease outlives a failed create. A delete removes the domain (and its
// volumes) before the row, so a crash anywhere leaves at worst a row whose domain is gone,
// which reconciliation (svc-sync) turns into a stopped VM with its ports released.
//
// While an operation works on a VM it holds the VM's claim, so that the reconciler never
// acts on a VM whose state is in flux (svc_vms_try_claim).
//
// Crash points (VMB_CRASH_AT, see vmb-crash.h), in the order they are reached:
//   create:after-insert   row `creating` committed with its leases, nothing in libvirt
//   create:after-disk     the ephemeral disk exists, no domain
//   create:after-define   the domain is defined, not started
//   create:after-start    the domain runs, the row is still `creating`
//   create:after-running  the row is `running`
//   delete:after-destroy  the domain is shut off, still defined, row unchanged
//   delete:after-undefine the domain and its volumes are gone, the row remains
//   stop:after-stopping   the row is `stopping`, the domain still runs
//   stop:after-destroy    the domain is off, the row is still `stopping`
//   start:after-lease     the row is `creating` again with fresh leases, domain off
//   start:after-disk      the same, the disk made if it was missing
//   start:after-define    the domain is redefined with the new ports, not started
#include "svc-vms.h"

#include <string.h>

#include "db-audit.h"
#include "db-isos.h"
#include "db-tickets.h"
#include "dom-accel.h"
#include "dom-lifecycle.h"
#include "dom-storage.h"
#include "dom-virt.h"
#include "dom-xml.h"
#include "svc-users.h"
#include "vmb-bounded.h"
#include "vmb-crash.h"
#include "vmb-error.h"
#include "vmb-log.h"
#include "vmb-net.h"
#include "vmb-secret.h"

#define SPAWN_METRIC "vmbroker_vm_spawn_seconds"
/* QEMU uses at most 8 characters of a VNC password. */
#define VNC_PASSWORD_LEN 8
/* Background stops running at once. */
#define STOP_WORKERS 4

struct SvcVms {
    SvcVmsOptions opts;
    char *host_id;
    char *name_prefix;
    char *console_listen;
    GThreadPool *stoppers; /* vm ids to stop */
    GMutex claim_lock;
    GCond claim_freed;
    GHashTable *claimed;   /* ids of VMs an operation is working on */
    SvcVmsConsoleEndFunc console_end; /* (nullable) under claim_lock */
    gpointer console_end_data;
};

static void stop_job(gpointer data, gpointer user_data);

/**
 * svc_vms_new:
 * @opts: settings; strings are copied, pointers must outlive the service
 *
 * Returns: (transfer full): the VM service.
 */
SvcVms *
svc_vms_new(const SvcVmsOptions *opts)
{
    static const double bounds[] = { 0.5, 1, 2, 5, 10, 20, 30, 60, 120 };
    SvcVms *vms = g_new0(SvcVms, 1);

    vms->opts = *opts;
    vms->host_id = g_strdup(opts->host_id);
    vms->name_prefix = g_strdup(opts->name_prefix);
    vms->console_listen = g_strdup(opts->console_listen);
    vms->opts.host_id = vms->host_id;
    vms->opts.name_prefix = vms->name_prefix;
    vms->opts.console_listen = vms->console_listen;
    vms->stoppers = g_thread_pool_new(stop_job, vms, STOP_WORKERS, FALSE, NULL);
    g_mutex_init(&vms->claim_lock);
    g_cond_init(&vms->claim_freed);
    vms->claimed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    if (opts->metrics)
        vmb_metrics_declare(opts->metrics, SPAWN_METRIC, VMB_METRIC_HISTOGRAM,
                            "Seconds from a create request to a running guest.", bounds,
                            G_N_ELEMENTS(bounds));
    return vms;
}

/**
 * svc_vms_free:
 * @vms: (nullable): the service
 */
void
svc_vms_free(SvcVms *vms)
{
    if (!vms)
        return;
    g_thread_pool_free(vms->stoppers, FALSE, TRUE);
    g_hash_table_unref(vms->claimed);
    g_mutex_clear(&vms->claim_lock);
    g_cond_clear(&vms->claim_freed);
    g_free(vms->host_id);
    g_free(vms->name_prefix);
    g_free(vms->console_listen);
    g_free(vms);
}

/**
 * svc_vms_on_console_end:
 * @vms: the service
 * @fn: called with a VM's id and a reason when it stops or goes away
 * @data: for @fn
 *
 * With @fn NULL, no call is under way once this returns.
 */
void
svc_vms_on_console_end(SvcVms *vms, SvcVmsConsoleEndFunc fn, gpointer data)
{
    g_mutex_lock(&vms->claim_lock);
    vms->console_end = fn;
    vms->console_end_data = data;
    g_mutex_unlock(&vms->claim_lock);
}

/**
 * svc_vms_end_consoles:
 * @vms: the service
 * @vm_id: a VM that stopped or is gone
 * @reason: why, for the disconnect records
 */
void
svc_vms_end_consoles(SvcVms *vms, const char *vm_id, const char *reason)
{
    g_mutex_lock(&vms->claim_lock);
    if (vms->console_end)
        vms->console_end(vm_id, reason, vms->console_end_data);
    g_mutex_unlock(&vms->claim_lock);
}

/* --- claims --- */

/**
 * svc_vms_try_claim:
 * @vms: the service
 * @id: a VM id
 *
 * Claims @id unless an operation (create, start, stop, delete, a reconciliation) works on
 * it. Release with svc_vms_release().
 *
 * Returns: true when claimed.
 */
bool
svc_vms_try_claim(SvcVms *vms, const char *id)
{
    bool ok;

    g_mutex_lock(&vms->claim_lock);
    ok = !g_hash_table_contains(vms->claimed, id);
    if (ok)
        g_hash_table_add(vms->claimed, g_strdup(id));
    g_mutex_unlock(&vms->claim_lock);
    return ok;
}

/* Claims @id, waiting for the operation holding it (a stop waits out its grace period);
 * VMB_ERROR_CONFLICT when it does not end in time. */
static bool
claim_wait(SvcVms *vms, const char *id, GError **error)
{
    gint64 deadline = g_get_monotonic_time() +
                      ((gint64) vms->opts.stop_timeout_s + 30) * G_USEC_PER_SEC;
    bool ok = true;

    g_mutex_lock(&vms->claim_lock);
    while (ok && g_hash_table_contains(vms->claimed, id))
        ok = g_cond_wait_until(&vms->claim_freed, &vms->claim_lock, deadline);
    if (ok)
        g_hash_table_add(vms->claimed, g_strdup(id));
    g_mutex_unlock(&vms->claim_lock);
    if (!ok)
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT,
                    "Another operation on this VM is still running; try again later.");
    return ok;
}

/**
 * svc_vms_release:
 * @vms: the service
 * @id: a VM id claimed before
 */
void
svc_vms_release(SvcVms *vms, const char *id)
{
    g_mutex_lock(&vms->claim_lock);
    g_hash_table_remove(vms->claimed, id);
    g_cond_broadcast(&vms->claim_freed);
    g_mutex_unlock(&vms->claim_lock);
}

/* --- helpers --- */

static bool
sees_all(const DbUser *caller)
{
    return caller->role == DB_ROLE_ADMIN || caller->role == DB_ROLE_SERVICE;
}

static const char *
owner_filter(const DbUser *caller)
{
    return sees_all(caller) ? NULL : caller->id;
}

static bool
short_name_valid(const char *name)
{
    size_t len = strlen(name);

    if (len < 1 || len > 32 || !(g_ascii_islower(name[0]) || g_ascii_isdigit(name[0])))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!(g_ascii_islower(name[i]) || g_ascii_isdigit(name[i]) || name[i] == '-'))
            return false;
    return true;
}

static bool
vm_is_active(const DbVm *vm)
{
    return vm->state == DB_VM_CREATING || vm->state == DB_VM_RUNNING ||
           vm->state == DB_VM_PAUSED || vm->state == DB_VM_STOPPING;
}

static bool
probe_port(const char *kind, unsigned port, void *data)
{
    SvcVms *vms = data;
    return vmb_net_port_is_free(vms->console_listen, port, NULL);
}

static DbPortLeaseOptions
lease_options(SvcVms *vms)
{
    return (DbPortLeaseOptions) {
        .probe = probe_port,
        .probe_data = vms,
        .quarantine_s = vms->opts.port_quarantine_s,
    };
}

/* Records an action on a VM; inside a transaction, a failure fails what it records. */
static bool
audit(DbConn *conn, const char *actor_id, const char *action, const char *vm_id,
      const char *remote_addr, const char *detail_json, GError **error)
{
    DbAuditEntry e = {
        .actor_id = actor_id,
        .action = action,
        .object_kind = "vm",
        .object_id = vm_id,
        .remote_addr = remote_addr,
        .detail_json = detail_json,
    };
    return db_audit_insert(conn, &e, error);
}

/* --- create --- */

typedef struct {
    const DbVmSpec *spec;
    DbPortLeaseOptions lease;
    const char *actor_id;
    const char *remote_addr;
    DbVm *vm; /* out */
} InsertTx;

static bool
insert_tx(DbConn *conn, void *data, GError **error)
{
    InsertTx *tx = data;

    g_clear_pointer(&tx->vm, db_vm_free); /* a retried transaction runs this again */
    tx->vm = db_vms_insert(conn, tx->spec, &tx->lease, error);
    return tx->vm && audit(conn, tx->actor_id, "vm.create", tx->vm->id, tx->remote_addr, NULL,
                           error);
}

typedef struct {
    const char *id;
    DbVmState to;
    const char *reason;
    unsigned cooldown_s;
    const char *actor_id;
    const char *action;      /* (nullable) audited with the transition */
    const char *remote_addr;
    DbVm *vm; /* out */
} StateTx;

static bool
state_tx(DbConn *conn, void *data, GError **error)
{
    StateTx *tx = data;

    g_clear_pointer(&tx->vm, db_vm_free);
    tx->vm = db_vms_set_state(conn, tx->id, tx->to, tx->reason, tx->cooldown_s, error);
    return tx->vm && (!tx->action || audit(conn, tx->actor_id, tx->action, tx->id,
                                           tx->remote_addr, NULL, error));
}

static DbVm *
set_state(SvcVms *vms, const char *id, DbVmState to, const char *reason, const char *actor_id,
          const char *action, const char *remote_addr, GError **error)
{
    StateTx tx = { id, to, reason, vms->opts.port_cooldown_s, actor_id, action, remote_addr,
                   NULL };

    if (!db_pool_transaction(vms->opts.db, state_tx, &tx, error)) {
        db_vm_free(tx.vm);
        return NULL;
    }
    return tx.vm;
}

/* Paths and secrets of one start of @vm: resolves the ISO and makes the disk if missing. */
typedef struct {
    char *iso_path;
    char *disk_path;
    char *backing_path;
    char *domain_type;
    char *password;
    char *created;
    bool disk_made;     /* this start created the disk (undo deletes it) */
} StartPlan;

static void
start_plan_clear(StartPlan *p)
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
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(StartPlan, start_plan_clear)

static bool
plan_start(SvcVms *vms, virConnectPtr conn, const DbVm *vm, const DomTemplate *tmpl,
           const char *iso_volume, StartPlan *plan, GError **error)
{
    plan->domain_type = svc_accel_domain_type(vms->opts.accel, conn, error);
    if (!plan->domain_type)
        return false;
    if (tmpl->iso_path)
        plan->iso_path = g_strdup(tmpl->iso_path);
    else if (iso_volume && !(plan->iso_path = dom_storage_volume_path(
                                 conn, vms->name_prefix, DOM_POOL_ISOS, iso_volume, error)))
        return false;
    if (tmpl->kind == DOM_TEMPLATE_KIND_OVERLAY && tmpl->persistent) {
        /* The owner's overlay of this template, kept across VMs and re-attached. */
        g_autofree char *vol = dom_storage_persistent_volume_name(vms->name_prefix,
                                                                  vm->owner_name, tmpl);
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
        .listen = vms->console_listen,
        .vnc_password = plan->password,
    };
    g_autofree char *xml = dom_xml_build_string(tmpl, &inst, error);
    g_autoptr(virDomain) dom = NULL;
    g_autoptr(DbConn) db = NULL;
    char uuid[VIR_UUID_STRING_BUFLEN];

    if (!xml)
        return false;
    vmb_crash_point(vm->started_at ? "start:after-disk" : "create:after-disk");
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
    return dom_lifecycle_start(dom, error);
}

/* define_and_start_as(), and once more as TCG when a start under KVM failed for a KVM reason
 * that the probe did not foresee (auto mode only): a user never sees a KVM failure. */
static bool
define_and_start(SvcVms *vms, virConnectPtr conn, const DbVm *vm, const DomTemplate *tmpl,
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

typedef struct {
    const char *id;
    unsigned cooldown_s;
    const char *actor_id;
    const char *remote_addr;
} DeleteTx;

static bool
delete_tx(DbConn *conn, void *data, GError **error)
{
    DeleteTx *tx = data;

    return db_vms_delete(conn, tx->id, NULL, tx->cooldown_s, error) &&
           audit(conn, tx->actor_id, "vm.delete", tx->id, tx->remote_addr, NULL, error);
}

/* Owner checks of a create; fills @ret_owner. */
static bool
resolve_owner(SvcVms *vms, DbConn *conn, const SvcVmRequest *req, DbUser **ret_owner,
              GError **error)
{
    DbUser *owner;

    if (!req->owner || strcmp(req->owner, req->caller->username) == 0) {
        owner = db_users_get_by_name(conn, req->caller->username, error);
    } else if (!sees_all(req->caller)) {
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
    *ret_owner = owner;
    return true;
}

/* The running limit and the host's memory budget. */
static bool
check_capacity(SvcVms *vms, DbConn *conn, const DbUser *owner, const DomTemplate *tmpl,
               GPtrArray **ret_running, GError **error)
{
    g_autoptr(GPtrArray) all = db_vms_list(conn, NULL, error);
    g_autoptr(GPtrArray) mine = g_ptr_array_new_with_free_func((GDestroyNotify) db_vm_free);
    guint64 used_mib = 0;

    if (!all)
        return false;
    for (guint i = all->len; i-- > 0;) {
        DbVm *vm = all->pdata[i];
        const DomTemplate *t;
        if (!vm_is_active(vm))
            continue;
        t = dom_template_set_lookup(vms->opts.templates, vm->template_name);
        used_mib += t ? t->memory_mib : 0;
        if (strcmp(vm->owner_id, owner->id) == 0)
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
    if (vms->opts.host_memory_mib && used_mib + tmpl->memory_mib > vms->opts.host_memory_mib) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_EXHAUSTED,
                    "The host has no room for another %u MiB guest right now; try later.",
                    tmpl->memory_mib);
        return false;
    }
    return true;
}

/**
 * create_now:
 * @vms: the service
 * @req: what to create, for whom, asked by whom
 * @ret_running: (out) (optional): with VMB_ERROR_CONFLICT at the limit, the owner's VMs
 * @error: return location for an error
 *
 * Returns: (transfer full): the running VM, or NULL with nothing left behind.
 */
static DbVm *
create_now(SvcVms *vms, const SvcVmRequest *req, GPtrArray **ret_running, GError **error)
{
    gint64 t0 = g_get_monotonic_time();
    const DomTemplate *tmpl = dom_template_set_lookup(vms->opts.templates, req->template_name);
    g_autoptr(DbConn) db = NULL;
    g_autoptr(DbUser) owner = NULL;
    g_autoptr(DbIso) iso = NULL;
    g_autoptr(virConnect) conn = NULL;
    g_autofree char *id = g_uuid_string_random();
    g_autofree char *name = NULL;
    g_autofree char *volume = NULL;
    g_auto(StartPlan) plan = { 0 };
    g_autoptr(GError) err = NULL;
    const char *volumes[2] = { NULL, NULL };
    bool defined = false;
    DbVm *running;
    InsertTx tx;

    if (!tmpl) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNPROCESSABLE, "No template '%s'.",
                    req->template_name);
        return NULL;
    }
    if (req->name && !short_name_valid(req->name)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID,
                    "'name' has 1 to 32 of a-z, 0-9 and '-', starting with a letter or digit.");
        return NULL;
    }
    db = db_pool_acquire(vms->opts.db, error);
    if (!db || !resolve_owner(vms, db, req, &owner, error))
        return NULL;
    if (dom_template_needs_iso(tmpl)) {
        if (!req->iso_id) {
            g_set_error(error, VMB_ERROR, VMB_ERROR_UNPROCESSABLE,
                        "Template '%s' boots an ISO of your choice: give 'iso'.", tmpl->name);
            return NULL;
        }
        iso = db_isos_get_usable(db, req->iso_id,
                                 owner->role == DB_ROLE_ADMIN ? NULL : owner->id, &err);
        if (!iso) {
            if (vmb_error_kind(err) == VMB_ERROR_NOT_FOUND)
                g_set_error(error, VMB_ERROR, VMB_ERROR_UNPROCESSABLE, "No usable ISO '%s'.",
                            req->iso_id);
            else
                g_propagate_error(error, g_steal_pointer(&err));
            return NULL;
        }
    } else if (req->iso_id) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNPROCESSABLE, "Template '%s' takes no ISO.",
                    tmpl->name);
        return NULL;
    }
    if (!check_capacity(vms, db, owner, tmpl, ret_running, error) ||
        !svc_accel_check(vms->opts.accel, error))
        return NULL;
    g_clear_pointer(&db, db_conn_release);

    name = req->name ? g_strdup_printf("%s%s-%s", vms->name_prefix, owner->username, req->name)
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
            .host_id = vms->host_id,
            .disk_volumes = volumes,
        },
        .lease = lease_options(vms),
        .actor_id = req->caller->id,
        .remote_addr = req->remote_addr,
    };
    /* Claimed before the row exists, so the reconciler never sees it unclaimed in
     * `creating` while this create runs. */
    svc_vms_try_claim(vms, id);
    if (!db_pool_transaction(vms->opts.db, insert_tx, &tx, error)) {
        db_vm_free(tx.vm);
        svc_vms_release(vms, id);
        return NULL;
    }
    vmb_crash_point("create:after-insert");

    conn = dom_hypervisor_get(vms->opts.hv, &err);
    running = NULL;
    if (conn && plan_start(vms, conn, tx.vm, tmpl, iso ? iso->volume : NULL, &plan, &err) &&
        define_and_start(vms, conn, tx.vm, tmpl, &plan, &defined, &err)) {
        vmb_crash_point("create:after-start");
        running = set_state(vms, tx.vm->id, DB_VM_RUNNING, NULL, NULL, NULL, NULL, &err);
    }
    if (!running) {
        /* Domain and disk first, row last: a crash in between leaves a `creating` row,
         * which start-up reconciliation rolls back. */
        DeleteTx undo = { tx.vm->id, vms->opts.port_cooldown_s, req->caller->id,
                          req->remote_addr };
        /* When libvirt went away mid-create, a step may have happened without us hearing
         * of it (a volume made, its answer lost): the row, which names the domain and the
         * disk, stays `creating` for the resync to roll back once libvirt is back. */
        bool undone = !conn || (vmb_error_kind(err) != VMB_ERROR_UNAVAILABLE &&
                                undo_domain(vms, conn, tx.vm, &plan, defined));
        if (undone)
            db_pool_transaction(vms->opts.db, delete_tx, &undo, NULL);
        db_vm_free(tx.vm);
        svc_vms_release(vms, id);
        g_propagate_error(error, g_steal_pointer(&err));
        return NULL;
    }
    vmb_crash_point("create:after-running");
    svc_vms_release(vms, id);
    db_vm_free(tx.vm);
    if (running && vms->opts.metrics)
        vmb_metrics_observe(vms->opts.metrics, SPAWN_METRIC,
                            (double) (g_get_monotonic_time() - t0) / G_USEC_PER_SEC, NULL);
    return running;
}

/* --- reads --- */

/**
 * svc_vms_get:
 * @vms: the service
 * @caller: who asks
 * @id: the VM's id
 * @error: return location for an error
 *
 * Returns: (transfer full): the VM, or NULL (VMB_ERROR_NOT_FOUND when not visible).
 */
DbVm *
svc_vms_get(SvcVms *vms, const DbUser *caller, const char *id, GError **error)
{
    g_autoptr(DbConn) db = NULL;

    /* Not a uuid: no such VM (rather than a type error from PostgreSQL). */
    if (!g_uuid_string_is_valid(id)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_NOT_FOUND, "No such VM.");
        return NULL;
    }
    db = db_pool_acquire(vms->opts.db, error);

    return db ? db_vms_get(db, id, owner_filter(caller), error) : NULL;
}

/**
 * svc_vms_list:
 * @vms: the service
 * @caller: who asks
 * @owner: (nullable): a user name to filter by (admins and service accounts)
 * @error: return location for an error
 *
 * Returns: (transfer full) (element-type DbVm): the visible VMs.
 */
GPtrArray *
svc_vms_list(SvcVms *vms, const DbUser *caller, const char *owner, GError **error)
{
    g_autoptr(DbConn) db = db_pool_acquire(vms->opts.db, error);
    g_autoptr(DbUser) who = NULL;
    g_autoptr(GError) err = NULL;

    if (!db)
        return NULL;
    if (!sees_all(caller) || !owner)
        return db_vms_list(db, owner_filter(caller), error);
    who = db_users_get_by_name(db, owner, &err);
    if (!who) {
        if (vmb_error_kind(err) != VMB_ERROR_NOT_FOUND) {
            g_propagate_error(error, g_steal_pointer(&err));
            return NULL;
        }
        return g_ptr_array_new_with_free_func((GDestroyNotify) db_vm_free);
    }
    return db_vms_list(db, who->id, error);
}

/**
 * svc_vms_list_key:
 * @caller: who asks
 * @owner: (nullable): as for svc_vms_list
 *
 * Returns: (transfer full) (nullable): a name for what svc_vms_list(@caller, @owner) reads:
 * callers with the same one see the same list. NULL when it is not to be cached (@owner is
 * not a valid user name).
 */
char *
svc_vms_list_key(const DbUser *caller, const char *owner)
{
    if (!sees_all(caller))
        return g_strconcat("vms:owner-id:", caller->id, NULL);
    if (!owner)
        return g_strdup("vms:all");
    /* ?owner= comes from the client: only a name a user can have becomes a key. */
    return svc_users_name_valid(owner) ? g_strconcat("vms:owner:", owner, NULL) : NULL;
}

/* --- power --- */

typedef struct {
    char *id;
    char *reason;
    bool drop_ephemeral; /* delete the VM's ephemeral disks once it is off */
} StopJob;

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

static void
stop_job(gpointer data, gpointer user_data)
{
    SvcVms *vms = user_data;
    StopJob *job = data;
    g_autoptr(GError) err = NULL;
    g_autoptr(DbConn) db = db_pool_acquire(vms->opts.db, &err);
    g_autoptr(DbVm) vm = db ? db_vms_get(db, job->id, NULL, &err) : NULL;
    g_autoptr(virConnect) conn = NULL;
    g_autoptr(virDomain) dom = NULL;
    g_autoptr(DbVm) done = NULL;
    bool ok = false;

    g_clear_pointer(&db, db_conn_release);
    if (vm && (conn = dom_hypervisor_get(vms->opts.hv, &err))) {
        dom = dom_lifecycle_lookup(conn, vm->name, &err);
        /* A domain that is gone is as stopped as it gets; any other failure to find it
         * (libvirt busy or away) says nothing about the guest, which may still run. */
        if (dom)
            ok = dom_lifecycle_stop(dom, vms->opts.stop_timeout_s * 1000, NULL, &err);
        else
            ok = vmb_error_kind(err) == VMB_ERROR_NOT_FOUND;
        if (ok)
            g_clear_error(&err);
        if (ok)
            vmb_crash_point("stop:after-destroy");
        if (ok && job->drop_ephemeral)
            svc_vms_drop_ephemeral_disks(vms, conn, vm);
    }
    if (!ok && vm)
        vmb_warning("stopping VM %s: %s", vm->name, err->message);
    /* Without libvirt the VM stays `stopping`: once libvirt is back, the resync finishes
     * the stop (svc-sync), rather than the VM ending in `error` over an outage. The reason
     * is shown to users: libvirt's words stay in the log. */
    if (vm && (ok || vmb_error_kind(err) != VMB_ERROR_UNAVAILABLE))
        done = set_state(vms, job->id, ok ? DB_VM_STOPPED : DB_VM_ERROR,
                         ok ? job->reason : "the stop failed; an administrator can see why in "
                                            "the broker's log", NULL, NULL, NULL, NULL);
    svc_vms_release(vms, job->id);
    g_free(job->id);
    g_free(job->reason);
    g_free(job);
}

static DbVm *
stop_as(SvcVms *vms, const char *id, const char *actor_id, const char *action,
        const char *reason, const char *remote_addr, bool drop_ephemeral, GError **error)
{
    g_autoptr(virConnect) conn = dom_hypervisor_get(vms->opts.hv, error);
    DbVm *stopping;
    StopJob *job;

    /* A stop needs libvirt: without it, say so (503) rather than accept the stop. */
    if (!conn)
        return NULL;
    /* Held until the stop job is done. */
    if (!claim_wait(vms, id, error))
        return NULL;
    stopping = set_state(vms, id, DB_VM_STOPPING, reason, actor_id, action, remote_addr, error);
    if (!stopping) {
        svc_vms_release(vms, id);
        return NULL;
    }
    vmb_crash_point("stop:after-stopping");
    /* No console outlives the decision to stop: its viewers learn why now. */
    svc_vms_end_consoles(vms, id, reason);
    job = g_new0(StopJob, 1);
    job->id = g_strdup(id);
    job->reason = g_strdup(reason);
    job->drop_ephemeral = drop_ephemeral;
    g_thread_pool_push(vms->stoppers, job, NULL);
    return stopping;
}

/**
 * svc_vms_stop:
 * @vms: the service
 * @caller: who asks
 * @id: the VM
 * @reason: why, shown on the VM ("stopped by its owner", "idle for 900 s" ...)
 * @remote_addr: (nullable): for the audit log
 * @error: return location for an error
 *
 * Returns: (transfer full): the VM in state `stopping`, or NULL.
 */
DbVm *
svc_vms_stop(SvcVms *vms, const DbUser *caller, const char *id, const char *reason,
             const char *remote_addr, GError **error)
{
    g_autoptr(DbVm) vm = svc_vms_get(vms, caller, id, error);

    if (!vm)
        return NULL;
    return stop_as(vms, vm->id, caller->id, "vm.stop", reason, remote_addr, false, error);
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
    return stop_as(vms, id, NULL, action, reason, NULL, drop_ephemeral, error);
}

typedef struct {
    const char *id;
    DbPortLeaseOptions lease;
    const char *actor_id;
    const char *remote_addr;
    DbVm *vm; /* out */
} StartTx;

static bool
start_tx(DbConn *conn, void *data, GError **error)
{
    StartTx *tx = data;

    g_clear_pointer(&tx->vm, db_vm_free);
    tx->vm = db_vms_start(conn, tx->id, &tx->lease, error);
    return tx->vm && audit(conn, tx->actor_id, "vm.start", tx->id, tx->remote_addr, NULL,
                           error);
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
    conn = dom_hypervisor_get(vms->opts.hv, error);
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
    stopped = set_state(vms, id, DB_VM_STOPPED, "powered off to restart it: it was paused",
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
static DbVm *
start_now(SvcVms *vms, const DbUser *caller, const char *id, const char *remote_addr,
          GError **error)
{
    g_autoptr(DbVm) vm = svc_vms_get(vms, caller, id, error);
    g_autoptr(virConnect) conn = NULL;
    g_autoptr(DbConn) db = NULL;
    g_autoptr(DbIso) iso = NULL;
    g_auto(StartPlan) plan = { 0 };
    g_autoptr(GError) err = NULL;
    const DomTemplate *tmpl;
    bool defined = false;
    StartTx tx;

    if (!vm)
        return NULL;
    tmpl = dom_template_set_lookup(vms->opts.templates, vm->template_name);
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
    if (!claim_wait(vms, vm->id, error))
        return NULL;
    if (!stop_if_paused(vms, vm->id, caller->id, remote_addr, error)) {
        svc_vms_release(vms, vm->id);
        return NULL;
    }
    tx = (StartTx) { vm->id, lease_options(vms), caller->id, remote_addr, NULL };
    if (!db_pool_transaction(vms->opts.db, start_tx, &tx, error)) {
        db_vm_free(tx.vm);
        svc_vms_release(vms, vm->id);
        return NULL;
    }
    vmb_crash_point("start:after-lease");
    conn = dom_hypervisor_get(vms->opts.hv, &err);
    if (!conn || !plan_start(vms, conn, tx.vm, tmpl, iso ? iso->volume : NULL, &plan, &err) ||
        !define_and_start(vms, conn, tx.vm, tmpl, &plan, &defined, &err)) {
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
            back = set_state(vms, tx.vm->id, DB_VM_STOPPED, "failed to start", NULL, NULL,
                             NULL, NULL);
        db_vm_free(tx.vm);
        svc_vms_release(vms, vm->id);
        g_propagate_error(error, g_steal_pointer(&err));
        return NULL;
    }
    db_vm_free(tx.vm);
    {
        DbVm *running = set_state(vms, vm->id, DB_VM_RUNNING, NULL, NULL, NULL, NULL, error);
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
static DbVm *
reboot_now(SvcVms *vms, const DbUser *caller, const char *id, const char *remote_addr,
           GError **error)
{
    g_autoptr(DbVm) vm = svc_vms_get(vms, caller, id, error);
    g_autoptr(virConnect) conn = NULL;
    g_autoptr(virDomain) dom = NULL;
    g_autoptr(DbConn) db = NULL;

    if (!vm)
        return NULL;
    if (vm->state == DB_VM_PAUSED)
        return svc_vms_start(vms, caller, id, remote_addr, error);
    if (vm->state != DB_VM_RUNNING) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT, "The VM is %s, not running.",
                    db_vm_state_to_string(vm->state));
        return NULL;
    }
    conn = dom_hypervisor_get(vms->opts.hv, error);
    dom = conn ? dom_lifecycle_lookup(conn, vm->name, error) : NULL;
    if (!dom || !dom_lifecycle_reboot(dom, error))
        return NULL;
    db = db_pool_acquire(vms->opts.db, error);
    if (!db || !audit(db, caller->id, "vm.reboot", vm->id, remote_addr, NULL, error))
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
static bool
delete_now(SvcVms *vms, const DbUser *caller, const char *id, const char *remote_addr,
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
    conn = dom_hypervisor_get(vms->opts.hv, error);
    if (!conn || !claim_wait(vms, vm->id, error))
        return false;
    dom = dom_lifecycle_lookup(conn, vm->name, &err);
    if (!dom && vmb_error_kind(err) != VMB_ERROR_NOT_FOUND) {
        g_propagate_error(error, g_steal_pointer(&err));
        svc_vms_release(vms, vm->id);
        return false;
    }
    /* The domain (with its volumes) goes before the row: a crash in between leaves a row
     * whose domain is gone, which reconciliation stops (ports released, disks dropped). */
    if (dom && !dom_lifecycle_destroy(dom, error)) {
        svc_vms_release(vms, vm->id);
        return false;
    }
    vmb_crash_point("delete:after-destroy");
    if (dom && !dom_lifecycle_undefine(dom, true, error)) {
        svc_vms_release(vms, vm->id);
        return false;
    }
    /* An ephemeral disk the domain's metadata did not list (a domain redefined by hand). */
    svc_vms_drop_ephemeral_disks(vms, conn, vm);
    vmb_crash_point("delete:after-undefine");
    tx = (DeleteTx) { vm->id, vms->opts.port_cooldown_s, caller->id, remote_addr };
    ok = db_pool_transaction(vms->opts.db, delete_tx, &tx, error);
    if (ok)
        svc_vms_end_consoles(vms, vm->id, "the VM was deleted");
    svc_vms_release(vms, vm->id);
    return ok;
}

/* --- bounded: a request waits at most call_timeout_s for libvirt --- */

typedef enum { JOB_CREATE, JOB_START, JOB_REBOOT, JOB_DELETE } JobKind;

typedef struct {
    SvcVms *vms;
    JobKind kind;
    DbUser *caller;
    char *id, *owner, *template_name, *iso_id, *name, *remote_addr; /* inputs, copied */
    DbVm *vm;             /* out: create, start, reboot */
    GPtrArray *running;   /* out: create at the running limit */
    bool ok;              /* out: delete */
    GError *error;        /* out */
} VmJob;

static void
vm_job_free(gpointer data)
{
    VmJob *job = data;

    db_user_free(job->caller);
    g_free(job->id);
    g_free(job->owner);
    g_free(job->template_name);
    g_free(job->iso_id);
    g_free(job->name);
    g_free(job->remote_addr);
    db_vm_free(job->vm);
    if (job->running)
        g_ptr_array_unref(job->running);
    g_clear_error(&job->error);
    g_free(job);
}

static void
vm_job_run(gpointer data)
{
    VmJob *job = data;
    SvcVmRequest req = { job->caller, job->owner, job->template_name, job->iso_id, job->name,
                         job->remote_addr };

    switch (job->kind) {
    case JOB_CREATE:
        job->vm = create_now(job->vms, &req, &job->running, &job->error);
        break;
    case JOB_START:
        job->vm = start_now(job->vms, job->caller, job->id, job->remote_addr, &job->error);
        break;
    case JOB_REBOOT:
        job->vm = reboot_now(job->vms, job->caller, job->id, job->remote_addr, &job->error);
        break;
    case JOB_DELETE:
        job->ok = delete_now(job->vms, job->caller, job->id, job->remote_addr, &job->error);
        break;
    }
}

/* Runs @job within call_timeout_s. Returns it (the caller frees it), or NULL after setting
 * VMB_ERROR_TIMEOUT: the job then finishes, or is undone, on its own. */
static VmJob *
run_job(SvcVms *vms, VmJob *job, GError **error)
{
    static const char *const what[] = { "create", "start", "reboot", "delete" };
    JobKind kind = job->kind;
    bool started = false;

    job->vms = vms;
    if (vmb_bounded_run(vms->opts.bounded, vm_job_run, job, vm_job_free,
                        vms->opts.call_timeout_s * 1000, &started))
        return job;
    vmb_warning("a VM %s waited %u s for libvirt (or for another operation on the VM) and "
                "was answered 503; %s", what[kind], vms->opts.call_timeout_s,
                started ? "it goes on, or is undone, in the background" : "it never ran");
    g_set_error(error, VMB_ERROR, VMB_ERROR_TIMEOUT,
                "The hypervisor did not finish the %s within %u s. %s", what[kind],
                vms->opts.call_timeout_s,
                started ? "It goes on in the background: look at the VM again shortly."
                        : "Nothing was done; try again shortly.");
    return NULL;
}

static VmJob *
vm_job_new(JobKind kind, const DbUser *caller, const char *id, const char *remote_addr)
{
    VmJob *job = g_new0(VmJob, 1);

    job->kind = kind;
    job->caller = db_user_copy(caller);
    job->id = g_strdup(id);
    job->remote_addr = g_strdup(remote_addr);
    return job;
}

/**
 * svc_vms_create:
 * @vms: the service
 * @req: what to create, for whom, asked by whom
 * @ret_running: (out) (optional): at the running limit, the owner's active VMs
 * @error: return location for an error
 *
 * Checks, one transaction that leases ports and inserts the row, then libvirt; a failure
 * undoes every step. Waits at most call_timeout_s (then VMB_ERROR_TIMEOUT, and the
 * create finishes or is undone in the background).
 *
 * Returns: (transfer full): the running VM, or NULL with nothing left behind.
 */
DbVm *
svc_vms_create(SvcVms *vms, const SvcVmRequest *req, GPtrArray **ret_running, GError **error)
{
    VmJob *job = vm_job_new(JOB_CREATE, req->caller, NULL, req->remote_addr);
    DbVm *vm;

    job->owner = g_strdup(req->owner);
    job->template_name = g_strdup(req->template_name);
    job->iso_id = g_strdup(req->iso_id);
    job->name = g_strdup(req->name);
    if (!(job = run_job(vms, job, error)))
        return NULL;
    vm = g_steal_pointer(&job->vm);
    if (ret_running)
        *ret_running = g_steal_pointer(&job->running);
    if (job->error)
        g_propagate_error(error, g_steal_pointer(&job->error));
    vm_job_free(job);
    return vm;
}

/* The power actions and delete, each bounded like a create. */
static DbVm *
run_vm_job(SvcVms *vms, JobKind kind, const DbUser *caller, const char *id,
           const char *remote_addr, bool *ret_ok, GError **error)
{
    VmJob *job = vm_job_new(kind, caller, id, remote_addr);
    DbVm *vm;

    if (!(job = run_job(vms, job, error)))
        return NULL;
    vm = g_steal_pointer(&job->vm);
    if (ret_ok)
        *ret_ok = job->ok;
    if (job->error)
        g_propagate_error(error, g_steal_pointer(&job->error));
    vm_job_free(job);
    return vm;
}

/**
 * svc_vms_start:
 * @vms: the service
 * @caller: who asks
 * @id: a stopped VM
 * @remote_addr: (nullable): for the audit log
 * @error: return location for an error
 *
 * Leases fresh ports, redefines the domain with them and a fresh VNC password, starts it;
 * bounded like svc_vms_create().
 *
 * Returns: (transfer full): the running VM, or NULL (the VM is then stopped again).
 */
DbVm *
svc_vms_start(SvcVms *vms, const DbUser *caller, const char *id, const char *remote_addr,
              GError **error)
{
    return run_vm_job(vms, JOB_START, caller, id, remote_addr, NULL, error);
}

/**
 * svc_vms_reboot:
 * @vms: the service
 * @caller: who asks
 * @id: a running VM
 * @remote_addr: (nullable): for the audit log
 * @error: return location for an error
 *
 * Returns: (transfer full): the VM, or NULL (VMB_ERROR_CONFLICT unless it runs).
 */
DbVm *
svc_vms_reboot(SvcVms *vms, const DbUser *caller, const char *id, const char *remote_addr,
               GError **error)
{
    return run_vm_job(vms, JOB_REBOOT, caller, id, remote_addr, NULL, error);
}

/**
 * svc_vms_delete:
 * @vms: the service
 * @caller: who asks
 * @id: the VM
 * @remote_addr: (nullable): for the audit log
 * @error: return location for an error
 *
 * Destroys and undefines the domain (with its ephemeral volumes), then deletes the row,
 * releasing its ports; bounded like svc_vms_create().
 *
 * Returns: true on success.
 */
bool
svc_vms_delete(SvcVms *vms, const DbUser *caller, const char *id, const char *remote_addr,
               GError **error)
{
    bool ok = false;

    run_vm_job(vms, JOB_DELETE, caller, id, remote_addr, &ok, error);
    return ok;
}

/* --- console --- */

typedef struct {
    DomHypervisor *hv;
    char *name;
    char *password; /* out */
    GError *error;  /* out */
} PasswordJob;

static void
password_job_free(gpointer data)
{
    PasswordJob *job = data;

    g_free(job->name);
    if (job->password)
        explicit_bzero(job->password, strlen(job->password));
    g_free(job->password);
    g_clear_error(&job->error);
    g_free(job);
}

static void
password_job_run(gpointer data)
{
    PasswordJob *job = data;
    g_autoptr(virConnect) conn = dom_hypervisor_get(job->hv, &job->error);
    g_autoptr(virDomain) dom = conn ? dom_lifecycle_lookup(conn, job->name, &job->error) : NULL;

    job->password = dom ? dom_lifecycle_vnc_password(dom, &job->error) : NULL;
}

/**
 * svc_vms_vnc_password:
 * @vms: the service
 * @vm: a running VM
 * @error: return location for an error (VMB_ERROR_UNAVAILABLE when libvirt does not answer
 *   within call_timeout_s)
 *
 * Returns: (transfer full): the VNC password the domain runs with, or NULL.
 */
char *
svc_vms_vnc_password(SvcVms *vms, const DbVm *vm, GError **error)
{
    PasswordJob *job = g_new0(PasswordJob, 1);
    char *password;

    job->hv = vms->opts.hv;
    job->name = g_strdup(vm->name);
    if (!vmb_bounded_run(vms->opts.bounded, password_job_run, job, password_job_free,
                         vms->opts.call_timeout_s * 1000, NULL)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE,
                    "libvirt did not say the VNC password of %s within %u s", vm->name,
                    vms->opts.call_timeout_s);
        return NULL;
    }
    password = g_steal_pointer(&job->password);
    if (!password)
        g_propagate_error(error, g_steal_pointer(&job->error));
    password_job_free(job);
    return password;
}


/**
 * svc_vms_mint_ticket:
 * @vms: the service
 * @vm: the VM
 * @purpose: "page" (redeemed by the console page) or "ws" (opens the websocket)
 * @user_id: who may use it: the caller, or the owner a service account acts for
 * @error: return location for an error
 *
 * Returns: (transfer full): a ticket, valid once within ticket_ttl_s.
 */
char *
svc_vms_mint_ticket(SvcVms *vms, const DbVm *vm, const char *purpose, const char *user_id,
                    GError **error)
{
    g_autofree char *ticket = vmb_secret_new_token("", error);
    g_autofree char *digest = NULL;
    g_autoptr(DbConn) db = NULL;

    if (!ticket)
        return NULL;
    digest = vmb_secret_sha256_hex(ticket, strlen(ticket));
    db = db_pool_acquire(vms->opts.db, error);
    if (!db || !db_tickets_insert(db, digest, purpose, user_id, vm->id, vms->opts.ticket_ttl_s,
                                  error))
        return NULL;
    return g_steal_pointer(&ticket);
}
