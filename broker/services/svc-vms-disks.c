// SPDX-License-Identifier: LGPL-2.1-or-later
// Users' persistent disks (the overlays of persistent overlay templates): listed with the VM
// that uses them, deleted, or reset to the template's base image while no VM of theirs runs.
// libvirt is asked on the bounded pool, within libvirt.call_timeout_s, so no request waits
// on a libvirtd that hangs.
#include "svc-vms-private.h"

#include <string.h>

#include "db-users.h"
#include "dom-disks.h"
#include "dom-storage.h"
#include "svc-audit.h"
#include "vmb-error.h"
#include "vmb-json.h"

typedef enum { JOB_LIST, JOB_DELETE, JOB_RESET } JobKind;

typedef struct {
    JobKind kind;
    DomHypervisor *hv;
    char *prefix;
    char *volume;           /* delete, reset */
    DomTemplate *tmpl;      /* reset: (not owned) kept alive by @set */
    DomTemplateSet *set;
    GPtrArray *disks;       /* out: list */
    bool ok;                /* out */
    GError *error;          /* out */
} DiskJob;

static void
disk_job_free(gpointer data)
{
    DiskJob *job = data;

    g_free(job->prefix);
    g_free(job->volume);
    g_clear_pointer(&job->set, dom_template_set_unref);
    g_clear_pointer(&job->disks, g_ptr_array_unref);
    g_clear_error(&job->error);
    g_free(job);
}

static void
disk_job_run(gpointer data)
{
    DiskJob *job = data;
    g_autoptr(virConnect) conn = dom_hypervisor_get(job->hv, &job->error);
    g_autofree char *path = NULL;
    g_autofree char *made = NULL;

    if (!conn)
        return;
    if (job->kind == JOB_LIST) {
        job->disks = dom_disks_list(conn, job->prefix, &job->error);
        job->ok = job->disks != NULL;
        return;
    }
    path = dom_storage_volume_path(conn, job->prefix, DOM_POOL_DISKS, job->volume, &job->error);
    if (!path || !dom_storage_delete_path(conn, path, &job->error))
        return;
    if (job->kind == JOB_RESET)
        made = dom_storage_create_overlay(conn, job->prefix, job->volume, job->tmpl, NULL,
                                          &job->error);
    job->ok = job->kind == JOB_DELETE || made != NULL;
}

/* Runs @job on the bounded pool; frees it. */
static bool
run_job(SvcVms *vms, DiskJob *job, GPtrArray **ret_disks, GError **error)
{
    bool ok;

    job->hv = vms->opts.hv;
    job->prefix = g_strdup(vms->name_prefix);
    if (!vmb_bounded_run(vms->opts.bounded, disk_job_run, job, disk_job_free,
                         vms->opts.call_timeout_s * 1000, NULL)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE,
                    "libvirt did not answer within %u s; try again shortly.",
                    vms->opts.call_timeout_s);
        return false;
    }
    ok = job->ok;
    if (!ok)
        g_propagate_error(error, g_steal_pointer(&job->error));
    if (ok && ret_disks)
        *ret_disks = g_steal_pointer(&job->disks);
    disk_job_free(job);
    return ok;
}

void
svc_disk_free(SvcDisk *d)
{
    if (!d)
        return;
    dom_disk_free(d->disk);
    g_free(d->id);
    g_free(d->vm_id);
    g_free(d->vm_name);
    g_free(d);
}

/* Whether @caller sees the disks of user @owner (a service account: role-user owners). */
static bool
may_see_owner(DbConn *db, const DbUser *caller, const char *owner)
{
    g_autoptr(DbUser) u = NULL;

    if (caller->role == DB_ROLE_ADMIN)
        return true;
    if (caller->role == DB_ROLE_USER)
        return strcmp(caller->username, owner) == 0;
    u = db_users_get_by_name(db, owner, NULL);
    return u && u->role == DB_ROLE_USER;
}

/* The VM of @disk's owner and template, an active one first. */
static const DbVm *
user_of(GPtrArray *vms, const DomDisk *disk)
{
    const DbVm *found = NULL;

    for (guint i = 0; i < vms->len; i++) {
        const DbVm *vm = vms->pdata[i];
        if (strcmp(vm->owner_name, disk->owner) != 0 ||
            strcmp(vm->template_name, disk->template_name) != 0)
            continue;
        if (svc_vms_vm_is_active(vm))
            return vm;
        found = found ? found : vm;
    }
    return found;
}

/**
 * svc_vms_disks:
 * @vms: the service
 * @caller: who asks: users see their own, admins every one, service accounts users'
 * @error: return location for an error
 *
 * Returns: (transfer full) (element-type SvcDisk): the persistent disks @caller sees.
 */
GPtrArray *
svc_vms_disks(SvcVms *vms, const DbUser *caller, GError **error)
{
    g_autoptr(GPtrArray) all = NULL;
    g_autoptr(GPtrArray) rows = NULL;
    g_autoptr(DbConn) db = NULL;
    GPtrArray *out;

    if (!run_job(vms, g_new0(DiskJob, 1), &all, error) ||
        !(db = db_pool_acquire(vms->opts.db, error)) || !(rows = db_vms_list(db, NULL, error)))
        return NULL;
    out = g_ptr_array_new_with_free_func((GDestroyNotify) svc_disk_free);
    for (guint i = 0; i < all->len; i++) {
        DomDisk *disk = all->pdata[i];
        const DbVm *vm = user_of(rows, disk);
        SvcDisk *d;
        if (!may_see_owner(db, caller, disk->owner))
            continue;
        d = g_new0(SvcDisk, 1);
        d->id = g_strdup_printf("%s@%s", disk->template_name, disk->owner);
        d->vm_id = vm ? g_strdup(vm->id) : NULL;
        d->vm_name = vm ? g_strdup(vm->name) : NULL;
        d->disk = g_steal_pointer(&all->pdata[i]);
        g_ptr_array_add(out, d);
    }
    return out;
}

