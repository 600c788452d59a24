// SPDX-License-Identifier: LGPL-2.1-or-later
// The network vmbroker gives its guests by default: a NAT'ed libvirt network whose bridge
// ports are isolated from each other, and an nwfilter that keeps guests off the host itself.
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <libvirt/libvirt.h>

/* Checking the configured values (at start-up, before anything is defined) */
bool dom_network_check_subnet(const char *subnet, GError **error);
bool dom_network_check_name(const char *name, GError **error);

/* The XML vmbroker defines (exposed for the golden and unit tests) */
char *dom_network_xml(const char *name, const char *subnet, GError **error);
char *dom_network_filter_xml(const char *name, const char *subnet, GError **error);
char *dom_network_bridge_name(const char *name);

/* Defining and starting both where missing */
bool dom_network_ensure(virConnectPtr conn, const char *name, const char *subnet,
                        GError **error);

/* "active", "inactive" or "absent" (network or filter missing); NULL on a libvirt error */
const char *dom_network_state(virConnectPtr conn, const char *name, GError **error);
