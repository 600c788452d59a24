// SPDX-License-Identifier: LGPL-2.1-or-later
// `vmbroker serve`: migrate, reconcile PostgreSQL with libvirt, start the HTTP server, wait
// for SIGTERM or SIGINT, drain. Stopping never touches the guests: the next start finds them
// running and picks them up.
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "build-config.h"
#include "cmd.h"
#include "db-hosts.h"
#include "db-limits.h"
#include "db-migrate.h"
#include "db-ports.h"
#include "dom-storage.h"
#include "svc-fleet.h"
#include "svc-health.h"
#include "svc-janitor.h"
#include "svc-reaper.h"
#include "svc-sync.h"
#include "vmb-net.h"
#include "vmb-notify.h"
#include "vmb-periodic.h"
#include "vmb-log.h"

/* Requests' libvirt work under way at once (creates, starts, reboots, deletes, console
 * passwords, readiness pings); more wait their turn within their callers' bound. */
#define LIBVIRT_WORKERS 16
/* Creates run at once (App.creates). */
#define CREATE_WORKERS 4

/* How often the warm pools' filler looks. */
#define POOLS_INTERVAL_S 2
/* How often the hosts table is read for hosts added while serving. */
#define HOSTS_INTERVAL_S 2

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
    DbHostSpec host = cmd_configured_host(cfg);

    g_clear_pointer(&tx->host_id, g_free);
    if (!db_hosts_ensure_configured(conn, &host, &tx->host_id, error) ||
        !db_ports_sync(conn, tx->host_id, &host.ranges, error) ||
        !db_limits_set_max_running(conn, cfg->limits_max_running_per_user
                                              ? (int) cfg->limits_max_running_per_user : -1,
                                   error))
        return false;
    return svc_templates_store(conn, tx->templates, error);
}

/* The reaper's view of console activity. */
static void
console_activity(const char *vm_id, unsigned *ret_connections, gint64 *ret_last_client_us,
                 gpointer data)
{
    svc_console_vm_activity(data, vm_id, ret_connections, ret_last_client_us);
}

/* What `serve` runs, owned here. Freed in daemon_clear(), in the reverse of the order the
 * fields are made in: services first (their last jobs still count into metrics and use
 * libvirt and the pool), then the bounded runner (waiting for jobs under way), libvirt, the
 * cache, the pool. */
typedef struct {
    Config *cfg;
    VmbMetrics *metrics;
    DbPool *pool;
    DbCache *cache;           /* counts changes of pool: freed before it */
    SvcTemplates *templates;  /* replaced by a SIGHUP */
    char *host_id;
    DomHypervisor *hv;
    SvcAccel *accel;
    VmbBounded *bounded;      /* requests' libvirt work, waited for at most call_timeout_s */
    SvcAuth *auth;
    SvcUsers *users;
    SvcHosts *hosts;
    SvcPools *pools;          /* stopped before vms: its filler creates and deletes */
    SvcOps *ops;              /* freed first: its workers use the services below */
    SvcEvents *events;        /* its streams end with the HTTP server */
    SvcVms *vms;
    SvcConsole *console;
    SvcIsos *isos;
    SvcImages *images;
    SvcSync *sync;            /* freed before vms and hv: its callbacks use them */
    SvcFleet *fleet;          /* added hosts: stopped with sync, freed after vms */
    SvcReaper *reaper;
    SvcJanitor *janitor;
    SvcHealth *health;        /* what /readyz and /metrics read from the database */
} Daemon;

