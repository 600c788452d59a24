// SPDX-License-Identifier: LGPL-2.1-or-later
// The hosts VMs run on, as this broker reaches them (each one's libvirt, console address,
// console-ready watches and reconciler), and placement: a new guest goes to the enabled host
// with the most free memory that has a free port pair, decided in the transaction that
// leases the pair.
#include "svc-vms-private.h"

#include <string.h>

#include "db-hosts.h"
#include "db-place.h"
#include "db-pools.h"
#include "dom-volcopy.h"
#include "vmb-error.h"
#include "vmb-net.h"

struct VmsHost {
    char *id;
    char *name;
    char *console_address;
    DomHypervisor *hv;         /* borrowed: outlives the service */
    bool configured;           /* the config file's host (SvcVmsHost) */
    SvcReady *ready;           /* (nullable) console-ready watches of its guests */
    SvcVmsReconcileFunc reconcile; /* (nullable) */
    gpointer reconcile_data;
    GMutex copy_lock;          /* one copy to the host at a time; pools_ready */
    bool pools_ready;          /* vmbroker's pools were made or found there */
};

void
svc_vms_host_free(VmsHost *h)
{
    svc_ready_free(h->ready);
    g_mutex_clear(&h->copy_lock);
    g_free(h->id);
    g_free(h->name);
    g_free(h->console_address);
    g_free(h);
}

/**
 * svc_vms_add_host:
 * @vms: the service
 * @host: a hosts row and the libvirt of that host (which must outlive @vms)
 *
 * From now on VMs may be placed on @host and their operations reach it. A host added again
 * keeps what it had.
 *
 * Returns: false when it was there already.
 */
bool
svc_vms_add_host(SvcVms *vms, const SvcVmsHost *host)
{
    VmsHost *h;

    g_mutex_lock(&vms->hosts_lock);
    if (g_hash_table_contains(vms->hosts, host->id)) {
        g_mutex_unlock(&vms->hosts_lock);
        return false;
    }
    h = g_new0(VmsHost, 1);
    h->id = g_strdup(host->id);
    h->name = g_strdup(host->name);
    h->console_address = g_strdup(host->console_address);
    h->hv = host->hv;
    h->configured = host->configured;
    g_mutex_init(&h->copy_lock);
    if (vms->opts.bounded)
        h->ready = svc_ready_new(&(SvcReadyOptions) { .db = vms->opts.db, .hv = host->hv,
                                                      .bounded = vms->opts.bounded,
                                                      .metrics = vms->opts.metrics });
    g_hash_table_insert(vms->hosts, h->id, h);
    g_mutex_unlock(&vms->hosts_lock);
    return true;
}

/* Host @id as this broker knows it; entries live as long as the service. */
VmsHost *
svc_vms_host(SvcVms *vms, const char *id)
{
    VmsHost *h;

    g_mutex_lock(&vms->hosts_lock);
    h = id ? g_hash_table_lookup(vms->hosts, id) : NULL;
    g_mutex_unlock(&vms->hosts_lock);
    return h;
}

/**
 * svc_vms_hv:
 * @vms: the service
 * @host_id: a VM's host
 * @error: return location for an error (VMB_ERROR_UNAVAILABLE)
 *
 * Returns: (transfer none): the libvirt of @host_id, or NULL when this broker has none.
 */
DomHypervisor *
svc_vms_hv(SvcVms *vms, const char *host_id, GError **error)
{
    VmsHost *h = svc_vms_host(vms, host_id);

    if (h)
        return h->hv;
    g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE,
                "This broker has no connection to the VM's host yet; try again shortly.");
    return NULL;
}

/* A reference to a live connection to @vm's host (release with virConnectClose), or NULL. */
virConnectPtr
svc_vms_conn(SvcVms *vms, const DbVm *vm, GError **error)
{
    DomHypervisor *hv = svc_vms_hv(vms, vm->host_id, error);

    return hv ? dom_hypervisor_get(hv, error) : NULL;
}

/**
 * svc_vms_console_address:
 * @vms: the service
 * @vm: a VM
 *
 * Returns: (transfer full) (nullable): where @vm's QEMU serves VNC and websocket: its
 * host's console address.
 */
