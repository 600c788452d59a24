// SPDX-License-Identifier: LGPL-2.1-or-later
// The shared libvirt connection: opened lazily, checked with virConnectIsAlive (and, when
// watched, the close callback), reopened after libvirtd restarts. Callbacks of a watched
// hypervisor run on the event loop thread and never take the lock: libvirt may call them
// while a thread holding the lock waits inside libvirt. Opening happens outside the lock,
// by one thread at a time: a hung libvirtd (which accepts the socket but never answers)
// holds up that thread only, and everyone else is told "unavailable" at once.
#include "dom-hypervisor.h"

#include "vmb-error.h"

struct DomHypervisor {
    char *uri;
    GMutex lock;
    virConnectPtr conn;       /* NULL until opened, or after it died */
    bool connecting;          /* a thread is opening a connection (without the lock) */
    int event_id;             /* lifecycle callback of conn, -1 for none */
    bool close_registered;    /* conn carries our close callback */
    gint lost;                /* (atomic) the close callback fired for conn */
    guint64 generation;       /* connections opened so far */
    guint64 node_memory_mib;  /* the node's memory as its libvirtd said when last opened */
    bool watched;             /* watch below applies */
    DomHypervisorWatch watch;
};

static void
close_cb(virConnectPtr conn, int reason, void *opaque)
{
    DomHypervisor *hv = opaque;
    const char *why;

    switch (reason) {
    case VIR_CONNECT_CLOSE_REASON_KEEPALIVE:
        why = "keepalive";
        break;
    case VIR_CONNECT_CLOSE_REASON_EOF:
        why = "eof";
        break;
    case VIR_CONNECT_CLOSE_REASON_CLIENT:
        why = "client";
        break;
    default:
        why = "error";
        break;
    }
    g_atomic_int_set(&hv->lost, 1);
    if (hv->watch.on_lost)
        hv->watch.on_lost(why, hv->watch.data);
}

static int
lifecycle_cb(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
    DomHypervisor *hv = opaque;
    const char *name = virDomainGetName(dom);

    if (name && hv->watch.on_event)
        hv->watch.on_event(name, event, detail, hv->watch.data);
    return 0;
}

/* Drops the current connection (with the lock held), unregistering what we registered:
 * each registration holds a reference that would keep a dead connection alive. */
static void
drop_conn(DomHypervisor *hv)
{
    if (!hv->conn)
        return;
    /* Not on a dead connection: that is a round trip on a closed client, which may race
     * with another thread's call still unwinding there; libvirt drops the callbacks of a
     * closed connection with it. */
    if (hv->event_id >= 0 && !g_atomic_int_get(&hv->lost) && virConnectIsAlive(hv->conn) == 1)
        virConnectDomainEventDeregisterAny(hv->conn, hv->event_id);
    if (hv->close_registered)
        virConnectUnregisterCloseCallback(hv->conn, close_cb);
    virConnectClose(hv->conn);
    hv->conn = NULL;
    hv->event_id = -1;
    hv->close_registered = false;
}

/* Sets up keepalive and callbacks on a fresh connection that is not shared yet (without
 * the lock: these are round trips). On failure the connection is closed. */
static bool
watch_conn(DomHypervisor *hv, virConnectPtr conn, int *ret_event_id, GError **error)
{
    const DomHypervisorWatch *w = &hv->watch;
    int event_id = -1;

    if (w->keepalive_interval_s &&
        virConnectSetKeepAlive(conn, (int) w->keepalive_interval_s, w->keepalive_count) < 0) {
        dom_virt_set_error_kind(error, VMB_ERROR_UNAVAILABLE, "enabling keepalive on '%s'",
                                hv->uri);
        virConnectClose(conn);
        return false;
    }
    if (virConnectRegisterCloseCallback(conn, close_cb, hv, NULL) < 0) {
        dom_virt_set_error_kind(error, VMB_ERROR_UNAVAILABLE,
                                "registering a close callback on '%s'", hv->uri);
        virConnectClose(conn);
        return false;
    }
    if (w->on_event) {
        event_id = virConnectDomainEventRegisterAny(conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                                    VIR_DOMAIN_EVENT_CALLBACK(lifecycle_cb), hv,
                                                    NULL);
        if (event_id < 0) {
            dom_virt_set_error_kind(error, VMB_ERROR_UNAVAILABLE,
                                    "registering for domain events on '%s'", hv->uri);
            virConnectUnregisterCloseCallback(conn, close_cb);
            virConnectClose(conn);
            return false;
        }
    }
    *ret_event_id = event_id;
    return true;
}

