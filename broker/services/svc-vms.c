// SPDX-License-Identifier: LGPL-2.1-or-later
// The VM life cycle. The order of a create is: checks, one transaction that leases ports
// and inserts the row (state `creating`), then libvirt (disk, define, start), then
// `running`. Whatever fails after the row exists is undone in reverse, row last, so no
// domain, volume or lease outlives a failed create. A delete removes the domain (and its
// volumes) before the row, so a crash anywhere leaves at worst a row whose domain is gone,
// which reconciliation (svc-sync) turns into a stopped VM with its ports released.
//
// Each of these is an operation (svc-ops), queued by the request and run by a worker. While
// a worker runs one it holds the VM's claim, and the reconciler leaves alone a VM that is
// claimed or has an operation queued or running anywhere (svc_vms_try_claim).
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
// and, for every kind of operation (svc-ops.c):
//   op:after-claim        the operation is `running` for this broker, nothing done yet
//   op:before-finish      the work is done (or failed), its end not yet recorded
#include "svc-vms-private.h"

#include <string.h>

#include "db-audit.h"
#include "db-hosts.h"
#include "db-isos.h"
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
    vms->opts.host_id = vms->host_id;
    vms->opts.name_prefix = vms->name_prefix;
    vms->guest_network = g_strdup(opts->guest_network);
    vms->guest_subnet = g_strdup(opts->guest_subnet);
    vms->opts.guest_network = vms->guest_network;
    vms->opts.guest_subnet = vms->guest_subnet;
    g_mutex_init(&vms->claim_lock);
    g_cond_init(&vms->claim_freed);
    g_cond_init(&vms->hv_call_freed);
    vms->claimed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    if (opts->metrics)
        vmb_metrics_declare(opts->metrics, SPAWN_METRIC, VMB_METRIC_HISTOGRAM,
                            "Seconds from a create request to a running guest.", bounds,
                            G_N_ELEMENTS(bounds));
    g_mutex_init(&vms->hosts_lock);
    vms->hosts = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                       (GDestroyNotify) svc_vms_host_free);
    if (opts->hv && opts->host_id)
        svc_vms_add_host(vms, &(SvcVmsHost) { .id = opts->host_id, .name = DB_HOST_CONFIGURED,
                                              .console_address = opts->console_listen,
                                              .hv = opts->hv, .configured = true });
    svc_vms_set_runners(vms);
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
    g_hash_table_unref(vms->hosts);
    g_mutex_clear(&vms->hosts_lock);
    g_hash_table_unref(vms->claimed);
    g_mutex_clear(&vms->claim_lock);
    g_cond_clear(&vms->claim_freed);
    g_cond_clear(&vms->hv_call_freed);
    g_free(vms->host_id);
    g_free(vms->name_prefix);
    g_free(vms->guest_network);
    g_free(vms->guest_subnet);
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
    g_autoptr(DbConn) db = NULL;
    g_autoptr(DbOp) active = NULL;
    g_autoptr(GError) err = NULL;
    bool ok;

    g_mutex_lock(&vms->claim_lock);
    ok = !g_hash_table_contains(vms->claimed, id);
    if (ok)
        g_hash_table_add(vms->claimed, g_strdup(id));
    g_mutex_unlock(&vms->claim_lock);
    if (!ok)
        return false;
    /* Work queued, or run by another broker, decides this VM's state: not the reconciler. */
    db = db_pool_acquire(vms->opts.db, &err);
    active = db ? db_ops_active(db, id, &err) : NULL;
    if (active || err) {
        svc_vms_release(vms, id);
        return false;
    }
    return true;
}

/* Claims @id, waiting for the operation holding it (a stop waits out its grace period);
 * VMB_ERROR_CONFLICT when it does not end in time. */
bool
svc_vms_claim_wait(SvcVms *vms, const char *id, GError **error)
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

bool
svc_vms_sees_all(const DbUser *caller)
{
    return caller->role == DB_ROLE_ADMIN || caller->role == DB_ROLE_SERVICE;
}

static const char *
owner_filter(const DbUser *caller)
{
    return svc_vms_sees_all(caller) ? NULL : caller->id;
}

/* Whether @caller sees @vm: admins every VM, a service account those of users (never an
 * admin's or another service account's), anyone else their own. */
bool
svc_vms_may_see(const DbUser *caller, const DbVm *vm)
{
    if (caller->role == DB_ROLE_SERVICE)
        return vm->owner_is_user;
    return caller->role == DB_ROLE_ADMIN || strcmp(vm->owner_id, caller->id) == 0;
}

/* Drops from @list what @caller may not see. */
static GPtrArray *
visible_only(const DbUser *caller, GPtrArray *list)
{
    for (guint i = list ? list->len : 0; i-- > 0;)
        if (!svc_vms_may_see(caller, list->pdata[i]))
            g_ptr_array_remove_index(list, i);
    return list;
}

