// SPDX-License-Identifier: LGPL-2.1-or-later
// A create that takes a warm pool's guest: one that is running with its screen up is handed
// to the new owner in one transaction, with the row locked: the live domain's metadata and
// title name them and its VNC password is replaced (libvirt, bounded), then the row, its
// leases and a finished create operation become theirs. A guest of a memory_image template
// waits saved instead (svc_vms_save_pool_guest): its take leases ports, edits the image's
// definition and restores it, in the same transaction. Anything that fails leaves a running
// guest in the pool (a restored one is deleted) and the create goes the cold way.
#include "svc-vms-private.h"

#include <string.h>

#include "db-ops.h"
#include "db-ports.h"
#include "db-pools.h"
#include "db-users.h"
#include "dom-handover.h"
#include "dom-lifecycle.h"
#include "svc-ready.h"
#include "vmb-log.h"
#include "vmb-secret.h"

typedef enum {
    JOB_HANDOVER,  /* a running guest made the owner's */
    JOB_RESTORE,   /* a saved guest made the owner's, with its ports, and started */
    JOB_SAVE,      /* a running guest saved with its memory and stopped */
} PoolJobKind;

typedef struct {
    PoolJobKind kind;
    DomHypervisor *hv;
    char *name;
    char *host_id;
    char *owner;
    char *template_name;
    char *password;
    unsigned vnc_port;
    unsigned ws_port;
    bool ok;        /* out */
    GError *error;  /* out */
} PoolJob;

static void
pool_job_free(gpointer data)
{
    PoolJob *job = data;

    g_free(job->name);
    g_free(job->host_id);
    g_free(job->owner);
    g_free(job->template_name);
    if (job->password)
        explicit_bzero(job->password, strlen(job->password));
    g_free(job->password);
    g_clear_error(&job->error);
    g_free(job);
}

static void
pool_job_run(gpointer data)
{
    PoolJob *job = data;
    g_autoptr(virConnect) conn = dom_hypervisor_get(job->hv, &job->error);
    g_autoptr(virDomain) dom = conn ? dom_lifecycle_lookup(conn, job->name, &job->error) : NULL;

    if (!dom)
        return;
    switch (job->kind) {
    case JOB_HANDOVER:
        job->ok = dom_handover(dom, job->owner, job->template_name, job->password, &job->error);
        break;
    case JOB_RESTORE:
        job->ok = dom_handover_saved(dom, job->owner, job->template_name, job->password,
                                     job->vnc_port, job->ws_port, &job->error) &&
                  dom_lifecycle_start(dom, &job->error);
        break;
    case JOB_SAVE:
        job->ok = dom_lifecycle_save(dom, &job->error);
        break;
    }
}

/* Runs @job (transfer full) on the bounded pool, within @timeout_s, in one of the places at
 * libvirtd that operations share (30 restores at once on one connection made libvirtd stop
 * reading it, and its keepalive drop it). */
static bool
run_pool_job(SvcVms *vms, PoolJob *job, unsigned timeout_s, GError **error)
{
    bool ok, done;

    job->hv = svc_vms_hv(vms, job->host_id, error);
    if (!job->hv) {
        pool_job_free(job);
        return false;
    }
    svc_vms_hv_enter(vms);
    done = vmb_bounded_run(vms->opts.bounded, pool_job_run, job, pool_job_free,
                           timeout_s * 1000, NULL);
    svc_vms_hv_leave(vms);
    if (!done) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE,
                    "libvirt did not answer for %s within %u s", job->name, timeout_s);
        return false;
    }
    ok = job->ok;
    if (!ok)
        g_propagate_error(error, g_steal_pointer(&job->error));
    pool_job_free(job);
    return ok;
}

/* A job for the domain of @vm, for @owner when there is one. */
static PoolJob *
pool_job_new(PoolJobKind kind, const DbVm *vm, const char *owner, const char *password)
{
    PoolJob *job = g_new0(PoolJob, 1);

    job->kind = kind;
    job->name = g_strdup(vm->name);
    job->host_id = g_strdup(vm->host_id);
    job->owner = g_strdup(owner);
    job->template_name = g_strdup(vm->template_name);
    job->password = g_strdup(password);
    job->vnc_port = vm->vnc_port;
    job->ws_port = vm->ws_port;
    return job;
}

typedef struct {
    SvcVms *vms;
    const SvcVmRequest *req;
    const DbUser *owner;
    const DomTemplate *tmpl;
    const char *password;
    bool saved;          /* out: the guest taken was restored from its memory image */
    char *claimed;       /* out: a saved guest whose claim this take holds */
    bool restore_ran;    /* out: its restore was tried: it may run, or its image be spent */
    DbPortPair pair;     /* out: the ports leased for a restore */
    DbVm *vm;            /* out: NULL when the pool had no guest ready */
    DbOp *op;            /* out */
} TakeTx;

