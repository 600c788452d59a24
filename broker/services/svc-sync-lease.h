// SPDX-License-Identifier: LGPL-2.1-or-later
// A host's lease (host_leases), and what its holder writes of the host (hosts.reachable): the one broker that follows the host's events and runs its
// syncs holds it, renewing it every LEASE_RENEW_S; another takes it over once it has gone
// LEASE_TTL_S without renewal (a broker that died), with a new fencing epoch that the old
// owner's repairs fail on. Without an owner name there is no lease: the host is always ours.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"
#include "vmb-metrics.h"

/* A takeover comes within TTL + RENEW seconds of the owner's last renewal. */
#define SVC_SYNC_LEASE_TTL_S 6u
#define SVC_SYNC_LEASE_RENEW_S 2u

typedef struct SvcSyncLease SvcSyncLease;

/* @owner NULL: no lease; strings are copied. */
SvcSyncLease *svc_sync_lease_new(DbPool *db, const char *host_id, const char *host_name,
                                 const char *owner, VmbMetrics *metrics);
/* Gives up a lease held (for another broker to take at once) and frees. */
void svc_sync_lease_free(SvcSyncLease *l);
/* Takes or renews the lease; true when it was just won (a takeover: a full pass is due). */
bool svc_sync_lease_tick(SvcSyncLease *l);
/* Whether this broker holds it (as of the last tick). */
bool svc_sync_lease_held(SvcSyncLease *l);
/* For a repair's fencing: the owner (NULL without a lease) and the epoch held (0: none). */
const char *svc_sync_lease_owner(SvcSyncLease *l);
gint64 svc_sync_lease_epoch(SvcSyncLease *l);
/* Records in the host's row whether its libvirt answers (when held, on a change). */
void svc_sync_lease_set_reachable(SvcSyncLease *l, bool reachable);
