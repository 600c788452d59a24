// SPDX-License-Identifier: LGPL-2.1-or-later
// Config loading: one table describes every key (section, name, type, default, bounds,
// where it lands in Config), so parsing, environment overrides and validation share it.
#include "config.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <string.h>

#include "build-config.h"
#include "dom-network.h"
#include "vmb-error.h"
#include "vmb-log.h"

typedef enum {
    KEY_STRING,
    KEY_UINT,
    KEY_UINT64,
    KEY_BOOL,
    KEY_PORTS,
    KEY_LISTEN,
    KEY_ADDRESS,
    KEY_URL,
    KEY_DBURL,
    KEY_DIR,
    KEY_PREFIX,
    KEY_ENUM,       /* one of names[]: the field is the index (an enum) */
    KEY_CIDRS,      /* addresses and ADDRESS/PREFIX blocks: a VmbCidrList * */
    KEY_SUBNET,     /* one IPv4 ADDRESS/PREFIX of a guest network (dom_network_check_subnet) */

    KEY_LAST
} KeyType;

typedef struct {
    const char *section; /* INI group */
    const char *key;     /* INI key */
    KeyType type;        /* how the value is parsed and checked */
    const char *def;     /* default value, NULL when required or derived (KEY_DBURL: required
                          * only with CONFIG_NEEDS_DATABASE) */
    guint64 min, max;    /* bounds of KEY_UINT and KEY_UINT64 */
    size_t offset;       /* where the parsed value goes in Config */
    const char *const *names; /* KEY_ENUM: the spellings, NULL-terminated */
    bool derived;        /* without a value, derived after loading rather than required */
} KeyDef;

/* KEY_ENUM fields are enums, written as int. */
G_STATIC_ASSERT(sizeof(DomAccelMode) == sizeof(int) && sizeof(VmbLogLevel) == sizeof(int) &&
                sizeof(ConfigOrphans) == sizeof(int));

static const char *const orphan_names[CONFIG_ORPHANS_LAST + 1] = {
    [CONFIG_ORPHANS_ERROR] = "error",
    [CONFIG_ORPHANS_DESTROY] = "destroy",
    [CONFIG_ORPHANS_LAST] = NULL,
};

#define OFF(field) offsetof(Config, field)

