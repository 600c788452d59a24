// SPDX-License-Identifier: LGPL-2.1-or-later
// Inside the VM service: what its files (svc-vms.c: the object, claims, reads, console;
// svc-vms-create.c; svc-vms-power.c: stop, start, reboot, delete; svc-vms-ops.c: queueing
// and the operation runners) share. Not for use outside them.
#pragma once

#include "db-isos.h"
#include "dom-storage.h"
#include "svc-ready.h"
#include "svc-vms.h"

#define SPAWN_METRIC "vmbroker_vm_spawn_seconds"
/* QEMU uses at most 8 characters of a VNC password. */
#define VNC_PASSWORD_LEN 8

/* Operations (and pool takes and saves) that talk to one libvirtd at once. libvirtd serves at most 5 requests of a
 * client at a time (max_client_requests) and stops reading the connection beyond that, so
 * its keepalive drops a connection whose 5 requests all take long (a burst of creates under
 * TCG did); 4 leave room for the requests' own short calls and the keepalive. */
#define HV_OPS_MAX 4

struct SvcVms {
    SvcVmsOptions opts;
    char *host_id;
    char *name_prefix;
    char *guest_network;
    char *guest_subnet;
    GMutex claim_lock;
    GCond claim_freed;
    GHashTable *claimed;   /* ids of VMs an operation is working on */
    unsigned hv_calls;     /* operations talking to libvirt now, at most HV_OPS_MAX */
    GCond hv_call_freed;
    SvcVmsConsoleEndFunc console_end; /* (nullable) under claim_lock */
    gpointer console_end_data;
    GMutex hosts_lock;
    GHashTable *hosts;     /* host id -> VmsHost: the hosts this broker reaches */
};

typedef struct VmsHost VmsHost;

typedef struct {
    char *iso_path;
    char *disk_path;
    char *backing_path;
    char *domain_type;
    char *password;
    char *created;
    bool disk_made;     /* this start created the disk (undo deletes it) */
} StartPlan;

/* A state change, optionally with the operation that asks for it (one transaction). */
typedef struct {
    const char *id;
    DbVmState to;
    const char *reason;
    unsigned cooldown_s;       /* filled in by svc_vms_state_tx */
    const char *actor_id;
    const char *action;        /* (nullable) audited with the transition */
    const char *remote_addr;
    const DbOpSpec *op_spec;   /* (nullable) queued in the same transaction */
    DbVm *vm;                  /* out */
    DbOp *op;                  /* out */
    DbOp *active;              /* out: on a conflict, the VM's operation */
} StateTx;

typedef struct {
    const char *id;
    unsigned cooldown_s;
    const char *actor_id;
    const char *remote_addr;
} DeleteTx;

void svc_vms_start_plan_clear(StartPlan *p);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(StartPlan, svc_vms_start_plan_clear)

/* svc-vms.c */
bool svc_vms_claim_wait(SvcVms *vms, const char *id, GError **error);
bool svc_vms_sees_all(const DbUser *caller);
bool svc_vms_may_see(const DbUser *caller, const DbVm *vm);
bool svc_vms_short_name_valid(const char *name);
bool svc_vms_vm_is_active(const DbVm *vm);
bool svc_vms_audit(DbConn *conn, const char *actor_id, const char *action, const char *vm_id,
                   const char *remote_addr, const char *detail_json, GError **error);

/* svc-vms-ops.c */
void svc_vms_hv_enter(SvcVms *vms);
void svc_vms_hv_leave(SvcVms *vms);
DbOpSpec svc_vms_op_spec(SvcVms *vms, DbOpKind kind, const DbUser *caller,
                         const char *remote_addr, const char *params);
void svc_vms_step(SvcVms *vms, const char *step, unsigned progress);
void svc_vms_set_runners(SvcVms *vms);
DbOp *svc_vms_queue_spec(SvcVms *vms, const DbOpSpec *spec, DbVm **vm, DbVm **ret_vm,
                         DbOp **ret_active, GError **error);

/* svc-vms-snapshots.c */
bool svc_vms_run_snapshot(SvcVms *vms, const DbOp *op, GError **error);

/* svc-vms-disks.c */
bool svc_vms_disk_quota(SvcVms *vms, virConnectPtr conn, const char *owner,
                        const DomTemplate *tmpl, GError **error);

/* svc-vms-create.c */
bool svc_vms_state_tx(SvcVms *vms, StateTx *tx, GError **error);
bool svc_vms_run_create(SvcVms *vms, const DbOp *op, GError **error);
DbVm *svc_vms_set_state(SvcVms *vms, const char *id, DbVmState to, const char *reason,
                        const char *actor_id, const char *action, const char *remote_addr,
                        GError **error);
bool svc_vms_plan_start(SvcVms *vms, virConnectPtr conn, const DbVm *vm,
                        const DomTemplate *tmpl, const DbIso *iso, StartPlan *plan,
                        GError **error);
bool svc_vms_define_and_start(SvcVms *vms, virConnectPtr conn, const DbVm *vm,
                              const DomTemplate *tmpl, StartPlan *plan, bool *ret_defined,
                              GError **error);
bool svc_vms_delete_tx(DbConn *conn, void *data, GError **error);

/* svc-vms-hosts.c */
void svc_vms_host_free(VmsHost *h);
VmsHost *svc_vms_host(SvcVms *vms, const char *id);
DomHypervisor *svc_vms_hv(SvcVms *vms, const char *host_id, GError **error);
virConnectPtr svc_vms_conn(SvcVms *vms, const DbVm *vm, GError **error);
SvcReady *svc_vms_host_ready(SvcVms *vms, const char *host_id);
bool svc_vms_reconcile(SvcVms *vms, const DbVm *vm);
DbPortLeaseOptions svc_vms_lease_options(SvcVms *vms, const char *host_id);
DbVm *svc_vms_place_tx(SvcVms *vms, DbConn *conn, DbVmSpec *spec, const DomTemplate *tmpl,
                       const char *pin, GError **error);
DbVm *svc_vms_place_start_tx(SvcVms *vms, DbConn *conn, const DbVm *vm,
                             const DomTemplate *tmpl, GError **error);
bool svc_vms_memory_room_tx(SvcVms *vms, DbConn *conn, const DomTemplate *tmpl,
                            const char *vm_id, const char *host_id, GError **error);
bool svc_vms_host_volume(SvcVms *vms, virConnectPtr conn, const DbVm *vm, DomPoolKind kind,
                         const char *name, const char *sha256, GError **error);

/* svc-vms-take.c */
bool svc_vms_take_possible(const SvcVmRequest *req, const DbUser *owner,
                           const DomTemplate *tmpl);
DbVm *svc_vms_take(SvcVms *vms, const SvcVmRequest *req, const DbUser *owner,
                   const DomTemplate *tmpl, DbOp **ret_op);

/* svc-vms-power.c */
bool svc_vms_run_stop(SvcVms *vms, const DbOp *op, GError **error);
DbVm *svc_vms_start_now(SvcVms *vms, const DbUser *caller, const char *id,
                        const char *remote_addr, GError **error);
DbVm *svc_vms_reboot_now(SvcVms *vms, const DbUser *caller, const char *id,
                         const char *remote_addr, GError **error);
bool svc_vms_delete_now(SvcVms *vms, const DbUser *caller, const char *id,
                        const char *remote_addr, GError **error);