/* Under the claim of the saved guest @id: ports leased, its memory image restored as the
 * owner's with them, then the host's memory budget checked. The check comes after, so that
 * the budget's lock is not held across a restore (which would make takes wait on each
 * other); at the edge of the budget the restored guest is dropped. Nothing here locks the
 * pool account's row (a change of the row would, for its running limit): the row changes
 * once, with its new owner, in db_pools_hand_over(). */
static bool
restore_tx(DbConn *conn, TakeTx *tx, const char *id, GError **error)
{
    g_autoptr(DbVm) vm = db_vms_get(conn, id, NULL, error);
    DbPortLeaseOptions lease;

    if (!vm)
        return false;
    lease = svc_vms_lease_options(tx->vms, vm->host_id);
    if (!db_ports_lease_pair(conn, vm->host_id, id, &lease, &tx->pair, error))
        return false;
    vm->vnc_port = tx->pair.vnc;
    vm->ws_port = tx->pair.ws;
    tx->restore_ran = true;
    return run_pool_job(tx->vms, pool_job_new(JOB_RESTORE, vm, tx->owner->username,
                                              tx->password),
                        tx->vms->opts.call_timeout_s, error) &&
           svc_vms_memory_room_tx(tx->vms, conn, tx->tmpl, id, vm->host_id, error);
}

static bool
take_tx(DbConn *conn, void *data, GError **error)
{
    TakeTx *tx = data;
    g_autofree char *id = NULL;
    g_autoptr(DbVm) vm = NULL;
    DbOpSpec spec;

    g_clear_pointer(&tx->vm, db_vm_free); /* a retried transaction runs this again */
    g_clear_pointer(&tx->op, db_op_free);
    if (tx->restore_ran) {
        /* A retry would find the guest as it was before its restore, which may have run. */
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE, "the take was interrupted");
        return false;
    }
    if (tx->claimed) {
        svc_vms_release(tx->vms, tx->claimed);
        g_clear_pointer(&tx->claimed, g_free);
    }
    /* A memory_image template's guest is ready once saved: its screen was up long enough
     * for its desktop; a running one may still be booting past its first screen. */
    id = db_pools_claim(conn, tx->tmpl->name, tx->tmpl->memory_image,
                        &tx->saved, error);
    if (!id)
        return !(error && *error);
    if (tx->saved) {
        /* The reconciler must not judge the guest between its start and the commit. */
        if (!svc_vms_try_claim(tx->vms, id)) {
            g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT, "guest %s is busy", id);
            return false;
        }
        tx->claimed = g_strdup(id);
        if (!restore_tx(conn, tx, id, error))
            return false;
    }
    vm = db_vms_get(conn, id, NULL, error);
    if (!vm ||
        (!tx->saved && !run_pool_job(tx->vms, pool_job_new(JOB_HANDOVER, vm,
                                                           tx->owner->username, tx->password),
                                     tx->vms->opts.call_timeout_s, error)) ||
        !db_pools_hand_over(conn, id, tx->owner->id, tx->saved ? &tx->pair : NULL, error) ||
        !svc_vms_audit(conn, tx->req->caller->id, "vm.create", id, tx->req->remote_addr,
                       "{\"pool\": true}", error))
        return false;
    spec = svc_vms_op_spec(tx->vms, DB_OP_CREATE, tx->req->caller, tx->req->remote_addr,
                           "{\"pool\": true}");
    spec.vm_id = id;
    tx->op = db_ops_insert_done(conn, &spec, error);
    tx->vm = tx->op ? db_vms_get(conn, id, NULL, error) : NULL;
    return tx->vm != NULL;
}

/* After a restore that did not commit: the guest may run, or its image may be spent.
 * Nothing of it is trusted: it is stopped and deleted; the pool makes another. */
static void
drop_restored(SvcVms *vms, const char *id)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DbConn) db = db_pool_acquire(vms->opts.db, &error);
    g_autoptr(DbVm) vm = db ? db_vms_get(db, id, NULL, &error) : NULL;
    g_autoptr(DbUser) pool = db ? db_users_ensure(db, DB_POOL_ACCOUNT, DB_ROLE_ADMIN, &error)
                                : NULL;
    g_autoptr(virConnect) conn = NULL;
    g_autoptr(virDomain) dom = NULL;

    g_clear_pointer(&db, db_conn_release);
    conn = vm ? svc_vms_conn(vms, vm, &error) : NULL;
    dom = conn ? dom_lifecycle_lookup(conn, vm->name, NULL) : NULL;
    if (dom)
        dom_lifecycle_destroy(dom, NULL);
    svc_vms_release(vms, id);
    if (!pool || !svc_vms_delete_pool_guest(vms, pool, id, &error))
        vmb_warning("pool guest %s: deleting it after a failed restore: %s", id,
                    error ? error->message : "?");
}