static const KeyDef keys[] = {
    { "http", "listen", KEY_LISTEN, "127.0.0.1:8080", 0, 0, OFF(http_listen_host) },
    { "http", "public_url", KEY_URL, NULL, 0, 0, OFF(http_public_url) },
    { "http", "max_connections", KEY_UINT, "1024", 1, 100000, OFF(http_max_connections) },
    { "http", "per_ip_connections", KEY_UINT, "64", 1, 100000, OFF(http_per_ip_connections) },
    { "http", "connection_timeout_s", KEY_UINT, "60", 1, 3600, OFF(http_connection_timeout_s) },
    { "http", "head_timeout_s", KEY_UINT, "30", 1, 3600, OFF(http_head_timeout_s) },
    { "http", "min_body_rate", KEY_UINT, "1024", 0, 1073741824, OFF(http_min_body_rate) },
    { "http", "discard_max_bytes", KEY_UINT64, "67108864", 0, G_GUINT64_CONSTANT(1) << 40,
      OFF(http_discard_max_bytes) },
    { "http", "max_body_bytes", KEY_UINT64, "65536", 256, 16777216, OFF(http_max_body_bytes) },
    { "http", "shutdown_timeout_s", KEY_UINT, "30", 0, 3600, OFF(http_shutdown_timeout_s) },
    { "http", "threads", KEY_UINT, "8", 1, 256, OFF(http_threads) },
    { "http", "metrics_allow", KEY_CIDRS, "127.0.0.0/8, ::1", 0, 0, OFF(http_metrics_allow) },
    { "http", "web_dir", KEY_DIR, VMB_WEB_DIR, 0, 0, OFF(http_web_dir) },
    { "http", "trusted_proxies", KEY_CIDRS, "", 0, 0, OFF(http_trusted_proxies) },
    { "database", "url", KEY_DBURL, NULL, 0, 0, OFF(database_url) },
    { "database", "pool_size", KEY_UINT, "16", 1, 256, OFF(database_pool_size) },
    { "database", "statement_timeout_ms", KEY_UINT, "5000", 0, 3600000,
      OFF(database_statement_timeout_ms) },
    { "database", "cache_entries", KEY_UINT, "10000", 0, 1000000, OFF(database_cache_entries) },
    { "database", "janitor_interval_s", KEY_UINT, "60", 1, 86400,
      OFF(database_janitor_interval_s) },
    { "libvirt", "uri", KEY_STRING, "qemu:///system", 0, 0, OFF(libvirt_uri) },
    { "libvirt", "name_prefix", KEY_PREFIX, "vmbroker-", 0, 0, OFF(libvirt_name_prefix) },
    { "libvirt", "stop_timeout_s", KEY_UINT, "30", 0, 3600, OFF(libvirt_stop_timeout_s) },
    { "libvirt", "call_timeout_s", KEY_UINT, "60", 1, 3600, OFF(libvirt_call_timeout_s) },
    { "libvirt", "events", KEY_BOOL, "true", 0, 0, OFF(libvirt_events) },
    { "libvirt", "sync_interval_s", KEY_UINT, "60", 1, 86400, OFF(libvirt_sync_interval_s) },
    { "libvirt", "keepalive_interval_s", KEY_UINT, "5", 0, 3600,
      OFF(libvirt_keepalive_interval_s) },
    { "libvirt", "keepalive_count", KEY_UINT, "3", 1, 100, OFF(libvirt_keepalive_count) },
    { "libvirt", "adopt_orphans", KEY_ENUM, "error", 0, 0, OFF(libvirt_adopt_orphans),
      orphan_names },
    { "libvirt", "domain_type", KEY_ENUM, "auto", 0, 0, OFF(libvirt_domain_type),
      dom_accel_mode_names },
    { "libvirt", "probe_timeout_ms", KEY_UINT, "5000", 100, 60000,
      OFF(libvirt_probe_timeout_ms) },
    { "guests", "network", KEY_PREFIX, "vmbroker-guests", 0, 0, OFF(guests_network) },
    { "guests", "subnet", KEY_SUBNET, "10.213.0.0/24", 0, 0, OFF(guests_subnet) },
    { "storage", "dir", KEY_STRING, "/var/lib/vmbroker", 0, 0, OFF(storage_dir) },
    { "storage", "max_iso_bytes", KEY_UINT64, "8589934592", 1, G_GUINT64_CONSTANT(1) << 42,
      OFF(storage_max_iso_bytes) },
    { "storage", "user_quota_bytes", KEY_UINT64, "21474836480", 0, G_GUINT64_CONSTANT(1) << 44,
      OFF(storage_user_quota_bytes) },
    { "storage", "max_image_bytes", KEY_UINT64, "68719476736", 1, G_GUINT64_CONSTANT(1) << 44,
      OFF(storage_max_image_bytes) },
    { "console", "listen", KEY_ADDRESS, "127.0.0.1", 0, 0, OFF(console_listen) },
    { "console", "vnc_ports", KEY_PORTS, "5900-5999", 0, 0, OFF(console_vnc_ports) },
    { "console", "ws_ports", KEY_PORTS, "5700-5799", 0, 0, OFF(console_ws_ports) },
    { "console", "port_cooldown_s", KEY_UINT, "10", 0, 3600, OFF(console_port_cooldown_s) },
    { "console", "novnc_dir", KEY_DIR, VMB_NOVNC_DIR, 0, 0, OFF(console_novnc_dir) },
    { "console", "port_quarantine_s", KEY_UINT, "300", 1, 86400,
      OFF(console_port_quarantine_s) },
    { "console", "ticket_ttl_s", KEY_UINT, "60", 1, 60, OFF(console_ticket_ttl_s) },
    { "console", "session_idle_s", KEY_UINT, "7200", 10, 2592000, OFF(console_session_idle_s) },
    { "console", "session_max_s", KEY_UINT, "43200", 10, 31536000, OFF(console_session_max_s) },
    { "console", "buffer_bytes", KEY_UINT, "65536", 4096, 16777216, OFF(console_buffer_bytes) },
    { "console", "reaper_interval_s", KEY_UINT, "10", 1, 3600,
      OFF(console_reaper_interval_s) },
    { "limits", "max_running_per_user", KEY_UINT, "1", 0, 10000,
      OFF(limits_max_running_per_user) },
    { "limits", "host_memory_mib", KEY_UINT64, "0", 0, G_GUINT64_CONSTANT(1) << 32,
      OFF(limits_host_memory_mib) },
    { "limits", "snapshots_per_vm", KEY_UINT, "5", 0, 100, OFF(limits_snapshots_per_vm) },
    { "limits", "snapshots_per_user", KEY_UINT, "10", 0, 10000,
      OFF(limits_snapshots_per_user) },
    { "limits", "snapshot_disk_gib", KEY_UINT, "64", 1, 65536, OFF(limits_snapshot_disk_gib) },
    { "limits", "snapshot_gib_per_user", KEY_UINT, "256", 1, 1048576,
      OFF(limits_snapshot_gib_per_user) },
    { "limits", "disk_gib_per_user", KEY_UINT, "100", 0, 1048576,
      OFF(limits_disk_gib_per_user) },
    { "templates", "dir", KEY_DIR, VMB_TEMPLATES_DIR, 0, 0, OFF(templates_dir) },
    { "auth", "signup", KEY_BOOL, "false", 0, 0, OFF(auth_signup) },
    { "auth", "session_idle_s", KEY_UINT, "7200", 60, 2592000, OFF(auth_session_idle_s) },
    { "auth", "session_max_s", KEY_UINT, "86400", 60, 31536000, OFF(auth_session_max_s) },
    { "auth", "argon2_memory_kib", KEY_UINT, "19456", 8, 4194304, OFF(auth_argon2_memory_kib) },
    { "auth", "argon2_iterations", KEY_UINT, "2", 1, 100, OFF(auth_argon2_iterations) },
    { "auth", "argon2_lanes", KEY_UINT, "1", 1, 64, OFF(auth_argon2_lanes) },
    { "auth", "max_hashing", KEY_UINT, "4", 1, 256, OFF(auth_max_hashing) },
    { "auth", "login_failures_per_user", KEY_UINT, "5", 1, 100000,
      OFF(auth_login_failures_per_user) },
    { "auth", "login_failures_per_addr", KEY_UINT, "20", 1, 100000,
      OFF(auth_login_failures_per_addr) },
    { "auth", "login_window_s", KEY_UINT, "60", 1, 86400, OFF(auth_login_window_s) },
    { "auth", "signups_per_addr", KEY_UINT, "5", 1, 100000, OFF(auth_signups_per_addr) },
    { "log", "level", KEY_ENUM, "info", 0, 0, OFF(log_level), vmb_log_level_names },
    { "operations", "workers", KEY_UINT, "8", 1, 256, OFF(operations_workers) },
    { "operations", "max_per_user", KEY_UINT, "4", 0, 10000, OFF(operations_max_per_user) },
    { "operations", "stale_s", KEY_UINT, "30", 3, 3600, OFF(operations_stale_s) },
    { "operations", "instance", KEY_STRING, NULL, 0, 0, OFF(operations_instance), NULL, true },
    { "events", "max_streams", KEY_UINT, "1000", 0, 100000, OFF(events_max_streams) },
    { "events", "max_per_user", KEY_UINT, "8", 0, 100000, OFF(events_max_per_user) },
    { "events", "keepalive_s", KEY_UINT, "15", 1, 3600, OFF(events_keepalive_s) },
};

