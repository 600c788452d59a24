// SPDX-License-Identifier: LGPL-2.1-or-later
// A small thread-safe Prometheus registry: counters, gauges and histograms, keyed by
// family name and a label set, rendered in the text exposition format.
#pragma once

#include <glib.h>

typedef struct VmbMetrics VmbMetrics;

typedef enum {
    VMB_METRIC_COUNTER,
    VMB_METRIC_GAUGE,
    VMB_METRIC_HISTOGRAM,

    VMB_METRIC_LAST
} VmbMetricType;

VmbMetrics *vmb_metrics_new(void);
void vmb_metrics_free(VmbMetrics *m);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmbMetrics, vmb_metrics_free)

/* Declares a family; histograms take their upper bounds (ascending), others NULL/0. */
void vmb_metrics_declare(VmbMetrics *m, const char *name, VmbMetricType type,
                         const char *help, const double *buckets, size_t nbuckets);
/* @labels: NULL, or pairs of name and value, NULL-terminated: "route", "/x", NULL. */
void vmb_metrics_add(VmbMetrics *m, const char *name, double value, ...) G_GNUC_NULL_TERMINATED;
void vmb_metrics_set(VmbMetrics *m, const char *name, double value, ...) G_GNUC_NULL_TERMINATED;
void vmb_metrics_observe(VmbMetrics *m, const char *name, double value, ...)
    G_GNUC_NULL_TERMINATED;
/* Drops every series of a gauge family, before setting it anew from a fresh reading. */
void vmb_metrics_reset(VmbMetrics *m, const char *name);

char *vmb_metrics_render(VmbMetrics *m);