bool
svc_vms_short_name_valid(const char *name)
{
    size_t len = strlen(name);

    if (len < 1 || len > 32 || !(g_ascii_islower(name[0]) || g_ascii_isdigit(name[0])))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!(g_ascii_islower(name[i]) || g_ascii_isdigit(name[i]) || name[i] == '-'))
            return false;
    return true;
}

bool
svc_vms_vm_is_active(const DbVm *vm)
{
    return vm->state == DB_VM_CREATING || vm->state == DB_VM_RUNNING ||
           vm->state == DB_VM_PAUSED || vm->state == DB_VM_STOPPING;
}

/**
 * svc_vms_memory_in_use_mib:
 * @set: the templates, for each guest's memory
 * @vms: (element-type DbVm): the rows to count
 * @except_id: (nullable): a row not to count (the guest being placed)
 *
 * Returns: the memory of every guest whose QEMU may hold some, a stopping one too.
 */
guint64
svc_vms_memory_in_use_mib(const DomTemplateSet *set, GPtrArray *vms, const char *except_id)
{
    guint64 used_mib = 0;

    for (guint i = 0; i < vms->len; i++) {
        const DbVm *vm = vms->pdata[i];
        const DomTemplate *t = dom_template_set_lookup(set, vm->template_name);
        if (svc_vms_vm_is_active(vm) && g_strcmp0(vm->id, except_id) != 0)
            used_mib += t ? t->memory_mib : 0;
    }
    return used_mib;
}

/* Records an action on a VM; inside a transaction, a failure fails what it records. */
bool
svc_vms_audit(DbConn *conn, const char *actor_id, const char *action, const char *vm_id,
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
    g_autoptr(DbVm) vm = NULL;

    /* Not a uuid: no such VM (rather than a type error from PostgreSQL). */
    if (!g_uuid_string_is_valid(id)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_NOT_FOUND, "No such VM.");
        return NULL;
    }
    db = db_pool_acquire(vms->opts.db, error);
    vm = db ? db_vms_get(db, id, owner_filter(caller), error) : NULL;
    if (vm && !svc_vms_may_see(caller, vm)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_NOT_FOUND, "No such VM.");
        return NULL;
    }
    return g_steal_pointer(&vm);
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
    if (!svc_vms_sees_all(caller) || !owner)
        return visible_only(caller, db_vms_list(db, owner_filter(caller), error));
    who = db_users_get_by_name(db, owner, &err);
    if (!who) {
        if (vmb_error_kind(err) != VMB_ERROR_NOT_FOUND) {
            g_propagate_error(error, g_steal_pointer(&err));
            return NULL;
        }
        return g_ptr_array_new_with_free_func((GDestroyNotify) db_vm_free);
    }
    return visible_only(caller, db_vms_list(db, who->id, error));
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
    /* Admins and service accounts see different sets: apart. */
    const char *view = caller->role == DB_ROLE_SERVICE ? "vms:users" : "vms:all";

    if (!svc_vms_sees_all(caller))
        return g_strconcat("vms:owner-id:", caller->id, NULL);
    if (!owner)
        return g_strdup(view);
    /* ?owner= comes from the client: only a name a user can have becomes a key. */
    return svc_users_name_valid(owner) ? g_strconcat(view, ":owner:", owner, NULL) : NULL;
}

/**
 * svc_vms_list_rendered:
 * @vms: the service
 * @caller: who asks
 * @owner: (nullable): as for svc_vms_list
 * @render: turns the list into bytes
 * @data: for @render
 * @error: return location for an error
 *
 * The read cache keeps the rendered bytes under svc_vms_list_key(@caller, @owner); any
 * change to the tables drops them (db-cache.c), so a hit is what a read would render.
 *
 * Returns: (transfer full): the rendered list, or NULL with @error set.
 */
