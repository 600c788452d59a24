// SPDX-License-Identifier: LGPL-2.1-or-later
// The reconciler. Events are hints: the callback (on libvirt's event thread) only queues
// the domain's name; one worker, in arrival order, then compares the VM's row with what
// libvirt says *now* and repairs the row. Acting on the current state rather than on the
// event is what keeps a stop/start pair (or a reset) from marking a running VM stopped.
// Every repair holds the VM's claim (svc_vms_try_claim), so a VM that a create, start,
// stop or delete is working on is left to that operation.
//
// Policy, per row of this host and prefix (not claimed):
//   creating  stale (no create runs): the domain and its ephemeral disks are removed; a
//             VM never started loses its row (leases released), one being restarted
//             becomes stopped
//   running   domain shut off, crashed or gone: stopped with the reason, ports released,
//             ephemeral disks dropped (a crashed domain libvirt kept is destroyed first);
//             domain paused: paused, with libvirt's reason in plain words
//   paused    domain running again: running; paused for another reason: the new reason;
//             shut off, crashed or gone: stopped, as for running
//   stopping  the stop job was lost: the domain is destroyed, the VM stopped
//   stopped   domain running (started by hand): error, for an admin to decide
//   error     left alone
// A domain undefined by an admin makes its VM `stopped` (reason "domain undefined outside
// vmbroker"), not `error`: its row still says what to define again, and a start does so.
// A domain of this prefix with vmbroker's metadata but no row is adopted as `error`
// without ports (or destroyed, with libvirt.adopt_orphans = destroy).
#include "svc-sync.h"
#include "svc-sync-lease.h"
#include "svc-sync-words.h"

#include <string.h>

#include "db-audit.h"
#include "db-hosts.h"
#include "db-users.h"
#include "db-vms.h"
#include "dom-lifecycle.h"
#include "vmb-error.h"
#include "vmb-json.h"
#include "vmb-log.h"

#define EVENTS_METRIC "vmbroker_libvirt_events_total"
#define EVENT_DELAY_METRIC "vmbroker_libvirt_event_repair_seconds"
#define SYNCS_METRIC "vmbroker_libvirt_syncs_total"
#define RECONNECTS_METRIC "vmbroker_libvirt_reconnects_total"
/* An event for a VM an operation holds is looked at again this much later, this often at
 * most (about a minute: a stop may wait out stop_timeout_s); the periodic sync after that. */
#define RECHECK_DELAY_US (250 * 1000)
#define RECHECK_TRIES 240u
/* Reconnect backoff: doubles from the first to the last, in milliseconds. */
#define BACKOFF_FIRST_MS 250u
#define BACKOFF_MAX_MS 8000u

struct SvcSync {
    SvcSyncOptions opts;
    char *host_id;
    char *name_prefix;
    GThreadPool *worker;   /* EventJob, one thread: events are handled in order */
    GThread *thread;       /* periodic sync and reconnects */
    GMutex lock;
    GCond wake;
    bool quit;             /* (lock) */
    bool lost;             /* (lock) the connection was lost: reconnect now */
    GPtrArray *rechecks;   /* (lock) EventJobs whose VM was claimed, to look at again */
    gint64 recheck_at;     /* (lock) monotonic time to queue them again; 0: none waits */
    gint synced;           /* (atomic) the last full pass succeeded */
    SvcSyncLease *lease;   /* whether this broker watches the host */
};

typedef struct {
    char *name;
    int event;
    int detail;
    gint64 at_us;          /* monotonic time the event arrived */
    unsigned tries;        /* times its VM was found claimed */
} EventJob;

/* --- repairs (in transactions, audited without an actor) --- */

typedef struct {
    const char *id;
    DbVmState to;
    const char *reason;
    unsigned cooldown_s;
    const char *action;
    bool delete_row;       /* instead of a state change */
    const char *host_id;
    const char *owner;     /* (nullable) the lease's owner, this broker */
    gint64 epoch;          /* the lease's epoch it holds */
} RepairTx;