char *
svc_vms_console_address(SvcVms *vms, const DbVm *vm)
{
    VmsHost *h = svc_vms_host(vms, vm->host_id);

    return h ? g_strdup(h->console_address) : NULL;
}

SvcReady *
svc_vms_host_ready(SvcVms *vms, const char *host_id)
{
    VmsHost *h = svc_vms_host(vms, host_id);

    return h ? h->ready : NULL;
}

/**
 * svc_vms_set_reconciler:
 * @vms: the service
 * @host_id: the host whose VMs @fn reconciles
 * @fn: brings one VM's row in line with libvirt; called under the VM's claim
 * @data: for @fn
 *
 * The reconciler of a host (svc-sync) lends this to runners that take over an unfinished
 * operation of one of its VMs.
 */
void
svc_vms_set_reconciler(SvcVms *vms, const char *host_id, SvcVmsReconcileFunc fn,
                       gpointer data)
{
    VmsHost *h = svc_vms_host(vms, host_id);

    if (!h)
        return;
    g_mutex_lock(&vms->hosts_lock);
    h->reconcile = fn;
    h->reconcile_data = data;
    g_mutex_unlock(&vms->hosts_lock);
}

/* Runs the reconciler of @vm's host on it, if the host has one; false when it has none. */
bool
svc_vms_reconcile(SvcVms *vms, const DbVm *vm)
{
    VmsHost *h = svc_vms_host(vms, vm->host_id);
    SvcVmsReconcileFunc fn = NULL;
    gpointer data = NULL;

    if (h) {
        g_mutex_lock(&vms->hosts_lock);
        fn = h->reconcile;
        data = h->reconcile_data;
        g_mutex_unlock(&vms->hosts_lock);
    }
    if (fn)
        fn(vm->id, data);
    return fn != NULL;
}

static bool
probe_port(const char *kind, unsigned port, void *data)
{
    VmsHost *h = data;

    return vmb_net_port_is_free(h->console_address, port, NULL);
}

/* Port probing applies to a host whose console address is this machine's only. */
DbPortLeaseOptions
svc_vms_lease_options(SvcVms *vms, const char *host_id)
{
    VmsHost *h = svc_vms_host(vms, host_id);

    return (DbPortLeaseOptions) {
        .probe = h && h->configured ? probe_port : NULL,
        .probe_data = h,
        .quarantine_s = vms->opts.port_quarantine_s,
    };
}

/* --- placement --- */

/* The memory budget of @host (MiB): its own, else what its libvirtd says the node has; 0
 * for none known. */
static guint64
host_budget_mib(const DbHost *host, VmsHost *h)
{
    if (host->memory_mib)
        return host->memory_mib;
    return h ? dom_hypervisor_node_memory_mib(h->hv) : 0;
}

/* The memory of @host's guests among @all, but @except_id's. */
static guint64
host_used_mib(const DomTemplateSet *set, GPtrArray *all, const char *host_id,
              const char *except_id)
{
    g_autoptr(GPtrArray) here = g_ptr_array_new();

    for (guint i = 0; i < all->len; i++)
        if (g_strcmp0(((DbVm *) all->pdata[i])->host_id, host_id) == 0)
            g_ptr_array_add(here, all->pdata[i]);
    return svc_vms_memory_in_use_mib(set, here, except_id);
}

typedef struct {
    DbHost *host;     /* borrowed */
    bool up;          /* this broker holds a live connection to it */
    guint64 free_mib; /* G_MAXUINT64: no budget */
} Candidate;

/* Reachable hosts first, then the most free memory, then by name. */
static gint
candidate_cmp(gconstpointer a, gconstpointer b)
{
    const Candidate *x = a, *y = b;

    if (x->up != y->up)
        return x->up ? -1 : 1;
    if (x->free_mib != y->free_mib)
        return x->free_mib > y->free_mib ? -1 : 1;
    return strcmp(x->host->name, y->host->name);
}

