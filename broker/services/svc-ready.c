// SPDX-License-Identifier: LGPL-2.1-or-later
// Watching a screen costs one libvirt screenshot (QEMU's screendump, a PNG of the
// framebuffer) every SVC_READY_INTERVAL_MS per starting VM, LOOKERS at a time, on the
// bounded pool so a hung libvirtd holds nothing up. It ends at the first frame that is not
// one flat colour, when the VM stops or is gone, or after SVC_READY_GIVE_UP_S. No VNC
// client shares the guest's console, and no password leaves libvirt.
//
// Screenshots go over a libvirt connection of the watcher's own, without keepalive: a
// screenshot is a stream, and libvirt's client crashed (in its event dispatch) when the
// shared connection's keepalive closed it under a stream in flight on a libvirtd that had
// stopped answering (tests/faults/test_libvirtd.py). Calls in flight are bounded: one per
// watch, LOOKERS in all, none while the shared connection is known lost.
#include "svc-ready.h"

#include "dom-lifecycle.h"
#include "dom-screen.h"
#include "dom-virt.h"
#include "vmb-error.h"
#include "vmb-log.h"

/* One screenshot's bound: libvirt answers a live guest's in well under a second. */
#define SHOT_BOUND_MS 5000
/* Screens looked at at once: a class that starts together is seen within a round or two,
 * and most of the bounded pool stays free for requests. */
#define LOOKERS 4

struct SvcReady {
    SvcReadyOptions opts;
    GMutex lock;
    GCond wake;
    bool stopping;
    GPtrArray *watches;      /* of Watch *, waiting for their next look */
    GThread *thread;
    GThreadPool *lookers;    /* a round's looks, LOOKERS at a time */
    GMutex round_lock;
    GCond round_done;
    guint round_left;        /* looks of this round not finished */
    GMutex conn_lock;
    virConnectPtr conn;      /* (nullable) the watcher's own connection, under conn_lock */
    gint in_flight;          /* (atomic) screenshot jobs not finished, abandoned ones too */
};

typedef struct {
    char *vm_id;
    char *name;              /* the domain */
    GDateTime *started_at;   /* the start watched: a later one has its own watch */
    GDateTime *requested_at;
    const char *path;        /* static */
    gint64 give_up_us;       /* monotonic */
    bool done;               /* its last look ended it */
    gint *busy;              /* (atomic, shared with its screenshot job) one is under way */
} Watch;

typedef enum { LOOK_AGAIN, LOOK_DONE } LookResult;

typedef struct {
    SvcReady *r;
    char *name;
    gint *busy;              /* the watch's; cleared when the job is freed */
    bool blank;              /* out */
    GError *error;           /* out */
} ShotJob;

static void
watch_free(Watch *w)
{
    if (!w)
        return;
    g_free(w->vm_id);
    g_free(w->name);
    g_date_time_unref(w->started_at);
    g_date_time_unref(w->requested_at);
    g_atomic_rc_box_release(w->busy);
    g_free(w);
}

static void
shot_job_free(gpointer data)
{
    ShotJob *job = data;

    g_atomic_int_set(job->busy, 0);
    g_atomic_rc_box_release(job->busy);
    (void) g_atomic_int_dec_and_test(&job->r->in_flight);
    g_free(job->name);
    g_clear_error(&job->error);
    g_free(job);
}

/* A reference to the watcher's connection, opened when there is none or it died. */
static virConnectPtr
own_conn(SvcReady *r, GError **error)
{
    virConnectPtr conn;

    g_mutex_lock(&r->conn_lock);
    if (r->conn && virConnectIsAlive(r->conn) != 1)
        g_clear_pointer(&r->conn, virConnectClose);  /* calls still on it keep their refs */
    conn = r->conn;
    if (conn)
        virConnectRef(conn);
    g_mutex_unlock(&r->conn_lock);
    if (conn)
        return conn;
    conn = dom_virt_connect(dom_hypervisor_uri(r->opts.hv), error);
    if (!conn)
        return NULL;
    g_mutex_lock(&r->conn_lock);
    if (!r->conn) {
        virConnectRef(conn);
        r->conn = conn;
    }
    g_mutex_unlock(&r->conn_lock);
    return conn;
}

static void
shot_job_run(gpointer data)
{
    ShotJob *job = data;
    g_autoptr(virConnect) conn = own_conn(job->r, &job->error);
    g_autoptr(virDomain) dom = conn ? dom_lifecycle_lookup(conn, job->name, &job->error) : NULL;
    g_autoptr(GBytes) image = dom ? dom_lifecycle_screenshot(dom, NULL, &job->error) : NULL;

    if (image)
        dom_screen_blank(image, &job->blank, &job->error);
}

