// SPDX-License-Identifier: LGPL-2.1-or-later
// The shared libvirt connection: opened lazily, checked with virConnectIsAlive, reopened
// after libvirtd restarts.
#include "dom-hypervisor.h"


struct DomHypervisor {
    char *uri;
    GMutex lock;
    virConnectPtr conn; /* NULL until opened, or after it died */
};

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
    if (hv->conn)
        virConnectClose(hv->conn);
    g_mutex_clear(&hv->lock);
    g_free(hv->uri);
    g_free(hv);
}

/**
 * dom_hypervisor_get:
 * @hv: a handle
 * @error: return location for an error (VMB_ERROR_UNAVAILABLE)
 *
 * Returns: (transfer full): a new reference to a live connection, or NULL.
 */
virConnectPtr
dom_hypervisor_get(DomHypervisor *hv, GError **error)
{
    virConnectPtr conn;

    g_mutex_lock(&hv->lock);
    if (hv->conn && virConnectIsAlive(hv->conn) != 1)
        g_clear_pointer(&hv->conn, virConnectClose);
    if (!hv->conn)
        hv->conn = dom_virt_connect(hv->uri, error);
    if (!hv->conn) {
        g_mutex_unlock(&hv->lock);
        return NULL;
    }
    conn = hv->conn;
    virConnectRef(conn);
    g_mutex_unlock(&hv->lock);
    return conn;
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
