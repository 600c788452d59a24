// SPDX-License-Identifier: LGPL-2.1-or-later
// The VM operations a request asks for, run on the bounded libvirt pool: the request waits
// at most call_timeout_s, and work under way finishes or is undone in the background.
#include "svc-vms-private.h"

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
        job->vm = svc_vms_create_now(job->vms, &req, &job->running, &job->error);
        break;
    case JOB_START:
        job->vm = svc_vms_start_now(job->vms, job->caller, job->id, job->remote_addr, &job->error);
        break;
    case JOB_REBOOT:
        job->vm = svc_vms_reboot_now(job->vms, job->caller, job->id, job->remote_addr, &job->error);
        break;
    case JOB_DELETE:
        job->ok = svc_vms_delete_now(job->vms, job->caller, job->id, job->remote_addr, &job->error);
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

