// SPDX-License-Identifier: LGPL-2.1-or-later
// Operations: the queue of every VM's long work, in PostgreSQL (broker/db/db-ops.h), and this
// broker's part in running it. A dispatcher thread claims queued operations while a worker is
// free (woken by the broker's own submissions and, through LISTEN, by other brokers'), beats
// the heart of those it runs, and takes over those of brokers whose heart stopped. Workers
// run a kind's runner and record the end. Whoever waits for an operation (a suspended HTTP
// request) is called back when it ends, or when its bound passes.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-ops.h"
#include "db-pool.h"
#include "vmb-metrics.h"

typedef struct SvcOps SvcOps;

typedef struct {
    DbPool *db;                /* where the operations table is */
    const char *conninfo;      /* for the LISTEN connection */
    const char *instance;      /* this broker's name in operations.broker */
    unsigned workers;          /* operations run at once */
    unsigned stale_s;          /* a running operation without heartbeat this long is taken */
    unsigned max_active_per_user; /* queued + running per requester; 0: no cap */
    VmbMetrics *metrics;       /* (nullable) */
} SvcOpsOptions;

/* Runs @op (state running). Returns true, or false with @error set: its kind and message
 * are the operation's error (the message is shown to the requester). */
typedef bool (*SvcOpsRunFunc)(SvcOps *ops, const DbOp *op, gpointer data, GError **error);
/* An operation ended (@op finished), or the wait's bound passed first (@op NULL). Called
 * once, from a worker or the dispatcher. */
typedef void (*SvcOpsDoneFunc)(const DbOp *op, gpointer data);

SvcOps *svc_ops_new(const SvcOpsOptions *opts);
/* Before svc_ops_start(): who runs @kind. */
void svc_ops_set_runner(SvcOps *ops, DbOpKind kind, SvcOpsRunFunc fn, gpointer data);
/* Hands back what this instance's previous life left running, then dispatches. */
bool svc_ops_start(SvcOps *ops, GError **error);
/* Stops dispatching, waits for the workers, calls every waiter with NULL. */
void svc_ops_free(SvcOps *ops);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SvcOps, svc_ops_free)

/* The cap for DbOpSpec.max_active_per_user. */
unsigned svc_ops_max_active_per_user(SvcOps *ops);
/* Something was queued (after its commit): claim without waiting for the next tick. */
void svc_ops_kick(SvcOps *ops);
/* From a runner: what @op does now (shown to users), with a percentage. */
void svc_ops_step(SvcOps *ops, const DbOp *op, const char *step, unsigned progress);
/* Calls @fn when operation @op_id ends, or with NULL after @timeout_ms. */
void svc_ops_wait(SvcOps *ops, const char *op_id, unsigned timeout_ms, SvcOpsDoneFunc fn,
                  gpointer data);
/* The error an operation that failed carries, as a GError for the HTTP layer. */
GError *svc_ops_error(const DbOp *op);
