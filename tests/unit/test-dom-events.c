// SPDX-License-Identifier: LGPL-2.1-or-later
// The event loop and a watched hypervisor on libvirt's test driver: lifecycle events reach
// the callback in order, connections are counted, domains are listed by prefix.
#include <libvirt/libvirt.h>

#include "dom-hypervisor.h"
#include "dom-lifecycle.h"
#include "test.h"

/* A guard against a hang, not a measurement. */
#define WAIT_US (30 * G_USEC_PER_SEC)

typedef struct {
    char *name;
    int event;
    int detail;
} Seen;

static void
on_event(const char *name, int event, int detail, void *data)
{
    Seen *s = g_new0(Seen, 1);

    s->name = g_strdup(name);
    s->event = event;
    s->detail = detail;
    g_async_queue_push(data, s);
}

/* The next event of @name (others are skipped). */
static void
expect(GAsyncQueue *q, const char *name, int event, int detail)
{
    for (;;) {
        Seen *s = g_async_queue_timeout_pop(q, WAIT_US);
        bool match;

        g_assert_nonnull(s);
        match = g_str_equal(s->name, name);
        if (match) {
            g_assert_cmpint(s->event, ==, event);
            if (detail >= 0)
                g_assert_cmpint(s->detail, ==, detail);
        }
        g_free(s->name);
        g_free(s);
        if (match)
            return;
    }
}

static const char *const domain_xml =
    "<domain type='test'><name>evt-one</name><memory>65536</memory>"
    "<os><type>hvm</type></os></domain>";

TEST(lifecycle_events_reach_the_callback_in_order)
{
    g_autoptr(GAsyncQueue) q = g_async_queue_new();
    g_autoptr(DomHypervisor) hv = dom_hypervisor_new("test:///default");
    g_autoptr(GError) error = NULL;
    g_autoptr(virConnect) conn = NULL;
    g_autoptr(virDomain) dom = NULL;
    g_autoptr(GPtrArray) names = NULL;
    bool running = true;
    DomStopCause cause = DOM_STOP_UNKNOWN;

    g_assert_true(dom_hypervisor_watch(hv, &(DomHypervisorWatch) {
        .on_event = on_event, .data = q, .keepalive_interval_s = 0 }, &error));
    g_assert_true(dom_events_loop_running());
    g_assert_cmpuint(dom_hypervisor_generation(hv), ==, 0);
    /* Watched: only connect opens. */
    g_assert_null(dom_hypervisor_get(hv, &error));
    g_assert_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_UNAVAILABLE);
    g_clear_error(&error);
    conn = dom_hypervisor_connect(hv, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(dom_hypervisor_generation(hv), ==, 1);

    dom = dom_lifecycle_define(conn, domain_xml, &error);
    g_assert_no_error(error);
    expect(q, "evt-one", VIR_DOMAIN_EVENT_DEFINED, -1);
    g_assert_true(dom_lifecycle_start(dom, &error));
    expect(q, "evt-one", VIR_DOMAIN_EVENT_STARTED, -1);
    g_assert_true(dom_lifecycle_is_running(dom, &running, NULL, &error));
    g_assert_true(running);

    names = dom_lifecycle_list_names(conn, "evt-", &error);
    g_assert_no_error(error);
    g_assert_cmpuint(names->len, ==, 1);
    g_assert_cmpstr(names->pdata[0], ==, "evt-one");

    g_assert_true(dom_lifecycle_destroy(dom, &error));
    expect(q, "evt-one", VIR_DOMAIN_EVENT_STOPPED, VIR_DOMAIN_EVENT_STOPPED_DESTROYED);
    g_assert_true(dom_lifecycle_is_running(dom, &running, &cause, &error));
    g_assert_false(running);
    g_assert_cmpint(cause, ==, DOM_STOP_DESTROYED);
    g_assert_true(dom_lifecycle_undefine(dom, false, &error));
    expect(q, "evt-one", VIR_DOMAIN_EVENT_UNDEFINED, -1);

    /* The same live connection is handed out again: no new generation. */
    {
        g_autoptr(virConnect) again = dom_hypervisor_get(hv, &error);
        g_assert_true(again == conn);
        g_assert_cmpuint(dom_hypervisor_generation(hv), ==, 1);
    }
}

TEST(an_unreachable_hypervisor_is_unavailable)
{
    g_autoptr(DomHypervisor) hv = dom_hypervisor_new("qemu+unix:///system?socket=/nonexistent");
    g_autoptr(GError) error = NULL;

    g_assert_true(dom_hypervisor_watch(hv, &(DomHypervisorWatch) { 0 }, &error));
    g_assert_null(dom_hypervisor_connect(hv, &error));
    g_assert_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_UNAVAILABLE);
    g_assert_cmpuint(dom_hypervisor_generation(hv), ==, 0);
}

TEST_MAIN()