/* The hosts @tmpl's guest may go to, best first; why each other one may not, in @why. */
static GArray *
candidates(SvcVms *vms, GPtrArray *hosts, GPtrArray *all, const DomTemplate *tmpl,
           const char *pin, const char *own_id, GString *why)
{
    g_autoptr(DomTemplateSet) set = svc_templates_get(vms->opts.templates);
    GArray *out = g_array_new(FALSE, FALSE, sizeof(Candidate));

    for (guint i = 0; i < hosts->len; i++) {
        DbHost *host = hosts->pdata[i];
        VmsHost *h = svc_vms_host(vms, host->id);
        guint64 budget = host_budget_mib(host, h);
        guint64 used = host_used_mib(set, all, host->id, NULL);
        Candidate c = { host, h && dom_hypervisor_is_up(h->hv), G_MAXUINT64 };

        if (pin && strcmp(host->name, pin) != 0)
            continue;
        /* A disabled host keeps starting the VMs it has. */
        if (!host->enabled && g_strcmp0(host->id, own_id) != 0) {
            g_string_append_printf(why, "; host '%s' is disabled", host->name);
            continue;
        }
        if (!h) {
            g_string_append_printf(why, "; host '%s' is not connected yet", host->name);
            continue;
        }
        if (tmpl->persistent && !h->configured) {
            g_string_append_printf(why, "; host '%s' does not keep persistent disks",
                                   host->name);
            continue;
        }
        if (budget) {
            c.free_mib = used < budget ? budget - used : 0;
            if (c.free_mib < tmpl->memory_mib) {
                g_string_append_printf(why, "; host '%s' has %" G_GUINT64_FORMAT " of %"
                                       G_GUINT64_FORMAT " MiB free", host->name, c.free_mib,
                                       budget);
                continue;
            }
        }
        g_array_append_val(out, c);
    }
    g_array_sort(out, candidate_cmp);
    return out;
}

/* One try of placement on @host, in a savepoint of its own: the VM, or NULL (with
 * VMB_ERROR_EXHAUSTED the next host is tried). */
typedef DbVm *(*PlaceTry)(DbConn *conn, const char *host_id, const DbPortLeaseOptions *lease,
                          void *data, GError **error);

/* Under db_vms_lock_memory(), so two placements (of any broker) never both take the last room
 * of a host: the hosts best first (candidate_cmp), the first @try takes. */
static DbVm *
place(SvcVms *vms, DbConn *conn, const DomTemplate *tmpl, const char *pin, const char *own_id,
      PlaceTry try, void *data, GError **error)
{
    g_autoptr(GPtrArray) all = NULL;
    g_autoptr(GPtrArray) hosts = NULL;
    g_autoptr(GArray) order = NULL;
    g_autoptr(GString) why = g_string_new(NULL);

    if (!db_vms_lock_memory(conn, error) || !(all = db_vms_list(conn, NULL, error)) ||
        !(hosts = db_hosts_list(conn, error)))
        return NULL;
    order = candidates(vms, hosts, all, tmpl, pin, own_id, why);
    for (guint i = 0; i < order->len; i++) {
        const DbHost *host = g_array_index(order, Candidate, i).host;
        DbPortLeaseOptions lease = svc_vms_lease_options(vms, host->id);
        g_autoptr(GError) err = NULL;
        DbVm *vm = try(conn, host->id, &lease, data, &err);

        if (vm)
            return vm;
        if (vmb_error_kind(err) != VMB_ERROR_EXHAUSTED) {
            g_propagate_error(error, g_steal_pointer(&err));
            return NULL;
        }
        g_string_append_printf(why, "; host '%s': %s", host->name, err->message);
    }
    if (pin && !why->len) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNPROCESSABLE, "There is no host '%s'.", pin);
        return NULL;
    }
    g_set_error(error, VMB_ERROR, VMB_ERROR_EXHAUSTED,
                "No host takes a %u MiB guest now%s.", tmpl->memory_mib,
                why->len ? why->str : ": no host is set up");
    return NULL;
}

static DbVm *
try_insert(DbConn *conn, const char *host_id, const DbPortLeaseOptions *lease, void *data,
           GError **error)
{
    DbVmSpec *spec = data;

    spec->host_id = host_id;
    return db_vms_insert_on_host(conn, spec, lease, error);
}

/**
 * svc_vms_place_tx:
 * @vms: the service
 * @conn: a connection inside the create's transaction
 * @spec: the new VM; its host_id is set to the host chosen
 * @tmpl: its template
 * @pin: (nullable): the name of the only host it may go to (admins)
 * @error: return location for an error (VMB_ERROR_EXHAUSTED naming why for each host)
 *
 * Returns: (transfer full): the VM inserted with its leases, or NULL.
 */
