// SPDX-License-Identifier: LGPL-2.1-or-later
// The console relay's engine thread: one epoll set, plain recv/send through a shared
// scratch buffer, a per-direction buffer that exists only while a receiver lags behind, and
// a bulk mode that moves streams in larger pieces through a pipe, without copying them.
#include "vmb-splice-private.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmb-error.h"

/*
 * Why level-triggered epoll: each wakeup reads at most one buffer's worth from a socket, so
 * a fast console cannot starve the others, and a socket that still holds data is simply
 * reported again. Backpressure is then only a matter of the interest set: a side whose
 * outbound buffer is not empty is not polled for input, and a socket we neither read nor
 * write is removed from the set, so it cannot wake us (EPOLLHUP/EPOLLERR are always
 * reported) until we want it again. Edge-triggered mode would force us to drain every socket
 * to EAGAIN, or to remember "readable but not read" per side, which is the same work with
 * more state and worse fairness.
 *
 * Buffers: data read from one side is first sent straight to the other from the engine's
 * scratch buffer; only what the receiver did not take is copied into a per-direction buffer
 * of buffer_size bytes, freed as soon as it drains. A side is read again only once its
 * direction's buffer is empty, so each pair holds at most 2 * buffer_size bytes, and an idle
 * pair holds none.
 *
 * Bulk mode: QEMU writes a framebuffer update as many small websocket frames, and reading
 * each as it arrives costs a wakeup, a recv and a send per few KiB. An end whose read brings
 * at least BULK_MIN bytes is streaming: it gets SO_RCVLOWAT of the buffer size, so epoll
 * reports it only once a whole buffer is waiting, and the engine reads it anyway every
 * BULK_TICK_MS, so a stream's tail waits at most that long. A tick read that brings less
 * than BULK_MIN ends bulk mode; interactive traffic (keys, pointer, small updates) never
 * enters it and is relayed at once. EOF and errors are reported by epoll whatever the
 * low-water mark.
 *
 * Splice: while in bulk mode, a direction has a pipe of its own and its bytes go socket →
 * pipe → socket with splice(2), so the kernel hands pages over and nothing is copied through
 * user space; what the receiver did not take waits in the pipe and counts as buffered, under
 * the same bound (a direction is read only when empty, at most buffer_size bytes at a time).
 * Interactive traffic keeps the plain copy: a pipe costs two fds and a syscall per piece more
 * than it saves on a few bytes. The pipe is closed once the direction leaves bulk mode and
 * has drained, so idle pairs hold none. A pipe that cannot be had only costs the zero copy.
 * splice(2) to a socket cannot be told MSG_NOSIGNAL, so the engine thread blocks SIGPIPE.
 */

void
vmb_splice_tag_stats_free(TagStats *t)
{
    g_free(t->tag);
    g_free(t);
}

void
vmb_splice_cmd_free(Cmd *c)
{
    vmb_splice_connect_free(c->connect);
    g_free(c->tag);
    g_free(c->reason);
    g_free(c);
}

/* Closes a direction's pipe; what it held must have been taken off delta->buffered. */
static void
dir_close_pipe(Dir *dir, Delta *delta)
{
    if (dir->pipe[0] < 0)
        return;
    close(dir->pipe[0]);
    close(dir->pipe[1]);
    dir->pipe[0] = dir->pipe[1] = -1;
    dir->piped = 0;
    delta->pipes--;
}

void
vmb_splice_pair_free(Pair *p)
{
    g_free(p->dir[0].data);
    g_free(p->dir[1].data);
    g_free(p->tag);
    g_free(p);
}

static size_t
dir_pending(const Dir *d)
{
    return d->tail - d->head + d->piped;
}

/* Moves @p's gathered changes into the shared counters. */
static void
apply_delta(VmbSplice *s, Pair *p)
{
    const Delta *d = &p->delta;

    if (!d->sent[0] && !d->sent[1] && !d->client_activity && !d->buffered && !d->memory &&
        !d->pipes)
        return;
    p->bytes[0] += d->sent[0];
    p->bytes[1] += d->sent[1];
    g_mutex_lock(&s->lock);
    p->stats->bytes_in += d->sent[CLIENT];
    p->stats->bytes_out += d->sent[UPSTREAM];
    if (d->client_activity)
        p->stats->last_client_us = g_get_real_time();
    s->totals.bytes_in += d->sent[CLIENT];
    s->totals.bytes_out += d->sent[UPSTREAM];
    s->totals.buffered = (guint64) ((gint64) s->totals.buffered + d->buffered);
    s->totals.buffer_memory = (guint64) ((gint64) s->totals.buffer_memory + d->memory);
    s->totals.pipes = (unsigned) ((int) s->totals.pipes + d->pipes);
    g_mutex_unlock(&s->lock);
    p->delta = (Delta) { 0 };
}

