// SPDX-License-Identifier: LGPL-2.1-or-later
// Small socket helpers of the daemon: whether a TCP port on an address is free to listen on.
#pragma once

#include <stdbool.h>
#include <glib.h>

/* True when a TCP listener could bind @addr:@port now (SO_REUSEADDR, as QEMU binds).
 * False when something holds the port, or (with @error set) when the address is bad or
 * no socket could be made: callers treat both as "not free". */
bool vmb_net_port_is_free(const char *addr, unsigned port, GError **error);
