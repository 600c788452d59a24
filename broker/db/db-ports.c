// SPDX-License-Identifier: LGPL-2.1-or-later
// port_leases. Leasing takes both ports in one statement: two locking sub-selects that skip
// rows other transactions hold, so concurrent creates never wait on each other's rows.
#include "db-ports.h"

#include <stdlib.h>
#include <string.h>

#include "vmb-error.h"

static bool
range_valid(unsigned first, unsigned last)
{
    return first >= 1 && first <= last && last <= 65535;
}

static bool
exec_cmd(DbConn *conn, const char *sql, int n, const char *const *params, GError **error)
{
    g_autoptr(PGresult) res = db_exec(conn, PGRES_COMMAND_OK, sql, n, params, error);
    return res != NULL;
}

static bool
require_transaction(DbConn *conn, const char *what, GError **error)
{
    if (PQtransactionStatus(conn->pg) == PQTRANS_INTRANS)
        return true;
    g_set_error(error, VMB_ERROR, VMB_ERROR_INTERNAL, "%s must run inside a transaction", what);
    return false;
}

/**
 * db_ports_sync:
 * @conn: a connection (best inside a transaction, so the change is all or nothing)
 * @host_id: the host whose rows to sync
 * @ranges: the configured ranges
 * @error: return location for an error
 *
 * Inserts a row for every port of the ranges (existing rows are kept, a free row whose
 * range changed takes the new kind), deletes free rows outside the ranges, and marks leased
 * rows outside them so that their release deletes them: current leases are never taken away.
 *
 * Returns: true on success; VMB_ERROR_CONFIG for an empty, reversed or overlapping range.
 */
bool
db_ports_sync(DbConn *conn, const char *host_id, const DbPortRanges *ranges, GError **error)
{
    g_autofree char *vf = g_strdup_printf("%u", ranges->vnc_first);
    g_autofree char *vl = g_strdup_printf("%u", ranges->vnc_last);
    g_autofree char *wf = g_strdup_printf("%u", ranges->ws_first);
    g_autofree char *wl = g_strdup_printf("%u", ranges->ws_last);
    const char *vnc_params[] = { host_id, "vnc", vf, vl };
    const char *ws_params[] = { host_id, "ws", wf, wl };
    const char *all[] = { host_id, vf, vl, wf, wl };

    if (!range_valid(ranges->vnc_first, ranges->vnc_last) ||
        !range_valid(ranges->ws_first, ranges->ws_last)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFIG,
                    "port ranges must be FIRST-LAST within 1-65535 (vnc %u-%u, ws %u-%u)",
                    ranges->vnc_first, ranges->vnc_last, ranges->ws_first, ranges->ws_last);
        return false;
    }
    if (ranges->vnc_first <= ranges->ws_last && ranges->ws_first <= ranges->vnc_last) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFIG,
                    "console.vnc_ports %u-%u and console.ws_ports %u-%u overlap",
                    ranges->vnc_first, ranges->vnc_last, ranges->ws_first, ranges->ws_last);
        return false;
    }
    for (int i = 0; i < 2; i++) {
        const char *const *p = i == 0 ? vnc_params : ws_params;
        if (!exec_cmd(conn,
                "INSERT INTO port_leases (host_id, port, kind)"
                " SELECT $1::uuid, p, $2::text FROM generate_series($3::int, $4::int) AS p"
                " ON CONFLICT (host_id, port) DO NOTHING", 4, p, error) ||
            !exec_cmd(conn,
                "UPDATE port_leases SET kind = $2"
                " WHERE host_id = $1 AND port BETWEEN $3::int AND $4::int"
                " AND kind <> $2 AND vm_id IS NULL", 4, p, error) ||
            !exec_cmd(conn,
                "UPDATE port_leases SET in_range = true WHERE host_id = $1"
                " AND port BETWEEN $3::int AND $4::int AND NOT in_range AND kind = $2",
                4, p, error))
            return false;
    }
    return exec_cmd(conn,
                "DELETE FROM port_leases WHERE host_id = $1 AND vm_id IS NULL"
                " AND port NOT BETWEEN $2::int AND $3::int"
                " AND port NOT BETWEEN $4::int AND $5::int", 5, all, error) &&
           exec_cmd(conn,
                "UPDATE port_leases SET in_range = false WHERE host_id = $1 AND in_range"
                " AND port NOT BETWEEN $2::int AND $3::int"
                " AND port NOT BETWEEN $4::int AND $5::int", 5, all, error);
}

