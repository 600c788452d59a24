// SPDX-License-Identifier: LGPL-2.1-or-later
// VMs: create, start, stop, reboot, delete and console tickets, over PostgreSQL (who owns
// what, which ports) and libvirt (what runs). A failed create undoes every step.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-cache.h"
#include "db-pool.h"
#include "db-users.h"
#include "db-vms.h"
#include "dom-disks.h"
#include "dom-hypervisor.h"
#include "dom-template.h"
#include "svc-accel.h"
#include "svc-ops.h"
#include "svc-templates.h"
#include "vmb-bounded.h"
#include "vmb-metrics.h"

typedef struct SvcVms SvcVms;

typedef struct {
    DbPool *db;                      /* PostgreSQL */
    DomHypervisor *hv;               /* libvirt */
    SvcAccel *accel;                 /* the domain type new guests get */
    SvcTemplates *templates;         /* in use now (a reload replaces them) */
    const char *host_id;             /* hosts row of this libvirt */
    const char *name_prefix;         /* libvirt.name_prefix */
    const char *console_listen;      /* where QEMU's VNC and websocket servers bind */
    const char *guest_network;       /* vmbroker's guest network (templates' "isolated") */
    const char *guest_subnet;        /* its IPv4 subnet, for defining it where missing */
    unsigned port_cooldown_s;        /* released ports wait this long */
    unsigned port_quarantine_s;      /* ports held by others are skipped this long */
    unsigned stop_timeout_s;         /* ACPI grace before a stop destroys */
    SvcOps *ops;                     /* runs creates, starts, stops, reboots, deletes */
    VmbBounded *bounded;             /* where a console page's VNC password is read */
    unsigned call_timeout_s;         /* which waits this long at most */
    unsigned max_running_per_user;   /* for non-admin owners; 0 for no limit */
    unsigned snapshots_per_vm;       /* snapshots one VM may hold */
    unsigned snapshots_per_user;     /* snapshots a role-user owner's VMs may hold together */
    unsigned snapshot_disk_gib;      /* a VM's disks with their snapshots, at most */
    unsigned snapshot_gib_per_user;  /* a role-user's disks that hold snapshots, together */
    unsigned disk_gib_per_user;      /* a user's persistent disks together; 0: no quota */
    VmbMetrics *metrics;             /* (nullable) spawn durations */
    DbCache *cache;                  /* (nullable) where rendered VM lists are kept */
} SvcVmsOptions;

/* Turns a list of VMs (element-type DbVm) into the bytes a client gets. */
typedef GBytes *(*SvcVmsRenderFunc)(GPtrArray *list, void *data);

typedef struct {
    const DbUser *caller;      /* who asks */
    const char *owner;         /* (nullable) user name to create for: admin and service */
    const char *template_name; /* a loaded template */
    const char *iso_id;        /* (nullable) an uploaded ISO, for templates that need one */
    const char *name;          /* (nullable) short name: the domain is <prefix><owner>-<name> */
    const char *host;          /* (nullable) the host it must go to (admins only) */
    const char *remote_addr;   /* (nullable) for the audit log */
} SvcVmRequest;

SvcVms *svc_vms_new(const SvcVmsOptions *opts);

/* A host VMs may be placed on, as this broker reaches it. The configured one (opts' hv,
 * host_id and console_listen) is added by svc_vms_new. */
typedef struct {
    const char *id;               /* its hosts row */
    const char *name;
    const char *console_address;  /* where its QEMUs listen, and the console relay dials */
    DomHypervisor *hv;            /* its libvirt; outlives the service */
    bool configured;              /* the config file's host: ports are probed with a bind()
                                   * there, and its storage pools hold ISOs, images, disks */
} SvcVmsHost;
bool svc_vms_add_host(SvcVms *vms, const SvcVmsHost *host);
/* Where @vm's QEMU listens (its host's console address); NULL for a host not reached. */
char *svc_vms_console_address(SvcVms *vms, const DbVm *vm);
/* Waits for background stops to finish. */
void svc_vms_free(SvcVms *vms);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SvcVms, svc_vms_free)

