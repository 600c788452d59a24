// SPDX-License-Identifier: LGPL-2.1-or-later
// Hosts as admins manage them: every change is checked here, written with its port rows and
// its audit row in one transaction.
#include "svc-hosts.h"

#include <stdlib.h>
#include <string.h>

#include "db-ports.h"
#include "svc-audit.h"
#include "svc-users.h"
#include "vmb-error.h"

/* A budget above this (a pebibyte) is a typing error. */
#define MEMORY_MIB_MAX (G_GINT64_CONSTANT(1) << 30)
#define URI_MAX 1000

struct SvcHosts {
    SvcHostsOptions opts;
};

SvcHosts *
svc_hosts_new(const SvcHostsOptions *opts)
{
    SvcHosts *hosts = g_new0(SvcHosts, 1);

    hosts->opts = *opts;
    return hosts;
}

void
svc_hosts_free(SvcHosts *hosts)
{
    g_free(hosts);
}

static bool
require_admin(const DbUser *caller, GError **error)
{
    if (caller->role == DB_ROLE_ADMIN)
        return true;
    g_set_error(error, VMB_ERROR, VMB_ERROR_FORBIDDEN, "Only admins manage hosts.");
    return false;
}

/* "FIRST-LAST" of ports 1-65535, FIRST <= LAST. */
static bool
parse_range(const char *text, const char *what, unsigned *first, unsigned *last,
            GError **error)
{
    g_auto(GStrv) parts = g_strsplit(text, "-", 3);
    guint64 a = 0, b = 0;

    if (g_strv_length(parts) != 2 ||
        !g_ascii_string_to_unsigned(parts[0], 10, 1, 65535, &a, NULL) ||
        !g_ascii_string_to_unsigned(parts[1], 10, 1, 65535, &b, NULL) || a > b) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID,
                    "%s must be a port range FIRST-LAST (ports 1-65535, FIRST <= LAST).", what);
        return false;
    }
    *first = (unsigned) a;
    *last = (unsigned) b;
    return true;
}

/* Writes @f's fields over @spec, checking each; @spec's strings then point into @f. */
static bool
apply_fields(DbHostSpec *spec, const SvcHostFields *f, GError **error)
{
    DbPortRanges *r = &spec->ranges;

    if (f->uri) {
        if (!*f->uri || strlen(f->uri) > URI_MAX ||
            !g_uri_is_valid(f->uri, G_URI_FLAGS_NONE, NULL)) {
            g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID,
                        "uri must be a libvirt URI (such as qemu+ssh://host/system).");
            return false;
        }
        spec->uri = f->uri;
    }
    if (f->console_address) {
        if (!g_hostname_is_ip_address(f->console_address)) {
            g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID,
                        "console_address must be an IP address of the host.");
            return false;
        }
        spec->console_address = f->console_address;
    }
    if ((f->vnc_ports && !parse_range(f->vnc_ports, "vnc_ports", &r->vnc_first, &r->vnc_last,
                                      error)) ||
        (f->ws_ports && !parse_range(f->ws_ports, "ws_ports", &r->ws_first, &r->ws_last,
                                     error)))
        return false;
    if (r->vnc_first <= r->ws_last && r->ws_first <= r->vnc_last) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID,
                    "vnc_ports and ws_ports must not overlap.");
        return false;
    }
    if (f->memory_mib > MEMORY_MIB_MAX) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID,
                    "memory_mib must be at most %" G_GINT64_FORMAT " (0 for no budget).",
                    MEMORY_MIB_MAX);
        return false;
    }
    if (f->memory_mib >= 0)
        spec->memory_mib = (guint64) f->memory_mib;
    return true;
}

/* What an audit row says of a change: the fields given. */
static json_object *
fields_detail(const SvcHostFields *f)
{
    json_object *o = json_object_new_object();

    if (f->uri)
        json_object_object_add(o, "uri", json_object_new_string(f->uri));
    if (f->console_address)
        json_object_object_add(o, "console_address", json_object_new_string(f->console_address));
    if (f->vnc_ports)
        json_object_object_add(o, "vnc_ports", json_object_new_string(f->vnc_ports));
    if (f->ws_ports)
        json_object_object_add(o, "ws_ports", json_object_new_string(f->ws_ports));
    if (f->memory_mib >= 0)
        json_object_object_add(o, "memory_mib", json_object_new_int64(f->memory_mib));
    if (f->enabled >= 0)
        json_object_object_add(o, "enabled", json_object_new_boolean(f->enabled));
    return o;
}

/* One host change and its audit row, in one transaction. */
typedef struct {
    const DbUser *caller;
    const char *name;
    const SvcHostFields *fields;
    const char *remote_addr;
    DbHost *host;             /* out: as it is after the change */
} HostTx;

static bool
audit(DbConn *conn, HostTx *tx, const char *action, const char *host_id, GError **error)
{
    g_autoptr(json_object) detail = tx->fields ? fields_detail(tx->fields) : NULL;

    return svc_audit_write(conn, tx->caller->id ? tx->caller : NULL, action, "host", host_id,
                           tx->remote_addr, detail, error);
}

static bool
add_tx(DbConn *conn, void *data, GError **error)
{
    HostTx *tx = data;
    DbHostSpec spec = { .name = tx->name, .ranges = { 5900, 5999, 5700, 5799 } };

    if (!apply_fields(&spec, tx->fields, error))
        return false;
    tx->host = db_hosts_insert(conn, &spec, error);
    if (!tx->host || !db_ports_sync(conn, tx->host->id, &spec.ranges, error))
        return false;
    if (tx->fields->enabled == 0 && !db_hosts_set_enabled(conn, tx->host->id, false, error))
        return false;
    tx->host->enabled = tx->fields->enabled != 0;
    return audit(conn, tx, "host.add", tx->host->id, error);
}

