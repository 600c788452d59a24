// SPDX-License-Identifier: LGPL-2.1-or-later
// What /readyz and /metrics read from PostgreSQL and the read cache: a ping, and the gauges
// of state that lives in the database (VMs by state, free console ports, cache hits, pool
// waits).
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-cache.h"
#include "db-pool.h"
#include "vmb-metrics.h"

typedef struct SvcHealth SvcHealth;

typedef struct {
    DbPool *db;          /* PostgreSQL */
    DbCache *cache;      /* (nullable) the read cache whose counts are shown */
    const char *host_id; /* hosts row of this libvirt: whose ports are counted */
    VmbMetrics *metrics; /* where the gauges are set */
} SvcHealthOptions;

SvcHealth *svc_health_new(const SvcHealthOptions *opts);
void svc_health_free(SvcHealth *health);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SvcHealth, svc_health_free)

/* Whether PostgreSQL answers a trivial query now. */
bool svc_health_db_ping(SvcHealth *health, GError **error);
/* Sets the metrics read from elsewhere at scrape time; a database that is down leaves the
 * VM and port gauges out. */
void svc_health_refresh_metrics(SvcHealth *health);