/* The disk @id that @caller sees, with no active VM on it. */
static SvcDisk *
find_idle(SvcVms *vms, const DbUser *caller, const char *id, GError **error)
{
    g_autoptr(GPtrArray) mine = svc_vms_disks(vms, caller, error);
    g_autoptr(DbConn) db = NULL;
    g_autoptr(DbVm) vm = NULL;

    for (guint i = 0; mine && i < mine->len; i++) {
        SvcDisk *d = mine->pdata[i];
        if (strcmp(d->id, id) != 0)
            continue;
        db = d->vm_id ? db_pool_acquire(vms->opts.db, error) : NULL;
        vm = db ? db_vms_get(db, d->vm_id, NULL, NULL) : NULL;
        if (vm && svc_vms_vm_is_active(vm)) {
            g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT,
                        "VM %s is %s on this disk; stop it first.", vm->name,
                        db_vm_state_to_string(vm->state));
            return NULL;
        }
        if (d->vm_id && !db)
            return NULL;
        return g_ptr_array_steal_index(mine, i);
    }
    if (mine)
        g_set_error(error, VMB_ERROR, VMB_ERROR_NOT_FOUND, "No such disk.");
    return NULL;
}

/**
 * svc_vms_disk_change:
 * @vms: the service
 * @caller: who asks
 * @id: a disk's id ("TEMPLATE@OWNER")
 * @reset: back to the template's base image (an empty overlay), rather than deleted
 * @remote_addr: (nullable): for the audit log
 * @error: return location for an error (VMB_ERROR_NOT_FOUND, VMB_ERROR_CONFLICT while a VM
 *   runs on it or, for a reset, when its template is gone)
 *
 * Returns: true when done; audited as disk.delete or disk.reset.
 */
bool
svc_vms_disk_change(SvcVms *vms, const DbUser *caller, const char *id, bool reset,
                    const char *remote_addr, GError **error)
{
    g_autoptr(SvcDisk) d = find_idle(vms, caller, id, error);
    g_autoptr(json_object) detail = json_object_new_object();
    g_autoptr(DbConn) db = NULL;
    DiskJob *job;

    if (!d)
        return false;
    job = g_new0(DiskJob, 1);
    job->kind = reset ? JOB_RESET : JOB_DELETE;
    job->volume = g_strdup(d->disk->volume);
    job->set = svc_templates_get(vms->opts.templates);
    job->tmpl = (DomTemplate *) dom_template_set_lookup(job->set, d->disk->template_name);
    if (reset && (!job->tmpl || job->tmpl->kind != DOM_TEMPLATE_KIND_OVERLAY)) {
        disk_job_free(job);
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT,
                    "Template %s is gone: this disk can be deleted, not reset.",
                    d->disk->template_name);
        return false;
    }
    if (!run_job(vms, job, NULL, error))
        return false;
    json_object_object_add(detail, "owner", json_object_new_string(d->disk->owner));
    json_object_object_add(detail, "template", json_object_new_string(d->disk->template_name));
    db = db_pool_acquire(vms->opts.db, error);
    return db && svc_audit_write(db, caller, reset ? "disk.reset" : "disk.delete", "disk", id,
                                 remote_addr, detail, error);
}

/**
 * svc_vms_disk_quota:
 * @vms: the service
 * @conn: libvirt
 * @owner: the user who is to get a persistent disk of @tmpl
 * @tmpl: a persistent overlay template
 * @error: return location for an error (VMB_ERROR_NO_SPACE over limits.disk_gib_per_user)
 *
 * Checked on a create's worker, where libvirt may be asked: the user's persistent disks
 * with the new one (the base image's virtual size, what it may grow to) fit the quota. A
 * disk the user has already is no new one.
 *
 * Returns: true when it fits.
 */
bool
svc_vms_disk_quota(SvcVms *vms, virConnectPtr conn, const char *owner, const DomTemplate *tmpl,
                   GError **error)
{
    g_autoptr(GPtrArray) all = NULL;
    guint64 capacity = 0, total;

    if (!vms->opts.disk_gib_per_user)
        return true;
    if (!(all = dom_disks_list(conn, vms->name_prefix, error)) ||
        !dom_disks_base_capacity(conn, vms->name_prefix, tmpl->base_image, &capacity, error))
        return false;
    total = capacity;
    for (guint i = 0; i < all->len; i++) {
        const DomDisk *disk = all->pdata[i];
        if (strcmp(disk->owner, owner) != 0)
            continue;
        if (strcmp(disk->template_name, tmpl->name) == 0)
            return true;
        total += disk->capacity;
    }
    if (total <= (guint64) vms->opts.disk_gib_per_user << 30)
        return true;
    g_set_error(error, VMB_ERROR, VMB_ERROR_NO_SPACE,
                "A persistent disk of %.1f GiB would pass %s's quota of %u GiB "
                "(limits.disk_gib_per_user); delete one of their disks first.",
                (double) capacity / (1 << 30), owner, vms->opts.disk_gib_per_user);
    return false;
}
