// SPDX-License-Identifier: LGPL-2.1-or-later
// The janitor's pass: one DELETE per table, each on its own; a failure is logged and the
// next pass tries again.
#include "svc-janitor.h"

#include "db-events.h"
#include "db-ops.h"
#include "db-sessions.h"
#include "db-tickets.h"
#include "vmb-log.h"
#include "vmb-periodic.h"

struct SvcJanitor {
    SvcJanitorOptions opts;
    VmbPeriodic *clock;
};

/**
 * svc_janitor_sweep:
 * @janitor: the janitor
 *
 * Deletes expired console tickets, sessions and console sessions.
 */
void
svc_janitor_sweep(SvcJanitor *janitor)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(DbConn) db = db_pool_acquire(janitor->opts.db, &err);
    unsigned tickets = 0, sessions = 0, consoles = 0;

    if (!db) {
        vmb_warning("janitor: %s", err->message);
        return;
    }
    if (!db_tickets_purge(db, &tickets, &err)) {
        vmb_warning("janitor: console tickets: %s", err->message);
        g_clear_error(&err);
    }
    if (!db_sessions_purge(db, janitor->opts.session_idle_s, &sessions, &err)) {
        vmb_warning("janitor: sessions: %s", err->message);
        g_clear_error(&err);
    }
    /* Event streams resume within an hour; operations are history for a month. */
    if (db_events_purge(db, 3600, &err) < 0) {
        vmb_warning("janitor: events: %s", err->message);
        g_clear_error(&err);
    }
    if (db_ops_purge(db, 30 * 86400, &err) < 0) {
        vmb_warning("janitor: operations: %s", err->message);
        g_clear_error(&err);
    }
    if (!db_console_sessions_purge(db, janitor->opts.console_session_idle_s, &consoles, &err))
        vmb_warning("janitor: console sessions: %s", err->message);
    if (tickets || sessions || consoles)
        vmb_info("janitor: deleted %u expired console ticket(s), %u session(s) and %u console "
                 "session(s)", tickets, sessions, consoles);
}

static void
sweep(gpointer data)
{
    svc_janitor_sweep(data);
}

/**
 * svc_janitor_start:
 * @opts: settings; the pool must outlive the janitor
 *
 * Returns: (transfer full): the running janitor.
 */
SvcJanitor *
svc_janitor_start(const SvcJanitorOptions *opts)
{
    SvcJanitor *j = g_new0(SvcJanitor, 1);

    j->opts = *opts;
    j->clock = vmb_periodic_start("vmb-janitor", opts->interval_s, sweep, j);
    return j;
}

/**
 * svc_janitor_stop:
 * @janitor: (nullable): a running janitor
 */
void
svc_janitor_stop(SvcJanitor *janitor)
{
    if (!janitor)
        return;
    vmb_periodic_stop(janitor->clock);
    g_free(janitor);
}
