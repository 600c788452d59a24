// SPDX-License-Identifier: LGPL-2.1-or-later
// The console relay's public calls: start and stop the engine, hand it a pair of sockets,
// close a tag's pairs, read its counters. The engine itself is vmb-splice-engine.c.
#include "vmb-splice-private.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmb-error.h"

/**
 * vmb_splice_new:
 * @options: (nullable): settings; NULL for the defaults
 * @error: return location for an error
 *
 * Starts the engine's thread. Its callbacks (on_close, done) run on that thread and must not
 * block for long, nor call vmb_splice_free(). A stepped engine (options->stepped) has no
 * thread: its loop runs in vmb_splice_step() and vmb_splice_sync(), on the caller's thread,
 * which must have SIGPIPE ignored or blocked. The fuzzer drives it so, so that a run is the
 * same each time it is replayed.
 *
 * Returns: (transfer full): the engine, or NULL on error.
 */
VmbSplice *
vmb_splice_new(const VmbSpliceOptions *options, GError **error)
{
    g_autoptr(VmbSplice) s = g_new0(VmbSplice, 1);
    struct epoll_event ev = { .events = EPOLLIN };
    GError *thread_error = NULL;

    s->cap = options && options->buffer_size ? options->buffer_size : VMB_SPLICE_DEFAULT_BUFFER;
    s->on_close = options ? options->on_close : NULL;
    s->on_close_data = options ? options->on_close_data : NULL;
    g_mutex_init(&s->lock);
    g_cond_init(&s->synced);
    g_queue_init(&s->commands);
    g_queue_init(&s->pairs);
    g_queue_init(&s->bulk);
    s->tags = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                    (GDestroyNotify) vmb_splice_tag_stats_free);
    s->graveyard = g_ptr_array_new_with_free_func((GDestroyNotify) vmb_splice_pair_free);
    s->upstreams = g_hash_table_new(g_str_hash, g_str_equal);
    s->cepfd = -1;
    s->scratch = g_malloc(s->cap);
    s->evfd = -1;
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INTERNAL, "epoll_create1: %s", g_strerror(errno));
        return NULL;
    }
    s->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->evfd < 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INTERNAL, "eventfd: %s", g_strerror(errno));
        return NULL;
    }
    ev.data.ptr = s;
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->evfd, &ev) < 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INTERNAL, "epoll_ctl: %s", g_strerror(errno));
        return NULL;
    }
    /* The connects in flight: an epoll set nested in the engine's, readable when one of
     * them has an event. */
    s->cepfd = epoll_create1(EPOLL_CLOEXEC);
    ev.data.ptr = &s->cepfd;
    if (s->cepfd < 0 || epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->cepfd, &ev) < 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INTERNAL, "connect epoll: %s",
                    g_strerror(errno));
        return NULL;
    }
    if (options && options->stepped) {
        s->stepped = true;
        return g_steal_pointer(&s);
    }
    s->thread = g_thread_try_new("vmb-splice", vmb_splice_engine_main, s, &thread_error);
    if (!s->thread) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INTERNAL, "splice thread: %s",
                    thread_error->message);
        g_error_free(thread_error);
        return NULL;
    }
    return g_steal_pointer(&s);
}

/**
 * vmb_splice_free:
 * @s: (nullable): an engine
 *
 * Ends every pair (on_close with reason "shutdown", then done, on the engine thread, also
 * for pairs added but not yet started), joins the thread and frees the engine. Must not be
 * called from the engine's own callbacks.
 */
void
vmb_splice_free(VmbSplice *s)
{
    if (!s)
        return;
    if (s->thread || s->stepped) {
        Cmd *c = g_new0(Cmd, 1);
        c->kind = CMD_STOP;
        g_mutex_lock(&s->lock);
        s->stopping = true;
        g_queue_push_tail(&s->commands, c);
        g_mutex_unlock(&s->lock);
        vmb_splice_wake(s);
    }
    if (s->thread)
        g_thread_join(s->thread);
    else if (s->stepped) {
        while (vmb_splice_engine_pass(s, 0))
            ;
        vmb_splice_engine_shutdown(s);
    }
    g_queue_clear_full(&s->commands, (GDestroyNotify) vmb_splice_cmd_free);
    g_clear_pointer(&s->graveyard, g_ptr_array_unref);
    g_clear_pointer(&s->tags, g_hash_table_unref);
    g_clear_pointer(&s->upstreams, g_hash_table_unref);
    if (s->cepfd >= 0)
        close(s->cepfd);
    if (s->evfd >= 0)
        close(s->evfd);
    if (s->epfd >= 0)
        close(s->epfd);
    g_free(s->scratch);
    g_cond_clear(&s->synced);
    g_mutex_clear(&s->lock);
    g_free(s);
}

static bool
set_nonblocking(int fd, GError **error)
{
    int flags = fcntl(fd, F_GETFL);

    if (flags < 0 || (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID, "fd %d: %s", fd, g_strerror(errno));
        return false;
    }
    return true;
}

