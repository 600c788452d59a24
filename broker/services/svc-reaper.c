// SPDX-License-Identifier: LGPL-2.1-or-later
// One thread wakes every interval, looks at the running (and paused) VMs, and asks the VM
// service to stop those past their limits. A VM with an open console is not idle; the last
// byte a client sent is written to PostgreSQL, so the idle clock survives a broker restart.
#include "svc-reaper.h"

#include "db-vms.h"
#include "vmb-log.h"

struct SvcReaper {
    SvcReaperOptions opts;
    GMutex lock;
    GCond wake;
    bool quit;
    GThread *thread;
};

static void
reap_one(SvcReaper *r, DbConn *db, const DbVm *vm, gint64 now_s)
{
    const DomTemplate *t = dom_template_set_lookup(r->opts.templates, vm->template_name);
    g_autofree char *reason = NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(DbVm) stopping = NULL;
    unsigned conns = 0;
    gint64 last_us = 0, idle_since = g_date_time_to_unix(vm->started_at ? vm->started_at
                                                                         : vm->created_at);

    if (!t)
        return;
    svc_console_vm_activity(r->opts.console, vm->id, &conns, &last_us);
    if (last_us) {
        g_autoptr(GDateTime) at = g_date_time_new_from_unix_utc(last_us / G_USEC_PER_SEC);
        db_vms_console_touch(db, vm->id, at, NULL);
    }
    if (vm->console_last_activity_at)
        idle_since = MAX(idle_since, g_date_time_to_unix(vm->console_last_activity_at));
    idle_since = MAX(idle_since, last_us / G_USEC_PER_SEC);

    if (t->max_lifetime_s && vm->started_at &&
        now_s - g_date_time_to_unix(vm->started_at) >= t->max_lifetime_s)
        reason = g_strdup_printf("reached its maximum lifetime of %u s", t->max_lifetime_s);
    else if (t->idle_timeout_s && conns == 0 && now_s - idle_since >= t->idle_timeout_s)
        reason = g_strdup_printf("idle for %u s without a console", t->idle_timeout_s);
    if (!reason)
        return;
    stopping = svc_vms_stop_system(r->opts.vms, vm->id, "vm.reap", reason, true, &err);
    if (stopping)
        vmb_info("reaper: stopping VM %s (%s): %s", vm->name, vm->id, reason);
    else
        vmb_warning("reaper: VM %s: %s", vm->name, err->message);
}

static void
sweep(SvcReaper *r)
{
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
        /* A paused guest holds its memory and ports as a running one does. */
        if (vm->state == DB_VM_RUNNING || vm->state == DB_VM_PAUSED)
            reap_one(r, db, vm, now_s);
    }
}

static gpointer
reaper_main(gpointer data)
{
    SvcReaper *r = data;

    g_mutex_lock(&r->lock);
    while (!r->quit) {
        gint64 until = g_get_monotonic_time() + (gint64) r->opts.interval_s * G_USEC_PER_SEC;
        while (!r->quit && g_cond_wait_until(&r->wake, &r->lock, until))
            ;
        if (r->quit)
            break;
        g_mutex_unlock(&r->lock);
        sweep(r);
        g_mutex_lock(&r->lock);
    }
    g_mutex_unlock(&r->lock);
    return NULL;
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
    r->opts.interval_s = MAX(opts->interval_s, 1u);
    g_mutex_init(&r->lock);
    g_cond_init(&r->wake);
    r->thread = g_thread_new("vmb-reaper", reaper_main, r);
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
    g_mutex_lock(&reaper->lock);
    reaper->quit = true;
    g_cond_signal(&reaper->wake);
    g_mutex_unlock(&reaper->lock);
    g_thread_join(reaper->thread);
    g_mutex_clear(&reaper->lock);
    g_cond_clear(&reaper->wake);
    g_free(reaper);
}