static void
daemon_clear(Daemon *d)
{
    g_clear_pointer(&d->pools, svc_pools_stop);
    g_clear_pointer(&d->ops, svc_ops_free);
    g_clear_pointer(&d->events, svc_events_free);
    g_clear_pointer(&d->janitor, svc_janitor_stop);
    g_clear_pointer(&d->reaper, svc_reaper_stop);
    if (d->fleet)
        svc_fleet_stop(d->fleet);
    g_clear_pointer(&d->sync, svc_sync_free);
    g_clear_pointer(&d->images, svc_images_free);
    g_clear_pointer(&d->isos, svc_isos_free);
    g_clear_pointer(&d->console, svc_console_free);
    g_clear_pointer(&d->vms, svc_vms_free);
    g_clear_pointer(&d->fleet, svc_fleet_free);
    g_clear_pointer(&d->health, svc_health_free);
    g_clear_pointer(&d->auth, svc_auth_free);
    g_clear_pointer(&d->users, svc_users_free);
    g_clear_pointer(&d->hosts, svc_hosts_free);
    g_clear_pointer(&d->bounded, vmb_bounded_free);
    g_clear_pointer(&d->accel, svc_accel_free);
    g_clear_pointer(&d->hv, dom_hypervisor_free);
    g_clear_pointer(&d->host_id, g_free);
    g_clear_pointer(&d->templates, svc_templates_free);
    g_clear_pointer(&d->cache, db_cache_free);
    g_clear_pointer(&d->pool, db_pool_free);
    g_clear_pointer(&d->metrics, vmb_metrics_free);
    g_clear_pointer(&d->cfg, config_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Daemon, daemon_clear)

/* PostgreSQL: the pool, pending migrations, the read cache, and the rows that mirror the
 * config and the templates. */
static bool
open_database(Daemon *d, GError **error)
{
    const Config *cfg = d->cfg;
    g_autoptr(DomTemplateSet) templates = NULL;
    PrepareTx prep;
    int applied = 0;

    d->pool = db_pool_new(&(DbPoolOptions) {
        .conninfo = cfg->database_url,
        .size = cfg->database_pool_size,
        .acquire_timeout_ms = 5000,
        .statement_timeout_ms = cfg->database_statement_timeout_ms,
        .max_retries = 5,
        .connect_timeout_s = 10,
    });
    {
        g_autoptr(DbConn) conn = db_pool_acquire(d->pool, error);
        if (!conn || !db_migrate_apply(conn, &applied, error))
            return false;
    }
    if (applied)
        vmb_info("applied %d migration(s); schema at version %d", applied,
                 db_migrate_known_version());
    d->cache = db_cache_new(d->pool, cfg->database_url, cfg->database_cache_entries);
    templates = svc_templates_load(d->pool, cfg->templates_dir, error);
    if (!templates)
        return false;
    prep = (PrepareTx) { cfg, templates, NULL };
    if (!db_pool_transaction(d->pool, prepare_tx, &prep, error))
        return false;
    d->templates = svc_templates_new(&(SvcTemplatesOptions) { d->pool, cfg->templates_dir },
                                     g_steal_pointer(&templates));
    d->host_id = g_steal_pointer(&prep.host_id);
    return true;
}

/* With libvirtd on this machine, vmbroker's pool folders are its own (it writes uploads into
 * them); a remote host's folders keep libvirt's default owner. */
static DomPoolOwner
pool_owner(const Config *cfg)
{
    if (g_str_has_prefix(cfg->libvirt_uri, "qemu:///") ||
        g_str_has_prefix(cfg->libvirt_uri, "qemu+unix:///"))
        return (DomPoolOwner) { (long) geteuid(), (long) getegid() };
    return DOM_POOL_OWNER_DEFAULT;
}

/* libvirt: the connection, vmbroker's storage pools and the accelerator, decided before
 * serving so the first create finds it. A libvirt that is down is no reason not to serve. */
static void
open_libvirt(Daemon *d)
{
    const Config *cfg = d->cfg;
    g_autoptr(GError) error = NULL;
    g_autoptr(virConnect) conn = NULL;

    d->hv = dom_hypervisor_new(cfg->libvirt_uri);
    d->accel = svc_accel_new(&(SvcAccelOptions) {
        .hv = d->hv,
        .mode = cfg->libvirt_domain_type,
        .name_prefix = cfg->libvirt_name_prefix,
        .storage_dir = cfg->storage_dir,
        .timeout_ms = cfg->libvirt_probe_timeout_ms,
        .metrics = d->metrics,
    });
    d->bounded = vmb_bounded_new(LIBVIRT_WORKERS);
    conn = dom_hypervisor_get(d->hv, &error);
    if (!conn || !dom_storage_ensure_pools(conn, cfg->libvirt_name_prefix, cfg->storage_dir,
                                           pool_owner(cfg), &error))
        vmb_warning("%s (serving anyway; /readyz reports it)", error->message);
    if (conn)
        svc_accel_refresh(d->accel, conn, true);
}

/* What /readyz and /metrics read, with the gauges they set. */
static void
start_health(Daemon *d)
{
    const Config *cfg = d->cfg;

    d->health = svc_health_new(&(SvcHealthOptions) {
        .db = d->pool,
        .cache = d->cache,
        .host_id = d->host_id,
        .metrics = d->metrics,
        .hv = d->hv,
        .templates = d->templates,
        .storage_dir = cfg->storage_dir,
        .host_memory_mib = cfg->limits_host_memory_mib,
    });
    svc_health_declare_metrics(d->metrics);
    vmb_metrics_declare(d->metrics, "vmbroker_build_info", VMB_METRIC_GAUGE,
                        "Always 1; the version of the running broker is its label.", NULL, 0);
    vmb_metrics_set(d->metrics, "vmbroker_build_info", 1, "version", VMB_VERSION, NULL);
}

/* ISOs and base images. */
static void
start_uploads(Daemon *d)
{
    const Config *cfg = d->cfg;

    d->isos = svc_isos_new(&(SvcIsosOptions) {
        .db = d->pool,
        .hv = d->hv,
        .bounded = d->bounded,
        .call_timeout_s = cfg->libvirt_call_timeout_s,
        .storage_dir = cfg->storage_dir,
        .name_prefix = cfg->libvirt_name_prefix,
        .max_bytes = cfg->storage_max_iso_bytes,
        .quota_bytes = cfg->storage_user_quota_bytes,
    });
    d->images = svc_images_new(&(SvcImagesOptions) {
        .db = d->pool,
        .hv = d->hv,
        .templates = d->templates,
        .bounded = d->bounded,
        .call_timeout_s = cfg->libvirt_call_timeout_s,
        .name_prefix = cfg->libvirt_name_prefix,
        .storage_dir = cfg->storage_dir,
        .max_bytes = cfg->storage_max_image_bytes,
    });
}

/* Auth, health, operations, events, VMs, consoles and uploads. */
static bool
start_services(Daemon *d, GError **error)
{
    const Config *cfg = d->cfg;

    d->users = cmd_open_users(cfg, d->pool);
    d->hosts = svc_hosts_new(&(SvcHostsOptions) { .db = d->pool });
    d->auth = svc_auth_new(&(SvcAuthOptions) {
        .db = d->pool,
        .cache = d->cache,
        .argon2 = cmd_argon2(cfg),
        .max_hashing = cfg->auth_max_hashing,
        .session_idle_s = cfg->auth_session_idle_s,
        .session_max_s = cfg->auth_session_max_s,
        .max_failures_user = cfg->auth_login_failures_per_user,
        .max_failures_addr = cfg->auth_login_failures_per_addr,
        .max_signups_addr = cfg->auth_signups_per_addr,
        .window_s = cfg->auth_login_window_s,
    });
    start_health(d);
    d->ops = svc_ops_new(&(SvcOpsOptions) {
        .db = d->pool,
        .conninfo = cfg->database_url,
        .instance = cfg->operations_instance,
        .workers = cfg->operations_workers,
        .stale_s = cfg->operations_stale_s,
        .max_active_per_user = cfg->operations_max_per_user,
        .metrics = d->metrics,
    });
    d->events = svc_events_new(&(SvcEventsOptions) {
        .db = d->pool,
        .conninfo = cfg->database_url,
        .max_streams = cfg->events_max_streams,
        .max_per_user = cfg->events_max_per_user,
        .keepalive_s = cfg->events_keepalive_s,
    });
    d->vms = svc_vms_new(&(SvcVmsOptions) {
        .db = d->pool,
        .hv = d->hv,
        .accel = d->accel,
        .templates = d->templates,
        .host_id = d->host_id,
        .name_prefix = cfg->libvirt_name_prefix,
        .console_listen = cfg->console_listen,
        .guest_network = cfg->guests_network,
        .guest_subnet = cfg->guests_subnet,
        .port_cooldown_s = cfg->console_port_cooldown_s,
        .port_quarantine_s = cfg->console_port_quarantine_s,
        .stop_timeout_s = cfg->libvirt_stop_timeout_s,
        .ops = d->ops,
        .bounded = d->bounded,
        .call_timeout_s = cfg->libvirt_call_timeout_s,
        .max_running_per_user = cfg->limits_max_running_per_user,
        .snapshots_per_vm = cfg->limits_snapshots_per_vm,
        .snapshots_per_user = cfg->limits_snapshots_per_user,
        .snapshot_disk_gib = cfg->limits_snapshot_disk_gib,
        .snapshot_gib_per_user = cfg->limits_snapshot_gib_per_user,
        .disk_gib_per_user = cfg->limits_disk_gib_per_user,
        .metrics = d->metrics,
        .cache = d->cache,
    });
    d->console = svc_console_new(&(SvcConsoleOptions) {
        .db = d->pool,
        .hv = d->hv,
        .vms = d->vms,
        .templates = d->templates,
        .ticket_ttl_s = cfg->console_ticket_ttl_s,
        .buffer_size = cfg->console_buffer_bytes,
        .metrics = d->metrics,
        .session_idle_s = cfg->console_session_idle_s,
        .session_max_s = cfg->console_session_max_s,
    }, error);
    start_uploads(d);
    return d->console != NULL;
}

/* The reconciler (after a first full pass: whatever changed while vmbroker was down is
 * repaired before serving), the reaper and the janitor. */
static bool
start_background(Daemon *d, GError **error)
{
    const Config *cfg = d->cfg;
    g_autoptr(GError) err = NULL;

    SvcSyncOptions sync = {
        .db = d->pool,
        .hv = d->hv,
        .vms = d->vms,
        .accel = d->accel,
        .host_id = d->host_id,
        .host_name = DB_HOST_CONFIGURED,
        .owner = cfg->operations_instance,
        .name_prefix = cfg->libvirt_name_prefix,
        .events = cfg->libvirt_events,
        .interval_s = cfg->libvirt_sync_interval_s,
        .keepalive_interval_s = cfg->libvirt_keepalive_interval_s,
        .keepalive_count = cfg->libvirt_keepalive_count,
        .destroy_orphans = cfg->libvirt_adopt_orphans == CONFIG_ORPHANS_DESTROY,
        .port_cooldown_s = cfg->console_port_cooldown_s,
        .metrics = d->metrics,
    };

    d->sync = svc_sync_new(&sync, error);
    if (!d->sync)
        return false;
    if (svc_sync_reconcile(d->sync, &err))
        vmb_info("reconciled PostgreSQL with libvirt");
    else
        vmb_warning("reconciliation: %s (serving anyway; it is retried until it succeeds)",
                    err->message);
    svc_sync_start(d->sync);
    svc_vms_watch_unready(d->vms, d->host_id);
    d->fleet = svc_fleet_start(&(SvcFleetOptions) { .db = d->pool, .vms = d->vms,
                                                    .configured_id = d->host_id, .sync = sync,
                                                    .interval_s = HOSTS_INTERVAL_S });
    /* After the first reconciliation, so that what this broker's previous run left running
     * is judged against libvirt before it is taken again. */
    if (!svc_ops_start(d->ops, error))
        return false;
    d->reaper = svc_reaper_start(&(SvcReaperOptions) {
        .db = d->pool,
        .vms = d->vms,
        .activity = console_activity,
        .activity_data = d->console,
        .templates = d->templates,
        .interval_s = cfg->console_reaper_interval_s,
    });
    d->pools = svc_pools_start(&(SvcPoolsOptions) {
        .db = d->pool,
        .vms = d->vms,
        .templates = d->templates,
        .interval_s = POOLS_INTERVAL_S,
    });
    d->janitor = svc_janitor_start(&(SvcJanitorOptions) {
        .db = d->pool,
        .interval_s = cfg->database_janitor_interval_s,
        .session_idle_s = cfg->auth_session_idle_s,
        .console_session_idle_s = cfg->console_session_idle_s,
    });
    return true;
}

/* The watchdog's ping: the main thread only waits for signals, so this thread's being
 * scheduled is what it proves, with the HTTP server's own threads beside it. */
static void
watchdog_ping(gpointer data)
{
    vmb_notify("WATCHDOG=1");
}

/* SIGHUP, the config: applies what can change under running threads (the log level); every
 * other changed key is named as needing a restart. A config that no longer loads changes
 * nothing. */
static void
reload_config(Daemon *d, const char *config_path)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(Config) fresh = config_load(config_path, CONFIG_NEEDS_DATABASE, &error);
    g_auto(GStrv) changed = NULL;
    g_autoptr(GString) restart = g_string_new(NULL);
    VmbLogLevel old_level = vmb_log_get_level();

    if (!fresh) {
        vmb_warning("SIGHUP: kept the running configuration: %s", error->message);
        return;
    }
    changed = config_changed_keys(d->cfg, fresh);
    for (char **k = changed; *k; k++)
        if (strcmp(*k, "log.level") != 0)
            g_string_append_printf(restart, "%s%s", restart->len ? ", " : "", *k);
    vmb_info("SIGHUP: reread %s: log.level %s%s%s; %s%s",
             config_path ? config_path : "(no file: defaults and environment)",
             vmb_log_level_names[old_level], old_level == fresh->log_level ? "" : " -> ",
             old_level == fresh->log_level ? " (unchanged)"
                                           : vmb_log_level_names[fresh->log_level],
             restart->len ? "changed, applied at the next restart: " : "nothing else changed",
             restart->str);
    vmb_log_set_level(fresh->log_level);
}