/**
 * svc_hosts_add:
 * @hosts: the service
 * @caller: who asks: an admin
 * @name: the new host's name (the rule of user names)
 * @fields: its settings; uri and console_address required
 * @remote_addr: (nullable): the caller's address, for the audit log
 * @error: return location for an error (FORBIDDEN, INVALID, CONFLICT for a name taken)
 *
 * Returns: (transfer full): the host, or NULL.
 */
DbHost *
svc_hosts_add(SvcHosts *hosts, const DbUser *caller, const char *name,
              const SvcHostFields *fields, const char *remote_addr, GError **error)
{
    HostTx tx = { caller, name, fields, remote_addr, NULL };

    if (!require_admin(caller, error))
        return NULL;
    if (!svc_users_name_valid(name)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID,
                    "A host name is a lower-case letter or digit, then up to 63 of "
                    "a-z, 0-9, '.', '_' and '-'.");
        return NULL;
    }
    if (!fields->uri || !fields->console_address) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID,
                    "A new host needs its libvirt uri and its console_address.");
        return NULL;
    }
    if (!db_pool_transaction(hosts->opts.db, add_tx, &tx, error)) {
        g_clear_pointer(&tx.host, db_host_free);
        return NULL;
    }
    return tx.host;
}

/* Whether @f changes more than `enabled`. */
static bool
changes_settings(const SvcHostFields *f)
{
    return f->uri || f->console_address || f->vnc_ports || f->ws_ports || f->memory_mib >= 0;
}

static const char *
change_action(const SvcHostFields *f)
{
    if (changes_settings(f))
        return "host.change";
    return f->enabled == 0 ? "host.disable" : "host.enable";
}

static bool
change_tx(DbConn *conn, void *data, GError **error)
{
    HostTx *tx = data;
    g_autoptr(DbHost) cur = db_hosts_get(conn, tx->name, true, error);
    DbHostSpec spec;

    if (!cur)
        return false;
    if (cur->from_config && changes_settings(tx->fields)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT,
                    "Host '%s' is the one the config file describes: change its settings "
                    "there. Only enabling or disabling it is kept here.",
                    cur->name);
        return false;
    }
    spec = (DbHostSpec) { cur->name, cur->uri, cur->console_address, cur->ranges,
                          cur->memory_mib };
    if (!apply_fields(&spec, tx->fields, error))
        return false;
    if (changes_settings(tx->fields) &&
        (!db_hosts_update(conn, cur->id, &spec, error) ||
         !db_ports_sync(conn, cur->id, &spec.ranges, error)))
        return false;
    if (tx->fields->enabled >= 0 &&
        !db_hosts_set_enabled(conn, cur->id, tx->fields->enabled, error))
        return false;
    if (!audit(conn, tx, change_action(tx->fields), cur->id, error))
        return false;
    tx->host = db_hosts_get(conn, tx->name, false, error);
    return tx->host != NULL;
}

/**
 * svc_hosts_change:
 * @hosts: the service
 * @caller: who asks: an admin
 * @name: the host
 * @fields: what changes (a change of the config file's host may only enable or disable it)
 * @remote_addr: (nullable): the caller's address, for the audit log
 * @error: return location for an error (FORBIDDEN, INVALID, NOT_FOUND, CONFLICT)
 *
 * A narrowed range keeps the ports VMs hold until they let them go.
 *
 * Returns: (transfer full): the host as it is now, or NULL.
 */
DbHost *
svc_hosts_change(SvcHosts *hosts, const DbUser *caller, const char *name,
                 const SvcHostFields *fields, const char *remote_addr, GError **error)
{
    HostTx tx = { caller, name, fields, remote_addr, NULL };

    if (!require_admin(caller, error))
        return NULL;
    if (!db_pool_transaction(hosts->opts.db, change_tx, &tx, error)) {
        g_clear_pointer(&tx.host, db_host_free);
        return NULL;
    }
    return tx.host;
}

static bool
remove_tx(DbConn *conn, void *data, GError **error)
{
    HostTx *tx = data;
    g_autoptr(DbHost) cur = db_hosts_get(conn, tx->name, true, error);

    if (!cur)
        return false;
    if (cur->from_config) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT,
                    "Host '%s' is the one the config file describes; it cannot be removed.",
                    cur->name);
        return false;
    }
    if (cur->vms) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT,
                    "Host '%s' still has %u VM%s: delete them first.", cur->name, cur->vms,
                    cur->vms == 1 ? "" : "s");
        return false;
    }
    return db_hosts_delete(conn, cur->id, error) && audit(conn, tx, "host.remove", cur->id, error);
}

/**
 * svc_hosts_remove:
 * @hosts: the service
 * @caller: who asks: an admin
 * @name: a host without VMs, not the config file's
 * @remote_addr: (nullable): the caller's address, for the audit log
 * @error: return location for an error (FORBIDDEN, NOT_FOUND, CONFLICT)
 *
 * Returns: true once it is gone, with its port rows.
 */
bool
svc_hosts_remove(SvcHosts *hosts, const DbUser *caller, const char *name,
                 const char *remote_addr, GError **error)
{
    HostTx tx = { caller, name, NULL, remote_addr, NULL };

    return require_admin(caller, error) &&
           db_pool_transaction(hosts->opts.db, remove_tx, &tx, error);
}

GPtrArray *
svc_hosts_list(SvcHosts *hosts, const DbUser *caller, GError **error)
{
    g_autoptr(DbConn) conn = NULL;

    if (!require_admin(caller, error) || !(conn = db_pool_acquire(hosts->opts.db, error)))
        return NULL;
    return db_hosts_list(conn, error);
}