DbVm *
svc_vms_place_tx(SvcVms *vms, DbConn *conn, DbVmSpec *spec, const DomTemplate *tmpl,
                 const char *pin, GError **error)
{
    DbVm *vm = place(vms, conn, tmpl, pin, NULL, try_insert, spec, error);

    if (!vm)
        spec->host_id = NULL;
    return vm;
}

static DbVm *
try_start(DbConn *conn, const char *host_id, const DbPortLeaseOptions *lease, void *data,
          GError **error)
{
    return db_vms_start_on_host(conn, data, host_id, lease, error);
}

/**
 * svc_vms_place_start_tx:
 * @vms: the service
 * @conn: a connection inside the start's transaction
 * @vm: the stopped VM
 * @tmpl: its template
 * @error: return location for an error (VMB_ERROR_EXHAUSTED naming why)
 *
 * A VM that keeps nothing on its host (no disk; not a warm pool's guest, whose memory may be
 * saved there) goes where a create would; any other starts on its host, within that host's budget (a disabled host starts the VMs it
 * has).
 *
 * Returns: (transfer full): the VM, `creating` with fresh ports on its host, or NULL.
 */
DbVm *
svc_vms_place_start_tx(SvcVms *vms, DbConn *conn, const DbVm *vm, const DomTemplate *tmpl,
                       GError **error)
{
    bool movable = !dom_template_has_disk(tmpl) && strcmp(vm->owner_name, DB_POOL_ACCOUNT) != 0;

    return place(vms, conn, tmpl, movable ? NULL : vm->host_name, vm->host_id, try_start,
                 vm->id, error);
}

/**
 * svc_vms_memory_room_tx:
 * @vms: the service
 * @conn: a connection inside the transaction that will lease the guest's ports
 * @tmpl: the template of the guest about to run again
 * @vm_id: that guest's row: not counted as in use
 * @host_id: its host
 * @error: return location for an error (VMB_ERROR_EXHAUSTED without room)
 *
 * For a start or a take, whose guest stays on its host: that host's memory budget, checked
 * under db_vms_lock_memory() as placement is.
 *
 * Returns: true when @tmpl's guest fits beside every other active one there.
 */
bool
svc_vms_memory_room_tx(SvcVms *vms, DbConn *conn, const DomTemplate *tmpl, const char *vm_id,
                       const char *host_id, GError **error)
{
    g_autoptr(GPtrArray) all = NULL;
    g_autoptr(GPtrArray) hosts = NULL;
    g_autoptr(DomTemplateSet) set = svc_templates_get(vms->opts.templates);
    guint64 budget = 0, used;

    if (!db_vms_lock_memory(conn, error) || !(all = db_vms_list(conn, NULL, error)) ||
        !(hosts = db_hosts_list(conn, error)))
        return false;
    for (guint i = 0; i < hosts->len; i++) {
        DbHost *host = hosts->pdata[i];
        if (strcmp(host->id, host_id) == 0)
            budget = host_budget_mib(host, svc_vms_host(vms, host_id));
    }
    used = host_used_mib(set, all, host_id, vm_id);
    if (!budget || used + tmpl->memory_mib <= budget)
        return true;
    g_set_error(error, VMB_ERROR, VMB_ERROR_EXHAUSTED,
                "The VM's host has no room for another %u MiB guest right now (%"
                G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT " MiB in use); try later.",
                tmpl->memory_mib, used, budget);
    return false;
}

/* --- storage on added hosts --- */

/* Where vmbroker's pools go on an added host: under libvirt's own images folder, which a
 * libvirt host has (the prefix without its trailing '-' names the folder). */
static char *
remote_storage_dir(const char *prefix)
{
    g_autofree char *name = g_strdup(prefix);
    size_t n = strlen(name);

    while (n > 0 && name[n - 1] == '-')
        name[--n] = '\0';
    return g_strdup_printf("/var/lib/libvirt/images/%s", n ? name : "vmbroker");
}