/**
 * dom_hypervisor_new:
 * @uri: libvirt URI, e.g. qemu:///system
 *
 * Returns: (transfer full): a handle; nothing is connected yet.
 */
DomHypervisor *
dom_hypervisor_new(const char *uri)
{
    DomHypervisor *hv = g_new0(DomHypervisor, 1);

    dom_virt_init();
    hv->uri = g_strdup(uri);
    hv->event_id = -1;
    g_mutex_init(&hv->lock);
    return hv;
}

/**
 * dom_hypervisor_free:
 * @hv: (nullable): a handle
 */
void
dom_hypervisor_free(DomHypervisor *hv)
{
    if (!hv)
        return;
    drop_conn(hv);
    g_mutex_clear(&hv->lock);
    g_free(hv->uri);
    g_free(hv);
}

/**
 * dom_hypervisor_watch:
 * @hv: a handle
 * @watch: callbacks and keepalive settings; copied
 * @error: return location for an error
 *
 * Starts libvirt's event loop (dom_events_loop_start()) and, from the next connection on,
 * registers keepalive, a close callback and (with on_event) a lifecycle callback on every
 * connection @hv opens.
 *
 * Returns: true on success.
 */
bool
dom_hypervisor_watch(DomHypervisor *hv, const DomHypervisorWatch *watch, GError **error)
{
    if (!dom_events_loop_start(error))
        return false;
    g_mutex_lock(&hv->lock);
    drop_conn(hv);
    hv->watch = *watch;
    hv->watched = true;
    g_mutex_unlock(&hv->lock);
    return true;
}

static virConnectPtr
get_conn(DomHypervisor *hv, bool may_open, GError **error)
{
    virConnectPtr conn;
    bool watched, dropped = false;
    int event_id = -1;
    virNodeInfo node = { 0 };

    g_mutex_lock(&hv->lock);
    if (hv->conn && (g_atomic_int_get(&hv->lost) || virConnectIsAlive(hv->conn) != 1)) {
        drop_conn(hv);
        dropped = true;
    }
    if (hv->conn) {
        conn = hv->conn;
        virConnectRef(conn);
        g_mutex_unlock(&hv->lock);
        return conn;
    }
    if (!may_open) {
        DomLostFunc on_lost = hv->watch.on_lost;
        void *data = hv->watch.data;
        g_mutex_unlock(&hv->lock);
        /* A death the close callback did not report: wake the reconnecting thread. */
        if (dropped && on_lost)
            on_lost("error", data);
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_UNAVAILABLE,
                    "libvirt at '%s': not connected, reconnecting", hv->uri);
        return NULL;
    }
    if (hv->connecting) {
        g_mutex_unlock(&hv->lock);
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_UNAVAILABLE,
                    "libvirt at '%s': reconnecting, not answering yet", hv->uri);
        return NULL;
    }
    hv->connecting = true;
    watched = hv->watched;
    g_atomic_int_set(&hv->lost, 0);
    g_mutex_unlock(&hv->lock);

    conn = dom_virt_connect(hv->uri, error);
    if (conn && watched && !watch_conn(hv, conn, &event_id, error))
        conn = NULL;
    if (conn && virNodeGetInfo(conn, &node) < 0) {
        node.memory = 0; /* unknown: a budget of its own applies, or none */
        virResetLastError();
    }

    g_mutex_lock(&hv->lock);
    hv->connecting = false;
    if (conn) {
        hv->conn = conn;
        hv->event_id = event_id;
        hv->close_registered = watched;
        hv->generation++;
        hv->node_memory_mib = node.memory / 1024;
        virConnectRef(conn);
    }
    g_mutex_unlock(&hv->lock);
    return conn;
}

/**
 * dom_hypervisor_get:
 * @hv: a handle
 * @error: return location for an error (VMB_ERROR_UNAVAILABLE)
 *
 * A watched hypervisor never opens a connection here: after a loss only
 * dom_hypervisor_connect() (the reconnecting thread) does, so that a hung libvirtd never
 * holds up a request; others are told "unavailable" at once.
 *
 * Returns: (transfer full): a new reference to a live connection, or NULL.
 */
