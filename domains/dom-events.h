// SPDX-License-Identifier: LGPL-2.1-or-later
// libvirt's event loop on a thread of its own: what delivers domain lifecycle events,
// keepalive probes and the notice of a lost connection (see dom_hypervisor_watch).
#pragma once

#include <stdbool.h>
#include <glib.h>

/* A domain's lifecycle event: @event is a virDomainEventType, @detail its detail (e.g.
 * VIR_DOMAIN_EVENT_STOPPED_DESTROYED). Runs on the event loop thread: it must not block. */
typedef void (*DomEventFunc)(const char *name, int event, int detail, void *data);
/* The connection was lost (@why: "keepalive", "eof", "error" or "client"). Runs on the
 * event loop thread: it must not block. */
typedef void (*DomLostFunc)(const char *why, void *data);

/* Registers libvirt's default event loop (once per process, before any connection that
 * wants events is opened) and starts the thread that runs it. Idempotent. */
bool dom_events_loop_start(GError **error);
/* Whether the loop runs. */
bool dom_events_loop_running(void);
