// SPDX-License-Identifier: LGPL-2.1-or-later
// VMs: create, start, stop, reboot, delete and console tickets, over PostgreSQL (who owns
// what, which ports) and libvirt (what runs). A failed create undoes every step.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"
#include "db-users.h"
#include "db-vms.h"
#include "dom-hypervisor.h"
#include "dom-template.h"
#include "svc-accel.h"
#include "vmb-bounded.h"
#include "vmb-metrics.h"

typedef struct SvcVms SvcVms;

typedef struct {
    DbPool *db;                      /* PostgreSQL */
    DomHypervisor *hv;               /* libvirt */
    SvcAccel *accel;                 /* the domain type new guests get */
    const DomTemplateSet *templates; /* loaded at start */
    const char *host_id;             /* hosts row of this libvirt */
    const char *name_prefix;         /* libvirt.name_prefix */
    const char *console_listen;      /* where QEMU's VNC and websocket servers bind */
    unsigned port_cooldown_s;        /* released ports wait this long */
    unsigned port_quarantine_s;      /* ports held by others are skipped this long */
    unsigned stop_timeout_s;         /* ACPI grace before a stop destroys */
    VmbBounded *bounded;             /* where creates, starts, reboots, deletes run */
    unsigned call_timeout_s;         /* a create, start, reboot or delete waits this long */
    unsigned max_running_per_user;   /* for non-admin owners; 0 for no limit */
    guint64 host_memory_mib;         /* guests' memory on this host at most; 0: unlimited */
    unsigned ticket_ttl_s;           /* console ticket lifetime, <= 60 */
    VmbMetrics *metrics;             /* (nullable) spawn durations */
} SvcVmsOptions;

typedef struct {
    const DbUser *caller;      /* who asks */
    const char *owner;         /* (nullable) user name to create for: admin and service */
    const char *template_name; /* a loaded template */
    const char *iso_id;        /* (nullable) an uploaded ISO, for templates that need one */
    const char *name;          /* (nullable) short name: the domain is <prefix><owner>-<name> */
    const char *remote_addr;   /* (nullable) for the audit log */
} SvcVmRequest;

SvcVms *svc_vms_new(const SvcVmsOptions *opts);
/* Waits for background stops to finish. */
void svc_vms_free(SvcVms *vms);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SvcVms, svc_vms_free)

/* VMB_ERROR_CONFLICT at the running limit, with *ret_running (element-type DbVm) set to
 * the owner's active VMs; EXHAUSTED without ports or memory; UNPROCESSABLE for an unknown
 * template or ISO; FORBIDDEN when a user creates for someone else. */
DbVm *svc_vms_create(SvcVms *vms, const SvcVmRequest *req, GPtrArray **ret_running,
                     GError **error);
/* Users see their own VMs; admins and service accounts every VM. A VM that is not
 * visible is VMB_ERROR_NOT_FOUND, never FORBIDDEN. */
DbVm *svc_vms_get(SvcVms *vms, const DbUser *caller, const char *id, GError **error);
GPtrArray *svc_vms_list(SvcVms *vms, const DbUser *caller, const char *owner,
                        GError **error);
char *svc_vms_list_key(const DbUser *caller, const char *owner);
/* Asks the guest to power off and returns at once (state `stopping`); a background job
 * destroys it after stop_timeout_s (a paused guest at once) and releases its ports. */
DbVm *svc_vms_stop(SvcVms *vms, const DbUser *caller, const char *id, const char *reason,
                   const char *remote_addr, GError **error);
/* The system stops a VM (the reaper): audited as @action with no actor; with
 * @drop_ephemeral its ephemeral disks are deleted once it is off. */
DbVm *svc_vms_stop_system(SvcVms *vms, const char *id, const char *action, const char *reason,
                          bool drop_ephemeral, GError **error);
/* Starts a stopped VM; a paused one is powered off first (a restart). */
DbVm *svc_vms_start(SvcVms *vms, const DbUser *caller, const char *id,
                    const char *remote_addr, GError **error);
/* Reboots a running VM (ACPI, else a reset); restarts a paused one as svc_vms_start does. */
DbVm *svc_vms_reboot(SvcVms *vms, const DbUser *caller, const char *id,
                     const char *remote_addr, GError **error);
bool svc_vms_delete(SvcVms *vms, const DbUser *caller, const char *id,
                    const char *remote_addr, GError **error);

/* Called from any thread when a VM can no longer serve a console (stopped, deleted): the
 * console service closes its connections then. */
typedef void (*SvcVmsConsoleEndFunc)(const char *vm_id, const char *reason, gpointer data);
void svc_vms_on_console_end(SvcVms *vms, SvcVmsConsoleEndFunc fn, gpointer data);
void svc_vms_end_consoles(SvcVms *vms, const char *vm_id, const char *reason);

/* --- for the reconciler (svc-sync) --- */
/* Claims a VM unless an operation works on it; release with svc_vms_release. */
bool svc_vms_try_claim(SvcVms *vms, const char *id);
void svc_vms_release(SvcVms *vms, const char *id);
/* Deletes the ephemeral volumes of @vm, which is off; missing ones are fine. */
void svc_vms_drop_ephemeral_disks(SvcVms *vms, virConnectPtr conn, const DbVm *vm);

/* A one-time console ticket for @vm, usable by @user_id for @purpose ("page" or "ws"). */
char *svc_vms_mint_ticket(SvcVms *vms, const DbVm *vm, const char *purpose,
                          const char *user_id, GError **error);
/* The running domain's VNC password, for the authenticated console page. */
char *svc_vms_vnc_password(SvcVms *vms, const DbVm *vm, GError **error);