/* The free rows of one kind, least recently released first; rows locked by concurrent
 * transactions are skipped rather than waited for. The time is clock_timestamp(): a row
 * released by another client after this statement began is rechecked (EvalPlanQual) with
 * a cool-down that ended "after" the statement's own timestamp, and would be skipped. */
#define FREE_ROW(kind_param)                                                        \
    "SELECT port FROM port_leases"                                                  \
    " WHERE host_id = $1 AND kind = " kind_param " AND vm_id IS NULL AND in_range"  \
    " AND (cooldown_until IS NULL OR cooldown_until <= clock_timestamp())"          \
    " AND (quarantined_until IS NULL OR quarantined_until <= clock_timestamp())"    \
    " ORDER BY released_at NULLS FIRST, port LIMIT 1 FOR UPDATE SKIP LOCKED"

/* Locking clauses are not allowed under UNION, so each kind picks in a CTE of its own. */
static const char lease_pair_sql[] =
    "WITH v AS MATERIALIZED (" FREE_ROW("'vnc'") "),"
    " w AS MATERIALIZED (" FREE_ROW("'ws'") ")"
    " UPDATE port_leases l SET vm_id = $2, leased_at = now()"
    " WHERE l.host_id = $1"
    " AND l.port = ANY (ARRAY(SELECT port FROM v UNION ALL SELECT port FROM w))"
    " RETURNING l.kind, l.port";

static const char lease_one_sql[] =
    "WITH pick AS MATERIALIZED (" FREE_ROW("$3::text") ")"
    " UPDATE port_leases l SET vm_id = $2, leased_at = now()"
    " WHERE l.host_id = $1 AND l.port = ANY (ARRAY(SELECT port FROM pick))"
    " RETURNING l.kind, l.port";

static bool
exhausted_error(DbConn *conn, const char *host_id, const char *kind, GError **error)
{
    DbPortCounts c = { 0 };
    g_autoptr(GError) err = NULL;

    if (!db_ports_count(conn, host_id, kind, &c, &err)) {
        g_propagate_error(error, g_steal_pointer(&err));
        return false;
    }
    g_set_error(error, VMB_ERROR, VMB_ERROR_EXHAUSTED,
                "no free %s port: %u of %u leased, %u cooling down, %u quarantined "
                "(others may be held by transactions in progress)",
                kind, c.leased, c.total, c.cooling, c.quarantined);
    return false;
}

/* Gives a port found held back (still locked by us) and skips it for a while. */
static bool
quarantine(DbConn *conn, const char *host_id, unsigned port, unsigned seconds, GError **error)
{
    g_autofree char *p = g_strdup_printf("%u", port);
    g_autofree char *s = g_strdup_printf("%u", seconds);
    const char *params[] = { host_id, p, s };

    return exec_cmd(conn,
        "UPDATE port_leases SET vm_id = NULL, leased_at = NULL,"
        " quarantined_until = clock_timestamp() + make_interval(secs => $3::int)"
        " WHERE host_id = $1 AND port = $2::int", 3, params, error);
}

/**
 * db_ports_lease_pair:
 * @conn: a connection inside a transaction (the VM-create or VM-start transaction)
 * @host_id: the VM's host
 * @vm_id: the VM the leases are for
 * @opts: (nullable): the probe and quarantine; NULL for no probing
 * @ret_pair: (out): the leased ports
 * @error: return location for an error
 *
 * Takes one free `vnc` and one free `ws` row with FOR UPDATE SKIP LOCKED and records @vm_id
 * in them. Each port is then probed; one a foreign process holds is quarantined for
 * opts->quarantine_s and the next free one of its kind is tried. The quarantine is written
 * in the caller's transaction, so a rollback forgets it (the port is then probed again).
 *
 * Returns: true on success; VMB_ERROR_EXHAUSTED when either kind has no free port.
 */