/* Puts @bytes into a direction's buffer (which may exceed the bound, once). */
static void
dir_preload(Dir *dir, GBytes *bytes, size_t cap, VmbSpliceStats *totals)
{
    gsize len = 0;
    const void *data = bytes ? g_bytes_get_data(bytes, &len) : NULL;

    if (len == 0)
        return;
    dir->alloc = MAX(len, cap);
    dir->data = g_malloc(dir->alloc);
    memcpy(dir->data, data, len);
    dir->tail = len;
    totals->buffered += len;
    totals->buffer_memory += dir->alloc;
}

/**
 * vmb_splice_add:
 * @s: the engine
 * @client_fd: the browser's socket; stays the caller's: never closed here (the engine may
 *   shutdown(SHUT_WR) it), and usable by the caller again once @done has run
 * @upstream_fd: the socket to QEMU; the engine owns it from now on, even on failure
 * @to_client_first: (nullable): bytes to send to the client before any other, e.g. the
 *   leftover of vmb_wsupstream_connect()
 * @to_upstream_first: (nullable): bytes to send upstream before any other, e.g. what
 *   libmicrohttpd read from the client past the upgrade request (extra_in)
 * @tag: groups pairs for statistics and vmb_splice_close_tag(), e.g. the VM's id
 * @done: (nullable): called once, on the engine thread, when the pair ended
 * @done_data: passed to @done
 * @error: return location for an error
 *
 * Hands a pair of sockets to the engine, which copies bytes both ways until both directions
 * saw EOF, a socket fails, the tag is closed, or the engine is freed. Both fds are made
 * non-blocking. On failure @done is not called.
 *
 * Returns: true when the pair was queued for the engine.
 */
bool
vmb_splice_add(VmbSplice *s, int client_fd, int upstream_fd, GBytes *to_client_first,
               GBytes *to_upstream_first, const char *tag, VmbSpliceDoneFunc done,
               void *done_data, GError **error)
{
    Pair *p;
    Cmd *c;
    TagStats *t;

    g_return_val_if_fail(s && tag, false);

    if (client_fd < 0 || upstream_fd < 0 || client_fd == upstream_fd) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID, "splice: bad fds %d and %d",
                    client_fd, upstream_fd);
        if (upstream_fd >= 0 && upstream_fd != client_fd)
            close(upstream_fd);
        return false;
    }
    if (!set_nonblocking(client_fd, error) || !set_nonblocking(upstream_fd, error) ||
        fcntl(upstream_fd, F_SETFD, FD_CLOEXEC) < 0) {
        if (error && !*error)
            g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID, "fd %d: %s", upstream_fd,
                        g_strerror(errno));
        close(upstream_fd);
        return false;
    }

    p = g_new0(Pair, 1);
    p->end[CLIENT] = (End) { .pair = p, .fd = client_fd, .side = CLIENT };
    p->end[UPSTREAM] = (End) { .pair = p, .fd = upstream_fd, .side = UPSTREAM };
    p->end[CLIENT].bulk_link.data = &p->end[CLIENT];
    p->end[UPSTREAM].bulk_link.data = &p->end[UPSTREAM];
    for (unsigned i = 0; i < 2; i++)
        p->dir[i].pipe[0] = p->dir[i].pipe[1] = -1;
    p->tag = g_strdup(tag);
    p->done = done;
    p->done_data = done_data;
    p->link.data = p;
    c = g_new0(Cmd, 1);
    c->kind = CMD_ADD;
    c->pair = p;

    g_mutex_lock(&s->lock);
    if (s->stopping) {
        g_mutex_unlock(&s->lock);
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE, "splice engine is stopping");
        close(upstream_fd);
        vmb_splice_pair_free(p);
        g_free(c);
        return false;
    }
    /* Counted now, so that statistics read right after this call include the pair. */
    t = g_hash_table_lookup(s->tags, tag);
    if (!t) {
        t = g_new0(TagStats, 1);
        t->tag = g_strdup(tag);
        g_hash_table_insert(s->tags, t->tag, t);
    }
    t->connections++;
    t->last_client_us = g_get_real_time();
    p->stats = t;
    dir_preload(&p->dir[CLIENT], to_upstream_first, s->cap, &s->totals);
    dir_preload(&p->dir[UPSTREAM], to_client_first, s->cap, &s->totals);
    s->totals.connections++;
    s->totals.opened++;
    g_queue_push_tail(&s->commands, c);
    g_mutex_unlock(&s->lock);
    vmb_splice_wake(s);
    return true;
}

/**
 * vmb_splice_close_tag:
 * @s: the engine
 * @tag: which pairs to end
 * @reason: (nullable): passed to on_close, e.g. "vm stopped"; NULL for "closed by tag"
 *
 * Ends every pair of @tag that was added before this call, from any thread. Returns at
 * once; the engine closes the upstream sockets and calls on_close and done shortly after.
 */
