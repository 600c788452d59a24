// SPDX-License-Identifier: LGPL-2.1-or-later
// The reconciler's hold on its host among several brokers (svc-sync-lease.h).
#include "svc-sync-lease.h"

#include "db-hosts.h"
#include "vmb-log.h"

#define OWNED_METRIC "vmbroker_host_owned"

struct SvcSyncLease {
    DbPool *db;
    char *host_id;
    char *host_name;
    char *owner;           /* NULL: no lease */
    VmbMetrics *metrics;   /* (nullable) */
    GMutex lock;
    gint64 epoch;          /* (lock) held at this epoch; 0: not held */
    int reachable;         /* (the sync thread, or before it) hosts.reachable as this broker
                            * last set it; -1: not yet */
};

SvcSyncLease *
svc_sync_lease_new(DbPool *db, const char *host_id, const char *host_name, const char *owner,
                   VmbMetrics *metrics)
{
    SvcSyncLease *l = g_new0(SvcSyncLease, 1);

    l->db = db;
    l->host_id = g_strdup(host_id);
    l->host_name = g_strdup(host_name);
    l->owner = g_strdup(owner);
    l->metrics = metrics;
    l->reachable = -1;
    g_mutex_init(&l->lock);
    if (metrics) {
        vmb_metrics_declare(metrics, OWNED_METRIC, VMB_METRIC_GAUGE,
                            "1 for each host whose events and syncs this broker runs (its "
                            "lease), 0 for a host another broker watches.", NULL, 0);
        vmb_metrics_set(metrics, OWNED_METRIC, owner ? 0 : 1, "host", host_name, NULL);
    }
    return l;
}

void
svc_sync_lease_free(SvcSyncLease *l)
{
    g_autoptr(DbConn) db = NULL;

    if (!l)
        return;
    if (l->owner && l->epoch && (db = db_pool_acquire(l->db, NULL)))
        db_host_lease_release(db, l->host_id, l->owner, NULL);
    g_clear_pointer(&db, db_conn_release);
    g_mutex_clear(&l->lock);
    g_free(l->host_id);
    g_free(l->host_name);
    g_free(l->owner);
    g_free(l);
}

/**
 * svc_sync_lease_tick:
 * @l: the lease
 *
 * A database that does not answer counts as a lease not held: the reconciler stops writing
 * until it knows again (its lease may run out meanwhile, and another broker take over).
 *
 * Returns: true when this broker holds the lease now and did not before.
 */
bool
svc_sync_lease_tick(SvcSyncLease *l)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(DbConn) db = NULL;
    gint64 epoch = 0, was;

    if (!l->owner)
        return false;
    db = db_pool_acquire(l->db, &err);
    if (!db || !db_host_lease_take(db, l->host_id, l->owner, SVC_SYNC_LEASE_TTL_S, &epoch,
                                   &err)) {
        vmb_warning("host %s: renewing the lease: %s", l->host_name, err->message);
        epoch = 0;
    }
    g_mutex_lock(&l->lock);
    was = l->epoch;
    l->epoch = epoch;
    g_mutex_unlock(&l->lock);
    if (!was == !epoch)
        return false;
    if (epoch)
        vmb_info("host %s: this broker watches it now (lease epoch %" G_GINT64_FORMAT ")",
                 l->host_name, epoch);
    else
        vmb_warning("host %s: another broker watches it now", l->host_name);
    if (l->metrics)
        vmb_metrics_set(l->metrics, OWNED_METRIC, epoch ? 1 : 0, "host", l->host_name, NULL);
    return epoch != 0;
}

bool
svc_sync_lease_held(SvcSyncLease *l)
{
    return !l->owner || svc_sync_lease_epoch(l) != 0;
}

const char *
svc_sync_lease_owner(SvcSyncLease *l)
{
    return l->owner;
}

gint64
svc_sync_lease_epoch(SvcSyncLease *l)
{
    gint64 epoch;

    g_mutex_lock(&l->lock);
    epoch = l->epoch;
    g_mutex_unlock(&l->lock);
    return epoch;
}

/**
 * svc_sync_lease_set_reachable:
 * @l: the lease
 * @reachable: whether the host's libvirt answers
 *
 * Records it in the host's row when this broker watches the host and it changed (a write
 * notifies every broker's read cache: VM lists show it). A failed write is tried again at
 * the next change or pass.
 */
void
svc_sync_lease_set_reachable(SvcSyncLease *l, bool reachable)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(DbConn) db = NULL;

    if (l->reachable == (int) reachable || !svc_sync_lease_held(l))
        return;
    db = db_pool_acquire(l->db, &err);
    if (db && db_hosts_set_reachable(db, l->host_id, reachable, &err))
        l->reachable = reachable;
    else
        vmb_warning("host %s: recording that it is %s: %s", l->host_name,
                    reachable ? "reachable" : "unreachable", err->message);
}