/**
 * svc_vms_take:
 * @vms: the service
 * @req: the create
 * @owner: who gets the guest (checked against their limits already)
 * @tmpl: its template: one a pool may serve (svc_vms_take_possible)
 * @ret_op: (out): the create operation, succeeded
 *
 * Returns: (transfer full): the guest, running and @owner's; NULL when no pool guest could
 *   be taken (none ready, or handing one over failed: logged), for a cold create.
 */
DbVm *
svc_vms_take(SvcVms *vms, const SvcVmRequest *req, const DbUser *owner,
             const DomTemplate *tmpl, DbOp **ret_op)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *password = vmb_secret_new_password(VNC_PASSWORD_LEN, &error);
    gint64 start_us = g_get_monotonic_time();
    TakeTx tx = { .vms = vms, .req = req, .owner = owner, .tmpl = tmpl, .password = password };
    bool failed;

    failed = !password || !db_pool_transaction(vms->opts.db, take_tx, &tx, &error);
    if (failed) {
        vmb_warning("create from the %s pool: %s; booting a new guest instead", tmpl->name,
                    error ? error->message : "no password");
        g_clear_pointer(&tx.vm, db_vm_free);
        g_clear_pointer(&tx.op, db_op_free);
    }
    if (failed && tx.claimed && tx.restore_ran)
        drop_restored(vms, tx.claimed);
    else if (tx.claimed)
        svc_vms_release(vms, tx.claimed);
    g_free(tx.claimed);
    if (password)
        explicit_bzero(password, strlen(password));
    if (!tx.vm)
        return NULL;
    vmb_info("create: VM %s of the %s pool is %s's now%s", tx.vm->name, tmpl->name,
             owner->username, tx.saved ? " (restored from its memory image)" : "");
    if (vms->opts.metrics)
        vmb_metrics_observe(vms->opts.metrics, SVC_READY_METRIC,
                            (double) (g_get_monotonic_time() - start_us) / G_USEC_PER_SEC,
                            "path", tx.saved ? "restore" : "pool", NULL);
    *ret_op = tx.op;
    return tx.vm;
}

typedef struct {
    SvcVms *vms;
    const char *id;
    bool ran;     /* out: the save was tried */
} SaveTx;

static bool
save_tx(DbConn *conn, void *data, GError **error)
{
    SaveTx *tx = data;
    g_autoptr(DbVm) vm = NULL;
    g_autoptr(DbVm) stopped = NULL;
    bool member = false;

    if (tx->ran) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE, "the save was interrupted");
        return false;
    }
    if (!db_pools_lock_member(conn, tx->id, &member, error) ||
        (member && !(vm = db_vms_get(conn, tx->id, NULL, error))))
        return false;
    if (!member || vm->state != DB_VM_RUNNING || !vm->console_ready_at)
        return true; /* taken, or changed, meanwhile */
    tx->ran = true;
    if (!run_pool_job(tx->vms, pool_job_new(JOB_SAVE, vm, NULL, NULL),
                      tx->vms->opts.call_timeout_s, error))
        return false;
    stopped = db_vms_set_state(conn, tx->id, DB_VM_STOPPED,
                               "saved with its memory for the pool's takers",
                               tx->vms->opts.port_cooldown_s, error);
    return stopped && db_pools_mark_saved(conn, tx->id, error);
}

/**
 * svc_vms_save_pool_guest:
 * @vms: the service
 * @id: a running guest of a warm pool whose template has a memory image
 * @error: return location for an error
 *
 * Saves the guest with its memory (libvirt's managed save) and records it as stopped and
 * saved, its ports released, with its row locked and its claim held throughout, so that no
 * take and no reconciliation sees it half done. A guest an operation holds, or that was
 * taken meanwhile, is left alone.
 *
 * Returns: false on failure (the guest may then be stopped without a record of its image:
 *   the reconciler says it stopped, and the pool deletes it).
 */
bool
svc_vms_save_pool_guest(SvcVms *vms, const char *id, GError **error)
{
    SaveTx tx = { vms, id, false };
    bool ok;

    if (!svc_vms_try_claim(vms, id))
        return true;
    ok = db_pool_transaction(vms->opts.db, save_tx, &tx, error);
    svc_vms_release(vms, id);
    if (ok && tx.ran)
        vmb_info("warm pools: guest %s saved with its memory", id);
    return ok;
}

/**
 * svc_vms_take_possible:
 * @req: a create
 * @owner: for whom
 * @tmpl: its template
 *
 * Returns: whether a pool's guest could serve it: a template whose guests need nothing per
 *   user, no name asked for (a running domain keeps its name), no host, not the pool's
 *   own create.
 */
bool
svc_vms_take_possible(const SvcVmRequest *req, const DbUser *owner, const DomTemplate *tmpl)
{
    return !req->name && !req->iso_id && !req->host && !dom_template_needs_iso(tmpl) &&
           !tmpl->persistent &&
           strcmp(owner->username, DB_POOL_ACCOUNT) != 0;
}
