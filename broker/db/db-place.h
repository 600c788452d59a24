// SPDX-License-Identifier: LGPL-2.1-or-later
// Placement's queries (see broker/services/svc-vms-hosts.c): the memory lock, and a create or
// a start tried on one host after another.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"
#include "db-ports.h"
#include "db-vms.h"

/* Inside a transaction: waits for every other transaction that placed a guest's memory to
 * end (an advisory lock held to commit), so that the memory it then reads is all there is. */
bool db_vms_lock_memory(DbConn *conn, GError **error);
/* db_vms_insert, and db_vms_start on host @host_id (moving the VM there), for placement
 * over several hosts: when this one has no free pair or takes no VM (VMB_ERROR_EXHAUSTED),
 * the transaction is as it was before (a savepoint), so the caller may try the next. */
DbVm *db_vms_insert_on_host(DbConn *conn, const DbVmSpec *spec, const DbPortLeaseOptions *lease,
                            GError **error);
DbVm *db_vms_start_on_host(DbConn *conn, const char *id, const char *host_id,
                           const DbPortLeaseOptions *lease, GError **error);