/**
 * config_free:
 * @cfg: (nullable): a configuration
 */
void
config_free(Config *cfg)
{
    if (!cfg)
        return;
    g_free(cfg->http_listen_host);
    g_free(cfg->http_public_url);
    g_free(cfg->database_url);
    g_free(cfg->libvirt_uri);
    g_free(cfg->libvirt_name_prefix);
    g_free(cfg->guests_network);
    g_free(cfg->guests_subnet);
    g_free(cfg->storage_dir);
    g_free(cfg->console_listen);
    g_free(cfg->templates_dir);
    g_free(cfg->http_web_dir);
    g_free(cfg->operations_instance);
    g_free(cfg->console_novnc_dir);
    vmb_cidr_list_free(cfg->http_trusted_proxies);
    vmb_cidr_list_free(cfg->http_metrics_allow);
    if (cfg->raw)
        g_hash_table_unref(cfg->raw);
    g_free(cfg);
}

static char *
env_name(const KeyDef *k)
{
    g_autofree char *s = g_ascii_strup(k->section, -1);
    g_autofree char *n = g_ascii_strup(k->key, -1);
    return g_strdup_printf("VMBROKER_%s_%s", s, n);
}

static const KeyDef *
find_key(const char *section, const char *key)
{
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++)
        if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].key, key) == 0)
            return &keys[i];
    return NULL;
}

