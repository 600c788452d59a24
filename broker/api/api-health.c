// SPDX-License-Identifier: LGPL-2.1-or-later
// Liveness and readiness. /readyz asks PostgreSQL and libvirt for real on every call, so a
// load balancer stops sending work to a broker whose dependencies are gone.
#include "api.h"

#include <string.h>

#include "api-common.h"
#include "db-hosts.h"
#include "dom-network.h"
#include "dom-virt.h"
#include "http-problem.h"
#include "svc-health.h"
#include "vmb-log.h"

/**
 * api_health_live:
 * @req: the request
 * @app: the daemon's state
 *
 * Returns: 200 as long as the process serves HTTP.
 */
HttpReply *
api_health_live(HttpRequest *req, void *app)
{
    g_autoptr(json_object) obj = json_object_new_object();

    json_object_object_add(obj, "status", json_object_new_string("ok"));
    return http_reply_json(200, obj);
}

/* How long /readyz waits for libvirt's answer without keepalive: a load balancer's probe
 * must not hang on a libvirtd that accepts but never answers. With keepalive, as long as it
 * takes keepalive to declare the connection dead. */
#define READY_PING_MS 2000

typedef struct {
    DomHypervisor *hv;
    const char *network;       /* the guest network's name */
    bool ok;                   /* out */
    const char *network_state; /* out: dom_network_state(), NULL when unknown */
    GError *error;             /* out */
} PingJob;

static void
ping_job_free(gpointer data)
{
    PingJob *job = data;

    g_clear_error(&job->error);
    g_free(job);
}

static void
ping_job_run(gpointer data)
{
    PingJob *job = data;
    g_autoptr(virConnect) conn = NULL;
    g_autoptr(GError) net_error = NULL;

    job->ok = dom_hypervisor_ping(job->hv, &job->error);
    if (!job->ok)
        return;
    conn = dom_hypervisor_get(job->hv, &net_error);
    if (conn)
        job->network_state = dom_network_state(conn, job->network, &net_error);
    if (net_error)
        vmb_warning("readyz: %s", net_error->message);
}

/* dom_hypervisor_ping() within its bound. A ping that finds no answer marks the connection
 * lost: requests then get "unavailable" at once rather than queue more calls on it (libvirt's
 * client does not cope well with several calls in flight on a connection that is closed
 * under them). */
static bool
ping_libvirt(App *a, const char **ret_network_state, GError **error)
{
    PingJob *job = g_new0(PingJob, 1);
    guint bound_ms = a->cfg->libvirt_keepalive_interval_s
                         ? a->cfg->libvirt_keepalive_interval_s *
                               (a->cfg->libvirt_keepalive_count + 1) * 1000
                         : READY_PING_MS;
    bool ok;

    job->hv = a->hv;
    job->network = a->cfg->guests_network;
    if (!vmb_bounded_run(a->bounded, ping_job_run, job, ping_job_free, bound_ms, NULL)) {
        dom_hypervisor_mark_lost(a->hv, "no answer");
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE,
                    "libvirt did not answer within %u ms", bound_ms);
        return false;
    }
    ok = job->ok;
    *ret_network_state = job->network_state;
    if (!ok)
        g_propagate_error(error, g_steal_pointer(&job->error));
    ping_job_free(job);
    return ok;
}

/* Each host's libvirt: the configured one as just pinged, the added ones as their
 * connections stand (keepalive watches them). Added hosts do not decide readiness: creates
 * go to the hosts that are up. */
static json_object *
hosts_check(App *a, bool configured_ok)
{
    json_object *out = json_object_new_object();
    g_autoptr(GPtrArray) states = a->fleet ? svc_fleet_states(a->fleet) : NULL;

    json_object_object_add(out, DB_HOST_CONFIGURED,
                           json_object_new_string(configured_ok ? "ok" : "down"));
    for (guint i = 0; states && i < states->len; i++) {
        const SvcFleetHostState *s = states->pdata[i];
        json_object_object_add(out, s->name, json_object_new_string(s->up ? "ok" : "down"));
    }
    return out;
}