/* The screen of @w's domain now: true when it shows something; false with @error when it
 * could not be seen. No call is made while libvirt is known lost or while this watch's
 * last screenshot is still under way (one that outlived its bound): calls must not pile
 * up on a libvirtd that does not answer. */
static bool
screen_shows(SvcReady *r, const Watch *w, GError **error)
{
    ShotJob *job;
    bool shows;

    if (dom_hypervisor_lost(r->opts.hv) || g_atomic_int_get(&r->in_flight) >= LOOKERS ||
        !g_atomic_int_compare_and_exchange(w->busy, 0, 1)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE,
                    "libvirt is reconnecting, or earlier screenshots are still under way");
        return false;
    }
    g_atomic_int_inc(&r->in_flight);
    job = g_new0(ShotJob, 1);
    job->r = r;
    job->name = g_strdup(w->name);
    job->busy = g_atomic_rc_box_acquire(w->busy);
    if (!vmb_bounded_run(r->opts.bounded, shot_job_run, job, shot_job_free, SHOT_BOUND_MS,
                         NULL)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE,
                    "no screenshot within %u ms", SHOT_BOUND_MS);
        return false;
    }
    shows = !job->error && !job->blank;
    if (job->error)
        g_propagate_error(error, g_steal_pointer(&job->error));
    shot_job_free(job);
    return shows;
}

static void
record(SvcReady *r, const Watch *w)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autoptr(GError) error = NULL;
    g_autoptr(DbConn) conn = db_pool_acquire(r->opts.db, &error);
    bool recorded = false;
    double seconds = (double) g_date_time_difference(now, w->requested_at) / G_USEC_PER_SEC;

    if (!conn || !db_vms_console_ready(conn, w->vm_id, w->started_at, now, &recorded, &error)) {
        vmb_warning("console-ready of VM %s: %s", w->vm_id, error->message);
        return;
    }
    if (!recorded)
        return;     /* stopped or started again meanwhile */
    vmb_info("VM %s: console ready %.3f s after the request (%s)", w->vm_id, seconds, w->path);
    if (r->opts.metrics)
        vmb_metrics_observe(r->opts.metrics, SVC_READY_METRIC, seconds, "path", w->path, NULL);
}

static LookResult
look(SvcReady *r, const Watch *w)
{
    g_autoptr(GError) error = NULL;

    if (screen_shows(r, w, &error)) {
        record(r, w);
        return LOOK_DONE;
    }
    if (g_get_monotonic_time() >= w->give_up_us) {
        vmb_info("VM %s: no console-ready within %d s", w->vm_id, SVC_READY_GIVE_UP_S);
        return LOOK_DONE;
    }
    /* Gone, or not running any more: its next start has a watch of its own. */
    if (error && (vmb_error_kind(error) == VMB_ERROR_NOT_FOUND ||
                  vmb_error_kind(error) == VMB_ERROR_CONFLICT))
        return LOOK_DONE;
    if (error && vmb_error_kind(error) != VMB_ERROR_UNAVAILABLE)
        vmb_debug("console-ready of VM %s: %s", w->vm_id, error->message);
    return LOOK_AGAIN;
}

/* A looker thread: one watch's look in this round. */
static void
look_one(gpointer data, gpointer user_data)
{
    Watch *w = data;
    SvcReady *r = user_data;

    w->done = look(r, w) == LOOK_DONE;
    g_mutex_lock(&r->round_lock);
    if (--r->round_left == 0)
        g_cond_signal(&r->round_done);
    g_mutex_unlock(&r->round_lock);
}

/* Looks at every watch of @round, LOOKERS at a time, and waits for them all. */
static void
run_round(SvcReady *r, GPtrArray *round)
{
    g_mutex_lock(&r->round_lock);
    r->round_left = round->len;
    g_mutex_unlock(&r->round_lock);
    for (guint i = 0; i < round->len; i++)
        g_thread_pool_push(r->lookers, round->pdata[i], NULL);
    g_mutex_lock(&r->round_lock);
    while (r->round_left > 0)
        g_cond_wait(&r->round_done, &r->round_lock);
    g_mutex_unlock(&r->round_lock);
}

/* The watcher: each round looks at every watch once, then waits for the next round, a new
 * watch or the end. */