static bool
repair_tx(DbConn *conn, void *data, GError **error)
{
    RepairTx *tx = data;
    DbAuditEntry e = { .action = tx->action, .object_kind = "vm", .object_id = tx->id };
    g_autoptr(json_object) detail = NULL;

    /* Fencing: a broker that lost the host's lease meanwhile writes nothing. */
    if (tx->owner && !db_host_lease_check(conn, tx->host_id, tx->id, tx->owner, tx->epoch,
                                          error))
        return false;
    if (tx->delete_row) {
        if (!db_vms_delete(conn, tx->id, NULL, tx->cooldown_s, error))
            return false;
    } else {
        g_autoptr(DbVm) vm = db_vms_set_state(conn, tx->id, tx->to, tx->reason,
                                              tx->cooldown_s, error);
        if (!vm)
            return false;
    }
    if (tx->reason) {
        detail = json_object_new_object();
        json_object_object_add(detail, "reason", json_object_new_string(tx->reason));
        e.detail_json = json_object_to_json_string_ext(detail, JSON_C_TO_STRING_PLAIN);
    }
    return db_audit_insert(conn, &e, error);
}

static bool
repair(SvcSync *sync, const DbVm *vm, DbVmState to, const char *reason, const char *action,
       bool delete_row, GError **error)
{
    RepairTx tx = { vm->id, to, reason, sync->opts.port_cooldown_s, action, delete_row,
                    sync->host_id, svc_sync_lease_owner(sync->lease),
                    svc_sync_lease_epoch(sync->lease) };

    if (!db_pool_transaction(sync->opts.db, repair_tx, &tx, error))
        return false;
    /* A repair to stopped, error or no row ends the VM's consoles; one that pauses or
     * resumes it leaves them to watch (QEMU keeps serving a paused guest's screen). */
    if (delete_row || (to != DB_VM_PAUSED && to != DB_VM_RUNNING))
        svc_vms_end_consoles(sync->opts.vms, vm->id, reason ? reason : "the VM stopped");
    vmb_info("sync: VM %s (%s) %s -> %s: %s", vm->name, vm->id,
             db_vm_state_to_string(vm->state), delete_row ? "deleted" : db_vm_state_to_string(to),
             reason ? reason : "-");
    return true;
}

/* Destroys and undefines @dom with the volumes its metadata lists; errors are returned. */
static bool
remove_domain(virDomainPtr dom, GError **error)
{
    return dom_lifecycle_destroy(dom, error) && dom_lifecycle_undefine(dom, true, error);
}

/* A row that says running or paused whose domain is shut off, crashed or gone: stopped,
 * with libvirt's recorded cause first, so that event, resync and start-up say the same. */
static bool
reconcile_gone(SvcSync *sync, virConnectPtr conn, const DbVm *vm, virDomainPtr dom,
               const DomRunState *st, const char *hint, GError **error)
{
    const char *reason = dom && st->stop != DOM_STOP_UNKNOWN ? svc_sync_cause_reason(st->stop)
                         : hint ? hint
                         : dom  ? svc_sync_cause_reason(st->stop)
                                : "domain undefined outside vmbroker";

    if (dom)
        dom_lifecycle_destroy(dom, NULL); /* a crashed domain libvirt preserved */
    svc_vms_drop_ephemeral_disks(sync->opts.vms, conn, vm);
    return repair(sync, vm, DB_VM_STOPPED, reason, "vm.sync", false, error);
}

/* A row that says running or paused whose domain runs: the row follows the CPUs. */
static bool
reconcile_live(SvcSync *sync, const DbVm *vm, const DomRunState *st, bool *ret_changed,
               GError **error)
{
    const char *reason = st->paused ? svc_sync_pause_reason(st->pause) : NULL;

    if (!st->paused && vm->state == DB_VM_RUNNING)
        return true;
    if (st->paused && vm->state == DB_VM_PAUSED && g_strcmp0(vm->state_reason, reason) == 0)
        return true;
    *ret_changed = repair(sync, vm, st->paused ? DB_VM_PAUSED : DB_VM_RUNNING, reason,
                          "vm.sync", false, error);
    return *ret_changed;
}

