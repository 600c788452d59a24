// SPDX-License-Identifier: LGPL-2.1-or-later
// The Prometheus registry of broker/util/vmb-metrics.c: rendering, escaping, histograms.
#include <string.h>

#include "test.h"
#include "vmb-metrics.h"

TEST(counter_and_labels)
{
    g_autoptr(VmbMetrics) m = vmb_metrics_new();
    g_autofree char *text = NULL;

    vmb_metrics_declare(m, "t_total", VMB_METRIC_COUNTER, "a counter", NULL, 0);
    vmb_metrics_add(m, "t_total", 1, "route", "/a", "status", "200", NULL);
    vmb_metrics_add(m, "t_total", 2, "route", "/a", "status", "200", NULL);
    vmb_metrics_add(m, "t_total", 1, "route", "/b\"\\\n", "status", "404", NULL);
    vmb_metrics_add(m, "undeclared_total", 1, NULL); /* ignored, not a crash */
    text = vmb_metrics_render(m);
    g_assert_nonnull(strstr(text, "# TYPE t_total counter\n"));
    g_assert_nonnull(strstr(text, "t_total{route=\"/a\",status=\"200\"} 3\n"));
    g_assert_nonnull(strstr(text, "t_total{route=\"/b\\\"\\\\\\n\",status=\"404\"} 1\n"));
    g_assert_null(strstr(text, "undeclared"));
}

TEST(histogram_buckets_are_cumulative)
{
    static const double bounds[] = { 1, 10 };
    g_autoptr(VmbMetrics) m = vmb_metrics_new();
    g_autofree char *text = NULL;

    vmb_metrics_declare(m, "h", VMB_METRIC_HISTOGRAM, "a histogram", bounds, 2);
    vmb_metrics_observe(m, "h", 0.5, NULL);
    vmb_metrics_observe(m, "h", 5, NULL);
    vmb_metrics_observe(m, "h", 50, NULL);
    text = vmb_metrics_render(m);
    g_assert_nonnull(strstr(text, "h_bucket{le=\"1\"} 1\n"));
    g_assert_nonnull(strstr(text, "h_bucket{le=\"10\"} 2\n"));
    g_assert_nonnull(strstr(text, "h_bucket{le=\"+Inf\"} 3\n"));
    g_assert_nonnull(strstr(text, "h_sum 55.5\n"));
    g_assert_nonnull(strstr(text, "h_count 3\n"));
}

TEST(gauge_reset)
{
    g_autoptr(VmbMetrics) m = vmb_metrics_new();
    g_autofree char *before = NULL;
    g_autofree char *after = NULL;

    vmb_metrics_declare(m, "g", VMB_METRIC_GAUGE, "a gauge", NULL, 0);
    vmb_metrics_set(m, "g", 7, "state", "running", NULL);
    before = vmb_metrics_render(m);
    g_assert_nonnull(strstr(before, "g{state=\"running\"} 7\n"));
    vmb_metrics_reset(m, "g");
    vmb_metrics_set(m, "g", 2, "state", "stopped", NULL);
    after = vmb_metrics_render(m);
    g_assert_null(strstr(after, "running"));
    g_assert_nonnull(strstr(after, "g{state=\"stopped\"} 2\n"));
}

TEST_MAIN()
