// SPDX-License-Identifier: LGPL-2.1-or-later
// The database side of /readyz and /metrics, so that the handlers call no db_* themselves.
#include "svc-health.h"

#include "db-ports.h"
#include "db-vms.h"

struct SvcHealth {
    SvcHealthOptions opts;
    char *host_id;
};

/**
 * svc_health_new:
 * @opts: what it reads and where it writes; the pool, cache and metrics outlive it
 *
 * Returns: (transfer full): the service.
 */
SvcHealth *
svc_health_new(const SvcHealthOptions *opts)
{
    SvcHealth *health = g_new0(SvcHealth, 1);

    health->opts = *opts;
    health->host_id = g_strdup(opts->host_id);
    health->opts.host_id = health->host_id;
    return health;
}

void
svc_health_free(SvcHealth *health)
{
    if (!health)
        return;
    g_free(health->host_id);
    g_free(health);
}

/**
 * svc_health_db_ping:
 * @health: the service
 * @error: return location for an error
 *
 * Returns: whether PostgreSQL answers now.
 */
bool
svc_health_db_ping(SvcHealth *health, GError **error)
{
    return db_pool_ping(health->opts.db, error);
}

static void
set_vm_gauges(SvcHealth *health, DbConn *db)
{
    g_autoptr(GPtrArray) vms = db_vms_list(db, NULL, NULL);
    unsigned count[DB_VM_STATE_LAST] = { 0 };

    if (!vms)
        return;
    for (guint i = 0; i < vms->len; i++)
        count[((DbVm *) vms->pdata[i])->state]++;
    for (int s = 0; s < DB_VM_STATE_LAST; s++)
        vmb_metrics_set(health->opts.metrics, "vmbroker_vms", count[s], "state",
                        db_vm_state_to_string((DbVmState) s), NULL);
}

static void
set_port_gauges(SvcHealth *health, DbConn *db)
{
    for (int k = 0; k < 2; k++) {
        const char *kind = k ? "ws" : "vnc";
        DbPortCounts c;
        if (db_ports_count(db, health->opts.host_id, kind, &c, NULL))
            vmb_metrics_set(health->opts.metrics, "vmbroker_ports_free",
                            c.total - c.leased - c.cooling - c.quarantined, "kind", kind, NULL);
    }
}

/**
 * svc_health_refresh_metrics:
 * @health: the service
 *
 * Sets vmbroker_cache_lookups_total, vmbroker_cache_listening, vmbroker_db_pool_waits_total,
 * and (when PostgreSQL answers) vmbroker_vms by state and vmbroker_ports_free by kind.
 */
void
svc_health_refresh_metrics(SvcHealth *health)
{
    VmbMetrics *m = health->opts.metrics;
    g_autoptr(DbConn) db = db_pool_acquire(health->opts.db, NULL);

    if (health->opts.cache) {
        DbCacheStats cache;
        db_cache_stats(health->opts.cache, &cache);
        vmb_metrics_set(m, "vmbroker_cache_lookups_total", (double) cache.hits,
                        "result", "hit", NULL);
        vmb_metrics_set(m, "vmbroker_cache_lookups_total", (double) cache.misses,
                        "result", "miss", NULL);
        vmb_metrics_set(m, "vmbroker_cache_listening", cache.listening, NULL);
    }
    vmb_metrics_set(m, "vmbroker_db_pool_waits_total", (double) db_pool_waits(health->opts.db),
                    NULL);
    /* State that lives elsewhere is read now; a database that is down leaves these out. */
    vmb_metrics_reset(m, "vmbroker_vms");
    vmb_metrics_reset(m, "vmbroker_ports_free");
    if (!db)
        return;
    set_vm_gauges(health, db);
    set_port_gauges(health, db);
}