/* The policy at the top of the file, for a claimed VM and its domain (NULL when gone). */
static bool
reconcile_row(SvcSync *sync, virConnectPtr conn, const DbVm *vm, virDomainPtr dom,
              const DomRunState *st, const char *hint, bool *ret_changed, GError **error)
{
    bool ok = true;

    switch (vm->state) {
    case DB_VM_CREATING:
        /* Unclaimed, so no create or start is running: left over from a crash. */
        ok = (!dom || remove_domain(dom, error));
        if (ok) {
            svc_vms_drop_ephemeral_disks(sync->opts.vms, conn, vm);
            ok = vm->started_at
                     ? repair(sync, vm, DB_VM_STOPPED, "vmbroker stopped while starting it",
                              "vm.sync", false, error)
                     : repair(sync, vm, DB_VM_STOPPED, "vmbroker stopped while creating it",
                              "vm.rollback", true, error);
            *ret_changed = ok;
        }
        break;
    case DB_VM_RUNNING:
    case DB_VM_PAUSED:
        if (dom && st->running)
            return reconcile_live(sync, vm, st, ret_changed, error);
        ok = *ret_changed = reconcile_gone(sync, conn, vm, dom, st, hint, error);
        break;
    case DB_VM_STOPPING:
        /* Unclaimed: the stop job died with a previous vmbroker. Finish the stop. */
        ok = (!dom || dom_lifecycle_destroy(dom, error)) &&
             repair(sync, vm, DB_VM_STOPPED, vm->state_reason ? vm->state_reason
                                                              : "stopped by vmbroker",
                    "vm.sync", false, error);
        *ret_changed = ok;
        break;
    case DB_VM_STOPPED:
        if (dom && st->running)
            ok = *ret_changed = repair(sync, vm, DB_VM_ERROR,
                                       "running outside vmbroker while stopped here: stop or "
                                       "delete it", "vm.sync", false, error);
        break;
    case DB_VM_ERROR:
    case DB_VM_STATE_LAST:
        break;
    }
    return ok;
}

/* reconcile_vm() under the VM's claim. */
static bool
reconcile_claimed(SvcSync *sync, virConnectPtr conn, const char *id, const char *hint,
                  bool *ret_changed, GError **error)
{
    g_autoptr(DbConn) db = NULL;
    g_autoptr(DbVm) vm = NULL;
    g_autoptr(virDomain) dom = NULL;
    g_autoptr(GError) err = NULL;
    DomRunState st = { 0 };

    db = db_pool_acquire(sync->opts.db, &err);
    vm = db ? db_vms_get(db, id, NULL, &err) : NULL;
    g_clear_pointer(&db, db_conn_release);
    if (!vm) {
        if (vmb_error_kind(err) == VMB_ERROR_NOT_FOUND)
            return true; /* deleted meanwhile */
        g_propagate_error(error, g_steal_pointer(&err));
        return false;
    }
    dom = dom_lifecycle_lookup(conn, vm->name, &err);
    if (!dom && vmb_error_kind(err) != VMB_ERROR_NOT_FOUND) {
        g_propagate_error(error, g_steal_pointer(&err));
        return false;
    }
    if (dom && !dom_lifecycle_run_state(dom, &st, error))
        return false;
    return reconcile_row(sync, conn, vm, dom, &st, hint, ret_changed, error);
}

/* For operation runners that take over a VM's unfinished operation (svc_vms_set_reconciler):
 * the runner holds the VM's claim. */
static void
reconcile_for_runner(const char *vm_id, gpointer data)
{
    SvcSync *sync = data;
    g_autoptr(GError) err = NULL;
    g_autoptr(virConnect) conn = dom_hypervisor_get(sync->opts.hv, &err);
    bool changed = false;

    if (!conn || !reconcile_claimed(sync, conn, vm_id, NULL, &changed, &err))
        vmb_warning("sync: reconciling VM %s for its operation: %s", vm_id, err->message);
}

/**
 * reconcile_vm:
 * @sync: the reconciler
 * @conn: a libvirt connection
 * @id: a VM of ours
 * @hint: (nullable): the reason an event gave, for a VM found stopped
 * @ret_changed: (out) (optional): whether the row changed
 * @ret_busy: (out) (optional): whether an operation held the VM, so it was skipped
 * @error: return location for an error
 *
 * Brings one VM's row in line with its domain (see the policy at the top). A VM an
 * operation has claimed is skipped.
 *
 * Returns: true on success (also when skipped).
 */
