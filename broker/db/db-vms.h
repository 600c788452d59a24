// SPDX-License-Identifier: LGPL-2.1-or-later
// Queries on the vms table: create (leasing ports), look up, list, state transitions along
// the state machine, delete (releasing ports).
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"
#include "db-ports.h"

typedef enum {
    DB_VM_CREATING = 0,  /* row made, ports leased, domain being defined or started */
    DB_VM_RUNNING,       /* libvirt says it runs */
    DB_VM_PAUSED,        /* libvirt says its CPUs are paused (state_reason says why); it
                          * keeps its ports, memory and QEMU process until stopped */
    DB_VM_STOPPING,      /* shutdown asked for */
    DB_VM_STOPPED,       /* not running, ports released */
    DB_VM_ERROR,         /* something failed; state_reason says what */

    DB_VM_STATE_LAST
} DbVmState;

const char *db_vm_state_to_string(DbVmState state);
/* Whether a VM in @state counts toward limits.max_running_per_user: creating, running and
 * paused (its guest is, or is about to be, there). The one definition of the rule: the SQL
 * guard (the vms_check_running_limit trigger, migration 0012) counts the same states, and
 * test-db-vms holds the two together. stopping does not count: its owner asked it to end,
 * and counting it would refuse "stop one, start another" for up to stop_timeout_s. */
bool db_vm_state_counts_as_running(DbVmState state);
/* False for an unknown name; @ret_state untouched then. */
bool db_vm_state_from_string(const char *name, DbVmState *ret_state);

typedef struct {
    char *id;                 /* uuid */
    char *name;               /* libvirt domain name, unique */
    char *owner_id;           /* users.id */
    char *owner_name;         /* users.username */
    bool owner_is_user;       /* users.role is 'user': a service account may see the VM */
    char *template_name;      /* templates.name */
    int template_version;     /* the template's version when the VM was made */
    char *iso_id;             /* isos.id, NULL when none */
    char *host_id;            /* hosts.id */
    char *host_name;          /* hosts.name */
    bool host_unreachable;    /* its host's libvirt was lost and is not back (hosts.reachable) */
    char *domain_uuid;        /* libvirt's uuid, NULL until defined */
    char *accelerator;        /* domain type it was last defined with, NULL until then */
    DbVmState state;          /* see DbVmState */
    char *state_reason;       /* why the last transition happened, NULL if not said */
    unsigned vnc_port;        /* 0 when none leased */
    unsigned ws_port;         /* 0 when none leased */
    char **disk_volumes;      /* ephemeral volumes, NULL-terminated, never NULL */
    unsigned console_connections;        /* open console connections */
    GDateTime *console_last_activity_at; /* NULL when never */
    char *console_closed_reason;         /* why vmbroker last closed its consoles, or NULL */
    GDateTime *console_closed_at;        /* and when; NULL when never */
    GDateTime *created_at;
    GDateTime *updated_at;
    GDateTime *started_at;    /* NULL when never started */
    GDateTime *stopped_at;    /* NULL when never stopped */
    GDateTime *console_ready_at; /* the screen first showed something since the start */
} DbVm;

void db_vm_free(DbVm *vm);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DbVm, db_vm_free)

typedef struct {
    const char *id;                    /* nullable: the VM's uuid, random when NULL */
    const char *name;                  /* libvirt domain name */
    const char *owner_id;              /* users.id */
    const char *template_name;         /* a loaded template; its current version is used */
    const char *iso_id;                /* nullable */
    const char *host_id;               /* where it runs; its ports are leased there */
    const char *const *disk_volumes;   /* nullable, NULL-terminated */
} DbVmSpec;

/* --- writes (inside a transaction: see db_pool_transaction) --- */
/* Inserts the VM in `creating` with a leased port pair. Errors: VMB_ERROR_EXHAUSTED (no
 * free pair), VMB_ERROR_CONFLICT (name taken, or the running limit of broker_limits),
 * VMB_ERROR_UNPROCESSABLE (unknown template, ISO, owner or host). */
DbVm *db_vms_insert(DbConn *conn, const DbVmSpec *spec, const DbPortLeaseOptions *lease,
                    GError **error);
/* Moves the VM to @to when its state allows (see db_vms_set_state in db-vms.c); `stopped`
 * releases its ports with @cooldown_s. VMB_ERROR_CONFLICT when the state forbids it,
 * VMB_ERROR_NOT_FOUND when there is no such VM. */
DbVm *db_vms_set_state(DbConn *conn, const char *id, DbVmState to, const char *reason,
                       unsigned cooldown_s, GError **error);
/* Starts a stopped VM again: `stopped` (or a portless `error`) -> `creating`, leasing a
 * fresh port pair. */
DbVm *db_vms_start(DbConn *conn, const char *id, const DbPortLeaseOptions *lease,
                   GError **error);
/* Adds @delta (+1 on connect, -1 on disconnect) to the VM's open console connections and
 * marks activity now. A VM that is gone is not an error. */
bool db_vms_console_adjust(DbConn *conn, const char *id, int delta, GError **error);
/* Records the time of the last byte a console client sent, if later than the stored one. */
bool db_vms_console_touch(DbConn *conn, const char *id, GDateTime *at, GError **error);
/* Records when the screen first showed something, once per start (@started_at's). */
bool db_vms_console_ready(DbConn *conn, const char *id, GDateTime *started_at, GDateTime *at,
                          bool *ret_recorded, GError **error);
/* Records that vmbroker closed the VM's console connections itself, and why. */
bool db_vms_console_closed(DbConn *conn, const char *id, const char *reason, GError **error);
/* Records libvirt's uuid once the domain is defined. */
bool db_vms_set_domain(DbConn *conn, const char *id, const char *domain_uuid,
                       const char *accelerator, GError **error);
/* Deletes the VM (releasing its ports with @cooldown_s); @owner_id non-NULL restricts to
 * that owner's VMs. VMB_ERROR_NOT_FOUND when absent or not visible. */
bool db_vms_delete(DbConn *conn, const char *id, const char *owner_id, unsigned cooldown_s,
                   GError **error);

/* Records a domain found in libvirt without a row (start-up reconciliation): state `error`
 * with @reason, no ports; @spec->id is required, its disk_volumes are the domain's
 * ephemeral volumes. VMB_ERROR_UNPROCESSABLE for an unknown template, owner or host;
 * VMB_ERROR_CONFLICT when the id or name is taken. */
DbVm *db_vms_adopt(DbConn *conn, const DbVmSpec *spec, const char *domain_uuid,
                   const char *reason, GError **error);

/* --- reads --- */
/* @owner_id non-NULL: only that owner's VM is visible (NULL: an admin's view). */
DbVm *db_vms_get(DbConn *conn, const char *id, const char *owner_id, GError **error);
/* The VM whose libvirt domain is @name (any owner). VMB_ERROR_NOT_FOUND when none. */
DbVm *db_vms_get_by_name(DbConn *conn, const char *name, GError **error);
/* (element-type DbVm): every VM, or @owner_id's, oldest first. */
GPtrArray *db_vms_list(DbConn *conn, const char *owner_id, GError **error);
/* Running VMs of @host_id started within @within_s, console not ready; and when each was
 * asked for (element-type GDateTime). */
GPtrArray *db_vms_list_unready(DbConn *conn, const char *host_id, unsigned within_s,
                               GPtrArray **ret_requested, GError **error);