static bool
section_known(const char *section)
{
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++)
        if (strcmp(keys[i].section, section) == 0)
            return true;
    return false;
}

static bool
parse_port(const char *s, unsigned *ret)
{
    guint64 v;

    if (!g_ascii_string_to_unsigned(s, 10, 1, 65535, &v, NULL))
        return false;
    *ret = (unsigned) v;
    return true;
}

static bool
is_ip_address(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* http.listen: ADDRESS:PORT, [IPv6]:PORT or localhost:PORT; the port goes to @ret_port. */
static char *
parse_listen(const char *value, unsigned *ret_port, char **ret_host)
{
    const char *colon = strrchr(value, ':');
    g_autofree char *host = NULL;

    if (!colon || !parse_port(colon + 1, ret_port))
        return g_strdup("not ADDRESS:PORT (port 1-65535)");
    host = g_strndup(value, (size_t) (colon - value));
    if (host[0] == '[' && g_str_has_suffix(host, "]")) {
        char *inner = g_strndup(host + 1, strlen(host) - 2);
        g_free(host);
        host = inner;
    }
    if (strcmp(host, "localhost") == 0) {
        g_free(host);
        host = g_strdup("127.0.0.1");
    }
    if (!is_ip_address(host))
        return g_strdup("the address is not an IPv4 or IPv6 address");
    *ret_host = g_steal_pointer(&host);
    return NULL;
}

/* An http(s) URL with a host and nothing after its path, kept without a trailing slash
 * (paths are joined to it). */
static char *
parse_url(const char *value, char **ret)
{
    g_autoptr(GUri) uri = g_uri_parse(value, G_URI_FLAGS_NONE, NULL);
    const char *scheme = uri ? g_uri_get_scheme(uri) : NULL;
    char *copy;

    /* GLib's parser takes "http://a b" with the host "a b". */
    for (const char *p = value; *p; p++)
        if ((unsigned char) *p <= ' ' || *p == 0x7f)
            return g_strdup("must not contain spaces or control characters");
    if (!uri || !scheme || (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) ||
        !g_uri_get_host(uri) || !*g_uri_get_host(uri))
        return g_strdup("not an http:// or https:// URL with a host");
    if (g_uri_get_query(uri) || g_uri_get_fragment(uri) || g_uri_get_userinfo(uri))
        return g_strdup("must not carry a query, fragment or user");
    copy = g_strdup(value);
    while (g_str_has_suffix(copy, "/"))
        copy[strlen(copy) - 1] = '\0';
    *ret = copy;
    return NULL;
}

/* A connection string or URI that libpq accepts. */
static char *
parse_dburl(const char *value, char **ret)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(value, &err);

    if (!opts) {
        g_autofree char *why = g_strdup(err ? err : "out of memory");
        PQfreemem(err);
        g_strchomp(why);
        return g_strdup_printf("not a valid libpq connection string: %s", why);
    }
    PQconninfoFree(opts);
    *ret = g_strdup(value);
    return NULL;
}

/* One of @names (NULL-terminated); the field gets its index. */
static char *
parse_enum(const char *const *names, const char *value, int *ret)
{
    g_autofree char *all = NULL;

    for (int i = 0; names[i]; i++) {
        if (strcmp(value, names[i]) == 0) {
            *ret = i;
            return NULL;
        }
    }
    all = g_strjoinv(", ", (char **) names);
    return g_strdup_printf("not one of %s", all);
}