static bool
reconcile_vm(SvcSync *sync, virConnectPtr conn, const char *id, const char *hint,
             bool *ret_changed, bool *ret_busy, GError **error)
{
    bool changed = false, ok;

    if (ret_busy)
        *ret_busy = false;
    if (!svc_vms_try_claim(sync->opts.vms, id)) {
        if (ret_busy)
            *ret_busy = true;
        return true;
    }
    ok = reconcile_claimed(sync, conn, id, hint, &changed, error);
    svc_vms_release(sync->opts.vms, id);
    if (ret_changed)
        *ret_changed = changed;
    return ok;
}

/* A domain of our prefix without a row: adopt it as `error` or destroy it. */
static bool
reconcile_orphan(SvcSync *sync, virConnectPtr conn, const char *name, GError **error)
{
    g_autoptr(virDomain) dom = dom_lifecycle_lookup(conn, name, NULL);
    g_autoptr(DomMetadata) md = NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(DbConn) db = NULL;
    g_autoptr(DbVm) row = NULL;
    g_autoptr(DbUser) owner = NULL;
    g_autoptr(DbVm) adopted = NULL;
    g_autoptr(GPtrArray) volumes = g_ptr_array_new_with_free_func(g_free);
    char uuid[VIR_UUID_STRING_BUFLEN];
    bool ok = true;

    if (!dom)
        return true; /* gone meanwhile */
    md = dom_lifecycle_metadata(dom, &err);
    if (!md || !md->vm_id || !md->owner || !md->template_name)
        return true; /* not made by vmbroker: not ours to judge */
    if (!svc_vms_try_claim(sync->opts.vms, md->vm_id))
        return true;
    db = db_pool_acquire(sync->opts.db, error);
    if (!db) {
        svc_vms_release(sync->opts.vms, md->vm_id);
        return false;
    }
    /* Looked up again under the claim: a create inserts its row before it defines. */
    row = db_vms_get_by_name(db, name, &err);
    if (row || vmb_error_kind(err) != VMB_ERROR_NOT_FOUND) {
        svc_vms_release(sync->opts.vms, md->vm_id);
        if (!row)
            g_propagate_error(error, g_steal_pointer(&err));
        return row != NULL;
    }
    g_clear_error(&err);
    if (sync->opts.destroy_orphans) {
        ok = remove_domain(dom, error);
        if (ok)
            vmb_info("sync: destroyed domain %s (VM %s of %s): it has no row", name, md->vm_id,
                     md->owner);
        svc_vms_release(sync->opts.vms, md->vm_id);
        return ok;
    }
    for (char **v = md->ephemeral_volumes; v && *v; v++)
        g_ptr_array_add(volumes, g_path_get_basename(*v));
    g_ptr_array_add(volumes, NULL);
    owner = db_users_get_by_name(db, md->owner, &err);
    if (!owner && vmb_error_kind(err) == VMB_ERROR_NOT_FOUND) {
        g_clear_error(&err);
        owner = db_users_ensure(db, md->owner, DB_ROLE_USER, &err);
    }
    if (owner && virDomainGetUUIDString(dom, uuid) == 0) {
        DbVmSpec spec = {
            .id = md->vm_id,
            .name = name,
            .owner_id = owner->id,
            .template_name = md->template_name,
            .host_id = sync->host_id,
            .disk_volumes = (const char *const *) volumes->pdata,
        };
        adopted = db_vms_adopt(db, &spec, uuid,
                               "found in libvirt without a row: adopted for an admin to decide",
                               &err);
    }
    if (adopted)
        vmb_warning("sync: adopted domain %s as VM %s of %s in state error (it had no row)",
                    name, adopted->id, md->owner);
    else
        vmb_warning("sync: domain %s has vmbroker's metadata but no row, and cannot be adopted:"
                    " %s", name, err ? err->message : "no uuid");
    svc_vms_release(sync->opts.vms, md->vm_id);
    return true;
}

/**
 * svc_sync_reconcile:
 * @sync: the reconciler
 * @error: return location for an error
 *
 * One full pass over the VMs of this host and prefix and the domains of this prefix.
 *
 * Returns: true when every VM and domain was looked at.
 */
