// SPDX-License-Identifier: LGPL-2.1-or-later
// Queries on the hosts table: the configured host (`local`), kept in line with the config at
// every start, and the hosts admins add.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"
#include "db-ports.h"

/* The name of the host the config file describes (libvirt.uri, console.*). */
#define DB_HOST_CONFIGURED "local"

typedef struct {
    char *id;
    char *name;
    char *uri;                /* libvirt URI */
    char *console_address;    /* where QEMU's VNC and websocket servers listen */
    DbPortRanges ranges;
    guint64 memory_mib;       /* guests' memory there at most; 0 for no budget */
    bool enabled;             /* false: it takes no new VMs */
    bool reachable;           /* false: its libvirt was lost and is not back */
    bool from_config;         /* the config file's host */
    unsigned vms;             /* VMs placed there */
    GDateTime *created_at;
} DbHost;

void db_host_free(DbHost *host);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DbHost, db_host_free)

/* What a host is made of; the fields db_hosts_insert and db_hosts_update write. */
typedef struct {
    const char *name;
    const char *uri;
    const char *console_address;
    DbPortRanges ranges;
    guint64 memory_mib;       /* 0 for no budget */
} DbHostSpec;

/* Inserts the configured host or brings its row in line with @spec (its `enabled` stays);
 * @ret_id gets its id. The caller syncs its port rows. */
bool db_hosts_ensure_configured(DbConn *conn, const DbHostSpec *spec, char **ret_id,
                                GError **error);
/* A new host; VMB_ERROR_CONFLICT when the name is taken. The caller syncs its port rows. */
DbHost *db_hosts_insert(DbConn *conn, const DbHostSpec *spec, GError **error);
GPtrArray *db_hosts_list(DbConn *conn, GError **error);
/* Host @name, its row locked FOR UPDATE when @lock; VMB_ERROR_NOT_FOUND. */
DbHost *db_hosts_get(DbConn *conn, const char *name, bool lock, GError **error);
/* Writes @spec's URI, console address, ranges and budget over host @id's (not its name). */
bool db_hosts_update(DbConn *conn, const char *id, const DbHostSpec *spec, GError **error);
bool db_hosts_set_enabled(DbConn *conn, const char *id, bool enabled, GError **error);
/* Records whether host @id's libvirt answers; a write only when that changes. */
bool db_hosts_set_reachable(DbConn *conn, const char *id, bool reachable, GError **error);
/* Removes a host without VMs (its port rows go with it); VMB_ERROR_CONFLICT otherwise. */
bool db_hosts_delete(DbConn *conn, const char *id, GError **error);
/* Inside a create's transaction: VMB_ERROR_EXHAUSTED when host @id takes no new VMs. Its
 * row is locked FOR SHARE, so it is not disabled or removed before the commit. */
bool db_hosts_check_open(DbConn *conn, const char *id, GError **error);

/* --- leases: the broker that watches a host (migration 0026) --- */
/* Takes host @id's lease for @owner, or renews it, for @ttl_s seconds: *ret_epoch is the
 * fencing epoch when @owner holds it (a takeover of an expired one bumps it), 0 when another
 * broker's lease runs. */
bool db_host_lease_take(DbConn *conn, const char *id, const char *owner, unsigned ttl_s,
                        gint64 *ret_epoch, GError **error);
/* Inside a repair of VM @vm_id's row: VMB_ERROR_CONFLICT unless @owner still holds host
 * @id's lease at @epoch (its row locked FOR SHARE until the transaction ends), or runs the
 * VM's operation (which a takeover of the operation fences). */
bool db_host_lease_check(DbConn *conn, const char *id, const char *vm_id, const char *owner,
                         gint64 epoch, GError **error);
/* Ends @owner's lease of host @id at once, for another broker to take (a clean stop). */
bool db_host_lease_release(DbConn *conn, const char *id, const char *owner, GError **error);

/* --- volumes copied to a host (migration 0027) --- */
/* The SHA-256 recorded for volume @name of pool @pool ("isos", "base") on host @id, or NULL
 * (no error) when no checked copy is recorded. */
char *db_host_volume_sha256(DbConn *conn, const char *id, const char *pool, const char *name,
                            GError **error);
/* Records a checked copy (replacing an older record). */
bool db_host_volume_record(DbConn *conn, const char *id, const char *pool, const char *name,
                           const char *sha256, GError **error);
