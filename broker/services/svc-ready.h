// SPDX-License-Identifier: LGPL-2.1-or-later
// Console-ready: from a VM's start until its screen first shows something (a second colour
// in a screenshot), then vms.console_ready_at and the vmbroker_console_ready_seconds
// histogram, measured from the request. One thread looks at every starting VM in turn.
#pragma once

#include <glib.h>

#include "db-pool.h"
#include "db-vms.h"
#include "dom-hypervisor.h"
#include "vmb-bounded.h"
#include "vmb-metrics.h"

#define SVC_READY_METRIC "vmbroker_console_ready_seconds"
/* How often a starting VM's screen is looked at, and for how long at most. */
#define SVC_READY_INTERVAL_MS 200
#define SVC_READY_GIVE_UP_S 600

typedef struct SvcReady SvcReady;

typedef struct {
    DbPool *db;
    DomHypervisor *hv;
    VmbBounded *bounded;     /* where screenshots are taken, each within its bound */
    VmbMetrics *metrics;     /* (nullable) */
} SvcReadyOptions;

SvcReady *svc_ready_new(const SvcReadyOptions *opts);
void svc_ready_free(SvcReady *r);

/* Watches @vm, running since its started_at, from a request made at @requested_at; @path
 * is how it started ("cold"), the histogram's label. */
void svc_ready_watch(SvcReady *r, const DbVm *vm, GDateTime *requested_at, const char *path);