static gpointer
ready_main(gpointer data)
{
    SvcReady *r = data;

    g_mutex_lock(&r->lock);
    while (!r->stopping) {
        g_autoptr(GPtrArray) round = NULL;
        gint64 next = g_get_monotonic_time() + SVC_READY_INTERVAL_MS * 1000;

        if (r->watches->len == 0) {
            g_cond_wait(&r->wake, &r->lock);
            continue;
        }
        round = g_steal_pointer(&r->watches);
        r->watches = g_ptr_array_new_with_free_func((GDestroyNotify) watch_free);
        g_mutex_unlock(&r->lock);
        run_round(r, round);
        g_mutex_lock(&r->lock);
        for (guint i = 0; i < round->len; i++) {
            Watch *w = round->pdata[i];

            if (!w->done)
                g_ptr_array_add(r->watches, g_steal_pointer(&round->pdata[i]));
        }
        if (!r->stopping)
            g_cond_wait_until(&r->wake, &r->lock, next);
    }
    g_mutex_unlock(&r->lock);
    return NULL;
}

/**
 * svc_ready_new:
 * @opts: what it uses; borrowed, and must outlive it
 *
 * Returns: (transfer full): the watcher, its thread started.
 */
SvcReady *
svc_ready_new(const SvcReadyOptions *opts)
{
    static const double bounds[] = { 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600 };
    SvcReady *r = g_new0(SvcReady, 1);

    r->opts = *opts;
    g_mutex_init(&r->lock);
    g_cond_init(&r->wake);
    g_mutex_init(&r->round_lock);
    g_cond_init(&r->round_done);
    g_mutex_init(&r->conn_lock);
    r->lookers = g_thread_pool_new(look_one, r, LOOKERS, FALSE, NULL);
    r->watches = g_ptr_array_new_with_free_func((GDestroyNotify) watch_free);
    if (opts->metrics)
        vmb_metrics_declare(opts->metrics, SVC_READY_METRIC, VMB_METRIC_HISTOGRAM,
                            "Seconds from a create or start request to the guest's first "
                            "non-blank screen, by path (cold, pool, restore).",
                            bounds, G_N_ELEMENTS(bounds));
    r->thread = g_thread_new("vmb-ready", ready_main, r);
    return r;
}

/**
 * svc_ready_free:
 * @r: (nullable): the watcher
 *
 * Stops watching (a look under way ends within its bound) and joins the thread.
 */
void
svc_ready_free(SvcReady *r)
{
    if (!r)
        return;
    g_mutex_lock(&r->lock);
    r->stopping = true;
    g_cond_signal(&r->wake);
    g_mutex_unlock(&r->lock);
    g_thread_join(r->thread);
    g_thread_pool_free(r->lookers, FALSE, TRUE);
    /* Jobs abandoned on a hung libvirtd use @r until they end (as vmb_bounded_free(),
     * after this, waits for them too). */
    while (g_atomic_int_get(&r->in_flight) > 0)
        g_usleep(10 * 1000);
    g_clear_pointer(&r->conn, virConnectClose);
    g_mutex_clear(&r->conn_lock);
    g_ptr_array_unref(r->watches);
    g_cond_clear(&r->round_done);
    g_mutex_clear(&r->round_lock);
    g_cond_clear(&r->wake);
    g_mutex_clear(&r->lock);
    g_free(r);
}

/**
 * svc_ready_watch:
 * @r: the watcher
 * @vm: a VM that was just started (its row after the start: name, started_at)
 * @requested_at: when the create or start was asked for
 * @path: "cold" (a boot), "pool" or "restore"; a static string
 *
 * Any thread; returns at once. The first look comes within SVC_READY_INTERVAL_MS.
 */
void
svc_ready_watch(SvcReady *r, const DbVm *vm, GDateTime *requested_at, const char *path)
{
    Watch *w;

    g_return_if_fail(r && vm && requested_at && path);
    if (!vm->started_at)
        return;
    w = g_new0(Watch, 1);
    w->vm_id = g_strdup(vm->id);
    w->name = g_strdup(vm->name);
    w->started_at = g_date_time_ref(vm->started_at);
    w->requested_at = g_date_time_ref(requested_at);
    w->path = path;
    w->give_up_us = g_get_monotonic_time() + (gint64) SVC_READY_GIVE_UP_S * G_USEC_PER_SEC;
    w->busy = g_atomic_rc_box_new0(gint);
    g_mutex_lock(&r->lock);
    g_ptr_array_add(r->watches, w);
    g_cond_signal(&r->wake);
    g_mutex_unlock(&r->lock);
}