/**
 * api_health_ready:
 * @req: the request
 * @app: the daemon's state
 *
 * Both answers carry `checks` and `accelerator` ({mode, accelerator, finding, fix}): what
 * new guests get on this host, and why; for callers api_sees_internals() allows. Others get
 * the status alone. `checks.guest_network` is the guest network's state (dom_network_state(),
 * "unknown" when libvirt is down); it does not decide readiness, since the next create
 * defines and starts what is missing. `checks.hosts` names each host's libvirt state.
 *
 * Returns: 200 when PostgreSQL and libvirt answer and guests can get an accelerator, else
 * 503 naming what is down.
 */
HttpReply *
api_health_ready(HttpRequest *req, void *app)
{
    App *a = app;
    g_autoptr(GError) db_err = NULL;
    g_autoptr(GError) hv_err = NULL;
    bool db_ok = svc_health_db_ping(a->health, &db_err);
    const char *network_state = NULL;
    bool hv_ok = ping_libvirt(a, &network_state, &hv_err);
    bool decided = svc_accel_decided(a->accel);
    bool accel_ok = decided && svc_accel_check(a->accel, NULL);
    json_object *checks = json_object_new_object();
    g_autoptr(GString) down = g_string_new(NULL);

    json_object_object_add(checks, "database", json_object_new_string(db_ok ? "ok" : "down"));
    json_object_object_add(checks, "libvirt", json_object_new_string(hv_ok ? "ok" : "down"));
    json_object_object_add(checks, "accelerator",
                           json_object_new_string(accel_ok ? "ok" : decided ? "unusable"
                                                                            : "undecided"));
    json_object_object_add(checks, "guest_network",
                           json_object_new_string(network_state ? network_state : "unknown"));
    json_object_object_add(checks, "hosts", hosts_check(a, hv_ok));
    bool inside = api_sees_internals(req, a);

    if (db_ok && hv_ok && accel_ok) {
        g_autoptr(json_object) obj = json_object_new_object();
        json_object_object_add(obj, "status", json_object_new_string("ready"));
        if (inside) {
            json_object_object_add(obj, "checks", checks);
            json_object_object_add(obj, "accelerator", svc_accel_to_json(a->accel));
        } else {
            json_object_put(checks);
        }
        return http_reply_json(200, obj);
    }
    if (!db_ok) {
        vmb_warning("readyz: %s", db_err->message);
        g_string_append(down, "database");
    }
    if (!hv_ok) {
        vmb_warning("readyz: %s", hv_err->message);
        g_string_append_printf(down, "%slibvirt", down->len ? " and " : "");
    }
    if (!accel_ok)
        g_string_append_printf(down, "%sthe accelerator", down->len ? " and " : "");
    if (!inside) {
        json_object_put(checks);
        return http_problem_kind(VMB_ERROR_UNAVAILABLE, "Not ready.", NULL);
    }
    {
        g_autoptr(json_object) extra = json_object_new_object();
        g_autofree char *detail = g_strdup_printf("Not ready: %s unavailable.", down->str);
        json_object_object_add(extra, "checks", checks);
        json_object_object_add(extra, "accelerator", svc_accel_to_json(a->accel));
        return http_problem_kind(VMB_ERROR_UNAVAILABLE, detail, g_steal_pointer(&extra));
    }
}

/**
 * api_health_metrics:
 * @req: GET /metrics
 * @app: the daemon's state
 *
 * Gauges that describe state elsewhere (the database, the read cache, the relay) are read
 * at scrape time, through svc_health_refresh_metrics() and svc_console_stats().
 *
 * Returns: 200 text/plain in Prometheus exposition format 0.0.4; 403 for callers
 * api_sees_internals() refuses.
 */
HttpReply *
api_health_metrics(HttpRequest *req, void *app)
{
    App *a = app;
    VmbSpliceStats relay;
    char *text;

    if (!api_sees_internals(req, a))
        return http_problem_kind(VMB_ERROR_FORBIDDEN,
                                 "Metrics are served to the addresses the operator allows.",
                                 NULL);
    svc_health_refresh_metrics(a->health);
    svc_console_stats(a->console, &relay);
    vmb_metrics_set(a->metrics, "vmbroker_console_connections", relay.connections, NULL);
    text = vmb_metrics_render(a->metrics);
    return http_reply_new(200, "text/plain; version=0.0.4; charset=utf-8",
                          g_bytes_new_take(text, strlen(text)));
}