void
vmb_splice_wake(VmbSplice *s)
{
    guint64 one = 1;

    /* Only fails when the counter would overflow, and then the loop is awake anyway. */
    while (write(s->evfd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

/* Engine thread: ends @p, telling the audit hook and then the owner of the client fd. */
static void
pair_close(VmbSplice *s, Pair *p, const char *reason)
{
    Delta *delta = &p->delta;

    if (p->dead)
        return;
    p->dead = true;
    for (unsigned i = 0; i < 2; i++) {
        if (p->end[i].bulk)
            g_queue_unlink(&s->bulk, &p->end[i].bulk_link);
        p->end[i].bulk = false;
        /* The client fd stays open (its owner closes it), so it must leave the set now. */
        if (p->end[i].registered)
            epoll_ctl(s->epfd, EPOLL_CTL_DEL, p->end[i].fd, NULL);
        p->end[i].registered = 0;
        delta->buffered -= (gint64) dir_pending(&p->dir[i]);
        delta->memory -= (gint64) p->dir[i].alloc;
        g_clear_pointer(&p->dir[i].data, g_free);
        p->dir[i].alloc = p->dir[i].head = p->dir[i].tail = 0;
        dir_close_pipe(&p->dir[i], delta);
    }
    close(p->end[UPSTREAM].fd);
    p->end[UPSTREAM].fd = -1;
    apply_delta(s, p);

    g_mutex_lock(&s->lock);
    if (--p->stats->connections == 0)
        g_hash_table_remove(s->tags, p->stats->tag);
    p->stats = NULL;
    s->totals.connections--;
    s->totals.closed++;
    g_mutex_unlock(&s->lock);

    if (s->on_close)
        s->on_close(p->tag, p->bytes[CLIENT], p->bytes[UPSTREAM], reason, p->done_data,
                    s->on_close_data);
    if (p->done)
        p->done(p->done_data);

    g_queue_unlink(&s->pairs, &p->link);
    g_ptr_array_add(s->graveyard, p);
}

static void
pair_fail(VmbSplice *s, Pair *p, unsigned side, const char *what, int err)
{
    g_autofree char *reason = g_strdup_printf("%s %s: %s", side == CLIENT ? "client" : "upstream",
                                              what, g_strerror(err));
    pair_close(s, p, reason);
}

/* Sends what dir[d] holds to end[!d]; propagates EOF once it is empty. False on error. */
static bool
dir_flush(VmbSplice *s, Pair *p, unsigned d)
{
    Delta *delta = &p->delta;
    Dir *dir = &p->dir[d];
    End *to = &p->end[!d];

    while (dir->piped > 0) {
        ssize_t n = splice(dir->pipe[0], NULL, to->fd, NULL, dir->piped, SPLICE_F_NONBLOCK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return true;
        if (n < 0) {
            pair_fail(s, p, to->side, "write", errno);
            return false;
        }
        dir->piped -= (size_t) n;
        delta->sent[d] += (guint64) n;
        delta->buffered -= n;
    }
    if (!p->end[d].bulk)
        dir_close_pipe(dir, delta);
    while (dir->tail > dir->head) {
        ssize_t n = send(to->fd, dir->data + dir->head, dir->tail - dir->head, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n < 0) {
            pair_fail(s, p, to->side, "write", errno);
            return false;
        }
        dir->head += (size_t) n;
        delta->sent[d] += (guint64) n;
        delta->buffered -= n;
    }
    if (dir_pending(dir) == 0 && dir->data) {
        delta->memory -= (gint64) dir->alloc;
        g_clear_pointer(&dir->data, g_free);
        dir->alloc = dir->head = dir->tail = 0;
    }
    if (dir_pending(dir) == 0 && dir->eof && !dir->shut) {
        /* ENOTCONN: the receiver is gone already; the next write or EOF will tell. */
        if (shutdown(to->fd, SHUT_WR) < 0 && errno != ENOTCONN) {
            pair_fail(s, p, to->side, "shutdown", errno);
            return false;
        }
        dir->shut = true;
    }
    return true;
}

/* Enters or leaves bulk mode. A failing setsockopt only costs the batching (the end is
 * still read on every wakeup), a failing pipe2 the zero copy. */
static void
end_set_bulk(VmbSplice *s, End *end, bool bulk)
{
    Dir *dir = &end->pair->dir[end->side];
    int lowat = bulk ? (int) s->cap : 1;

    if (end->bulk == bulk)
        return;
    (void) setsockopt(end->fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof(lowat));
    end->bulk = bulk;
    if (bulk) {
        if (dir->pipe[0] < 0 && pipe2(dir->pipe, O_NONBLOCK | O_CLOEXEC) == 0)
            end->pair->delta.pipes++;
        if (!s->bulk.length)
            s->next_tick_us = g_get_monotonic_time() + BULK_TICK_MS * 1000;
        g_queue_push_tail_link(&s->bulk, &end->bulk_link);
    } else {
        if (dir->piped == 0)
            dir_close_pipe(dir, &end->pair->delta);
        g_queue_unlink(&s->bulk, &end->bulk_link);
    }
}

/* Bulk mode's read: up to a buffer's worth from end[d] into its pipe, then on to end[!d]. */
static bool
dir_read_piped(VmbSplice *s, Pair *p, unsigned d)
{
    Dir *dir = &p->dir[d];
    ssize_t n;

    do
        n = splice(p->end[d].fd, NULL, dir->pipe[1], NULL, s->cap, SPLICE_F_NONBLOCK);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN)
        return true;
    if (n < 0) {
        pair_fail(s, p, p->end[d].side, "read", errno);
        return false;
    }
    if (n == 0) {
        dir->eof = true;
        end_set_bulk(s, &p->end[d], false);
    }
    if (d == CLIENT && n > 0)
        p->delta.client_activity = true;
    dir->piped = (size_t) n;
    p->delta.buffered += n;
    return dir_flush(s, p, d);
}

/* Reads once from end[d] (if its buffer is empty) and sends on what it got. */
static bool
dir_read(VmbSplice *s, Pair *p, unsigned d)
{
    Delta *delta = &p->delta;
    Dir *dir = &p->dir[d];
    End *from = &p->end[d];
    End *to = &p->end[!d];
    ssize_t n, w;

    if (dir->eof || dir_pending(dir) > 0)
        return true;
    if (dir->pipe[0] >= 0)
        return dir_read_piped(s, p, d);
    do
        n = recv(from->fd, s->scratch, s->cap, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN)
        return true;
    if (n < 0) {
        pair_fail(s, p, from->side, "read", errno);
        return false;
    }
    if (n == 0) {
        dir->eof = true;
        end_set_bulk(s, from, false);
        return dir_flush(s, p, d);
    }
    if (d == CLIENT)
        delta->client_activity = true;
    if (n >= BULK_MIN && !from->bulk)
        end_set_bulk(s, from, true);

    do
        w = send(to->fd, s->scratch, (size_t) n, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w < 0 && errno == EAGAIN)
        w = 0;
    if (w < 0) {
        pair_fail(s, p, to->side, "write", errno);
        return false;
    }
    delta->sent[d] += (guint64) w;
    if (w < n) {
        dir->data = g_malloc(s->cap);
        dir->alloc = s->cap;
        dir->head = 0;
        dir->tail = (size_t) (n - w);
        memcpy(dir->data, s->scratch + w, dir->tail);
        delta->buffered += n - w;
        delta->memory += (gint64) s->cap;
    }
    return true;
}

/* Events wanted on end @e: input while its direction's buffer is empty and no EOF yet,
 * output while the other direction has bytes for it. */
static guint32
end_wanted(const Pair *p, unsigned e)
{
    guint32 want = 0;

    if (!p->dir[e].eof && dir_pending(&p->dir[e]) == 0)
        want |= EPOLLIN;
    if (dir_pending(&p->dir[!e]) > 0)
        want |= EPOLLOUT;
    return want;
}

static bool
end_update(VmbSplice *s, Pair *p, End *end)
{
    guint32 want = end_wanted(p, end->side);
    struct epoll_event ev = { .events = want, .data.ptr = end };
    int op;

    if (want == end->registered)
        return true;
    if (want == 0)
        op = EPOLL_CTL_DEL;
    else if (end->registered == 0)
        op = EPOLL_CTL_ADD;
    else
        op = EPOLL_CTL_MOD;
    if (epoll_ctl(s->epfd, op, end->fd, &ev) < 0) {
        pair_fail(s, p, end->side, "epoll_ctl", errno);
        return false;
    }
    end->registered = want;
    return true;
}

/* After any change to @p: close it when both directions are done, else fix the interest. */
static void
pair_settle(VmbSplice *s, Pair *p)
{
    if (p->dead)
        return;
    if (p->dir[0].shut && p->dir[1].shut) {
        pair_close(s, p, "closed");
        return;
    }
    if (end_update(s, p, &p->end[0]))
        end_update(s, p, &p->end[1]);
}

static void
end_event(VmbSplice *s, End *end, guint32 events)
{
    Pair *p = end->pair;
    unsigned e = end->side;
    bool ok = true;

    if (p->dead)
        return;
    if (events & EPOLLERR) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(end->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err == 0)
            err = ECONNRESET;
        pair_fail(s, p, e, "socket error", err);
        return;
    }
    /* EPOLLHUP alone: the next recv or send says what happened. */
    if (events & (EPOLLOUT | EPOLLHUP))
        ok = dir_flush(s, p, !e);
    if (ok && (events & (EPOLLIN | EPOLLHUP)))
        ok = dir_read(s, p, e);
    if (!p->dead)
        apply_delta(s, p);
    pair_settle(s, p);
}

static void
cmd_add(VmbSplice *s, Pair *p)
{
    g_queue_push_tail_link(&s->pairs, &p->link);
    /* Bytes handed over with the pair go out before anything read later. */
    if (dir_flush(s, p, CLIENT) && dir_flush(s, p, UPSTREAM))
        apply_delta(s, p);
    pair_settle(s, p);
}

static void
cmd_close_tag(VmbSplice *s, const char *tag, const char *reason)
{
    GList *l = s->pairs.head;

    while (l) {
        Pair *p = l->data;
        l = l->next;    /* pair_close() unlinks p */
        if (strcmp(p->tag, tag) == 0)
            pair_close(s, p, reason);
    }
}

/* Runs queued commands; false once told to stop. */
static bool
run_commands(VmbSplice *s)
{
    GQueue todo = G_QUEUE_INIT;
    guint64 count;
    bool go_on = true;
    Cmd *c;

    while (read(s->evfd, &count, sizeof(count)) < 0 && errno == EINTR)
        ;
    g_mutex_lock(&s->lock);
    todo = s->commands;
    g_queue_init(&s->commands);
    g_mutex_unlock(&s->lock);

    while ((c = g_queue_pop_head(&todo))) {
        switch (c->kind) {
        case CMD_ADD:
            cmd_add(s, g_steal_pointer(&c->pair));
            break;
        case CMD_CLOSE_TAG:
            cmd_close_tag(s, c->tag, c->reason);
            break;
        case CMD_CONNECT:
            vmb_splice_connect_start(s, g_steal_pointer(&c->connect));
            break;
        case CMD_STOP:
            go_on = false;
            break;
        case CMD_SYNC:
            s->sync_seen = c->sync;
            break;
        }
        vmb_splice_cmd_free(c);
    }
    return go_on;
}

/* Reads every bulk end whose direction can take more; an end that brings less than
 * BULK_MIN leaves bulk mode (one that cannot be read now, its receiver lagging, stays; EOF
 * takes an end out of bulk mode wherever it is read). */
static void
bulk_tick(VmbSplice *s)
{
    /* A snapshot: reading may close pairs, which takes both their ends off the list. Ends
     * of closed pairs stay allocated until the graveyard is emptied after this tick. */
    g_autofree End **ends = g_new(End *, s->bulk.length);
    unsigned count = 0;

    for (GList *l = s->bulk.head; l; l = l->next)
        ends[count++] = l->data;
    for (unsigned i = 0; i < count; i++) {
        End *end = ends[i];
        Pair *p = end->pair;
        Dir *dir = &p->dir[end->side];
        guint64 before = p->delta.sent[end->side];

        if (p->dead || dir->eof || dir_pending(dir) > 0)
            continue;
        if (!dir_read(s, p, end->side))
            continue;
        if (p->delta.sent[end->side] + dir_pending(dir) - before < BULK_MIN)
            end_set_bulk(s, end, false);
        if (!p->dead)
            apply_delta(s, p);
        pair_settle(s, p);
    }
}

/* End of a loop pass. A CMD_SYNC run in this pass asks for one more pass, whose epoll_wait
 * comes after the vmb_splice_sync() call and so reports everything ready before it (fds
 * registered in this pass included); the end of that pass wakes the caller. */
static void
sync_pass_end(VmbSplice *s)
{
    if (s->sync_waking) {
        g_mutex_lock(&s->lock);
        s->syncs_done = s->sync_waking;
        g_cond_broadcast(&s->synced);
        g_mutex_unlock(&s->lock);
        s->sync_waking = 0;
    }
    if (s->sync_seen) {
        s->sync_waking = s->sync_seen;
        s->sync_seen = 0;
        vmb_splice_wake(s);
    }
}

/* epoll_wait's timeout: until the next bulk tick or connect check, or none without them. */
static int
engine_timeout_ms(VmbSplice *s)
{
    gint64 next = G_MAXINT64;
    gint64 left;

    if (s->bulk.length)
        next = s->next_tick_us;
    if (s->connecting)
        next = MIN(next, s->next_connect_check_us);
    if (next == G_MAXINT64)
        return -1;
    left = next - g_get_monotonic_time();
    return left <= 0 ? 0 : (int) ((left + 999) / 1000);
}

/**
 * vmb_splice_engine_pass:
 * @s: the engine
 * @timeout_ms: how long epoll_wait may wait; -1 for the engine's own timeout
 *
 * One pass of the loop: waits for events, handles them, the bulk tick and the connect
 * deadlines. Engine thread (or the caller of a stepped engine).
 *
 * Returns: false once a stop command was handled.
 */
bool
vmb_splice_engine_pass(VmbSplice *s, int timeout_ms)
{
    struct epoll_event events[MAX_EVENTS];
    bool running = true;
    int n = epoll_wait(s->epfd, events, MAX_EVENTS,
                       timeout_ms < 0 ? engine_timeout_ms(s) : timeout_ms);

    if (n < 0) {
        /* EINTR only: the other errors mean a broken epfd, a bug. */
        g_assert(errno == EINTR);
        return true;
    }
    for (int i = 0; i < n; i++) {
        if (events[i].data.ptr == s)
            running = run_commands(s) && running;
        else if (events[i].data.ptr == &s->cepfd)
            vmb_splice_connect_events(s);
        else
            end_event(s, events[i].data.ptr, events[i].events);
    }
    if (s->bulk.length && g_get_monotonic_time() >= s->next_tick_us) {
        bulk_tick(s);
        s->next_tick_us = g_get_monotonic_time() + BULK_TICK_MS * 1000;
    }
    if (s->connecting && g_get_monotonic_time() >= s->next_connect_check_us)
        vmb_splice_connect_expire(s);
    g_ptr_array_set_size(s->graveyard, 0);
    sync_pass_end(s);
    return running;
}

/* After the stop command: ends what is left and releases every waiting vmb_splice_sync(). */
void
vmb_splice_engine_shutdown(VmbSplice *s)
{
    vmb_splice_connect_stop(s);
    while (s->pairs.head)
        pair_close(s, s->pairs.head->data, "shutdown");
    g_ptr_array_set_size(s->graveyard, 0);
    g_mutex_lock(&s->lock);
    s->syncs_done = s->syncs_asked;   /* no caller waits past the end */
    g_cond_broadcast(&s->synced);
    g_mutex_unlock(&s->lock);
}

gpointer
vmb_splice_engine_main(gpointer data)
{
    VmbSplice *s = data;
    sigset_t pipe_signal;

    /* splice(2) into a socket whose peer is gone raises SIGPIPE in this thread; blocked, it
     * is only EPIPE. */
    sigemptyset(&pipe_signal);
    sigaddset(&pipe_signal, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_signal, NULL);

    while (vmb_splice_engine_pass(s, -1))
        ;
    vmb_splice_engine_shutdown(s);
    return NULL;
}
