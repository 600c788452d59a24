// SPDX-License-Identifier: LGPL-2.1-or-later
// The reaper: stops VMs idle (no console) for their template's idle timeout, or older than
// its max lifetime, with the reason on the VM; their ephemeral disks go too.
#pragma once

#include <glib.h>

#include "db-pool.h"
#include "dom-template.h"
#include "svc-console.h"
#include "svc-vms.h"

typedef struct SvcReaper SvcReaper;

typedef struct {
    DbPool *db;                      /* PostgreSQL */
    SvcVms *vms;                     /* stops */
    SvcConsole *console;             /* live console activity */
    const DomTemplateSet *templates; /* idle timeouts and lifetimes */
    unsigned interval_s;             /* how often it looks */
} SvcReaperOptions;

/* Starts the reaper's thread. */
SvcReaper *svc_reaper_start(const SvcReaperOptions *opts);
/* Stops and joins it. */
void svc_reaper_stop(SvcReaper *reaper);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SvcReaper, svc_reaper_stop)