bool
svc_sync_reconcile(SvcSync *sync, GError **error)
{
    g_autoptr(virConnect) conn = dom_hypervisor_connect(sync->opts.hv, error);
    g_autoptr(GPtrArray) names = NULL;
    g_autoptr(GPtrArray) rows = NULL;
    g_autoptr(GHashTable) known = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(DbConn) db = NULL;
    g_autoptr(GError) first = NULL;

    if (!conn) {
        g_atomic_int_set(&sync->synced, 0);
        return false;
    }
    svc_sync_lease_tick(sync->lease);
    if (!svc_sync_lease_held(sync->lease)) {
        g_atomic_int_set(&sync->synced, 1); /* the owner's to do; nothing is wrong here */
        return true;
    }
    /* Domains first: a create inserts its row before it defines its domain, so a domain
     * listed here whose row is missing below is not a create in progress. */
    names = dom_lifecycle_list_names(conn, sync->name_prefix, error);
    if (!names)
        return false;
    db = db_pool_acquire(sync->opts.db, error);
    rows = db ? db_vms_list(db, NULL, error) : NULL;
    if (!rows)
        return false;
    g_clear_pointer(&db, db_conn_release);
    for (guint i = 0; i < rows->len; i++) {
        const DbVm *vm = rows->pdata[i];
        g_autoptr(GError) err = NULL;
        g_hash_table_add(known, vm->name);
        if (strcmp(vm->host_id, sync->host_id) != 0 || !g_str_has_prefix(vm->name,
                                                                          sync->name_prefix))
            continue;
        if (!reconcile_vm(sync, conn, vm->id, NULL, NULL, NULL, &err) && !first)
            first = g_steal_pointer(&err);
    }
    for (guint i = 0; i < names->len; i++) {
        g_autoptr(GError) err = NULL;
        if (g_hash_table_contains(known, names->pdata[i]))
            continue;
        if (!reconcile_orphan(sync, conn, names->pdata[i], &err) && !first)
            first = g_steal_pointer(&err);
    }
    if (sync->opts.metrics)
        vmb_metrics_add(sync->opts.metrics, SYNCS_METRIC, 1, "result", first ? "error" : "ok",
                        NULL);
    g_atomic_int_set(&sync->synced, first == NULL);
    if (first) {
        g_propagate_error(error, g_steal_pointer(&first));
        return false;
    }
    svc_sync_lease_set_reachable(sync->lease, true);
    return true;
}

/* --- events --- */

static void
event_job_free(EventJob *job)
{
    g_free(job->name);
    g_free(job);
}

/* Whether @event can change what the row of a VM in @state should say. */
static bool
event_concerns(int event, DbVmState state)
{
    switch (event) {
    case VIR_DOMAIN_EVENT_STOPPED:
    case VIR_DOMAIN_EVENT_CRASHED:
    case VIR_DOMAIN_EVENT_UNDEFINED:
        return true;
    case VIR_DOMAIN_EVENT_STARTED:
        /* Only for a VM PostgreSQL says is stopped: skipping the rest saves a round trip
         * per create. */
        return state == DB_VM_STOPPED;
    case VIR_DOMAIN_EVENT_SUSPENDED:
        /* A guest may pause as soon as it starts, while its create still holds it. */
        return state == DB_VM_RUNNING || state == DB_VM_CREATING || state == DB_VM_PAUSED;
    case VIR_DOMAIN_EVENT_RESUMED:
        return state == DB_VM_PAUSED;
    default:
        return false;
    }
}

/* Keeps @job to be queued again shortly, as its VM's operation holds it; false once it has
 * waited long enough (the periodic sync takes over). */
static bool
recheck_later(SvcSync *sync, EventJob *job)
{
    if (++job->tries > RECHECK_TRIES)
        return false;
    g_mutex_lock(&sync->lock);
    g_ptr_array_add(sync->rechecks, job);
    if (!sync->recheck_at)
        sync->recheck_at = g_get_monotonic_time() + RECHECK_DELAY_US;
    g_cond_signal(&sync->wake);
    g_mutex_unlock(&sync->lock);
    return true;
}

