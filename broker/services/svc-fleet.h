// SPDX-License-Identifier: LGPL-2.1-or-later
// The hosts an admin added (`vmbroker host add`), beside the configured one: each gets a
// libvirt connection of its own and a reconciler (events, keepalive, periodic sync,
// reconnects), and is handed to the VM service for placement and operations. The hosts table
// is read again every few seconds, so a host added while the broker runs is used without a
// restart.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"
#include "svc-sync.h"
#include "svc-vms.h"

typedef struct SvcFleet SvcFleet;

typedef struct {
    DbPool *db;
    SvcVms *vms;
    const char *configured_id;  /* the config file's host: svc_vms_new has it already */
    SvcSyncOptions sync;        /* for each host's reconciler (db, hv, vms, host_id set here) */
    unsigned interval_s;        /* how often the hosts table is read */
} SvcFleetOptions;

/* Reads the hosts table every interval_s on a thread of its own. */
SvcFleet *svc_fleet_start(const SvcFleetOptions *opts);
/* Stops the thread and each host's reconciler (before the VM service is freed); the hosts'
 * guests are left alone. */
void svc_fleet_stop(SvcFleet *fleet);
/* Frees the hosts' libvirt handles: after the VM service, which borrows them. */
void svc_fleet_free(SvcFleet *fleet);

/* The hosts this broker reaches, for /readyz: (element-type SvcFleetHostState). */
typedef struct {
    char *name;
    char *uri;
    bool up;         /* a live connection is held */
} SvcFleetHostState;
void svc_fleet_host_state_free(SvcFleetHostState *s);
GPtrArray *svc_fleet_states(SvcFleet *fleet);
