// SPDX-License-Identifier: LGPL-2.1-or-later
// Metric families hold series keyed by their rendered label set ({a="x",b="y"}), so the
// label text is built (and escaped) once per update and rendering is a sorted walk.
#include "vmb-metrics.h"

#include <stdarg.h>
#include <string.h>

typedef struct {
    double value;      /* counter or gauge value; histogram sum */
    guint64 count;     /* histogram observations */
    guint64 *buckets;  /* histogram: observations <= each bound */
} Series;

typedef struct {
    VmbMetricType type;
    char *help;
    double *bounds;
    size_t nbounds;
    GHashTable *series; /* label text -> Series */
} Family;

struct VmbMetrics {
    GMutex lock;
    GHashTable *families; /* name -> Family */
};

static const char *const type_names[] = {
    [VMB_METRIC_COUNTER] = "counter",
    [VMB_METRIC_GAUGE] = "gauge",
    [VMB_METRIC_HISTOGRAM] = "histogram",
};
G_STATIC_ASSERT(G_N_ELEMENTS(type_names) == VMB_METRIC_LAST);

static void
series_free(gpointer p)
{
    Series *s = p;
    g_free(s->buckets);
    g_free(s);
}

static void
family_free(gpointer p)
{
    Family *f = p;
    g_free(f->help);
    g_free(f->bounds);
    g_hash_table_unref(f->series);
    g_free(f);
}

/**
 * vmb_metrics_new:
 *
 * Returns: (transfer full): an empty registry.
 */
VmbMetrics *
vmb_metrics_new(void)
{
    VmbMetrics *m = g_new0(VmbMetrics, 1);

    g_mutex_init(&m->lock);
    m->families = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, family_free);
    return m;
}

/**
 * vmb_metrics_free:
 * @m: (nullable): a registry
 */
void
vmb_metrics_free(VmbMetrics *m)
{
    if (!m)
        return;
    g_hash_table_unref(m->families);
    g_mutex_clear(&m->lock);
    g_free(m);
}

/**
 * vmb_metrics_declare:
 * @m: the registry
 * @name: family name, e.g. vmbroker_http_requests_total
 * @type: counter, gauge or histogram
 * @help: one line of HELP text
 * @buckets: (array length=nbuckets) (nullable): histogram upper bounds, ascending
 * @nbuckets: their count
 */
void
vmb_metrics_declare(VmbMetrics *m, const char *name, VmbMetricType type, const char *help,
                    const double *buckets, size_t nbuckets)
{
    Family *f;

    g_mutex_lock(&m->lock);
    f = g_hash_table_lookup(m->families, name);
    g_mutex_unlock(&m->lock);
    if (f && f->type == type)
        return; /* declared by another instance (a reconciler per host): its series stay */
    f = g_new0(Family, 1);
    f->type = type;
    f->help = g_strdup(help);
    if (type == VMB_METRIC_HISTOGRAM) {
        f->bounds = g_memdup2(buckets, nbuckets * sizeof(double));
        f->nbounds = nbuckets;
    }
    f->series = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, series_free);
    g_mutex_lock(&m->lock);
    g_hash_table_replace(m->families, g_strdup(name), f);
    g_mutex_unlock(&m->lock);
}

static void
append_escaped(GString *out, const char *value)
{
    for (const char *p = value; *p; p++) {
        if (*p == '\\' || *p == '"')
            g_string_append_c(out, '\\');
        if (*p == '\n')
            g_string_append(out, "\\n");
        else
            g_string_append_c(out, *p);
    }
}

static char *
labels_text(va_list ap)
{
    GString *out = g_string_new(NULL);
    const char *key;

    while ((key = va_arg(ap, const char *))) {
        const char *value = va_arg(ap, const char *);
        g_string_append_printf(out, "%s%s=\"", out->len ? "," : "", key);
        append_escaped(out, value ? value : "");
        g_string_append_c(out, '"');
    }
    return g_string_free(out, FALSE);
}

/* Finds or makes the series; called with the lock held. NULL for an undeclared family. */
static Series *
series_get(VmbMetrics *m, const char *name, const char *labels, Family **ret_family)
{
    Family *f = g_hash_table_lookup(m->families, name);
    Series *s;

    if (!f)
        return NULL;
    s = g_hash_table_lookup(f->series, labels);
    if (!s) {
        s = g_new0(Series, 1);
        if (f->type == VMB_METRIC_HISTOGRAM)
            s->buckets = g_new0(guint64, f->nbounds);
        g_hash_table_insert(f->series, g_strdup(labels), s);
    }
    *ret_family = f;
    return s;
}

