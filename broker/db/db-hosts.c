// SPDX-License-Identifier: LGPL-2.1-or-later
// hosts: the configured one, made or updated from the config at start, and those admins add.
#include "db-hosts.h"

#include <stdlib.h>

#include "vmb-error.h"

void
db_host_free(DbHost *host)
{
    if (!host)
        return;
    g_free(host->id);
    g_free(host->name);
    g_free(host->uri);
    g_free(host->console_address);
    g_clear_pointer(&host->created_at, g_date_time_unref);
    g_free(host);
}

#define HOST_COLUMNS                                                                   \
    "h.id, h.name, h.uri, h.console_address, h.vnc_first, h.vnc_last, h.ws_first,"    \
    " h.ws_last, h.memory_mib, h.enabled, h.reachable, h.from_config,"                 \
    " (SELECT count(*) FROM vms v WHERE v.host_id = h.id), " DB_US("h.created_at")

static unsigned
uint_value(const PGresult *res, int row, int col)
{
    return (unsigned) strtoul(PQgetvalue(res, row, col), NULL, 10);
}

static DbHost *
host_from_row(const PGresult *res, int row)
{
    DbHost *h = g_new0(DbHost, 1);
    int c = 0;

    h->id = db_value_dup(res, row, c++);
    h->name = db_value_dup(res, row, c++);
    h->uri = db_value_dup(res, row, c++);
    h->console_address = db_value_dup(res, row, c++);
    h->ranges.vnc_first = uint_value(res, row, c++);
    h->ranges.vnc_last = uint_value(res, row, c++);
    h->ranges.ws_first = uint_value(res, row, c++);
    h->ranges.ws_last = uint_value(res, row, c++);
    h->memory_mib = g_ascii_strtoull(PQgetvalue(res, row, c++), NULL, 10);
    h->enabled = PQgetvalue(res, row, c++)[0] == 't';
    h->reachable = PQgetvalue(res, row, c++)[0] == 't';
    h->from_config = PQgetvalue(res, row, c++)[0] == 't';
    h->vms = uint_value(res, row, c++);
    h->created_at = db_value_time(res, row, c++);
    return h;
}

/* @spec as the parameters $1..$8: name, uri, console address, the four range ends, and the
 * budget (NULL for none). The strings live in @buf. */
typedef struct {
    char num[5][24];
    const char *params[8];
} SpecParams;

static const char *const *
spec_params(const DbHostSpec *spec, SpecParams *buf)
{
    unsigned ends[4] = { spec->ranges.vnc_first, spec->ranges.vnc_last,
                         spec->ranges.ws_first, spec->ranges.ws_last };

    buf->params[0] = spec->name;
    buf->params[1] = spec->uri;
    buf->params[2] = spec->console_address;
    for (unsigned i = 0; i < 4; i++) {
        g_snprintf(buf->num[i], sizeof(buf->num[i]), "%u", ends[i]);
        buf->params[3 + i] = buf->num[i];
    }
    g_snprintf(buf->num[4], sizeof(buf->num[4]), "%" G_GUINT64_FORMAT, spec->memory_mib);
    buf->params[7] = spec->memory_mib ? buf->num[4] : NULL;
    return buf->params;
}

/**
 * db_hosts_ensure_configured:
 * @conn: a connection
 * @spec: the host as the config describes it (name DB_HOST_CONFIGURED)
 * @ret_id: (out): the host's id
 * @error: return location for an error
 *
 * Returns: true on success.
 */
bool
db_hosts_ensure_configured(DbConn *conn, const DbHostSpec *spec, char **ret_id,
                           GError **error)
{
    SpecParams buf;
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "INSERT INTO hosts (name, uri, console_address, vnc_first, vnc_last, ws_first,"
        "  ws_last, memory_mib, from_config)"
        " VALUES ($1, $2, $3, $4::int, $5::int, $6::int, $7::int, $8::bigint, true)"
        " ON CONFLICT (name) DO UPDATE SET uri = EXCLUDED.uri,"
        "  console_address = EXCLUDED.console_address, vnc_first = EXCLUDED.vnc_first,"
        "  vnc_last = EXCLUDED.vnc_last, ws_first = EXCLUDED.ws_first,"
        "  ws_last = EXCLUDED.ws_last, memory_mib = EXCLUDED.memory_mib, from_config = true,"
        "  updated_at = now()"
        " WHERE (hosts.uri, hosts.console_address, hosts.vnc_first, hosts.vnc_last,"
        "        hosts.ws_first, hosts.ws_last, hosts.memory_mib, hosts.from_config)"
        "  IS DISTINCT FROM (EXCLUDED.uri, EXCLUDED.console_address, EXCLUDED.vnc_first,"
        "        EXCLUDED.vnc_last, EXCLUDED.ws_first, EXCLUDED.ws_last, EXCLUDED.memory_mib,"
        "        true)"
        " RETURNING id", 8, spec_params(spec, &buf), error);

    if (!res)
        return false;
    if (PQntuples(res) == 0) {
        /* Unchanged: DO UPDATE ... WHERE returned nothing. */
        g_clear_pointer(&res, PQclear);
        res = db_exec(conn, PGRES_TUPLES_OK, "SELECT id FROM hosts WHERE name = $1",
                      1, &spec->name, error);
        if (!res)
            return false;
        if (PQntuples(res) == 0) {
            g_set_error(error, VMB_ERROR, VMB_ERROR_INTERNAL, "host '%s' vanished", spec->name);
            return false;
        }
    }
    *ret_id = g_strdup(PQgetvalue(res, 0, 0));
    return true;
}

