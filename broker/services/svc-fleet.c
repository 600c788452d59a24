// SPDX-License-Identifier: LGPL-2.1-or-later
// Added hosts: a libvirt handle and a reconciler each, made when the hosts table first shows
// the host and kept until the broker stops (the VM service lends the handles out). A host
// whose URI or console address changes keeps what it had until the next start; a removed
// host has no VMs left, so its reconciler only idles.
#include "svc-fleet.h"

#include <string.h>

#include "db-hosts.h"
#include "vmb-log.h"
#include "vmb-periodic.h"

typedef struct {
    char *id;
    char *name;
    DomHypervisor *hv;
    SvcSync *sync;
} FleetHost;

struct SvcFleet {
    SvcFleetOptions opts;
    char *configured_id;
    char *name_prefix;
    GMutex lock;
    GPtrArray *hosts;           /* of FleetHost *, under lock */
    VmbPeriodic *periodic;
};

static void
fleet_host_free(FleetHost *h)
{
    svc_sync_free(h->sync);   /* before the handle: its callbacks use it */
    dom_hypervisor_free(h->hv);
    g_free(h->id);
    g_free(h->name);
    g_free(h);
}

static void
fleet_host_stop(FleetHost *h)
{
    g_clear_pointer(&h->sync, svc_sync_free);
}

void
svc_fleet_host_state_free(SvcFleetHostState *s)
{
    g_free(s->name);
    g_free(s->uri);
    g_free(s);
}

static bool
known(SvcFleet *fleet, const char *id)
{
    bool found = strcmp(id, fleet->configured_id) == 0;

    g_mutex_lock(&fleet->lock);
    for (guint i = 0; !found && i < fleet->hosts->len; i++)
        found = strcmp(((FleetHost *) fleet->hosts->pdata[i])->id, id) == 0;
    g_mutex_unlock(&fleet->lock);
    return found;
}

/* A handle and a reconciler for @host, lent to the VM service at once (placement prefers
 * hosts it is connected to); the first reconciliation runs here, on the fleet's thread, so
 * a host that does not answer holds up only the next hosts' pickup, and its reconciler
 * keeps trying. */
static void
add_host(SvcFleet *fleet, const DbHost *host)
{
    g_autoptr(GError) error = NULL;
    FleetHost *h = g_new0(FleetHost, 1);
    SvcSyncOptions so = fleet->opts.sync;

    h->id = g_strdup(host->id);
    h->name = g_strdup(host->name);
    h->hv = dom_hypervisor_new(host->uri);
    svc_vms_add_host(fleet->opts.vms, &(SvcVmsHost) {
        .id = host->id, .name = host->name, .console_address = host->console_address,
        .hv = h->hv, .configured = false });
    so.db = fleet->opts.db;
    so.hv = h->hv;
    so.vms = fleet->opts.vms;
    so.accel = NULL;
    so.host_id = host->id;
    so.host_name = host->name;
    g_mutex_lock(&fleet->lock);
    g_ptr_array_add(fleet->hosts, h); /* the VM service holds the handle from now on */
    g_mutex_unlock(&fleet->lock);
    h->sync = svc_sync_new(&so, &error);
    if (!h->sync) {
        vmb_warning("host %s: cannot watch %s: %s", host->name, host->uri, error->message);
        return;
    }
    if (svc_sync_reconcile(h->sync, &error))
        vmb_info("host %s: reconciled PostgreSQL with libvirt at %s", host->name, host->uri);
    else
        vmb_warning("host %s: %s (retried until it succeeds)", host->name, error->message);
    svc_sync_start(h->sync);
    svc_vms_watch_unready(fleet->opts.vms, host->id);
}

static void
refresh(gpointer data)
{
    SvcFleet *fleet = data;
    g_autoptr(GError) error = NULL;
    g_autoptr(DbConn) db = db_pool_acquire(fleet->opts.db, &error);
    g_autoptr(GPtrArray) hosts = db ? db_hosts_list(db, &error) : NULL;

    g_clear_pointer(&db, db_conn_release);
    if (!hosts) {
        vmb_warning("hosts: reading the hosts table: %s", error->message);
        return;
    }
    for (guint i = 0; i < hosts->len; i++) {
        const DbHost *host = hosts->pdata[i];
        if (!known(fleet, host->id))
            add_host(fleet, host);
    }
}

/**
 * svc_fleet_start:
 * @opts: settings; strings are copied, pointers must outlive the fleet
 *
 * Returns: (transfer full): the fleet; its thread reads the hosts table from now on.
 */
SvcFleet *
svc_fleet_start(const SvcFleetOptions *opts)
{
    SvcFleet *fleet = g_new0(SvcFleet, 1);

    fleet->opts = *opts;
    fleet->configured_id = g_strdup(opts->configured_id);
    fleet->name_prefix = g_strdup(opts->sync.name_prefix);
    fleet->opts.configured_id = fleet->configured_id;
    fleet->opts.sync.name_prefix = fleet->name_prefix;
    g_mutex_init(&fleet->lock);
    fleet->hosts = g_ptr_array_new_with_free_func((GDestroyNotify) fleet_host_free);
    fleet->periodic = vmb_periodic_start("vmb-hosts", MAX(opts->interval_s, 1), refresh, fleet);
    return fleet;
}

/**
 * svc_fleet_stop:
 * @fleet: the fleet
 *
 * Stops reading the hosts table and each host's reconciler; the libvirt handles stay (the VM
 * service still holds them) until svc_fleet_free().
 */
void
svc_fleet_stop(SvcFleet *fleet)
{
    g_clear_pointer(&fleet->periodic, vmb_periodic_stop);
    g_mutex_lock(&fleet->lock);
    g_ptr_array_foreach(fleet->hosts, (GFunc) (void (*)(void)) fleet_host_stop, NULL);
    g_mutex_unlock(&fleet->lock);
}

/**
 * svc_fleet_free:
 * @fleet: (nullable): the fleet, stopped, after the VM service is gone
 */
void
svc_fleet_free(SvcFleet *fleet)
{
    if (!fleet)
        return;
    svc_fleet_stop(fleet);
    g_ptr_array_free(fleet->hosts, TRUE);
    g_mutex_clear(&fleet->lock);
    g_free(fleet->configured_id);
    g_free(fleet->name_prefix);
    g_free(fleet);
}

/**
 * svc_fleet_states:
 * @fleet: the fleet
 *
 * Returns: (transfer full) (element-type SvcFleetHostState): each added host's connection,
 *   as held now (nothing is called).
 */
GPtrArray *
svc_fleet_states(SvcFleet *fleet)
{
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify) svc_fleet_host_state_free);

    g_mutex_lock(&fleet->lock);
    for (guint i = 0; i < fleet->hosts->len; i++) {
        FleetHost *h = fleet->hosts->pdata[i];
        SvcFleetHostState *s = g_new0(SvcFleetHostState, 1);
        s->name = g_strdup(h->name);
        s->uri = g_strdup(dom_hypervisor_uri(h->hv));
        s->up = dom_hypervisor_is_up(h->hv);
        g_ptr_array_add(out, s);
    }
    g_mutex_unlock(&fleet->lock);
    return out;
}
