// SPDX-License-Identifier: LGPL-2.1-or-later
// One shared libvirt connection per hypervisor URI, reopened when it has died, so every
// thread of the daemon can borrow a live virConnect. A watched hypervisor also registers
// lifecycle callbacks, keepalive and a close callback on every connection it opens.
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <libvirt/libvirt.h>

#include "dom-events.h"
#include "dom-virt.h"

typedef struct DomHypervisor DomHypervisor;

/* What a watched hypervisor sets up on each connection it opens. */
typedef struct {
    DomEventFunc on_event;          /* (nullable) domain lifecycle events */
    DomLostFunc on_lost;            /* (nullable) the connection was lost */
    void *data;                     /* passed to both */
    unsigned keepalive_interval_s;  /* 0: no keepalive */
    unsigned keepalive_count;       /* unanswered probes before the connection is closed */
} DomHypervisorWatch;

DomHypervisor *dom_hypervisor_new(const char *uri);
void dom_hypervisor_free(DomHypervisor *hv);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DomHypervisor, dom_hypervisor_free)

/* Starts libvirt's event loop and watches every connection opened from now on (an open
 * one is dropped, so that the next get opens a watched one). Call once, early. */
bool dom_hypervisor_watch(DomHypervisor *hv, const DomHypervisorWatch *watch, GError **error);
/* A reference to a live connection (release with virConnectClose), or NULL. A watched
 * hypervisor does not open one here (see dom_hypervisor_connect): it answers unavailable. */
virConnectPtr dom_hypervisor_get(DomHypervisor *hv, GError **error);
/* Like dom_hypervisor_get, opening a connection if there is none; may block on a hung
 * libvirtd: for the thread that reconnects. */
virConnectPtr dom_hypervisor_connect(DomHypervisor *hv, GError **error);
/* The node's memory (MiB) as libvirtd said at the last open; 0: not known. */
guint64 dom_hypervisor_node_memory_mib(DomHypervisor *hv);
/* True while a connection is held that nothing has found dead; calls nothing. */
bool dom_hypervisor_is_up(DomHypervisor *hv);
const char *dom_hypervisor_uri(DomHypervisor *hv);
/* Lock-free: the connection is known dead and not replaced yet. */
bool dom_hypervisor_lost(DomHypervisor *hv);
/* True when libvirtd answers a call. */
bool dom_hypervisor_ping(DomHypervisor *hv, GError **error);
/* Declares the connection hung (a bounded call found no answer): the next get drops it and
 * the reconnecting thread is woken, as when keepalive finds it dead. */
void dom_hypervisor_mark_lost(DomHypervisor *hv, const char *why);
/* Counts the connections opened so far: a change means a new connection (after libvirtd
 * restarted, say), whose events only start now. */
guint64 dom_hypervisor_generation(DomHypervisor *hv);
