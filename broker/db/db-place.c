// SPDX-License-Identifier: LGPL-2.1-or-later
// Placement's queries: the lock every create, start and take of any broker takes to read
// the hosts' memory, and a create or start tried on one host after another, each try in a
// savepoint.
#include "db-place.h"

#include <string.h>

#include "db-hosts.h"
#include "vmb-error.h"

/**
 * db_vms_lock_memory:
 * @conn: a connection inside a transaction
 * @error: return location for an error
 *
 * Creates and starts that check the host's memory budget take this lock in the transaction
 * that leases their ports, so two of them never both see the same room.
 *
 * Returns: true once the lock is held (until the transaction ends).
 */
bool
db_vms_lock_memory(DbConn *conn, GError **error)
{
    g_autoptr(PGresult) res = db_exec(conn, PGRES_TUPLES_OK,
        "SELECT pg_advisory_xact_lock(hashtext('vmbroker.vms.memory'))", 0, NULL, error);

    return res != NULL;
}

/* Runs the try @fn in a savepoint: a try that ends VMB_ERROR_EXHAUSTED (no free pair on the
 * host, a disabled host) leaves the transaction as it was, so the caller may try another
 * host; its leases and quarantines are undone with it. */
static DbVm *
in_savepoint(DbConn *conn, DbVm *(*fn)(DbConn *, const void *, const void *,
                                       const DbPortLeaseOptions *, GError **),
             const void *a, const void *b, const DbPortLeaseOptions *lease, GError **error)
{
    g_autoptr(PGresult) mark = NULL;
    g_autoptr(PGresult) undo = NULL;
    g_autoptr(GError) err = NULL;
    DbVm *vm;

    /* Outside a transaction PostgreSQL refuses the savepoint itself. */
    if (!(mark = db_exec(conn, PGRES_COMMAND_OK, "SAVEPOINT place", 0, NULL, error)))
        return NULL;
    vm = fn(conn, a, b, lease, &err);
    if (vm)
        return vm;
    if (vmb_error_kind(err) != VMB_ERROR_EXHAUSTED) {
        g_propagate_error(error, g_steal_pointer(&err));
        return NULL;
    }
    undo = db_exec(conn, PGRES_COMMAND_OK, "ROLLBACK TO SAVEPOINT place", 0, NULL, error);
    if (undo)
        g_propagate_error(error, g_steal_pointer(&err));
    return NULL;
}

static DbVm *
insert_fn(DbConn *conn, const void *spec, const void *unused, const DbPortLeaseOptions *lease,
          GError **error)
{
    return db_vms_insert(conn, spec, lease, error);
}

/**
 * db_vms_insert_on_host:
 * @conn: a connection inside a transaction
 * @spec: what to create, and on which host
 * @lease: (nullable): port probing; NULL for none
 * @error: return location for an error
 *
 * Returns: (transfer full): the new VM, or NULL (errors as db_vms_insert; with
 *   VMB_ERROR_EXHAUSTED nothing of this try is left).
 */
DbVm *
db_vms_insert_on_host(DbConn *conn, const DbVmSpec *spec, const DbPortLeaseOptions *lease,
                      GError **error)
{
    return in_savepoint(conn, insert_fn, spec, NULL, lease, error);
}

static DbVm *
start_fn(DbConn *conn, const void *id, const void *host_id, const DbPortLeaseOptions *lease,
         GError **error)
{
    const char *params[] = { id, host_id };
    g_autoptr(PGresult) moved = db_exec(conn, PGRES_COMMAND_OK,
        "UPDATE vms SET host_id = $2 WHERE id = $1 AND host_id <> $2 AND state = 'stopped'",
        2, params, error);

    if (!moved)
        return NULL;
    /* Moved: the new host must take new VMs (a disabled one keeps starting its own). */
    if (strcmp(PQcmdTuples(moved), "0") != 0 && !db_hosts_check_open(conn, host_id, error))
        return NULL;
    return db_vms_start(conn, id, lease, error);
}

/**
 * db_vms_start_on_host:
 * @conn: a connection inside a transaction
 * @id: a stopped VM
 * @host_id: the host it is to run on: its own, or another (it moves there)
 * @lease: (nullable): port probing; NULL for none
 * @error: return location for an error
 *
 * Returns: (transfer full): the VM, as db_vms_start() leaves it, or NULL (with
 *   VMB_ERROR_EXHAUSTED nothing of this try is left).
 */
DbVm *
db_vms_start_on_host(DbConn *conn, const char *id, const char *host_id,
                     const DbPortLeaseOptions *lease, GError **error)
{
    return in_savepoint(conn, start_fn, id, host_id, lease, error);
}