typedef enum { UPDATE_ADD, UPDATE_SET, UPDATE_OBSERVE } UpdateOp;

static void
update(VmbMetrics *m, const char *name, double value, UpdateOp op, va_list ap)
{
    g_autofree char *labels = labels_text(ap);
    Family *f = NULL;
    Series *s;

    g_mutex_lock(&m->lock);
    s = series_get(m, name, labels, &f);
    if (s && op == UPDATE_ADD) {
        s->value += value;
    } else if (s && op == UPDATE_SET) {
        s->value = value;
    } else if (s && op == UPDATE_OBSERVE) {
        s->value += value;
        s->count++;
        for (size_t i = 0; i < f->nbounds; i++)
            if (value <= f->bounds[i])
                s->buckets[i]++;
    }
    g_mutex_unlock(&m->lock);
}

/**
 * vmb_metrics_add:
 * @m: the registry
 * @name: a declared counter or gauge
 * @value: the increment
 * @...: label name and value pairs, then NULL
 */
void
vmb_metrics_add(VmbMetrics *m, const char *name, double value, ...)
{
    va_list ap;

    va_start(ap, value);
    update(m, name, value, UPDATE_ADD, ap);
    va_end(ap);
}

/**
 * vmb_metrics_set:
 * @m: the registry
 * @name: a declared gauge
 * @value: the new value
 * @...: label name and value pairs, then NULL
 */
void
vmb_metrics_set(VmbMetrics *m, const char *name, double value, ...)
{
    va_list ap;

    va_start(ap, value);
    update(m, name, value, UPDATE_SET, ap);
    va_end(ap);
}

/**
 * vmb_metrics_observe:
 * @m: the registry
 * @name: a declared histogram
 * @value: the observation
 * @...: label name and value pairs, then NULL
 */
void
vmb_metrics_observe(VmbMetrics *m, const char *name, double value, ...)
{
    va_list ap;

    va_start(ap, value);
    update(m, name, value, UPDATE_OBSERVE, ap);
    va_end(ap);
}

/**
 * vmb_metrics_reset:
 * @m: the registry
 * @name: a declared family
 */
void
vmb_metrics_reset(VmbMetrics *m, const char *name)
{
    Family *f;

    g_mutex_lock(&m->lock);
    f = g_hash_table_lookup(m->families, name);
    if (f)
        g_hash_table_remove_all(f->series);
    g_mutex_unlock(&m->lock);
}

static void
render_series(GString *out, const char *name, const Family *f, const char *labels,
              const Series *s)
{
    const char *sep = *labels ? "," : "";

    if (f->type != VMB_METRIC_HISTOGRAM) {
        g_string_append_printf(out, "%s%s%s%s %.17g\n", name, *labels ? "{" : "", labels,
                               *labels ? "}" : "", s->value);
        return;
    }
    for (size_t i = 0; i < f->nbounds; i++)
        g_string_append_printf(out, "%s_bucket{%s%sle=\"%g\"} %" G_GUINT64_FORMAT "\n", name,
                               labels, sep, f->bounds[i], s->buckets[i]);
    g_string_append_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %" G_GUINT64_FORMAT "\n", name,
                           labels, sep, s->count);
    g_string_append_printf(out, "%s_sum%s%s%s %.17g\n", name, *labels ? "{" : "", labels,
                           *labels ? "}" : "", s->value);
    g_string_append_printf(out, "%s_count%s%s%s %" G_GUINT64_FORMAT "\n", name,
                           *labels ? "{" : "", labels, *labels ? "}" : "", s->count);
}

/**
 * vmb_metrics_render:
 * @m: the registry
 *
 * Returns: (transfer full): every family in Prometheus text format, sorted by name.
 */
char *
vmb_metrics_render(VmbMetrics *m)
{
    GString *out = g_string_new(NULL);
    g_autoptr(GList) names = NULL;

    g_mutex_lock(&m->lock);
    names = g_list_sort(g_hash_table_get_keys(m->families), (GCompareFunc) strcmp);
    for (GList *n = names; n; n = n->next) {
        const Family *f = g_hash_table_lookup(m->families, n->data);
        g_autoptr(GList) keys = g_list_sort(g_hash_table_get_keys(f->series),
                                            (GCompareFunc) strcmp);
        g_string_append_printf(out, "# HELP %s %s\n# TYPE %s %s\n", (char *) n->data, f->help,
                               (char *) n->data, type_names[f->type]);
        for (GList *k = keys; k; k = k->next)
            render_series(out, n->data, f, k->data, g_hash_table_lookup(f->series, k->data));
    }
    g_mutex_unlock(&m->lock);
    return g_string_free(out, FALSE);
}