void
vmb_splice_close_tag(VmbSplice *s, const char *tag, const char *reason)
{
    Cmd *c;

    g_return_if_fail(s && tag);

    c = g_new0(Cmd, 1);
    c->kind = CMD_CLOSE_TAG;
    c->tag = g_strdup(tag);
    c->reason = g_strdup(reason ? reason : "closed by tag");
    g_mutex_lock(&s->lock);
    g_queue_push_tail(&s->commands, c);
    g_mutex_unlock(&s->lock);
    vmb_splice_wake(s);
}

/**
 * vmb_splice_sync:
 * @s: the engine
 *
 * Waits until the engine has finished a pass of its loop whose wait for events began after
 * this call: what was ready for it before the call (a byte written to a pair's far end, a close, a command)
 * has been handled, without sleeping for a guessed time. Any thread but the engine's; for
 * tests and fuzzing, which drive the engine step by step. Returns at once when the engine
 * is stopping. On a stepped engine, the same as vmb_splice_step(s, 0).
 */
void
vmb_splice_sync(VmbSplice *s)
{
    guint64 mine;
    Cmd *c;

    g_return_if_fail(s);
    if (s->stepped) {
        vmb_splice_step(s, 0);
        return;
    }

    c = g_new0(Cmd, 1);
    c->kind = CMD_SYNC;
    g_mutex_lock(&s->lock);
    if (s->stopping) {
        g_mutex_unlock(&s->lock);
        g_free(c);
        return;
    }
    c->sync = mine = ++s->syncs_asked;
    g_queue_push_tail(&s->commands, c);     /* the engine frees it */
    vmb_splice_wake(s);
    while (s->syncs_done < mine)
        g_cond_wait(&s->synced, &s->lock);
    g_mutex_unlock(&s->lock);
}

/**
 * vmb_splice_step:
 * @s: a stepped engine
 * @timeout_ms: how long to wait for something to handle
 *
 * Runs one pass of a stepped engine's loop on this thread: handles what is ready (waiting up
 * to @timeout_ms for it), the bulk tick and connect deadlines when due. Callbacks run inside.
 */
void
vmb_splice_step(VmbSplice *s, unsigned timeout_ms)
{
    g_return_if_fail(s && s->stepped);
    vmb_splice_engine_pass(s, (int) MIN(timeout_ms, (unsigned) G_MAXINT));
}

/**
 * vmb_splice_step_tick:
 * @s: a stepped engine
 *
 * Runs one pass of a stepped engine's loop without waiting, with the bulk tick due now
 * whenever it would come next: a test reaches the tick's reads without sleeping past it.
 */
void
vmb_splice_step_tick(VmbSplice *s)
{
    g_return_if_fail(s && s->stepped);
    s->next_tick_us = 0;
    vmb_splice_engine_pass(s, 0);
}

/**
 * vmb_splice_tag_stats:
 * @s: the engine
 * @tag: a tag
 * @ret_connections: (out) (optional): pairs of @tag open now
 * @ret_last_client_activity_us: (out) (optional): g_get_real_time() of the last byte read
 *   from a client of @tag (or of the last vmb_splice_add() for it)
 * @ret_bytes_in: (out) (optional): bytes sent upstream from clients of @tag's open pairs
 * @ret_bytes_out: (out) (optional): bytes sent to clients of @tag's open pairs
 *
 * Any thread. Figures cover open pairs only: a tag's record goes with its last pair (whose
 * totals on_close reports), so the outputs are zero for a tag without open pairs.
 *
 * Returns: true when @tag has open pairs.
 */
bool
vmb_splice_tag_stats(VmbSplice *s, const char *tag, unsigned *ret_connections,
                     gint64 *ret_last_client_activity_us, guint64 *ret_bytes_in,
                     guint64 *ret_bytes_out)
{
    TagStats zero = { 0 };
    const TagStats *t;

    g_return_val_if_fail(s && tag, false);

    g_mutex_lock(&s->lock);
    t = g_hash_table_lookup(s->tags, tag);
    if (!t)
        t = &zero;
    if (ret_connections)
        *ret_connections = t->connections;
    if (ret_last_client_activity_us)
        *ret_last_client_activity_us = t->last_client_us;
    if (ret_bytes_in)
        *ret_bytes_in = t->bytes_in;
    if (ret_bytes_out)
        *ret_bytes_out = t->bytes_out;
    g_mutex_unlock(&s->lock);
    return t != &zero;
}

/**
 * vmb_splice_stats:
 * @s: the engine
 * @ret: (out): totals over all pairs, for metrics
 *
 * Any thread.
 */
void
vmb_splice_stats(VmbSplice *s, VmbSpliceStats *ret)
{
    g_return_if_fail(s && ret);

    g_mutex_lock(&s->lock);
    *ret = s->totals;
    g_mutex_unlock(&s->lock);
}