/* SIGHUP, the templates: the folder read again is in use for what starts after it (creates,
 * starts of ephemeral VMs, idle and lifetime limits); running guests keep their domains. One
 * bad file keeps the running templates. */
static void
reload_templates(Daemon *d)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GString) summary = g_string_new(NULL);

    if (!svc_templates_reload(d->templates, summary, &error))
        vmb_warning("SIGHUP: kept the running templates: %s", error->message);
    else
        vmb_info("SIGHUP: reread templates from %s: %s", d->cfg->templates_dir, summary->str);
}

static void
reload(Daemon *d, const char *config_path)
{
    reload_config(d, config_path);
    reload_templates(d);
    vmb_notify("READY=1\nSTATUS=configuration and templates reread");
}

/* Tells the service manager (if any) that we serve, and keeps its watchdog fed. */
static VmbPeriodic *
notify_ready(HttpServer *srv, const Config *cfg)
{
    g_autofree char *status = g_strdup_printf("READY=1\nSTATUS=serving on port %u, %s",
                                              http_server_port(srv), cfg->http_public_url);
    guint64 usec = vmb_notify_watchdog_usec();

    vmb_notify(status);
    if (!usec)
        return NULL;
    /* Twice per interval, as sd_watchdog_enabled(3) advises; whole seconds, at least 1. */
    return vmb_periodic_start("watchdog", (unsigned) MAX(usec / 2 / G_USEC_PER_SEC, 1),
                              watchdog_ping, NULL);
}