/* Addresses and ADDRESS/PREFIX blocks (http.trusted_proxies, http.metrics_allow). */
static char *
parse_cidrs(const char *value, VmbCidrList **ret)
{
    g_autoptr(GError) err = NULL;
    VmbCidrList *list = vmb_cidr_list_parse(value, &err);

    if (!list)
        return g_strdup(err->message);
    *ret = list;
    return NULL;
}

/* A KEY_UINT or KEY_UINT64 within the key's bounds. */
static char *
parse_number(const KeyDef *k, const char *value, void *field)
{
    guint64 v;

    if (!g_ascii_string_to_unsigned(value, 10, k->min, k->max, &v, NULL))
        return g_strdup_printf("not a whole number from %" G_GUINT64_FORMAT " to %"
                               G_GUINT64_FORMAT, k->min, k->max);
    if (k->type == KEY_UINT)
        *(unsigned *) field = (unsigned) v;
    else
        *(guint64 *) field = v;
    return NULL;
}

static char *
parse_bool(const char *value, bool *field)
{
    if (g_strv_contains((const char *const[]) { "true", "yes", "1", "on", NULL }, value))
        *field = true;
    else if (g_strv_contains((const char *const[]) { "false", "no", "0", "off", NULL }, value))
        *field = false;
    else
        return g_strdup("not a boolean (true or false)");
    return NULL;
}

/* FIRST-LAST, both ports, FIRST <= LAST. */
static char *
parse_ports(const char *value, ConfigPortRange *r)
{
    g_auto(GStrv) parts = g_strsplit(value, "-", -1);

    if (g_strv_length(parts) != 2 || !parse_port(parts[0], &r->first) ||
        !parse_port(parts[1], &r->last))
        return g_strdup("not a port range (expected FIRST-LAST, ports 1-65535)");
    if (r->first > r->last)
        return g_strdup("the range's first port is after its last");
    return NULL;
}

/* Parses @value as @k's type into @cfg; on failure returns the reason. */
static char *
parse_value(Config *cfg, const KeyDef *k, const char *value)
{
    void *field = (char *) cfg + k->offset;

    switch (k->type) {
    case KEY_STRING:
        if (!*value)
            return g_strdup("must not be empty");
        *(char **) field = g_strdup(value);
        return NULL;
    case KEY_UINT:
    case KEY_UINT64:
        return parse_number(k, value, field);
    case KEY_BOOL:
        return parse_bool(value, field);
    case KEY_PORTS:
        return parse_ports(value, field);
    case KEY_LISTEN:
        return parse_listen(value, &cfg->http_listen_port, field);
    case KEY_ADDRESS:
        if (!is_ip_address(value))
            return g_strdup("not an IPv4 or IPv6 address");
        *(char **) field = g_strdup(value);
        return NULL;
    case KEY_URL:
        return parse_url(value, field);
    case KEY_DBURL:
        return parse_dburl(value, field);
    case KEY_DIR: {
        g_autoptr(GError) err = NULL;
        g_autoptr(GDir) dir = g_dir_open(value, 0, &err);
        if (!dir)
            return g_strdup_printf("cannot read the folder: %s", err->message);
        *(char **) field = g_strdup(value);
        return NULL;
    }
    case KEY_PREFIX: {
        g_autoptr(GRegex) re = g_regex_new("^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$", 0, 0, NULL);
        if (!g_regex_match(re, value, 0, NULL))
            return g_strdup("1 to 32 characters of [A-Za-z0-9_.-], starting with a letter or "
                            "digit");
        *(char **) field = g_strdup(value);
        return NULL;
    }
    case KEY_ENUM:
        return parse_enum(k->names, value, field);
    case KEY_CIDRS:
        return parse_cidrs(value, field);
    case KEY_SUBNET: {
        g_autoptr(GError) err = NULL;
        if (!dom_network_check_subnet(value, &err))
            return g_strdup("an IPv4 ADDRESS/PREFIX without host bits, prefix 16 to 28");
        *(char **) field = g_strdup(value);
        return NULL;
    }
    case KEY_LAST:
        break;
    }
    g_assert_not_reached();
}

