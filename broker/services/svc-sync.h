// SPDX-License-Identifier: LGPL-2.1-or-later
// Keeps PostgreSQL in line with what libvirt runs: lifecycle events (a guest that powers
// off, crashes, or is destroyed or undefined by hand), a periodic full sync, reconnects to
// a lost libvirtd with backoff (and a full sync after each), and the start-up
// reconciliation (stale `creating` rows rolled back, rows whose domain is gone stopped,
// domains without a row adopted or destroyed).
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"
#include "dom-hypervisor.h"
#include "svc-accel.h"
#include "svc-vms.h"
#include "vmb-metrics.h"

typedef struct SvcSync SvcSync;

typedef struct {
    DbPool *db;                     /* PostgreSQL */
    DomHypervisor *hv;              /* libvirt; watched by svc_sync_new */
    SvcVms *vms;                    /* claims, ephemeral disks */
    SvcAccel *accel;                /* (nullable) probed again after every reconnect */
    const char *host_id;            /* hosts row of this libvirt: only its VMs are ours */
    const char *host_name;          /* its name, for the log and /metrics */
    const char *owner;              /* (nullable) this broker's name (operations.instance):
                                     * events and syncs only while it holds the host's lease
                                     * (svc-sync-lease.h); NULL: always */
    const char *name_prefix;        /* libvirt.name_prefix: only these domains are ours */
    bool events;                    /* follow lifecycle events (false: the periodic sync only) */
    unsigned interval_s;            /* full sync this often */
    unsigned keepalive_interval_s;  /* 0: no keepalive */
    unsigned keepalive_count;       /* unanswered probes before the connection is lost */
    bool destroy_orphans;           /* domains without a row: destroy instead of adopting */
    unsigned port_cooldown_s;       /* for the ports a sync releases */
    VmbMetrics *metrics;            /* (nullable) events, syncs, event-to-database delay */
} SvcSyncOptions;

/* Watches the hypervisor (event loop, keepalive, callbacks); no thread of its own yet. */
SvcSync *svc_sync_new(const SvcSyncOptions *opts, GError **error);
/* One full pass: every VM of ours against its domain, every domain of ours against its
 * row. VMB_ERROR_UNAVAILABLE when libvirt or PostgreSQL is down. */
bool svc_sync_reconcile(SvcSync *sync, GError **error);
/* Starts the thread that syncs every interval and reconnects after a lost connection. */
void svc_sync_start(SvcSync *sync);
/* Stops the thread and the event worker; the guests are left alone. */
void svc_sync_free(SvcSync *sync);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SvcSync, svc_sync_free)
