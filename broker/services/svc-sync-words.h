// SPDX-License-Identifier: LGPL-2.1-or-later
// The reconciler's words for what libvirt reports (svc-sync.c only).
#pragma once

#include <libvirt/libvirt.h>

#include "dom-lifecycle.h"

/* A lifecycle event's name, for the log. */
const char *svc_sync_event_name(int event);
/* Why a VM stopped, from the event that told us; NULL for an event that stops nothing. */
const char *svc_sync_event_reason(int event, int detail);
/* Why a VM stopped, from libvirt's record of the domain (the same words as the events'). */
const char *svc_sync_cause_reason(DomStopCause cause);
/* Why a VM is paused: libvirt's reason in plain words. */
const char *svc_sync_pause_reason(DomPauseCause cause);