static bool
check_unknown(GKeyFile *kf, const char *path, GError **error)
{
    g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);

    for (char **g = groups; *g; g++) {
        g_auto(GStrv) names = NULL;
        if (!section_known(*g)) {
            g_set_error(error, VMB_ERROR, VMB_ERROR_CONFIG, "config: %s: unknown section [%s]",
                        path, *g);
            return false;
        }
        names = g_key_file_get_keys(kf, *g, NULL, NULL);
        for (char **k = names; k && *k; k++) {
            if (!find_key(*g, *k)) {
                g_set_error(error, VMB_ERROR, VMB_ERROR_CONFIG,
                            "config: %s: unknown key %s.%s", path, *g, *k);
                return false;
            }
        }
    }
    return true;
}

static bool
check_unknown_env(GError **error)
{
    g_auto(GStrv) env = g_get_environ();

    for (char **e = env; *e; e++) {
        bool known = false;
        g_autofree char *name = g_strndup(*e, strcspn(*e, "="));
        if (!g_str_has_prefix(name, "VMBROKER_"))
            continue;
        for (size_t i = 0; i < G_N_ELEMENTS(keys) && !known; i++) {
            g_autofree char *n = env_name(&keys[i]);
            known = strcmp(n, name) == 0;
        }
        if (!known) {
            g_set_error(error, VMB_ERROR, VMB_ERROR_CONFIG,
                        "config: %s names no configuration key", name);
            return false;
        }
    }
    return true;
}

static bool
ranges_overlap(const ConfigPortRange *a, const ConfigPortRange *b)
{
    return a->first <= b->last && b->first <= a->last;
}

/**
 * config_key_names:
 *
 * Returns: (transfer full): every configuration key as "section.key".
 */
GStrv
config_key_names(void)
{
    g_autoptr(GStrvBuilder) b = g_strv_builder_new();

    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        g_autofree char *name = g_strdup_printf("%s.%s", keys[i].section, keys[i].key);
        g_strv_builder_add(b, name);
    }
    return g_strv_builder_end(b);
}

/**
 * config_changed_keys:
 * @a: a configuration
 * @b: another
 *
 * Returns: (transfer full): the "section.key" names whose values differ, in table order.
 */
GStrv
config_changed_keys(const Config *a, const Config *b)
{
    g_autoptr(GStrvBuilder) changed = g_strv_builder_new();

    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        g_autofree char *name = g_strdup_printf("%s.%s", keys[i].section, keys[i].key);
        if (g_strcmp0(g_hash_table_lookup(a->raw, name), g_hash_table_lookup(b->raw, name)))
            g_strv_builder_add(changed, name);
    }
    return g_strv_builder_end(changed);
}

/* @raw (a value as the file has it) with GKeyFile's escapes undone: \s \n \t \r \\. An
 * escape GKeyFile would refuse is an error here too, said once: g_key_file_get_string()
 * answers NULL for it, which must not read as "not set", and GLib 2.74 also warns about it
 * on stderr. Returns NULL with @ret_why set for such a value. */
static char *
unescape_value(const char *raw, char **ret_why)
{
    g_autoptr(GString) out = g_string_sized_new(strlen(raw));

    for (const char *p = raw; *p; p++) {
        if (*p != '\\') {
            g_string_append_c(out, *p);
            continue;
        }
        switch (*++p) {
        case 's': g_string_append_c(out, ' '); break;
        case 'n': g_string_append_c(out, '\n'); break;
        case 't': g_string_append_c(out, '\t'); break;
        case 'r': g_string_append_c(out, '\r'); break;
        case '\\': g_string_append_c(out, '\\'); break;
        case '\0':
            *ret_why = g_strdup("ends with a lone '\\' (write '\\\\' for a backslash)");
            return NULL;
        default:
            *ret_why = g_strdup_printf("has the unknown escape '\\%c' (write '\\\\' for a "
                                       "backslash)", *p);
            return NULL;
        }
    }
    return g_string_free(g_steal_pointer(&out), FALSE);
}

/* Key @k's value in @kf, unescaped (NULL when the file does not set it); false with @error
 * for a value whose escapes are wrong. */
