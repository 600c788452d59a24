// SPDX-License-Identifier: LGPL-2.1-or-later
// Port leases: one row per (host, port) of the configured VNC and websocket ranges, leased
// to VMs under row locks (FOR UPDATE SKIP LOCKED), released with a cool-down.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"

/* Defaults for the config layer: console.port_cooldown_s and console.port_quarantine_s. */
#define DB_PORTS_COOLDOWN_DEFAULT_S 10u
#define DB_PORTS_QUARANTINE_DEFAULT_S 60u

/* Whether @port of @kind ("vnc" or "ws") is free on the host; false skips and quarantines
 * it. Called with the row locked, so it must be quick (a bind(), not a network round trip). */
typedef bool (*DbPortProbe)(const char *kind, unsigned port, void *data);

typedef struct {
    unsigned vnc_first, vnc_last;  /* console.vnc_ports, inclusive */
    unsigned ws_first, ws_last;    /* console.ws_ports, inclusive */
} DbPortRanges;

typedef struct {
    DbPortProbe probe;       /* NULL: hand ports out unprobed */
    void *probe_data;        /* passed to @probe */
    unsigned quarantine_s;   /* how long a port found held is skipped */
} DbPortLeaseOptions;

typedef struct {
    unsigned vnc;  /* QEMU's VNC port */
    unsigned ws;   /* QEMU's websocket port */
} DbPortPair;

typedef struct {
    unsigned total;        /* rows of the host (in range or still leased) */
    unsigned leased;       /* held by a VM */
    unsigned cooling;      /* released, cool-down not over */
    unsigned quarantined;  /* found held by a foreign process, not yet retried */
} DbPortCounts;

/* --- ranges --- */
/* Adds the rows of @ranges, drops unleased rows outside them and marks leased ones outside
 * to go on release. VMB_ERROR_CONFIG for an empty, reversed or overlapping range. */
bool db_ports_sync(DbConn *conn, const char *host_id, const DbPortRanges *ranges,
                   GError **error);

/* --- leases (inside a transaction) --- */
/* Leases one free vnc and one free ws port of @host_id to @vm_id. VMB_ERROR_EXHAUSTED when
 * no pair is free, with counts in the message. Quarantines only survive a commit. */
bool db_ports_lease_pair(DbConn *conn, const char *host_id, const char *vm_id,
                         const DbPortLeaseOptions *opts, DbPortPair *ret_pair, GError **error);
/* Releases every lease of @vm_id; they become leasable after @cooldown_s seconds. */
bool db_ports_release_vm(DbConn *conn, const char *vm_id, unsigned cooldown_s,
                         unsigned *ret_released, GError **error);

/* --- inspection --- */
bool db_ports_count(DbConn *conn, const char *host_id, const char *kind,
                    DbPortCounts *ret_counts, GError **error);
