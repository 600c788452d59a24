// SPDX-License-Identifier: LGPL-2.1-or-later
// A create that takes a warm pool's guest: one that is running with its screen up is handed
// to the new owner in one transaction, with the row locked: the live domain's metadata and
// title name them and its VNC password is replaced (libvirt, bounded), then the row, its
// leases and a finished create operation become theirs. Anything that fails leaves the guest
// in the pool and the create goes the cold way.
#include "svc-vms-private.h"

#include <string.h>

#include "db-ops.h"
#include "db-pools.h"
#include "dom-handover.h"
#include "dom-lifecycle.h"
#include "svc-ready.h"
#include "vmb-log.h"
#include "vmb-secret.h"

typedef struct {
    DomHypervisor *hv;
    char *name;
    char *owner;
    char *template_name;
    char *password;
    bool ok;        /* out */
    GError *error;  /* out */
} HandoverJob;

static void
handover_job_free(gpointer data)
{
    HandoverJob *job = data;

    g_free(job->name);
    g_free(job->owner);
    g_free(job->template_name);
    g_free(job->password);
    g_clear_error(&job->error);
    g_free(job);
}

static void
handover_job_run(gpointer data)
{
    HandoverJob *job = data;
    g_autoptr(virConnect) conn = dom_hypervisor_get(job->hv, &job->error);
    g_autoptr(virDomain) dom = conn ? dom_lifecycle_lookup(conn, job->name, &job->error) : NULL;

    job->ok = dom && dom_handover(dom, job->owner, job->template_name, job->password,
                                  &job->error);
}

/* The guest's live domain made @owner's, within call_timeout_s. */
static bool
hand_over_domain(SvcVms *vms, const DbVm *vm, const char *owner, const char *password,
                 GError **error)
{
    HandoverJob *job = g_new0(HandoverJob, 1);
    bool ok;

    job->hv = vms->opts.hv;
    job->name = g_strdup(vm->name);
    job->owner = g_strdup(owner);
    job->template_name = g_strdup(vm->template_name);
    job->password = g_strdup(password);
    if (!vmb_bounded_run(vms->opts.bounded, handover_job_run, job, handover_job_free,
                         vms->opts.call_timeout_s * 1000, NULL)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE,
                    "libvirt did not hand over %s within %u s", vm->name,
                    vms->opts.call_timeout_s);
        return false;
    }
    ok = job->ok;
    if (!ok)
        g_propagate_error(error, g_steal_pointer(&job->error));
    handover_job_free(job);
    return ok;
}

typedef struct {
    SvcVms *vms;
    const SvcVmRequest *req;
    const DbUser *owner;
    const char *template_name;
    const char *password;
    DbVm *vm;      /* out: NULL when the pool had no guest ready */
    DbOp *op;      /* out */
} TakeTx;

static bool
take_tx(DbConn *conn, void *data, GError **error)
{
    TakeTx *tx = data;
    g_autofree char *id = NULL;
    g_autoptr(DbVm) vm = NULL;
    DbOpSpec spec;

    g_clear_pointer(&tx->vm, db_vm_free); /* a retried transaction runs this again */
    g_clear_pointer(&tx->op, db_op_free);
    id = db_pools_claim(conn, tx->template_name, tx->vms->host_id, error);
    if (!id)
        return !(error && *error);
    vm = db_vms_get(conn, id, NULL, error);
    if (!vm || !hand_over_domain(tx->vms, vm, tx->owner->username, tx->password, error) ||
        !db_pools_hand_over(conn, id, tx->owner->id, error) ||
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
    TakeTx tx = { vms, req, owner, tmpl->name, password, NULL, NULL };

    if (!password || !db_pool_transaction(vms->opts.db, take_tx, &tx, &error)) {
        vmb_warning("create from the %s pool: %s; booting a new guest instead", tmpl->name,
                    error ? error->message : "no password");
        g_clear_pointer(&tx.vm, db_vm_free);
        g_clear_pointer(&tx.op, db_op_free);
    }
    if (password)
        explicit_bzero(password, strlen(password));
    if (!tx.vm)
        return NULL;
    vmb_info("create: VM %s of the %s pool is %s's now", tx.vm->name, tmpl->name,
             owner->username);
    if (vms->opts.metrics)
        vmb_metrics_observe(vms->opts.metrics, SVC_READY_METRIC,
                            (double) (g_get_monotonic_time() - start_us) / G_USEC_PER_SEC,
                            "path", "pool", NULL);
    *ret_op = tx.op;
    return tx.vm;
}

/**
 * svc_vms_take_possible:
 * @req: a create
 * @owner: for whom
 * @tmpl: its template
 *
 * Returns: whether a pool's guest could serve it: a template whose guests need nothing per
 *   user, no name asked for (a running domain keeps its name), not the pool's own create.
 */
bool
svc_vms_take_possible(const SvcVmRequest *req, const DbUser *owner, const DomTemplate *tmpl)
{
    return !req->name && !req->iso_id && !dom_template_needs_iso(tmpl) && !tmpl->persistent &&
           strcmp(owner->username, DB_POOL_ACCOUNT) != 0;
}
