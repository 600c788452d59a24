// SPDX-License-Identifier: LGPL-2.1-or-later
// `vmbroker serve`: migrate, reconcile PostgreSQL with libvirt, start the HTTP server, wait
// for SIGTERM or SIGINT, drain. Stopping never touches the guests: the next start finds them
// running and picks them up.
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "build-config.h"
#include "cmd.h"
#include "db-hosts.h"
#include "db-limits.h"
#include "db-migrate.h"
#include "db-ports.h"
#include "db-templates.h"
#include "dom-storage.h"
#include "svc-reaper.h"
#include "svc-sync.h"
#include "vmb-net.h"
#include "vmb-log.h"

typedef struct {
    const Config *cfg;
    const DomTemplateSet *templates;
    char *host_id; /* out */
} PrepareTx;

/* Brings the database in line with the config: host row, port ranges, running limit,
 * templates as loaded. */
static bool
prepare_tx(DbConn *conn, void *data, GError **error)
{
    PrepareTx *tx = data;
    const Config *cfg = tx->cfg;
    DbPortRanges ranges = {
        cfg->console_vnc_ports.first, cfg->console_vnc_ports.last,
        cfg->console_ws_ports.first, cfg->console_ws_ports.last,
    };

    g_clear_pointer(&tx->host_id, g_free);
    if (!db_hosts_ensure(conn, "local", cfg->libvirt_uri, &tx->host_id, error) ||
        !db_ports_sync(conn, tx->host_id, &ranges, error) ||
        !db_limits_set_max_running(conn, cfg->limits_max_running_per_user
                                              ? (int) cfg->limits_max_running_per_user : -1,
                                   error))
        return false;
    for (guint i = 0; i < dom_template_set_count(tx->templates); i++) {
        const DomTemplate *t = dom_template_set_nth(tx->templates, i);
        g_autoptr(json_object) def = dom_template_to_json(t);
        if (!db_templates_upsert(conn, t->name, dom_template_kind_to_string(t->kind),
                                 json_object_to_json_string_ext(def, JSON_C_TO_STRING_PLAIN),
                                 NULL, error))
            return false;
    }
    return true;
}

/**
 * cmd_serve:
 * @config_path: (nullable): config file
 * @argc: argument count, argv[0] is "serve"
 * @argv: arguments
 *
 * Runs the daemon until SIGTERM or SIGINT, then finishes requests in flight.
 *
 * Returns: the exit status.
 */