/* Serves HTTP until SIGTERM or SIGINT (blocked in @sigs, with SIGHUP), then drains. */
static bool
serve_until_signal(Daemon *d, const char *config_path, const sigset_t *sigs, GError **error)
{
    const Config *cfg = d->cfg;
    App app = {
        .cfg = cfg,
        .db = d->pool,
        .cache = d->cache,
        .hv = d->hv,
        .accel = d->accel,
        .bounded = d->bounded,
        .auth = d->auth,
        .users = d->users,
        .hosts = d->hosts,
        .fleet = d->fleet,
        .pools = d->pools,
        .metrics = d->metrics,
        .templates = d->templates,
        .vms = d->vms,
        .ops = d->ops,
        .events = d->events,
        .console = d->console,
        .isos = d->isos,
        .images = d->images,
        .health = d->health,
        .host_id = d->host_id,
        .secure_cookies = g_str_has_prefix(cfg->http_public_url, "https://"),
        /* A cold create only queues its operation; a take's libvirt work waits for one of
         * HV_OPS_MAX places anyway: more creates at once would only hold database
         * connections while they wait. */
        .creates = g_thread_pool_new(api_vms_create_run, NULL, CREATE_WORKERS, FALSE, NULL),
    };
    HttpServer *srv = http_server_start(&(HttpServerOptions) {
        .listen_host = cfg->http_listen_host,
        .listen_port = cfg->http_listen_port,
        .threads = cfg->http_threads,
        .max_connections = cfg->http_max_connections,
        .per_ip_connections = cfg->http_per_ip_connections,
        .connection_timeout_s = cfg->http_connection_timeout_s,
        .head_timeout_s = cfg->http_head_timeout_s,
        .min_body_rate = cfg->http_min_body_rate,
        .discard_max_bytes = cfg->http_discard_max_bytes,
        .max_body_bytes = cfg->http_max_body_bytes,
        .routes = api_routes,
        .nroutes = api_routes_count,
        .app = &app,
        .metrics = d->metrics,
        .trusted_proxies = cfg->http_trusted_proxies,
    }, error);
    g_autoptr(VmbPeriodic) watchdog = NULL;
    int sig = 0;

    if (!srv) {
        g_thread_pool_free(app.creates, FALSE, TRUE);
        return false;
    }
    vmb_info("vmbroker %s listening on http://%s%s%s:%u (public URL %s)", VMB_VERSION,
             strchr(cfg->http_listen_host, ':') ? "[" : "", cfg->http_listen_host,
             strchr(cfg->http_listen_host, ':') ? "]" : "", http_server_port(srv),
             cfg->http_public_url);
    watchdog = notify_ready(srv, cfg);
    for (;;) {
        if (sigwait(sigs, &sig) != 0)
            continue;
        if (sig != SIGHUP)
            break;
        reload(d, config_path);
    }
    vmb_notify("STOPPING=1\nSTATUS=finishing requests in flight");
    vmb_info("received %s: finishing requests in flight, then stopping", strsignal(sig));
    svc_events_end_streams(d->events);
    http_server_stop(srv, cfg->http_shutdown_timeout_s);
    /* Creates under way finish (their requests are answered or gone) before the services
     * they use are freed. */
    g_thread_pool_free(app.creates, FALSE, TRUE);
    vmb_info("stopped");
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
    gboolean allow_root = FALSE;
    GOptionEntry entries[] = {
        { "allow-root", 0, 0, G_OPTION_ARG_NONE, &allow_root,
          "Run even as root (a local trial; production runs as the vmbroker user)", NULL },
        G_OPTION_ENTRY_NULL
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("");
    g_auto(Daemon) d = { 0 };
    g_autoptr(GError) error = NULL;
    sigset_t sigs;

    g_set_prgname("vmbroker serve");
    g_option_context_set_summary(ctx, "Runs the daemon: HTTP API, web UI and console proxy.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &error) || argc != 1) {
        cmd_fail("serve: %s", error ? error->message : "takes no arguments");
        return CMD_EXIT_USAGE;
    }
    d.cfg = cmd_load_config(config_path, CONFIG_NEEDS_DATABASE);
    if (!d.cfg)
        return CMD_EXIT_FAILURE;
    /* A bug in a daemon that faces browsers should not hand them the machine. */
    if (geteuid() == 0 && !allow_root) {
        cmd_fail("serve: refusing to run as root; run it as the vmbroker user (see README, "
                 "Production), or pass --allow-root for a local trial");
        return CMD_EXIT_FAILURE;
    }
    /* Block the signals before any thread starts (the read cache's LISTEN thread is the
     * first, libvirt's event loop the next), so only sigwait sees them: a thread that did not
     * block them would take a SIGTERM's default action and end the daemon undrained. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    d.metrics = vmb_metrics_new();
    if (!open_database(&d, &error)) {
        cmd_fail("%s", error->message);
        return CMD_EXIT_FAILURE;
    }
    /* With a local hypervisor QEMU listens here: an address this host lacks would only show
     * later, as every console port "held by someone else". */
    if ((g_str_has_prefix(d.cfg->libvirt_uri, "qemu:///") ||
         g_str_has_prefix(d.cfg->libvirt_uri, "qemu+unix:///")) &&
        !vmb_net_port_is_free(d.cfg->console_listen, 0, NULL)) {
        cmd_fail("config: console.listen = '%s': not an address of this host, so QEMU cannot "
                 "listen there", d.cfg->console_listen);
        return CMD_EXIT_FAILURE;
    }
    open_libvirt(&d);
    if (!start_services(&d, &error) || !start_background(&d, &error) ||
        !serve_until_signal(&d, config_path, &sigs, &error)) {
        cmd_fail("%s", error->message);
        return CMD_EXIT_FAILURE;
    }
    return CMD_EXIT_OK;
}
