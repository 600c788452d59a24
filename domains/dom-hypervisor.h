// SPDX-License-Identifier: LGPL-2.1-or-later
// One shared libvirt connection per hypervisor URI, reopened when it has died, so every
// thread of the daemon can borrow a live virConnect.
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <libvirt/libvirt.h>

#include "dom-virt.h"

typedef struct DomHypervisor DomHypervisor;

DomHypervisor *dom_hypervisor_new(const char *uri);
void dom_hypervisor_free(DomHypervisor *hv);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DomHypervisor, dom_hypervisor_free)

/* A reference to a live connection (release with virConnectClose), or NULL. */
virConnectPtr dom_hypervisor_get(DomHypervisor *hv, GError **error);
/* True when libvirtd answers a call. */
bool dom_hypervisor_ping(DomHypervisor *hv, GError **error);
