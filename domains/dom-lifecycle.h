// SPDX-License-Identifier: LGPL-2.1-or-later
// A VM's life on libvirt: define (persistent), start, graceful stop with a fallback to
// destroy, destroy, undefine with its ephemeral volumes, state, screenshot, metadata.
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <libvirt/libvirt.h>

#include "dom-xml.h"

typedef enum {
    DOM_STATE_RUNNING,
    DOM_STATE_PAUSED,
    DOM_STATE_STOPPING, /* shutting down */
    DOM_STATE_SHUTOFF,
    DOM_STATE_CRASHED,
    DOM_STATE_OTHER,    /* blocked, suspended by power management, no state */

    DOM_STATE_LAST
} DomState;

const char *dom_lifecycle_state_to_string(DomState state);
int dom_lifecycle_state_from_string(const char *s);

/* Domains */
virDomainPtr dom_lifecycle_define(virConnectPtr conn, const char *xml, GError **error);
virDomainPtr dom_lifecycle_lookup(virConnectPtr conn, const char *name, GError **error);
bool dom_lifecycle_start(virDomainPtr dom, GError **error);
bool dom_lifecycle_stop(virDomainPtr dom, guint timeout_ms, bool *ret_forced, GError **error);
bool dom_lifecycle_destroy(virDomainPtr dom, GError **error);
bool dom_lifecycle_reboot(virDomainPtr dom, GError **error);
/* The VNC password the domain runs with (from its secure XML). */
char *dom_lifecycle_vnc_password(virDomainPtr dom, GError **error);
bool dom_lifecycle_undefine(virDomainPtr dom, bool delete_ephemeral, GError **error);

/* Looking at them */
/* (element-type utf8): names of every domain (defined or transient) starting with @prefix. */
GPtrArray *dom_lifecycle_list_names(virConnectPtr conn, const char *prefix, GError **error);
/* Why a domain that does not run stopped, as libvirt recorded it. */
typedef enum {
    DOM_STOP_UNKNOWN,   /* not said, or a cause vmbroker does not tell apart */
    DOM_STOP_SHUTDOWN,  /* the guest powered off */
    DOM_STOP_DESTROYED, /* destroyed (virsh destroy) */
    DOM_STOP_CRASHED,   /* the guest crashed */
    DOM_STOP_FAILED,    /* QEMU ended unexpectedly (killed, failed) */
} DomStopCause;
/* Whether the domain runs (running, paused, shutting down, ...): not shut off, not crashed;
 * when it does not, @ret_cause (optional) says why. */
bool dom_lifecycle_is_running(virDomainPtr dom, bool *ret_running, DomStopCause *ret_cause,
                              GError **error);
bool dom_lifecycle_state(virDomainPtr dom, DomState *ret_state, GError **error);
GBytes *dom_lifecycle_screenshot(virDomainPtr dom, char **ret_mime, GError **error);
DomMetadata *dom_lifecycle_metadata(virDomainPtr dom, GError **error);