/* (copy_lock held) vmbroker's pools on @h, made once. */
static bool
ensure_pools(SvcVms *vms, VmsHost *h, virConnectPtr conn, GError **error)
{
    g_autofree char *dir = NULL;

    if (h->pools_ready)
        return true;
    dir = remote_storage_dir(vms->name_prefix);
    h->pools_ready = dom_storage_ensure_remote_pools(conn, vms->name_prefix, dir,
                                                     DOM_POOL_OWNER_DEFAULT, error);
    return h->pools_ready;
}

typedef struct {
    SvcVms *vms;
    const char *what;
    const char *host;
} CopyProgress;

static void
copy_progress(guint64 done, guint64 total, void *data)
{
    CopyProgress *p = data;
    g_autofree char *step = g_strdup_printf("copying %s to host '%s' (%" G_GUINT64_FORMAT
                                            " of %" G_GUINT64_FORMAT " MiB)", p->what,
                                            p->host, done >> 20, total >> 20);

    svc_vms_step(p->vms, step, 15);
}

/* (copy_lock held) Volume @name of @kind on @h, copied from the configured host unless a
 * checked copy (of @sha256 when given) is recorded and there. */
static bool
have_or_copy(SvcVms *vms, VmsHost *h, virConnectPtr conn, DomPoolKind kind, const char *name,
             const char *sha256, GError **error)
{
    const char *pool = dom_storage_pool_kind_to_string(kind);
    g_autoptr(GError) err = NULL;
    g_autoptr(DbConn) db = db_pool_acquire(vms->opts.db, error);
    g_autofree char *recorded = db ? db_host_volume_sha256(db, h->id, pool, name, &err) : NULL;
    g_autofree char *there = NULL;
    g_autofree char *want = NULL;
    g_autoptr(virConnect) src = NULL;
    CopyProgress p = { vms, kind == DOM_POOL_ISOS ? "the ISO" : "the base image", h->name };

    if (!db || err) {
        if (err)
            g_propagate_error(error, g_steal_pointer(&err));
        return false;
    }
    g_clear_pointer(&db, db_conn_release);
    there = dom_storage_volume_path(conn, vms->name_prefix, kind, name, NULL);
    if (there && recorded && (!sha256 || strcmp(recorded, sha256) == 0))
        return true;
    if (there) /* a copy cut short, or of other content: made again */
        dom_storage_delete_path(conn, there, NULL);
    if (!(src = dom_hypervisor_get(vms->opts.hv, error)))
        return false;
    svc_vms_step(vms, kind == DOM_POOL_ISOS ? "copying the ISO to the VM's host"
                                            : "copying the base image to the VM's host", 15);
    want = sha256 ? g_strdup(sha256)
                  : dom_volcopy_sha256(src, vms->name_prefix, kind, name, NULL, NULL, error);
    if (!want || !dom_volcopy(src, conn, vms->name_prefix, kind, name, want, copy_progress, &p,
                              error))
        return false;
    db = db_pool_acquire(vms->opts.db, error);
    return db && db_host_volume_record(db, h->id, pool, name, want, error);
}

/**
 * svc_vms_host_volume:
 * @vms: the service
 * @conn: a connection to @vm's host
 * @vm: the VM about to start
 * @kind: DOM_POOL_DISKS (only the pools), DOM_POOL_ISOS or DOM_POOL_BASE
 * @name: (nullable): the volume @vm needs from the configured host's pool @kind
 * @sha256: (nullable): what its content hashes to (an ISO's); NULL: what the configured
 *   host's copy hashes to (a base image's)
 * @error: return location for an error
 *
 * An added host gets vmbroker's pools once, and each ISO or base image a VM there needs,
 * copied through libvirt's streams and checked, once (host_volumes); the configured host has
 * them already.
 *
 * Returns: true when @vm's host has what it needs.
 */
bool
svc_vms_host_volume(SvcVms *vms, virConnectPtr conn, const DbVm *vm, DomPoolKind kind,
                    const char *name, const char *sha256, GError **error)
{
    VmsHost *h = svc_vms_host(vms, vm->host_id);
    bool ok;

    if (!h || h->configured)
        return true;
    g_mutex_lock(&h->copy_lock);
    ok = ensure_pools(vms, h, conn, error) &&
         (!name || have_or_copy(vms, h, conn, kind, name, sha256, error));
    g_mutex_unlock(&h->copy_lock);
    return ok;
}
