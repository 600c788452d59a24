// SPDX-License-Identifier: LGPL-2.1-or-later
// One thread wakes every interval, looks at the running (and paused) VMs, and asks the VM
// service to stop those past their limits. A VM with an open console is not idle; the last
// byte a client sent is written to PostgreSQL, so the idle clock survives a broker restart.
#include "svc-reaper.h"

#include <string.h>

#include "db-pools.h"
#include "db-vms.h"
#include "vmb-log.h"
#include "vmb-periodic.h"

struct SvcReaper {
    SvcReaperOptions opts;
    VmbPeriodic *clock;
};

static void
reap_one(SvcReaper *r, DbConn *db, const DbVm *vm, gint64 now_s)
{
    g_autoptr(DomTemplateSet) set = svc_templates_get(r->opts.templates);
    const DomTemplate *t = dom_template_set_lookup(set, vm->template_name);
    g_autofree char *reason = NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(DbVm) stopping = NULL;
    unsigned conns = 0;
    gint64 last_us = 0, idle_since = g_date_time_to_unix(vm->started_at ? vm->started_at
                                                                         : vm->created_at);

    if (!t)
        return;
    r->opts.activity(vm->id, &conns, &last_us, r->opts.activity_data);
    if (last_us) {
        g_autoptr(GDateTime) at = g_date_time_new_from_unix_utc(last_us / G_USEC_PER_SEC);
        db_vms_console_touch(db, vm->id, at, NULL);
    }
    if (vm->console_last_activity_at)
        idle_since = MAX(idle_since, g_date_time_to_unix(vm->console_last_activity_at));
    idle_since = MAX(idle_since, last_us / G_USEC_PER_SEC);

    if (t->max_lifetime_s && vm->started_at &&
        now_s - g_date_time_to_unix(vm->started_at) >= t->max_lifetime_s)
        reason = g_strdup_printf("stopped automatically: it reached its maximum lifetime of "
                                 "%u s", t->max_lifetime_s);
    else if (t->idle_timeout_s && conns == 0 && now_s - idle_since >= t->idle_timeout_s)
        reason = g_strdup_printf("stopped automatically: idle for %u s without a console",
                                 t->idle_timeout_s);
    if (!reason)
        return;
    stopping = svc_vms_stop_system(r->opts.vms, vm->id, "vm.reap", reason, true, &err);
    if (stopping)
        vmb_info("reaper: stopping VM %s (%s): %s", vm->name, vm->id, reason);
    else
        vmb_warning("reaper: VM %s: %s", vm->name, err->message);
}

static void
sweep(gpointer data)
{
    SvcReaper *r = data;
    g_autoptr(GError) err = NULL;
    g_autoptr(DbConn) db = db_pool_acquire(r->opts.db, &err);
    g_autoptr(GPtrArray) all = db ? db_vms_list(db, NULL, &err) : NULL;
    gint64 now_s = g_get_real_time() / G_USEC_PER_SEC;

    if (!all) {
        vmb_warning("reaper: %s", err->message);
        return;
    }
    for (guint i = 0; i < all->len; i++) {
        const DbVm *vm = all->pdata[i];
        /* A paused guest holds its memory and ports as a running one does. A warm pool's
         * guest waits without a console by design: its clocks start when it is taken. */
        if ((vm->state == DB_VM_RUNNING || vm->state == DB_VM_PAUSED) &&
            strcmp(vm->owner_name, DB_POOL_ACCOUNT) != 0)
            reap_one(r, db, vm, now_s);
    }
}

/**
 * svc_reaper_start:
 * @opts: settings; the pointers must outlive the reaper
 *
 * Returns: (transfer full): the running reaper.
 */
SvcReaper *
svc_reaper_start(const SvcReaperOptions *opts)
{
    SvcReaper *r = g_new0(SvcReaper, 1);

    r->opts = *opts;
    r->clock = vmb_periodic_start("vmb-reaper", opts->interval_s, sweep, r);
    return r;
}

/**
 * svc_reaper_stop:
 * @reaper: (nullable): a running reaper
 */
void
svc_reaper_stop(SvcReaper *reaper)
{
    if (!reaper)
        return;
    vmb_periodic_stop(reaper->clock);
    g_free(reaper);
}
