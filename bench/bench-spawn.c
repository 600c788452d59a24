// SPDX-License-Identifier: LGPL-2.1-or-later
// bench/spawn: time from "start this VM" to a running guest, through domains/ (build the
// XML, define a persistent domain, start it) against `virsh create` of the same XML, in
// one run, rounds interleaved. Prints medians and their ratio. Run by hand, not by CI.
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "dom-accel.h"
#include "dom-lifecycle.h"
#include "dom-template.h"
#include "dom-virt.h"
#include "dom-xml.h"

#define ROUNDS 10

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;

    return (x > y) - (x < y);
}

static double
median(double *v, int n)
{
    qsort(v, (size_t) n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static char *
make_xml(const DomTemplate *t, const char *type, const char *name, guint port, GError **error)
{
    DomInstance in = {
        .domain_type = type, .name = name, .vm_id = name, .owner = "bench",
        .created = "2026-01-01T00:00:00Z", .vnc_port = port, .ws_port = port + 100,
        .listen = "127.0.0.1", .vnc_password = "bench",
    };

    return dom_xml_build_string(t, &in, error);
}

/* The type vmbroker would choose here (auto): KVM only where a probe guest runs. */
static char *
choose_type(virConnectPtr conn, const char *dir)
{
    g_autofree char *image = g_build_filename(dir, "kvm-probe.img", NULL);
    DomAccelProbe probe = { DOM_ACCEL_AUTO, "vmbench-spawn-probe", image, 5000 };
    g_autoptr(DomAccelChoice) c = dom_accel_choose(conn, &probe);

    if (!c->domain_type) {
        fprintf(stderr, "bench-spawn: no domain type: %s\n", c->finding);
        return NULL;
    }
    printf("domain type %s: %s\n", c->domain_type, c->finding);
    return g_strdup(c->domain_type);
}

/* `virsh create PATH`, timed from *ret_t0 to *ret_t1. */
static bool
virsh_create(const char *uri, const char *path, gint64 *ret_t0, gint64 *ret_t1)
{
    const char *av[] = { "virsh", "-q", "-c", uri, "create", path, NULL };
    g_autoptr(GError) error = NULL;
    int status = -1;

    *ret_t0 = g_get_monotonic_time();
    if (!g_spawn_sync(NULL, (char **) av, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL,
                      NULL, NULL, NULL, NULL, &status, &error) ||
        !g_spawn_check_wait_status(status, &error)) {
        fprintf(stderr, "bench-spawn: virsh create: %s\n", error->message);
        return false;
    }
    *ret_t1 = g_get_monotonic_time();
    return true;
}

/* The table: medians, extremes and the ratio. */
static void
print_summary(const char *type, const char *uri, double *ours, double *theirs,
              double *define_ms)
{
    double lo_a = ours[0], hi_a = ours[0], lo_b = theirs[0], hi_b = theirs[0];
    double med_a, med_b;
    for (int r = 1; r < ROUNDS; r++) {
        lo_a = MIN(lo_a, ours[r]);
        hi_a = MAX(hi_a, ours[r]);
        lo_b = MIN(lo_b, theirs[r]);
        hi_b = MAX(hi_b, theirs[r]);
    }
    med_a = median(ours, ROUNDS);
    med_b = median(theirs, ROUNDS);
    printf("bench/spawn: %d rounds each, memtest template, domain type %s, %s\n", ROUNDS,
           type, uri);
    printf("%-36s %10s %10s %10s\n", "path", "median ms", "min ms", "max ms");
    printf("%-36s %10.1f %10.1f %10.1f\n", "domains/ (XML + define + start)", med_a, lo_a, hi_a);
    printf("%-36s %10.1f %10.1f %10.1f\n", "virsh create (same XML)", med_b, lo_b, hi_b);
    printf("%-36s %10.1f\n", "  of which XML + define", median(define_ms, ROUNDS));
    printf("ratio domains/ : virsh create = %.3f (target <= 1.05)\n", med_a / med_b);
}

int
main(int argc, char **argv)
{
    const char *uri = argc > 1 ? argv[1] : "qemu:///system";
    g_autoptr(GError) error = NULL;
    g_autoptr(virConnect) conn = dom_virt_connect(uri, &error);
    g_autoptr(DomTemplate) t = NULL;
    g_autofree char *type = NULL;
    g_autofree char *dir = NULL;
    double ours[ROUNDS], theirs[ROUNDS], define_ms[ROUNDS];
    guint port = 6190; /* VNC 6190-6199, websocket 6290-6299: the test ranges' top */

    if (!conn) {
        fprintf(stderr, "bench-spawn: %s\n", error->message);
        return 1;
    }
    t = dom_template_load_file(VMB_SOURCE_ROOT "/templates/memtest.json", &error);
    dir = t ? g_dir_make_tmp("vmbench-spawn-XXXXXX", &error) : NULL;
    if (!dir) {
        fprintf(stderr, "bench-spawn: %s\n", error->message);
        return 1;
    }
    g_chmod(dir, 0711);
    type = choose_type(conn, dir);
    if (!type)
        return 1;

    for (int r = 0; r < ROUNDS; r++) {
        g_autofree char *name_a = g_strdup_printf("vmbench-spawn-%d-ours-%d", (int) getpid(), r);
        g_autofree char *name_b = g_strdup_printf("vmbench-spawn-%d-virsh-%d", (int) getpid(), r);
        g_autofree char *xml_b = NULL, *path_b = NULL;
        g_autoptr(virDomain) dom = NULL;
        g_autoptr(virDomain) other = NULL;
        gint64 t0, t1;

        /* Ours: template -> XML -> define -> start. */
        t0 = g_get_monotonic_time();
        {
            g_autofree char *xml_a = make_xml(t, type, name_a, port, &error);
            dom = xml_a ? dom_lifecycle_define(conn, xml_a, &error) : NULL;
            define_ms[r] = (double) (g_get_monotonic_time() - t0) / 1000.0;
            if (!dom || !dom_lifecycle_start(dom, &error)) {
                fprintf(stderr, "bench-spawn: %s\n", error->message);
                if (dom)
                    dom_lifecycle_undefine(dom, true, NULL);
                return 1;
            }
        }
        t1 = g_get_monotonic_time();
        ours[r] = (double) (t1 - t0) / 1000.0;
        /* memtest burns a CPU under TCG: one guest at a time, gone at once. */
        dom_lifecycle_destroy(dom, NULL);
        dom_lifecycle_undefine(dom, true, NULL);

        /* Reference: the same XML (another name) through `virsh create`. */
        xml_b = make_xml(t, type, name_b, port + 1, &error);
        path_b = g_build_filename(dir, "domain.xml", NULL);
        g_assert(xml_b && g_file_set_contents(path_b, xml_b, -1, NULL));
        if (!virsh_create(uri, path_b, &t0, &t1))
            return 1;
        theirs[r] = (double) (t1 - t0) / 1000.0;
        other = virDomainLookupByName(conn, name_b);
        if (other)
            virDomainDestroy(other);
        g_unlink(path_b);
    }
    g_rmdir(dir);

    print_summary(type, uri, ours, theirs, define_ms);
    return 0;
}
