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
/* The same for a domain saved with its memory (managed save): the image's definition gets
 * the owner, title, new ports and password; a start then restores it. */
bool dom_handover_saved(virDomainPtr dom, const char *owner, const char *template_name,
                        const char *vnc_password, unsigned vnc_port, unsigned ws_port,
                        GError **error);