/* Checks, then queues the create with the row (`creating`) and its leases in one
 * transaction; *ret_op is the operation to wait for. VMB_ERROR_CONFLICT at the running limit,
 * with *ret_running (element-type DbVm) set to the owner's active VMs; EXHAUSTED without
 * ports or memory; UNPROCESSABLE for an unknown template or ISO; FORBIDDEN when a user
 * creates for someone else; TOO_MANY at the per-user operation cap. */
DbVm *svc_vms_create(SvcVms *vms, const SvcVmRequest *req, GPtrArray **ret_running,
                     DbOp **ret_op, GError **error);
/* Users see their own VMs; admins and service accounts every VM. A VM that is not
 * visible is VMB_ERROR_NOT_FOUND, never FORBIDDEN. */
DbVm *svc_vms_get(SvcVms *vms, const DbUser *caller, const char *id, GError **error);
GPtrArray *svc_vms_list(SvcVms *vms, const DbUser *caller, const char *owner,
                        GError **error);
char *svc_vms_list_key(const DbUser *caller, const char *owner);
/* svc_vms_list() rendered by @render, from the read cache when it holds the list under
 * svc_vms_list_key(), else read and stored there. */
GBytes *svc_vms_list_rendered(SvcVms *vms, const DbUser *caller, const char *owner,
                              SvcVmsRenderFunc render, void *data, GError **error);
/* Queues a stop: the row turns `stopping` with the operation, at once; a worker asks the
 * guest to power off and destroys it after stop_timeout_s (a paused guest at once).
 * VMB_ERROR_CONFLICT (with *ret_active) while another operation works on the VM. */
DbVm *svc_vms_stop(SvcVms *vms, const DbUser *caller, const char *id, const char *reason,
                   const char *remote_addr, DbOp **ret_op, DbOp **ret_active, GError **error);
/* The system stops a VM (the reaper): audited as @action with no actor; with
 * @drop_ephemeral its ephemeral disks are deleted once it is off. */
DbVm *svc_vms_stop_system(SvcVms *vms, const char *id, const char *action, const char *reason,
                          bool drop_ephemeral, GError **error);
/* Queues a start (a paused VM is powered off first: a restart), a reboot (ACPI, else a
 * reset) or a delete. */
DbOp *svc_vms_queue(SvcVms *vms, const DbUser *caller, const char *id, DbOpKind kind,
                    const char *remote_addr, DbVm **ret_vm, DbOp **ret_active, GError **error);
/* Operations visible to @caller: those of VMs it sees and those it asked for. */
bool svc_vms_delete_pool_guest(SvcVms *vms, const DbUser *pool, const char *id,
                               GError **error);
/* Saves a warm pool's running guest with its memory, for a take to restore. */
bool svc_vms_save_pool_guest(SvcVms *vms, const char *id, GError **error);
DbOp *svc_vms_operation(SvcVms *vms, const DbUser *caller, const char *op_id, GError **error);
GPtrArray *svc_vms_operations(SvcVms *vms, const DbUser *caller, const char *vm_id,
                              GError **error);
typedef enum {
    SVC_SNAPSHOT_CREATE,
    SVC_SNAPSHOT_REVERT,
    SVC_SNAPSHOT_DELETE,
} SvcSnapshotAction;

/* Queues a snapshot's create (of a running VM with a disk), revert (of a running VM) or
 * delete, as an operation of kind snapshot; the worker checks the limits and asks libvirt. */
DbOp *svc_vms_snapshot_queue(SvcVms *vms, const DbUser *caller, const char *vm_id,
                             SvcSnapshotAction action, const char *name,
                             const char *remote_addr, DbVm **ret_vm, DbOp **ret_active,
                             GError **error);
/* The snapshots of a VM @caller sees (element-type DomSnapshot), newest first; a VM without
 * a domain has none. */
GPtrArray *svc_vms_snapshots(SvcVms *vms, const DbUser *caller, const char *vm_id,
                             GError **error);