static void
event_worker(gpointer data, gpointer user_data)
{
    EventJob *job = data;
    SvcSync *sync = user_data;
    g_autoptr(GError) err = NULL;
    g_autoptr(virConnect) conn = NULL;
    g_autoptr(DbConn) db = NULL;
    g_autoptr(DbVm) vm = NULL;
    bool changed = false, busy = false;

    /* Only what can end a run, pause or resume one (or start one behind vmbroker's back)
     * needs a look, by the broker that watches the host. */
    if (!svc_sync_lease_held(sync->lease)) {
        event_job_free(job);
        return;
    }
    if (job->event == VIR_DOMAIN_EVENT_STOPPED || job->event == VIR_DOMAIN_EVENT_CRASHED ||
        job->event == VIR_DOMAIN_EVENT_UNDEFINED || job->event == VIR_DOMAIN_EVENT_STARTED ||
        job->event == VIR_DOMAIN_EVENT_SUSPENDED || job->event == VIR_DOMAIN_EVENT_RESUMED) {
        db = db_pool_acquire(sync->opts.db, &err);
        vm = db ? db_vms_get_by_name(db, job->name, &err) : NULL;
        g_clear_pointer(&db, db_conn_release);
        if (vm && !event_concerns(job->event, vm->state))
            g_clear_pointer(&vm, db_vm_free);
        if (vm && strcmp(vm->host_id, sync->host_id) == 0 &&
            (conn = dom_hypervisor_get(sync->opts.hv, &err)))
            reconcile_vm(sync, conn, vm->id, svc_sync_event_reason(job->event, job->detail), &changed,
                         &busy, &err);
        if (err && vmb_error_kind(err) != VMB_ERROR_NOT_FOUND)
            vmb_warning("sync: event %s of %s: %s (the periodic sync retries)",
                        svc_sync_event_name(job->event), job->name, err->message);
    }
    if (sync->opts.metrics) {
        if (changed)
            vmb_metrics_observe(sync->opts.metrics, EVENT_DELAY_METRIC,
                                (double) (g_get_monotonic_time() - job->at_us) / G_USEC_PER_SEC,
                                NULL);
        if (job->tries == 0)
            vmb_metrics_add(sync->opts.metrics, EVENTS_METRIC, 1, "event",
                            svc_sync_event_name(job->event), NULL);
    }
    if (!busy || !recheck_later(sync, job))
        event_job_free(job);
}

/* (lock held) Queues the events kept by recheck_later() again, once their time has come;
 * returns when to come back (G_MAXINT64: nothing waits). */
static gint64
requeue_rechecks(SvcSync *sync, gint64 now)
{
    if (!sync->recheck_at)
        return G_MAXINT64;
    if (now < sync->recheck_at)
        return sync->recheck_at;
    for (guint i = 0; i < sync->rechecks->len; i++)
        g_thread_pool_push(sync->worker, sync->rechecks->pdata[i], NULL);
    g_ptr_array_set_size(sync->rechecks, 0);
    sync->recheck_at = 0;
    return G_MAXINT64;
}

/* On libvirt's event thread: queue, never block. */
static void
on_event(const char *name, int event, int detail, void *data)
{
    SvcSync *sync = data;
    EventJob *job;

    if (!g_str_has_prefix(name, sync->name_prefix))
        return;
    job = g_new0(EventJob, 1);
    job->name = g_strdup(name);
    job->event = event;
    job->detail = detail;
    job->at_us = g_get_monotonic_time();
    g_thread_pool_push(sync->worker, job, NULL);
}

static void
on_lost(const char *why, void *data)
{
    SvcSync *sync = data;

    g_mutex_lock(&sync->lock);
    sync->lost = true;
    g_cond_signal(&sync->wake);
    g_mutex_unlock(&sync->lock);
}

/* --- the sync thread --- */

/* The next try after a failure: the backoff doubles from the first to the last. */
static gint64
back_off(unsigned *backoff_ms, gint64 now)
{
    *backoff_ms = *backoff_ms ? MIN(*backoff_ms * 2, BACKOFF_MAX_MS) : BACKOFF_FIRST_MS;
    return now + (gint64) *backoff_ms * 1000;
}