virConnectPtr
dom_hypervisor_get(DomHypervisor *hv, GError **error)
{
    bool watched;

    g_mutex_lock(&hv->lock);
    watched = hv->watched;
    g_mutex_unlock(&hv->lock);
    return get_conn(hv, !watched, error);
}

/**
 * dom_hypervisor_connect:
 * @hv: a handle
 * @error: return location for an error (VMB_ERROR_UNAVAILABLE)
 *
 * Like dom_hypervisor_get(), opening a connection when there is none (watched or not). It
 * may block as long as libvirtd takes to answer: call it from the reconnecting thread.
 *
 * Returns: (transfer full): a new reference to a live connection, or NULL.
 */
virConnectPtr
dom_hypervisor_connect(DomHypervisor *hv, GError **error)
{
    return get_conn(hv, true, error);
}

/**
 * dom_hypervisor_generation:
 * @hv: a handle
 *
 * Returns: how many connections @hv has opened; 0 before the first.
 */
guint64
dom_hypervisor_generation(DomHypervisor *hv)
{
    guint64 g;

    g_mutex_lock(&hv->lock);
    g = hv->generation;
    g_mutex_unlock(&hv->lock);
    return g;
}

/**
 * dom_hypervisor_node_memory_mib:
 * @hv: a handle
 *
 * Returns: the memory of the node @hv's libvirtd runs on, as it said when the current (or
 * last) connection was opened; 0 before one was, or when it did not say.
 */
guint64
dom_hypervisor_node_memory_mib(DomHypervisor *hv)
{
    guint64 mib;

    g_mutex_lock(&hv->lock);
    mib = hv->node_memory_mib;
    g_mutex_unlock(&hv->lock);
    return mib;
}

/**
 * dom_hypervisor_is_up:
 * @hv: a handle
 *
 * What the handle knows without calling libvirtd, for gauges read at any time: it holds a
 * connection that neither keepalive, libvirtd's close nor a bounded call has given up on.
 *
 * Returns: whether a live connection is held.
 */
bool
dom_hypervisor_is_up(DomHypervisor *hv)
{
    bool up;

    g_mutex_lock(&hv->lock);
    up = hv->conn && !g_atomic_int_get(&hv->lost);
    g_mutex_unlock(&hv->lock);
    return up;
}

/**
 * dom_hypervisor_ping:
 * @hv: a handle
 * @error: return location for an error (VMB_ERROR_UNAVAILABLE)
 *
 * Returns: true when libvirtd answered a round trip.
 */
bool
dom_hypervisor_ping(DomHypervisor *hv, GError **error)
{
    g_autoptr(virConnect) conn = dom_hypervisor_get(hv, error);
    unsigned long version = 0;

    if (!conn)
        return false;
    if (virConnectGetLibVersion(conn, &version) < 0) {
        dom_virt_set_error_kind(error, VMB_ERROR_UNAVAILABLE, "libvirt %s", hv->uri);
        return false;
    }
    return true;
}

/**
 * dom_hypervisor_uri:
 * @hv: a handle
 *
 * Returns: (transfer none): the libvirt URI it connects to.
 */
const char *
dom_hypervisor_uri(DomHypervisor *hv)
{
    return hv->uri;
}

/**
 * dom_hypervisor_lost:
 * @hv: a handle
 *
 * Without taking the handle's lock (a caller stuck in libvirt may hold it): whether the
 * connection was found dead and not yet replaced. Background work that may wait asks this
 * first, so that no call of its queues on a connection that is going away.
 *
 * Returns: true while the connection is known lost.
 */
bool
dom_hypervisor_lost(DomHypervisor *hv)
{
    return g_atomic_int_get(&hv->lost) != 0;
}

/**
 * dom_hypervisor_mark_lost:
 * @hv: a handle
 * @why: for the lost callback ("no answer")
 *
 * For a libvirtd that accepts but never answers while keepalive is off (or slower than the
 * caller's bound): new requests are told "unavailable" at once instead of queueing calls
 * on a connection that may never answer; calls under way keep their own references.
 */
void
dom_hypervisor_mark_lost(DomHypervisor *hv, const char *why)
{
    DomLostFunc on_lost;
    void *data;

    g_mutex_lock(&hv->lock);
    on_lost = hv->watch.on_lost;
    data = hv->watch.data;
    g_mutex_unlock(&hv->lock);
    g_atomic_int_set(&hv->lost, 1);
    if (on_lost)
        on_lost(why, data);
}