GBytes *
svc_vms_list_rendered(SvcVms *vms, const DbUser *caller, const char *owner,
                      SvcVmsRenderFunc render, void *data, GError **error)
{
    g_autofree char *key = vms->opts.cache ? svc_vms_list_key(caller, owner) : NULL;
    g_autoptr(GPtrArray) list = NULL;
    GBytes *body = NULL;
    guint64 gen = 0;

    if (key)
        body = db_cache_lookup(vms->opts.cache, key, (DbCacheCopyFunc) g_bytes_ref, &gen);
    if (body)
        return body;
    list = svc_vms_list(vms, caller, owner, error);
    if (!list)
        return NULL;
    body = render(list, data);
    if (key)
        db_cache_store(vms->opts.cache, key, gen, g_bytes_ref(body),
                       (GDestroyNotify) g_bytes_unref);
    return body;
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
    DomHypervisor *hv = svc_vms_hv(vms, vm->host_id, error);
    PasswordJob *job;
    char *password;

    if (!hv)
        return NULL;
    job = g_new0(PasswordJob, 1);
    job->hv = hv;
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
 * svc_vms_stop_words:
 * @caller: who stops the VM
 * @vm: the VM
 *
 * Who stopped it, in the words the VM shows: its owner (an admin too, when it is theirs), an
 * administrator, or the course portal (a service account).
 *
 * Returns: (transfer full): the reason.
 */
char *
svc_vms_stop_words(const DbUser *caller, const DbVm *vm)
{
    if (g_strcmp0(caller->id, vm->owner_id) == 0)
        return g_strdup("stopped by its owner");
    if (caller->role == DB_ROLE_SERVICE)
        return g_strdup_printf("stopped by the course portal (service account %s)",
                               caller->username);
    if (caller->role == DB_ROLE_ADMIN)
        return g_strdup_printf("stopped by an administrator (%s)", caller->username);
    return g_strdup_printf("stopped by %s", caller->username);
}

typedef struct {
    SvcVms *vms;
    DomTemplateSet *set;     /* what the templates are read from */
    const DomTemplate *only; /* (nullable) this template, not all */
    GPtrArray *needs;        /* SvcTemplateNeed */
    GError *error;
} NeedsJob;

static void
template_need_free(gpointer data)
{
    SvcTemplateNeed *n = data;

    g_free(n->reason);
    g_free(n->hint);
    dom_template_set_unref(n->set);
    g_free(n);
}

static void
needs_job_free(gpointer data)
{
    NeedsJob *job = data;

    if (job->needs)
        g_ptr_array_unref(job->needs);
    g_clear_pointer(&job->set, dom_template_set_unref);
    g_clear_error(&job->error);
    g_free(job);
}

static void
needs_job_run(gpointer data)
{
    NeedsJob *job = data;
    const DomTemplateSet *set = job->set;
    g_autoptr(GPtrArray) needs = g_ptr_array_new_with_free_func(template_need_free);

    for (guint i = 0; i < (job->only ? 1 : dom_template_set_count(set)); i++) {
        SvcTemplateNeed *n = g_new0(SvcTemplateNeed, 1);

        n->tmpl = job->only ? job->only : dom_template_set_nth(set, i);
        n->set = dom_template_set_ref(job->set);
        g_ptr_array_add(needs, n);
        if (!svc_vms_template_need_now(job->vms, n->tmpl, &n->reason, &n->hint, &job->error))
            return;
    }
    job->needs = g_steal_pointer(&needs);
}

/* Runs the check of @only (NULL: every template) on the bounded libvirt pool. */
static GPtrArray *
run_needs_job(SvcVms *vms, const DomTemplate *only, GError **error)
{
    NeedsJob *job = g_new0(NeedsJob, 1);
    GPtrArray *needs;

    job->vms = vms;
    job->set = svc_templates_get(vms->opts.templates);
    job->only = only;
    if (!vmb_bounded_run(vms->opts.bounded, needs_job_run, job, needs_job_free,
                         vms->opts.call_timeout_s * 1000, NULL)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE,
                    "libvirt did not say within %u s what the templates need",
                    vms->opts.call_timeout_s);
        return NULL;
    }
    needs = g_steal_pointer(&job->needs);
    if (!needs)
        g_propagate_error(error, g_steal_pointer(&job->error));
    needs_job_free(job);
    return needs;
}

/**
 * svc_vms_template_needs:
 * @vms: the service
 * @error: return location for an error (VMB_ERROR_UNAVAILABLE when libvirt does not answer
 *   within call_timeout_s)
 *
 * Returns: (transfer full) (element-type SvcTemplateNeed): every loaded template with what
 * it lacks on this host, or NULL.
 */
GPtrArray *
svc_vms_template_needs(SvcVms *vms, GError **error)
{
    return run_needs_job(vms, NULL, error);
}

/**
 * svc_vms_template_need:
 * @vms: the service
 * @tmpl: a loaded template
 * @ret_reason: (out): why it cannot be used now, for users; NULL when it can
 * @ret_hint: (out): what an admin does about it
 * @error: return location for an error (VMB_ERROR_UNAVAILABLE when libvirt does not answer
 *   within call_timeout_s)
 *
 * Returns: true when libvirt could say.
 */
bool
svc_vms_template_need(SvcVms *vms, const DomTemplate *tmpl, char **ret_reason, char **ret_hint,
                      GError **error)
{
    g_autoptr(GPtrArray) needs = run_needs_job(vms, tmpl, error);
    SvcTemplateNeed *n;

    if (!needs)
        return false;
    n = needs->pdata[0];
    *ret_reason = g_steal_pointer(&n->reason);
    *ret_hint = g_steal_pointer(&n->hint);
    return true;
}