/* (lock held) Renews the lease when @lease_at has come; true when it was just won. */
static bool
lease_due(SvcSync *sync, gint64 t, gint64 *lease_at)
{
    bool won;

    if (t < *lease_at)
        return false;
    g_mutex_unlock(&sync->lock);
    won = svc_sync_lease_tick(sync->lease);
    g_mutex_lock(&sync->lock);
    *lease_at = t + SVC_SYNC_LEASE_RENEW_S * G_USEC_PER_SEC;
    return won;
}

static gpointer
sync_main(gpointer data)
{
    SvcSync *sync = data;
    /* A failed start-up pass is retried at once, not an interval later. */
    guint64 synced_gen = g_atomic_int_get(&sync->synced) ? dom_hypervisor_generation(sync->opts.hv)
                                                         : G_MAXUINT64;
    gint64 next_full = g_get_monotonic_time() + (gint64) sync->opts.interval_s * G_USEC_PER_SEC;
    gint64 wake_at = next_full;
    gint64 lease_at = g_get_monotonic_time() + SVC_SYNC_LEASE_RENEW_S * G_USEC_PER_SEC;
    unsigned backoff_ms = 0; /* 0: connected */
    bool down = false;

    g_mutex_lock(&sync->lock);
    for (;;) {
        gint64 t = g_get_monotonic_time();
        /* Events waiting for their VM's operation to end ride along on this thread. */
        gint64 recheck = requeue_rechecks(sync, t);

        if (!sync->quit && lease_due(sync, t, &lease_at))
            next_full = wake_at = t; /* taken over: a full pass at once */
        if (!sync->quit && !sync->lost && t < wake_at) {
            g_cond_wait_until(&sync->wake, &sync->lock, MIN(MIN(wake_at, recheck), lease_at));
            continue;
        }
        if (sync->quit)
            break;
        if (sync->lost && !down) {
            vmb_warning("libvirt %s: connection lost; reconnecting",
                        dom_hypervisor_uri(sync->opts.hv));
            down = true;
            g_mutex_unlock(&sync->lock);
            svc_sync_lease_set_reachable(sync->lease, false);
            g_mutex_lock(&sync->lock);
        }
        sync->lost = false;
        g_mutex_unlock(&sync->lock);
        {
            g_autoptr(GError) err = NULL;
            g_autoptr(virConnect) conn = dom_hypervisor_connect(sync->opts.hv, &err);
            guint64 gen = dom_hypervisor_generation(sync->opts.hv);
            gint64 now = g_get_monotonic_time();

            if (!conn) {
                if (!down)
                    vmb_warning("libvirt: %s; reconnecting", err->message);
                down = true;
                svc_sync_lease_set_reachable(sync->lease, false);
                wake_at = back_off(&backoff_ms, now);
            } else if (gen != synced_gen || down || now >= next_full) {
                if (gen != synced_gen || down) {
                    vmb_info("libvirt %s: connected (connection %" G_GUINT64_FORMAT
                             "); resyncing", dom_hypervisor_uri(sync->opts.hv), gen);
                    if (sync->opts.metrics)
                        vmb_metrics_add(sync->opts.metrics, RECONNECTS_METRIC, 1, NULL);
                    /* libvirtd may be back on another kernel or with other permissions. */
                    if (sync->opts.accel)
                        svc_accel_refresh(sync->opts.accel, conn, true);
                }
                if (svc_sync_reconcile(sync, &err)) {
                    synced_gen = gen;
                    down = false;
                    backoff_ms = 0;
                    next_full = now + (gint64) sync->opts.interval_s * G_USEC_PER_SEC;
                    wake_at = next_full;
                } else {
                    vmb_warning("sync: %s; retrying", err->message);
                    wake_at = back_off(&backoff_ms, now);
                }
            } else {
                wake_at = next_full;
            }
        }
        g_mutex_lock(&sync->lock);
    }
    g_mutex_unlock(&sync->lock);
    return NULL;
}

/**
 * svc_sync_new:
 * @opts: settings; strings are copied, pointers must outlive the reconciler
 * @error: return location for an error
 *
 * Starts libvirt's event loop and watches the hypervisor's connections: keepalive, the
 * close callback and (with opts->events) lifecycle events, which are handled from now on.
 *
 * Returns: (transfer full): the reconciler, or NULL.
 */