/**
 * db_hosts_insert:
 * @conn: a connection
 * @spec: the new host
 * @error: return location for an error (VMB_ERROR_CONFLICT: the name is taken)
 *
 * Returns: (transfer full): the host, or NULL.
 */
DbHost *
db_hosts_insert(DbConn *conn, const DbHostSpec *spec, GError **error)
{
    SpecParams buf;
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "WITH h AS (INSERT INTO hosts (name, uri, console_address, vnc_first, vnc_last,"
        "  ws_first, ws_last, memory_mib)"
        " VALUES ($1, $2, $3, $4::int, $5::int, $6::int, $7::int, $8::bigint)"
        " ON CONFLICT (name) DO NOTHING RETURNING *)"
        " SELECT " HOST_COLUMNS " FROM h", 8, spec_params(spec, &buf), error);

    if (!res)
        return NULL;
    if (PQntuples(res) == 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT, "A host named '%s' exists already.",
                    spec->name);
        return NULL;
    }
    return host_from_row(res, 0);
}

/**
 * db_hosts_list:
 * @conn: a connection
 * @error: return location for an error
 *
 * Returns: (transfer full) (element-type DbHost): every host by name, or NULL.
 */
GPtrArray *
db_hosts_list(DbConn *conn, GError **error)
{
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "SELECT " HOST_COLUMNS " FROM hosts h ORDER BY h.name", 0, NULL, error);
    GPtrArray *out;

    if (!res)
        return NULL;
    out = g_ptr_array_new_with_free_func((GDestroyNotify) db_host_free);
    for (int i = 0; i < PQntuples(res); i++)
        g_ptr_array_add(out, host_from_row(res, i));
    return out;
}

DbHost *
db_hosts_get(DbConn *conn, const char *name, bool lock, GError **error)
{
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK, lock
        ? "SELECT " HOST_COLUMNS " FROM hosts h WHERE h.name = $1 FOR UPDATE"
        : "SELECT " HOST_COLUMNS " FROM hosts h WHERE h.name = $1", 1, &name, error);

    if (!res)
        return NULL;
    if (PQntuples(res) == 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_NOT_FOUND, "There is no host '%s'.", name);
        return NULL;
    }
    return host_from_row(res, 0);
}

bool
db_hosts_update(DbConn *conn, const char *id, const DbHostSpec *spec, GError **error)
{
    SpecParams buf;
    const char *const *p = spec_params(spec, &buf);
    const char *params[] = { id, p[1], p[2], p[3], p[4], p[5], p[6], p[7] };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_COMMAND_OK,
        "UPDATE hosts SET uri = $2, console_address = $3, vnc_first = $4::int,"
        " vnc_last = $5::int, ws_first = $6::int, ws_last = $7::int, memory_mib = $8::bigint,"
        " updated_at = now() WHERE id = $1", 8, params, error);

    return res != NULL;
}

bool
db_hosts_set_enabled(DbConn *conn, const char *id, bool enabled, GError **error)
{
    const char *params[] = { id, enabled ? "true" : "false" };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_COMMAND_OK,
        "UPDATE hosts SET enabled = $2::boolean, updated_at = now() WHERE id = $1",
        2, params, error);

    return res != NULL;
}

bool
db_hosts_set_reachable(DbConn *conn, const char *id, bool reachable, GError **error)
{
    const char *params[] = { id, reachable ? "true" : "false" };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_COMMAND_OK,
        "UPDATE hosts SET reachable = $2::boolean WHERE id = $1"
        " AND reachable IS DISTINCT FROM $2::boolean", 2, params, error);

    return res != NULL;
}

bool
db_hosts_delete(DbConn *conn, const char *id, GError **error)
{
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "DELETE FROM hosts h WHERE h.id = $1"
        " AND NOT EXISTS (SELECT 1 FROM vms v WHERE v.host_id = h.id) RETURNING h.id",
        1, &id, error);

    if (!res)
        return false;
    if (PQntuples(res) == 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT,
                    "The host still has VMs: delete them (or wait for them to go) first.");
        return false;
    }
    return true;
}

