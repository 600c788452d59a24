// SPDX-License-Identifier: LGPL-2.1-or-later
// The reaper: stops VMs idle (no console) for their template's idle timeout, or older than
// its max lifetime, with the reason on the VM; their ephemeral disks go too.
#pragma once

#include <glib.h>

#include "db-pool.h"
#include "svc-templates.h"
#include "svc-vms.h"

typedef struct SvcReaper SvcReaper;

/* Open console connections of @vm_id and the time of the last client byte (g_get_real_time
 * µs, 0: none): the console service answers (it sits above the services). */
typedef void (*SvcReaperActivityFunc)(const char *vm_id, unsigned *ret_connections,
                                      gint64 *ret_last_client_us, gpointer data);

typedef struct {
    DbPool *db;                      /* PostgreSQL */
    SvcVms *vms;                     /* stops */
    SvcReaperActivityFunc activity;  /* live console activity of a VM */
    gpointer activity_data;          /* for activity */
    SvcTemplates *templates;         /* idle timeouts and lifetimes */
    unsigned interval_s;             /* how often it looks */
} SvcReaperOptions;

/* Starts the reaper's thread. */
SvcReaper *svc_reaper_start(const SvcReaperOptions *opts);
/* Stops and joins it. */
void svc_reaper_stop(SvcReaper *reaper);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SvcReaper, svc_reaper_stop)
