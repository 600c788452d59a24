// SPDX-License-Identifier: LGPL-2.1-or-later
// The janitor: every interval it deletes what has expired and can never be used again, so
// that tables of short-lived secrets do not grow forever: console tickets (a minute after
// they expire) and sessions past their absolute end or idle timeout.
#pragma once

#include <glib.h>

#include "db-pool.h"

typedef struct SvcJanitor SvcJanitor;

typedef struct {
    DbPool *db;              /* PostgreSQL */
    unsigned interval_s;     /* database.janitor_interval_s */
    unsigned session_idle_s; /* auth.session_idle_s: a session unused this long is over */
    unsigned console_session_idle_s; /* console.session_idle_s: the same for console sessions */
} SvcJanitorOptions;

/* Starts the janitor's thread. */
SvcJanitor *svc_janitor_start(const SvcJanitorOptions *opts);
/* One pass now, on the caller's thread. */
void svc_janitor_sweep(SvcJanitor *janitor);
/* Stops and joins it. */
void svc_janitor_stop(SvcJanitor *janitor);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SvcJanitor, svc_janitor_stop)