/* A user's persistent disk, as a listing shows it. */
typedef struct {
    char *id;         /* "TEMPLATE@OWNER" */
    DomDisk *disk;
    char *vm_id;      /* (nullable) the VM of that owner and template, an active one first */
    char *vm_name;    /* (nullable) its name */
} SvcDisk;

void svc_disk_free(SvcDisk *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SvcDisk, svc_disk_free)

/* The persistent disks @caller sees (element-type SvcDisk). */
GPtrArray *svc_vms_disks(SvcVms *vms, const DbUser *caller, GError **error);
/* Deletes disk @id, or resets it to its template's base, while no VM runs on it. */
bool svc_vms_disk_change(SvcVms *vms, const DbUser *caller, const char *id, bool reset,
                         const char *remote_addr, GError **error);

/* The console connections of a VM @caller sees (element-type DbConsoleConn). */
GPtrArray *svc_vms_connections(SvcVms *vms, const DbUser *caller, const char *vm_id,
                               GError **error);

/* Called from any thread when a VM can no longer serve a console (stopped, deleted): the
 * console service closes its connections then. */
typedef void (*SvcVmsConsoleEndFunc)(const char *vm_id, const char *reason, gpointer data);
void svc_vms_on_console_end(SvcVms *vms, SvcVmsConsoleEndFunc fn, gpointer data);
void svc_vms_end_consoles(SvcVms *vms, const char *vm_id, const char *reason);

/* --- for the reconciler (svc-sync) --- */
/* Claims a VM unless an operation works on it or waits for it; release with
 * svc_vms_release. */
bool svc_vms_try_claim(SvcVms *vms, const char *id);
void svc_vms_release(SvcVms *vms, const char *id);
/* Brings VM @vm_id's row in line with libvirt, under its claim. */
typedef void (*SvcVmsReconcileFunc)(const char *vm_id, gpointer data);
void svc_vms_set_reconciler(SvcVms *vms, const char *host_id, SvcVmsReconcileFunc fn,
                            gpointer data);
/* After a host's first reconciliation: console-ready watches for starts a stopped broker
 * left there. */
void svc_vms_watch_unready(SvcVms *vms, const char *host_id);
/* Deletes the ephemeral volumes of @vm, which is off; missing ones are fine. */
void svc_vms_drop_ephemeral_disks(SvcVms *vms, virConnectPtr conn, const DbVm *vm);

/* The running domain's VNC password, for the authenticated console page. */
char *svc_vms_vnc_password(SvcVms *vms, const DbVm *vm, GError **error);

/* Why a VM of @tmpl cannot be made now (@ret_reason, for users; NULL when it can) and what
 * an admin does about it (@ret_hint): a missing base image, fixed ISO or network. Asks
 * libvirt directly; false when it could not. */
bool svc_vms_template_need_now(SvcVms *vms, const DomTemplate *tmpl, char **ret_reason,
                               char **ret_hint, GError **error);
/* The same for every loaded template, within libvirt.call_timeout_s: (element-type
 * SvcTemplateNeed), in the template set's order. */
typedef struct {
    const DomTemplate *tmpl; /* borrowed from set */
    DomTemplateSet *set;     /* a reference that keeps tmpl */
    char *reason;            /* NULL: usable */
    char *hint;              /* for admins */
} SvcTemplateNeed;
GPtrArray *svc_vms_template_needs(SvcVms *vms, GError **error);
/* The same for one template (svc_vms_template_need_now on the bounded pool). */
bool svc_vms_template_need(SvcVms *vms, const DomTemplate *tmpl, char **ret_reason,
                           char **ret_hint, GError **error);
/* The memory (MiB) of the guests among @vms (element-type DbVm) that may hold some on the
 * host, but @except_id's: the host budget's count, for creates and /metrics alike. */
guint64 svc_vms_memory_in_use_mib(const DomTemplateSet *set, GPtrArray *vms,
                                  const char *except_id);
/* Who stopped @vm, in words for the VM's state_reason. */
char *svc_vms_stop_words(const DbUser *caller, const DbVm *vm);
