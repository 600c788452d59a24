// SPDX-License-Identifier: LGPL-2.1-or-later
// What /readyz and /metrics read from PostgreSQL, the read cache and this machine: a ping,
// and the gauges of state that lives elsewhere (VMs by state, free console ports, the
// guests' memory, cache hits, pool waits, free storage, libvirt's connection), which the
// alert rules in contrib/prometheus watch.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-cache.h"
#include "db-pool.h"
#include "dom-hypervisor.h"
#include "svc-templates.h"
#include "vmb-metrics.h"

typedef struct SvcHealth SvcHealth;

typedef struct {
    DbPool *db;                /* PostgreSQL */
    DbCache *cache;            /* (nullable) the read cache whose counts are shown */
    const char *host_id;       /* hosts row of this libvirt: whose ports are counted */
    VmbMetrics *metrics;       /* where the gauges are set */
    DomHypervisor *hv;         /* (nullable) libvirt, whose state is shown (never called) */
    SvcTemplates *templates;   /* (nullable) for the guests' memory */
    const char *storage_dir;   /* (nullable) whose free space is shown */
    guint64 host_memory_mib;   /* limits.host_memory_mib, 0 for none */
} SvcHealthOptions;

SvcHealth *svc_health_new(const SvcHealthOptions *opts);
void svc_health_free(SvcHealth *health);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SvcHealth, svc_health_free)

/* Whether PostgreSQL answers a trivial query now. */
bool svc_health_db_ping(SvcHealth *health, GError **error);
/* Declares the gauges it sets. */
void svc_health_declare_metrics(VmbMetrics *m);
/* Sets the metrics read from elsewhere at scrape time; a database that is down leaves the
 * VM, port and guest memory gauges out. */
void svc_health_refresh_metrics(SvcHealth *health);