SvcSync *
svc_sync_new(const SvcSyncOptions *opts, GError **error)
{
    static const double bounds[] = { 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5 };
    g_autoptr(SvcSync) sync = g_new0(SvcSync, 1);
    DomHypervisorWatch watch = {
        .on_event = opts->events ? on_event : NULL,
        .on_lost = on_lost,
        .data = NULL,
        .keepalive_interval_s = opts->keepalive_interval_s,
        .keepalive_count = opts->keepalive_count,
    };

    sync->opts = *opts;
    sync->host_id = g_strdup(opts->host_id);
    sync->name_prefix = g_strdup(opts->name_prefix);
    sync->opts.host_id = sync->host_id;
    sync->opts.name_prefix = sync->name_prefix;
    sync->lease = svc_sync_lease_new(opts->db, opts->host_id, opts->host_name, opts->owner,
                                     opts->metrics);
    sync->opts.host_name = NULL; /* the lease keeps a copy: the caller's may go */
    sync->opts.owner = NULL;
    g_mutex_init(&sync->lock);
    g_cond_init(&sync->wake);
    sync->worker = g_thread_pool_new_full(event_worker, sync, (GDestroyNotify) event_job_free, 1,
                                         FALSE, NULL);
    sync->rechecks = g_ptr_array_new();
    if (opts->metrics) {
        vmb_metrics_declare(opts->metrics, EVENTS_METRIC, VMB_METRIC_COUNTER,
                            "libvirt lifecycle events of our domains handled.", NULL, 0);
        vmb_metrics_declare(opts->metrics, EVENT_DELAY_METRIC, VMB_METRIC_HISTOGRAM,
                            "Seconds from a libvirt event to the repaired row.", bounds,
                            G_N_ELEMENTS(bounds));
        vmb_metrics_declare(opts->metrics, SYNCS_METRIC, VMB_METRIC_COUNTER,
                            "Full syncs of PostgreSQL with libvirt.", NULL, 0);
        vmb_metrics_declare(opts->metrics, RECONNECTS_METRIC, VMB_METRIC_COUNTER,
                            "Resyncs after a new libvirt connection.", NULL, 0);
    }
    watch.data = sync;
    if (!dom_hypervisor_watch(opts->hv, &watch, error))
        return NULL;
    svc_vms_set_reconciler(opts->vms, sync->host_id, reconcile_for_runner, sync);
    return g_steal_pointer(&sync);
}

/**
 * svc_sync_start:
 * @sync: the reconciler
 */
void
svc_sync_start(SvcSync *sync)
{
    if (!sync->thread)
        sync->thread = g_thread_new("vmb-sync", sync_main, sync);
}

/**
 * svc_sync_free:
 * @sync: (nullable): the reconciler
 *
 * Stops watching the hypervisor (its connection is dropped with the callbacks), joins the
 * sync thread and the event worker, dropping queued events. Call it before the hypervisor
 * and the VM service go.
 */
void
svc_sync_free(SvcSync *sync)
{
    if (!sync)
        return;
    if (sync->thread) {
        g_mutex_lock(&sync->lock);
        sync->quit = true;
        g_cond_signal(&sync->wake);
        g_mutex_unlock(&sync->lock);
        g_thread_join(sync->thread);
    }
    svc_vms_set_reconciler(sync->opts.vms, sync->host_id, NULL, NULL);
    /* No more callbacks into @sync: the connection is dropped with them. */
    dom_hypervisor_watch(sync->opts.hv, &(DomHypervisorWatch) { 0 }, NULL);
    if (sync->worker)
        g_thread_pool_free(sync->worker, TRUE, TRUE);
    g_clear_pointer(&sync->lease, svc_sync_lease_free); /* released: another broker takes it */
    if (sync->rechecks) {
        g_ptr_array_foreach(sync->rechecks, (GFunc) (void (*)(void)) event_job_free, NULL);
        g_ptr_array_free(sync->rechecks, TRUE);
    }
    g_mutex_clear(&sync->lock);
    g_cond_clear(&sync->wake);
    g_free(sync->host_id);
    g_free(sync->name_prefix);
    g_free(sync);
}