static bool
read_file_value(GKeyFile *kf, const KeyDef *k, char **ret, GError **error)
{
    g_autofree char *raw = g_key_file_get_value(kf, k->section, k->key, NULL);
    g_autofree char *why = NULL;

    *ret = raw ? unescape_value(raw, &why) : NULL;
    if (why) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFIG, "config: %s.%s = '%s': %s", k->section,
                    k->key, raw, why);
        return false;
    }
    return true;
}

/**
 * config_load:
 * @path: (nullable): the INI file; NULL for defaults and environment only
 * @needs: what the caller will use; without CONFIG_NEEDS_DATABASE a missing database.url
 *   is no error (it stays NULL), though a given one is still checked
 * @error: return location for a VMB_ERROR_CONFIG error naming key, value and reason
 *
 * Reads @path, applies VMBROKER_<SECTION>_<KEY> overrides, fills in defaults and checks
 * every value. Unknown sections, keys and VMBROKER_ variables are errors.
 *
 * Returns: (transfer full): the configuration, or NULL.
 */
Config *
config_load(const char *path, ConfigNeeds needs, GError **error)
{
    g_autoptr(Config) cfg = g_new0(Config, 1);
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) err = NULL;

    cfg->raw = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    if (path) {
        if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &err)) {
            g_set_error(error, VMB_ERROR, VMB_ERROR_CONFIG, "config: %s: %s", path,
                        err->message);
            return NULL;
        }
        if (!check_unknown(kf, path, error))
            return NULL;
    }
    if (!check_unknown_env(error))
        return NULL;

    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        const KeyDef *k = &keys[i];
        g_autofree char *var = env_name(k);
        g_autofree char *file_value = NULL;
        const char *env_value = g_getenv(var);
        const char *value;
        g_autofree char *why = NULL;
        g_autofree char *fallback = NULL;

        if (path && !read_file_value(kf, k, &file_value, error))
            return NULL;
        if (file_value)
            g_strstrip(file_value);
        value = env_value ? env_value : file_value ? file_value : k->def;
        if (value == k->def && k->type == KEY_DIR && !g_file_test(value, G_FILE_TEST_IS_DIR)) {
            /* Not installed: a build run from its source tree uses the tree's folder. */
            g_autofree char *base = g_path_get_basename(value);
            fallback = g_build_filename(VMB_SOURCE_ROOT, base, NULL);
            if (g_file_test(fallback, G_FILE_TEST_IS_DIR))
                value = fallback;
        }
        if (!value) {
            if (k->type == KEY_URL || k->derived)
                continue; /* derived below */
            if (k->type == KEY_DBURL && !(needs & CONFIG_NEEDS_DATABASE))
                continue; /* e.g. `template render` on a machine without PostgreSQL */
            g_set_error(error, VMB_ERROR, VMB_ERROR_CONFIG,
                        "config: %s.%s is required (or set %s)", k->section, k->key, var);
            return NULL;
        }
        g_hash_table_insert(cfg->raw, g_strdup_printf("%s.%s", k->section, k->key),
                            g_strdup(value));
        why = parse_value(cfg, k, value);
        if (why) {
            g_set_error(error, VMB_ERROR, VMB_ERROR_CONFIG, "config: %s.%s = '%s'%s%s%s: %s",
                        k->section, k->key, value, env_value ? " (from " : "",
                        env_value ? var : "", env_value ? ")" : "", why);
            return NULL;
        }
    }

    if (ranges_overlap(&cfg->console_vnc_ports, &cfg->console_ws_ports)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFIG,
                    "config: console.ws_ports = '%u-%u': overlaps console.vnc_ports (%u-%u)",
                    cfg->console_ws_ports.first, cfg->console_ws_ports.last,
                    cfg->console_vnc_ports.first, cfg->console_vnc_ports.last);
        return NULL;
    }
    if (!cfg->operations_instance)
        cfg->operations_instance = g_strdup(g_get_host_name());
    if (!cfg->http_public_url) {
        bool v6 = strchr(cfg->http_listen_host, ':') != NULL;
        cfg->http_public_url = g_strdup_printf("http://%s%s%s:%u", v6 ? "[" : "",
                                               cfg->http_listen_host, v6 ? "]" : "",
                                               cfg->http_listen_port);
    }
    return g_steal_pointer(&cfg);
}