int
cmd_serve(const char *config_path, int argc, char **argv)
{
    GOptionEntry entries[] = { G_OPTION_ENTRY_NULL };
    g_autoptr(GOptionContext) ctx = g_option_context_new("");
    g_autoptr(Config) cfg = NULL;
    /* Declared before the services, so freed after them: their last jobs still count. */
    g_autoptr(VmbMetrics) metrics = vmb_metrics_new();
    g_autoptr(DbPool) pool = NULL;
    g_autoptr(DbCache) cache = NULL; /* freed before the pool it counts changes of */
    g_autoptr(DomHypervisor) hv = NULL;
    g_autoptr(SvcAuth) auth = NULL;
    g_autoptr(DomTemplateSet) templates = NULL;
    g_autoptr(SvcVms) vms = NULL;
    g_autoptr(SvcConsole) console = NULL;
    g_autoptr(SvcReaper) reaper = NULL;
    g_autoptr(SvcSync) sync = NULL; /* freed first: its callbacks use vms and hv */
    g_autoptr(SvcIsos) isos = NULL;
    g_autofree char *host_id = NULL;
    PrepareTx prep;
    g_autoptr(GError) error = NULL;
    HttpServer *srv;
    sigset_t sigs;
    int sig = 0, applied = 0;
    App app;

    g_set_prgname("vmbroker serve");
    g_option_context_set_summary(ctx, "Runs the daemon: HTTP API, web UI and console proxy.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &error) || argc != 1) {
        cmd_fail("serve: %s", error ? error->message : "takes no arguments");
        return CMD_EXIT_USAGE;
    }
    cfg = cmd_load_config(config_path);
    if (!cfg)
        return CMD_EXIT_FAILURE;

    /* Block the signals before any thread starts (the read cache's LISTEN thread is the
     * first, libvirt's event loop the next), so only sigwait below sees them: a thread that
     * did not block them would take a SIGTERM's default action and end the daemon undrained. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    pool = db_pool_new(&(DbPoolOptions) {
        .conninfo = cfg->database_url,
        .size = cfg->database_pool_size,
        .acquire_timeout_ms = 5000,
        .statement_timeout_ms = cfg->database_statement_timeout_ms,
        .max_retries = 5,
        .connect_timeout_s = 10,
    });
    {
        g_autoptr(DbConn) conn = db_pool_acquire(pool, &error);
        if (!conn || !db_migrate_apply(conn, &applied, &error)) {
            cmd_fail("%s", error->message);
            return CMD_EXIT_FAILURE;
        }
    }
    if (applied)
        vmb_info("applied %d migration(s); schema at version %d", applied,
                 db_migrate_known_version());

    cache = db_cache_new(pool, cfg->database_url, cfg->database_cache_entries);

    templates = dom_template_set_load_dir(cfg->templates_dir, &error);
    if (!templates) {
        cmd_fail("%s", error->message);
        return CMD_EXIT_FAILURE;
    }
    prep = (PrepareTx) { cfg, templates, NULL };
    if (!db_pool_transaction(pool, prepare_tx, &prep, &error)) {
        cmd_fail("%s", error->message);
        return CMD_EXIT_FAILURE;
    }
    host_id = g_steal_pointer(&prep.host_id);

    /* With a local hypervisor QEMU listens here: an address this host lacks would only show
     * later, as every console port "held by someone else". */
    if ((g_str_has_prefix(cfg->libvirt_uri, "qemu:///") ||
         g_str_has_prefix(cfg->libvirt_uri, "qemu+unix:///")) &&
        !vmb_net_port_is_free(cfg->console_listen, 0, NULL)) {
        cmd_fail("config: console.listen = '%s': not an address of this host, so QEMU cannot "
                 "listen there", cfg->console_listen);
        return CMD_EXIT_FAILURE;
    }

    hv = dom_hypervisor_new(cfg->libvirt_uri);
    {
        g_autoptr(virConnect) conn = dom_hypervisor_get(hv, &error);
        if (!conn || !dom_storage_ensure_pools(conn, cfg->libvirt_name_prefix, cfg->storage_dir,
                                               &error)) {
            vmb_warning("%s (serving anyway; /readyz reports it)", error->message);
            g_clear_error(&error);
        }
    }

    auth = svc_auth_new(&(SvcAuthOptions) {
        .argon2 = { cfg->auth_argon2_memory_kib, cfg->auth_argon2_iterations,
                    cfg->auth_argon2_lanes },
        .max_hashing = cfg->auth_max_hashing,
        .session_idle_s = cfg->auth_session_idle_s,
        .session_max_s = cfg->auth_session_max_s,
        .max_failures_user = cfg->auth_login_failures_per_user,
        .max_failures_addr = cfg->auth_login_failures_per_addr,
        .window_s = cfg->auth_login_window_s,
    });
    vmb_metrics_declare(metrics, "vmbroker_db_pool_waits_total", VMB_METRIC_COUNTER,
                        "Database connection requests that had to wait.", NULL, 0);
    vmb_metrics_declare(metrics, "vmbroker_cache_lookups_total", VMB_METRIC_COUNTER,
                        "Token checks and VM lists by whether the read cache answered.",
                        NULL, 0);
    vmb_metrics_declare(metrics, "vmbroker_cache_listening", VMB_METRIC_GAUGE,
                        "1 while the cache's LISTEN connection is up (else it is bypassed).",
                        NULL, 0);
    vmb_metrics_declare(metrics, "vmbroker_vms", VMB_METRIC_GAUGE, "VMs by state.", NULL, 0);
    vmb_metrics_declare(metrics, "vmbroker_ports_free", VMB_METRIC_GAUGE,
                        "Console ports that can be leased now, by kind.", NULL, 0);
    vmb_metrics_declare(metrics, "vmbroker_console_connections", VMB_METRIC_GAUGE,
                        "Console connections open now.", NULL, 0);
    vms = svc_vms_new(&(SvcVmsOptions) {
        .db = pool,
        .hv = hv,
        .templates = templates,
        .host_id = host_id,
        .name_prefix = cfg->libvirt_name_prefix,
        .console_listen = cfg->console_listen,
        .port_cooldown_s = cfg->console_port_cooldown_s,
        .port_quarantine_s = cfg->console_port_quarantine_s,
        .stop_timeout_s = cfg->libvirt_stop_timeout_s,
        .max_running_per_user = cfg->limits_max_running_per_user,
        .host_memory_mib = cfg->limits_host_memory_mib,
        .ticket_ttl_s = cfg->console_ticket_ttl_s,
        .metrics = metrics,
    });
    console = svc_console_new(&(SvcConsoleOptions) {
        .db = pool,
        .hv = hv,
        .vms = vms,
        .templates = templates,
        .console_listen = cfg->console_listen,
        .buffer_size = cfg->console_buffer_bytes,
        .metrics = metrics,
    }, &error);
    if (!console) {
        cmd_fail("%s", error->message);
        return CMD_EXIT_FAILURE;
    }
    isos = svc_isos_new(&(SvcIsosOptions) {
        .db = pool,
        .hv = hv,
        .storage_dir = cfg->storage_dir,
        .name_prefix = cfg->libvirt_name_prefix,
        .max_bytes = cfg->storage_max_iso_bytes,
        .quota_bytes = cfg->storage_user_quota_bytes,
    });
    sync = svc_sync_new(&(SvcSyncOptions) {
        .db = pool,
        .hv = hv,
        .vms = vms,
        .host_id = host_id,
        .name_prefix = cfg->libvirt_name_prefix,
        .events = cfg->libvirt_events,
        .interval_s = cfg->libvirt_sync_interval_s,
        .keepalive_interval_s = cfg->libvirt_keepalive_interval_s,
        .keepalive_count = cfg->libvirt_keepalive_count,
        .destroy_orphans = strcmp(cfg->libvirt_adopt_orphans, "destroy") == 0,
        .port_cooldown_s = cfg->console_port_cooldown_s,
        .metrics = metrics,
    }, &error);
    if (!sync) {
        cmd_fail("%s", error->message);
        return CMD_EXIT_FAILURE;
    }
    /* Before serving: whatever changed while vmbroker was down (guests that stopped,
     * creates and deletes a crash cut short, domains without rows) is repaired first. */
    if (svc_sync_reconcile(sync, &error))
        vmb_info("reconciled PostgreSQL with libvirt");
    else {
        vmb_warning("reconciliation: %s (serving anyway; it is retried until it succeeds)",
                    error->message);
        g_clear_error(&error);
    }
    svc_sync_start(sync);
    reaper = svc_reaper_start(&(SvcReaperOptions) {
        .db = pool,
        .vms = vms,
        .console = console,
        .templates = templates,
        .interval_s = cfg->console_reaper_interval_s,
    });
    app = (App) {
        .cfg = cfg,
        .db = pool,
        .cache = cache,
        .hv = hv,
        .auth = auth,
        .metrics = metrics,
        .templates = templates,
        .vms = vms,
        .console = console,
        .isos = isos,
        .host_id = host_id,
        .secure_cookies = g_str_has_prefix(cfg->http_public_url, "https://"),
    };
    srv = http_server_start(&(HttpServerOptions) {
        .listen_host = cfg->http_listen_host,
        .listen_port = cfg->http_listen_port,
        .threads = cfg->http_threads,
        .max_connections = cfg->http_max_connections,
        .per_ip_connections = cfg->http_per_ip_connections,
        .connection_timeout_s = cfg->http_connection_timeout_s,
        .max_body_bytes = cfg->http_max_body_bytes,
        .routes = api_routes,
        .nroutes = api_routes_count,
        .app = &app,
        .metrics = metrics,
    }, &error);
    if (!srv) {
        cmd_fail("%s", error->message);
        return CMD_EXIT_FAILURE;
    }
    vmb_info("vmbroker %s listening on http://%s%s%s:%u (public URL %s)", VMB_VERSION,
             strchr(cfg->http_listen_host, ':') ? "[" : "", cfg->http_listen_host,
             strchr(cfg->http_listen_host, ':') ? "]" : "", http_server_port(srv),
             cfg->http_public_url);

    while (sigwait(&sigs, &sig) != 0)
        ;
    vmb_info("received %s: finishing requests in flight, then stopping", strsignal(sig));
    http_server_stop(srv, cfg->http_shutdown_timeout_s);
    vmb_info("stopped");
    return CMD_EXIT_OK;
}
