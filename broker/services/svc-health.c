// SPDX-License-Identifier: LGPL-2.1-or-later
// The database side of /readyz and /metrics, so that the handlers call no db_* themselves.
#include "svc-health.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include "db-ports.h"
#include "db-vms.h"
#include "svc-vms.h"

struct SvcHealth {
    SvcHealthOptions opts;
    char *host_id;
    char *storage_dir;
};

#define MIB (G_GUINT64_CONSTANT(1) << 20)

/* name, help: every gauge below but the ones other services set. */
static const char *const GAUGES[][2] = {
    { "vmbroker_db_pool_waits_total", "Database connection requests that had to wait." },
    { "vmbroker_cache_lookups_total",
      "Token checks and VM lists by whether the read cache answered." },
    { "vmbroker_cache_listening",
      "1 while the cache's LISTEN connection is up (else it is bypassed)." },
    { "vmbroker_vms", "VMs by state." },
    { "vmbroker_ports_free", "Console ports that can be leased now, by kind." },
    { "vmbroker_ports", "Console ports this host has, by kind." },
    { "vmbroker_console_connections", "Console connections open now." },
    { "vmbroker_libvirt_up", "1 while the broker holds a live libvirt connection." },
    { "vmbroker_storage_free_bytes", "Bytes an unprivileged writer may still use in "
                                     "storage.dir's filesystem." },
    { "vmbroker_storage_size_bytes", "Size in bytes of storage.dir's filesystem." },
    { "vmbroker_guest_memory_bytes", "Memory of the guests that run (or start or stop) "
                                     "on the host." },
    { "vmbroker_guest_memory_budget_bytes", "limits.host_memory_mib in bytes (absent: no "
                                            "budget)." },
    { "vmbroker_host_memory_bytes", "Physical memory of the machine the broker runs on." },
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
    health->storage_dir = g_strdup(opts->storage_dir);
    health->opts.storage_dir = health->storage_dir;
    return health;
}

void
svc_health_free(SvcHealth *health)
{
    if (!health)
        return;
    g_free(health->host_id);
    g_free(health->storage_dir);
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

/**
 * svc_health_declare_metrics:
 * @m: the registry
 *
 * Declares what svc_health_refresh_metrics() and /metrics set.
 */
void
svc_health_declare_metrics(VmbMetrics *m)
{
    for (size_t i = 0; i < G_N_ELEMENTS(GAUGES); i++)
        vmb_metrics_declare(m, GAUGES[i][0], g_str_has_suffix(GAUGES[i][0], "_total")
                                                 ? VMB_METRIC_COUNTER : VMB_METRIC_GAUGE,
                            GAUGES[i][1], NULL, 0);
}

/* VMs by state, and the memory of those that hold some. */
static void
set_vm_gauges(SvcHealth *health, DbConn *db)
{
    VmbMetrics *m = health->opts.metrics;
    g_autoptr(GPtrArray) vms = db_vms_list(db, NULL, NULL);
    unsigned count[DB_VM_STATE_LAST] = { 0 };

    if (!vms)
        return;
    for (guint i = 0; i < vms->len; i++)
        count[((DbVm *) vms->pdata[i])->state]++;
    for (int s = 0; s < DB_VM_STATE_LAST; s++)
        vmb_metrics_set(m, "vmbroker_vms", count[s], "state",
                        db_vm_state_to_string((DbVmState) s), NULL);
    if (health->opts.templates) {
        g_autoptr(DomTemplateSet) set = svc_templates_get(health->opts.templates);
        vmb_metrics_set(m, "vmbroker_guest_memory_bytes",
                        (double) (svc_vms_memory_in_use_mib(set, vms, NULL) * MIB), NULL);
    }
}

static void
set_port_gauges(SvcHealth *health, DbConn *db)
{
    for (int k = 0; k < 2; k++) {
        const char *kind = k ? "ws" : "vnc";
        DbPortCounts c;
        if (!db_ports_count(db, health->opts.host_id, kind, &c, NULL))
            continue;
        vmb_metrics_set(health->opts.metrics, "vmbroker_ports_free",
                        c.total - c.leased - c.cooling - c.quarantined, "kind", kind, NULL);
        vmb_metrics_set(health->opts.metrics, "vmbroker_ports", c.total, "kind", kind, NULL);
    }
}

/* What this machine and the libvirt handle know without asking anyone. */
static void
set_local_gauges(SvcHealth *health)
{
    VmbMetrics *m = health->opts.metrics;
    struct statvfs st;
    long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);

    if (health->opts.hv)
        vmb_metrics_set(m, "vmbroker_libvirt_up", dom_hypervisor_is_up(health->opts.hv),
                        NULL);
    if (health->storage_dir && statvfs(health->storage_dir, &st) == 0) {
        vmb_metrics_set(m, "vmbroker_storage_free_bytes",
                        (double) st.f_bavail * (double) st.f_frsize, NULL);
        vmb_metrics_set(m, "vmbroker_storage_size_bytes",
                        (double) st.f_blocks * (double) st.f_frsize, NULL);
    }
    if (health->opts.host_memory_mib)
        vmb_metrics_set(m, "vmbroker_guest_memory_budget_bytes",
                        (double) (health->opts.host_memory_mib * MIB), NULL);
    if (pages > 0 && page_size > 0)
        vmb_metrics_set(m, "vmbroker_host_memory_bytes", (double) pages * (double) page_size,
                        NULL);
}

/**
 * svc_health_refresh_metrics:
 * @health: the service
 *
 * Sets the cache's and the pool's counts, libvirt's state, storage.dir's space and the
 * memory figures, and (when PostgreSQL answers) VMs by state, console ports by kind and
 * the guests' memory.
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
    set_local_gauges(health);
    /* State that lives elsewhere is read now; a database that is down leaves these out. */
    vmb_metrics_reset(m, "vmbroker_vms");
    vmb_metrics_reset(m, "vmbroker_ports_free");
    vmb_metrics_reset(m, "vmbroker_ports");
    vmb_metrics_reset(m, "vmbroker_guest_memory_bytes");
    if (!db)
        return;
    set_vm_gauges(health, db);
    set_port_gauges(health, db);
}
