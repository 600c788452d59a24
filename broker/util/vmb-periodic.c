// SPDX-License-Identifier: LGPL-2.1-or-later
// The periodic thread: it sleeps on a condition variable, so a stop wakes it at once.
#include "vmb-periodic.h"

#include <stdbool.h>

struct VmbPeriodic {
    unsigned interval_s;
    VmbPeriodicFunc fn;
    gpointer data;
    GMutex lock;
    GCond wake;
    bool quit; /* (lock) */
    GThread *thread;
};

static gpointer
periodic_main(gpointer data)
{
    VmbPeriodic *p = data;

    g_mutex_lock(&p->lock);
    while (!p->quit) {
        gint64 until = g_get_monotonic_time() + (gint64) p->interval_s * G_USEC_PER_SEC;
        while (!p->quit && g_cond_wait_until(&p->wake, &p->lock, until))
            ;
        if (p->quit)
            break;
        g_mutex_unlock(&p->lock);
        p->fn(p->data);
        g_mutex_lock(&p->lock);
    }
    g_mutex_unlock(&p->lock);
    return NULL;
}

/**
 * vmb_periodic_start:
 * @name: the thread's name
 * @interval_s: seconds between runs; 0 counts as 1
 * @fn: what to run
 * @data: for @fn; must outlive the thread
 *
 * Returns: (transfer full): the running clock.
 */
VmbPeriodic *
vmb_periodic_start(const char *name, unsigned interval_s, VmbPeriodicFunc fn, gpointer data)
{
    VmbPeriodic *p = g_new0(VmbPeriodic, 1);

    p->interval_s = MAX(interval_s, 1u);
    p->fn = fn;
    p->data = data;
    g_mutex_init(&p->lock);
    g_cond_init(&p->wake);
    p->thread = g_thread_new(name, periodic_main, p);
    return p;
}

/**
 * vmb_periodic_stop:
 * @p: (nullable): a running clock
 */
void
vmb_periodic_stop(VmbPeriodic *p)
{
    if (!p)
        return;
    g_mutex_lock(&p->lock);
    p->quit = true;
    g_cond_signal(&p->wake);
    g_mutex_unlock(&p->lock);
    g_thread_join(p->thread);
    g_mutex_clear(&p->lock);
    g_cond_clear(&p->wake);
    g_free(p);
}
