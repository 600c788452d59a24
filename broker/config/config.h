// SPDX-License-Identifier: LGPL-2.1-or-later
// vmbroker's configuration: an INI file read with GKeyFile, every key overridable by
// VMBROKER_<SECTION>_<KEY>. Loading validates every value and fails on unknown keys.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "dom-accel.h"
#include "vmb-cidr.h"
#include "vmb-log.h"

/* libvirt.adopt_orphans: what becomes of a domain of ours that has no row. */
typedef enum {
    CONFIG_ORPHANS_ERROR,   /* adopted as a VM in state error, for an admin */
    CONFIG_ORPHANS_DESTROY, /* destroyed */

    CONFIG_ORPHANS_LAST
} ConfigOrphans;

typedef struct {
    unsigned first; /* inclusive */
    unsigned last;  /* inclusive */
} ConfigPortRange;

typedef struct {
    /* [http] */
    char *http_listen_host;        /* address part of http.listen */
    unsigned http_listen_port;     /* port part of http.listen */
    char *http_public_url;         /* URL browsers use, without a trailing slash */
    unsigned http_max_connections; /* connections at once, all clients */
    unsigned http_per_ip_connections; /* connections at once from one address */
    unsigned http_connection_timeout_s; /* idle connection timeout */
    unsigned http_head_timeout_s;  /* deadline for a whole request head */
    unsigned http_min_body_rate;   /* bytes/s a request body must keep up */
    guint64 http_discard_max_bytes; /* body discarded after an early answer, at most */
    guint64 http_max_body_bytes;   /* largest JSON request body */
    unsigned http_shutdown_timeout_s; /* how long SIGTERM waits for in-flight requests */
    unsigned http_threads;         /* libmicrohttpd worker threads */
    char *http_web_dir;            /* the web UI's files, served at / and /ui/ */
    VmbCidrList *http_trusted_proxies; /* peers whose X-Forwarded-For/-Proto are believed */
    VmbCidrList *http_metrics_allow; /* who may read /metrics and readyz detail */

    /* [database] */
    char *database_url;            /* libpq connection string or URI; NULL when not given
                                    * and CONFIG_NEEDS_DATABASE was not asked for */
    unsigned database_pool_size;   /* pooled connections at most */
    unsigned database_statement_timeout_ms; /* per statement */
    unsigned database_cache_entries; /* read cache bound, 0 for no cache */
    unsigned database_janitor_interval_s; /* expired tickets and sessions are deleted this often */

    /* [libvirt] */
    char *libvirt_uri;             /* hypervisor connection URI */
    char *libvirt_name_prefix;     /* prefix of every domain, pool and volume we create */
    unsigned libvirt_stop_timeout_s; /* ACPI grace of a stop before the guest is destroyed */
    unsigned libvirt_call_timeout_s; /* how long a request waits for a create, start, reboot, delete */
    bool libvirt_events;           /* follow libvirt's lifecycle events (false: the sync alone) */
    unsigned libvirt_sync_interval_s; /* full resync of PostgreSQL with libvirt this often */
    unsigned libvirt_keepalive_interval_s; /* keepalive probe period, 0 disables keepalive */
    unsigned libvirt_keepalive_count; /* unanswered probes before the connection is dropped */
    ConfigOrphans libvirt_adopt_orphans; /* adopt domains without a row for an admin, or destroy */
    DomAccelMode libvirt_domain_type; /* auto (KVM where a probe guest passes), kvm, qemu */
    unsigned libvirt_probe_timeout_ms; /* how long the KVM probe guest may take */
    unsigned operations_workers;   /* operations this broker runs at once */
    unsigned operations_max_per_user; /* a user's queued and running operations at most */
    unsigned operations_stale_s;   /* a running operation without heartbeat is taken over */
    char *operations_instance;     /* this broker's name in operations.broker */
    unsigned events_max_streams;   /* event streams at once, all users */
    unsigned events_max_per_user;  /* event streams at once per user */
    unsigned events_keepalive_s;   /* a comment on a silent stream this often */

    /* [guests] */
    char *guests_network;          /* vmbroker's guest network and its filter in libvirt */
    char *guests_subnet;           /* that network's IPv4 subnet (the host takes .1) */

    /* [storage] */
    char *storage_dir;             /* where vmbroker's storage pools live */
    guint64 storage_max_iso_bytes; /* one uploaded ISO at most */
    guint64 storage_max_image_bytes; /* one base image at most: its file and virtual size */
    guint64 storage_user_quota_bytes; /* one user's uploaded ISOs together at most */

    /* [console] */
    char *console_listen;          /* address QEMU's VNC and websocket servers bind */
    ConfigPortRange console_vnc_ports;
    ConfigPortRange console_ws_ports;
    unsigned console_port_cooldown_s; /* a released port waits this long before reuse */
    char *console_novnc_dir;       /* Debian's noVNC, served at /novnc/ */
    unsigned console_port_quarantine_s; /* a port a foreign process holds is skipped this long */
    unsigned console_ticket_ttl_s; /* console tickets live this long, 60 s at most */
    unsigned console_session_idle_s; /* a console session unused this long ends */
    unsigned console_session_max_s; /* a console session ends this long after its link was opened */
    unsigned console_buffer_bytes; /* relay buffer per direction of a console connection */
    unsigned console_reaper_interval_s; /* how often idle and over-age VMs are looked for */

    /* [limits] */
    unsigned limits_max_running_per_user; /* running VMs a non-admin may have */
    guint64 limits_host_memory_mib; /* guests' memory on the host at most, 0 for no limit */
    unsigned limits_snapshots_per_vm;   /* snapshots one VM may hold (0: none) */
    unsigned limits_snapshots_per_user; /* snapshots of all a user's VMs together */
    unsigned limits_snapshot_disk_gib;  /* a VM's disks with their snapshots, at most */
    unsigned limits_snapshot_gib_per_user; /* a user's disks holding snapshots, together */
    unsigned limits_disk_gib_per_user;  /* a user's persistent disks together; 0: no quota */

    /* [templates] */
    char *templates_dir;           /* folder of template files loaded at start */

    /* [auth] */
    bool auth_signup;              /* whether POST /api/v1/auth/signup is open */
    unsigned auth_session_idle_s;  /* a session unused this long ends */
    unsigned auth_session_max_s;   /* a session ends this long after login */
    unsigned auth_argon2_memory_kib; /* argon2id m */
    unsigned auth_argon2_iterations; /* argon2id t */
    unsigned auth_argon2_lanes;    /* argon2id p */
    unsigned auth_max_hashing;     /* password hashes computed at once */
    unsigned auth_login_failures_per_user; /* failed logins per (user, address) per window */
    unsigned auth_login_failures_per_addr; /* failed logins per address per window */
    unsigned auth_login_window_s;  /* the throttling window */
    unsigned auth_signups_per_addr; /* sign-up attempts per address per window */

    /* [log] */
    VmbLogLevel log_level;         /* the lowest level written */

    GHashTable *raw;               /* "section.key" -> the text its value came from */
} Config;

/* What the command that loads the config will use: a key that only one use reads is
 * required only when that use is asked for. */
typedef enum {
    CONFIG_NEEDS_NOTHING = 0,
    CONFIG_NEEDS_DATABASE = 1 << 0, /* database.url is required */
} ConfigNeeds;

Config *config_load(const char *path, ConfigNeeds needs, GError **error);
/* Every key as "section.key", NULL-terminated, in the table's order. */
GStrv config_key_names(void);
GStrv config_changed_keys(const Config *a, const Config *b);
void config_free(Config *cfg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Config, config_free)