bool
db_ports_lease_pair(DbConn *conn, const char *host_id, const char *vm_id,
                    const DbPortLeaseOptions *opts, DbPortPair *ret_pair, GError **error)
{
    const char *params[] = { host_id, vm_id, NULL };
    g_autoptr(PGresult) res = NULL;
    DbPortPair pair = { 0 };

    if (!require_transaction(conn, "db_ports_lease_pair", error))
        return false;
    res = db_exec_prepared(conn, PGRES_TUPLES_OK, "ports_lease_pair", lease_pair_sql, 2,
                           params, error);
    if (!res)
        return false;
    for (int row = 0;; row++) {
        const char *kind;
        unsigned port;

        if (row == PQntuples(res)) {
            /* Both kinds leased, or the missing kind is retried below. */
            g_clear_pointer(&res, PQclear);
            kind = pair.vnc == 0 ? "vnc" : pair.ws == 0 ? "ws" : NULL;
            if (!kind)
                break;
            params[2] = kind;
            res = db_exec_prepared(conn, PGRES_TUPLES_OK, "ports_lease_one", lease_one_sql, 3,
                                   params, error);
            if (!res)
                return false;
            if (PQntuples(res) == 0)
                return exhausted_error(conn, host_id, kind, error);
            row = -1;
            continue;
        }
        kind = PQgetvalue(res, row, 0);
        port = (unsigned) strtoul(PQgetvalue(res, row, 1), NULL, 10);
        if (opts && opts->probe && !opts->probe(kind, port, opts->probe_data)) {
            if (!quarantine(conn, host_id, port, opts->quarantine_s, error))
                return false;
            continue;
        }
        if (strcmp(kind, "vnc") == 0)
            pair.vnc = port;
        else
            pair.ws = port;
    }
    *ret_pair = pair;
    return true;
}

/**
 * db_ports_release_vm:
 * @conn: a connection inside a transaction (which also clears the VM's ports)
 * @vm_id: the VM
 * @cooldown_s: seconds before the ports may be leased again
 * @ret_released: (out) (optional): how many leases were released
 * @error: return location for an error
 *
 * Frees the VM's leases; rows that the ranges no longer hold are deleted instead.
 *
 * Returns: true on success (also when the VM held nothing).
 */
bool
db_ports_release_vm(DbConn *conn, const char *vm_id, unsigned cooldown_s,
                    unsigned *ret_released, GError **error)
{
    g_autofree char *cool = g_strdup_printf("%u", cooldown_s);
    const char *params[] = { vm_id, cool };
    g_autoptr(PGresult) res = NULL;

    if (!require_transaction(conn, "db_ports_release_vm", error))
        return false;
    res = db_exec_prepared(conn, PGRES_TUPLES_OK, "ports_release_vm",
        "WITH gone AS (DELETE FROM port_leases WHERE vm_id = $1 AND NOT in_range"
        "              RETURNING port),"
        " freed AS (UPDATE port_leases SET vm_id = NULL, leased_at = NULL,"
        "           released_at = clock_timestamp(),"
        "           cooldown_until = clock_timestamp() + make_interval(secs => $2::int)"
        "           WHERE vm_id = $1 AND in_range RETURNING port)"
        " SELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM freed)",
        2, params, error);
    if (!res)
        return false;
    if (ret_released)
        *ret_released = (unsigned) strtoul(PQgetvalue(res, 0, 0), NULL, 10);
    return true;
}

/**
 * db_ports_count:
 * @conn: a connection
 * @host_id: the host
 * @kind: (nullable): "vnc", "ws", or NULL for both
 * @ret_counts: (out): the counts
 * @error: return location for an error
 *
 * Returns: true on success.
 */
bool
db_ports_count(DbConn *conn, const char *host_id, const char *kind, DbPortCounts *ret_counts,
               GError **error)
{
    const char *params[] = { host_id, kind };
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "SELECT count(*),"
        " count(*) FILTER (WHERE vm_id IS NOT NULL),"
        " count(*) FILTER (WHERE vm_id IS NULL AND cooldown_until > statement_timestamp()),"
        " count(*) FILTER (WHERE vm_id IS NULL"
        "                  AND quarantined_until > statement_timestamp())"
        " FROM port_leases WHERE host_id = $1 AND ($2::text IS NULL OR kind = $2)",
        2, params, error);

    if (!res)
        return false;
    ret_counts->total = (unsigned) strtoul(PQgetvalue(res, 0, 0), NULL, 10);
    ret_counts->leased = (unsigned) strtoul(PQgetvalue(res, 0, 1), NULL, 10);
    ret_counts->cooling = (unsigned) strtoul(PQgetvalue(res, 0, 2), NULL, 10);
    ret_counts->quarantined = (unsigned) strtoul(PQgetvalue(res, 0, 3), NULL, 10);
    return true;
}