bool
db_hosts_check_open(DbConn *conn, const char *id, GError **error)
{
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "SELECT name, enabled FROM hosts WHERE id = $1 FOR SHARE", 1, &id, error);

    if (!res)
        return false;
    if (PQntuples(res) == 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNPROCESSABLE, "The host is gone.");
        return false;
    }
    if (PQgetvalue(res, 0, 1)[0] != 't') {
        g_set_error(error, VMB_ERROR, VMB_ERROR_EXHAUSTED,
                    "No host takes new VMs: host '%s' is disabled.", PQgetvalue(res, 0, 0));
        return false;
    }
    return true;
}

/**
 * db_host_lease_take:
 * @conn: a connection
 * @id: a host
 * @owner: the broker (operations.instance)
 * @ttl_s: how long the lease runs unless renewed
 * @ret_epoch: (out): the fencing epoch when @owner holds the lease, else 0
 * @error: return location for an error
 *
 * One statement: a lease nobody holds is made (epoch 1); @owner's own is renewed (same
 * epoch); another broker's that expired is taken over (epoch + 1); another's that runs is
 * left alone.
 *
 * Returns: false on a database error.
 */
bool
db_host_lease_take(DbConn *conn, const char *id, const char *owner, unsigned ttl_s,
                   gint64 *ret_epoch, GError **error)
{
    g_autofree char *ttl = g_strdup_printf("%u", ttl_s);
    const char *params[] = { id, owner, ttl };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "INSERT INTO host_leases AS l (host_id, owner, epoch, expires_at)"
        " VALUES ($1, $2, 1, clock_timestamp() + make_interval(secs => $3::int))"
        " ON CONFLICT (host_id) DO UPDATE SET owner = EXCLUDED.owner,"
        "  epoch = l.epoch + CASE WHEN l.owner = EXCLUDED.owner THEN 0 ELSE 1 END,"
        "  expires_at = EXCLUDED.expires_at"
        " WHERE l.owner = EXCLUDED.owner OR l.expires_at < clock_timestamp()"
        " RETURNING epoch", 3, params, error);

    if (!res)
        return false;
    *ret_epoch = PQntuples(res) ? g_ascii_strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    return true;
}

bool
db_host_lease_check(DbConn *conn, const char *id, const char *vm_id, const char *owner,
                    gint64 epoch, GError **error)
{
    g_autofree char *e = g_strdup_printf("%" G_GINT64_FORMAT, epoch);
    const char *op_params[] = { vm_id, owner };
    const char *params[] = { id, owner, e };
    g_autoptr(PGresult) op = db_exec(conn, PGRES_TUPLES_OK,
        "SELECT 1 FROM operations WHERE vm_id = $1 AND state = 'running' AND broker = $2",
        2, op_params, error);
    g_autoptr(PGresult) res = NULL;

    if (!op)
        return false;
    if (PQntuples(op) > 0)
        return true;
    res = db_exec(conn, PGRES_TUPLES_OK,
        "SELECT 1 FROM host_leases WHERE host_id = $1 AND owner = $2 AND epoch = $3::bigint"
        " AND expires_at > clock_timestamp() FOR SHARE", 3, params, error);
    if (!res)
        return false;
    if (PQntuples(res) == 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT,
                    "this broker no longer holds the host's lease (epoch %" G_GINT64_FORMAT
                    ")", epoch);
        return false;
    }
    return true;
}

bool
db_host_lease_release(DbConn *conn, const char *id, const char *owner, GError **error)
{
    const char *params[] = { id, owner };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_COMMAND_OK,
        "UPDATE host_leases SET expires_at = clock_timestamp() - interval '1 second'"
        " WHERE host_id = $1 AND owner = $2", 2, params, error);

    return res != NULL;
}

char *
db_host_volume_sha256(DbConn *conn, const char *id, const char *pool, const char *name,
                      GError **error)
{
    const char *params[] = { id, pool, name };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "SELECT sha256 FROM host_volumes WHERE host_id = $1 AND pool = $2 AND name = $3",
        3, params, error);

    return res && PQntuples(res) ? g_strdup(PQgetvalue(res, 0, 0)) : NULL;
}

bool
db_host_volume_record(DbConn *conn, const char *id, const char *pool, const char *name,
                      const char *sha256, GError **error)
{
    const char *params[] = { id, pool, name, sha256 };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_COMMAND_OK,
        "INSERT INTO host_volumes (host_id, pool, name, sha256) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (host_id, pool, name) DO UPDATE SET sha256 = EXCLUDED.sha256,"
        " copied_at = now()", 4, params, error);

    return res != NULL;
}
