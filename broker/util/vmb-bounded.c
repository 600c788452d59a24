// SPDX-License-Identifier: LGPL-2.1-or-later
// Bounded waits. A job is shared by the caller and the worker (two references); whoever
// drops the last one frees it, and an abandoned job's data goes with it.
#include "vmb-bounded.h"

struct VmbBounded {
    GThreadPool *pool;
};

typedef struct {
    gint refs;
    GMutex lock;
    GCond cond;
    VmbBoundedFunc fn;
    gpointer data;
    GDestroyNotify free_data;
    bool started;   /* (lock) the worker took it */
    bool done;      /* (lock) fn returned */
    bool abandoned; /* (lock) the caller stopped waiting: the data is the job's */
} Job;

static void
job_unref(Job *job)
{
    if (!g_atomic_int_dec_and_test(&job->refs))
        return;
    if (job->abandoned && job->free_data)
        job->free_data(job->data);
    g_mutex_clear(&job->lock);
    g_cond_clear(&job->cond);
    g_free(job);
}

static void
worker(gpointer data, gpointer user_data)
{
    Job *job = data;
    bool run;

    g_mutex_lock(&job->lock);
    run = !job->abandoned;
    job->started = run;
    g_mutex_unlock(&job->lock);
    if (run)
        job->fn(job->data);
    g_mutex_lock(&job->lock);
    job->done = true;
    g_cond_signal(&job->cond);
    g_mutex_unlock(&job->lock);
    job_unref(job);
}

/**
 * vmb_bounded_new:
 * @max_threads: jobs that run at once; more wait in a queue (and count against their
 *   callers' bounds)
 *
 * Returns: (transfer full): a runner.
 */
VmbBounded *
vmb_bounded_new(guint max_threads)
{
    VmbBounded *b = g_new0(VmbBounded, 1);

    b->pool = g_thread_pool_new(worker, NULL, (gint) max_threads, FALSE, NULL);
    return b;
}

/**
 * vmb_bounded_free:
 * @b: (nullable): a runner
 */
void
vmb_bounded_free(VmbBounded *b)
{
    if (!b)
        return;
    g_thread_pool_free(b->pool, FALSE, TRUE);
    g_free(b);
}

/**
 * vmb_bounded_run:
 * @b: a runner
 * @fn: the work
 * @data: for @fn; where it leaves its results
 * @free_data: frees @data if the caller gives up (called on the worker, once @fn is done)
 * @timeout_ms: how long the caller waits
 * @ret_started: (out) (optional): whether @fn was started, when it did not finish in time
 *
 * Returns: true when @fn ran to its end in time: @data is still the caller's. False when
 * it did not: @data now belongs to the job (@fn runs to its end if it had started, or never
 * runs) and must not be touched.
 */
bool
vmb_bounded_run(VmbBounded *b, VmbBoundedFunc fn, gpointer data, GDestroyNotify free_data,
                guint timeout_ms, bool *ret_started)
{
    Job *job = g_new0(Job, 1);
    gint64 deadline = g_get_monotonic_time() + (gint64) timeout_ms * 1000;
    bool done;

    job->refs = 2;
    g_mutex_init(&job->lock);
    g_cond_init(&job->cond);
    job->fn = fn;
    job->data = data;
    job->free_data = free_data;
    g_thread_pool_push(b->pool, job, NULL);

    g_mutex_lock(&job->lock);
    while (!job->done && g_cond_wait_until(&job->cond, &job->lock, deadline))
        ;
    done = job->done;
    if (!done)
        job->abandoned = true;
    if (ret_started)
        *ret_started = job->started;
    g_mutex_unlock(&job->lock);
    job_unref(job);
    return done;
}
