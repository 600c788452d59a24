// SPDX-License-Identifier: LGPL-2.1-or-later
// Handing a running guest to a new owner (a warm pool's guest taken by a create): its
// metadata and title name the owner, and its VNC password is replaced, all on the live
// domain and its definition, without a restart.
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <libvirt/libvirt.h>

bool dom_handover(virDomainPtr dom, const char *owner, const char *template_name,
                  const char *vnc_password, GError **error);
