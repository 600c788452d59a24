// SPDX-License-Identifier: LGPL-2.1-or-later
// The relay engine of broker/util/vmb-splice.c between real sockets (socketpairs and
// loopback TCP): integrity, backpressure, half-close, close by tag, and no leaked fds.
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test.h"
#include "vmb-error.h"
#include "vmb-splice.h"

/* What on_close saw, for all pairs of one engine. */
typedef struct {
    GMutex lock;
    GCond cond;
    unsigned closes;
    GPtrArray *reasons;     /* "tag:reason" */
    guint64 bytes_in;       /* of the last close */
    guint64 bytes_out;
} Audit;

/* One pair as the test sees it: its own two ends, and the fd it lent the engine. */
typedef struct {
    int client;             /* the browser's end */
    int upstream;           /* QEMU's end */
    int lent_client_fd;     /* closed by done, as MHD_UPGRADE_ACTION_CLOSE would */
    GMutex *lock;
    GCond *cond;
    unsigned done_calls;
} TestPair;

static GMutex pairs_lock;
static GCond pairs_cond;

static void
on_close(const char *tag, guint64 bytes_in, guint64 bytes_out, const char *reason,
         void *done_data, void *data)
{
    Audit *a = data;

    g_mutex_lock(&a->lock);
    a->closes++;
    a->bytes_in = bytes_in;
    a->bytes_out = bytes_out;
    g_ptr_array_add(a->reasons, g_strdup_printf("%s:%s", tag, reason));
    g_cond_broadcast(&a->cond);
    g_mutex_unlock(&a->lock);
}

static void
on_done(void *data)
{
    TestPair *tp = data;

    g_mutex_lock(tp->lock);
    tp->done_calls++;
    close(tp->lent_client_fd);
    g_cond_broadcast(tp->cond);
    g_mutex_unlock(tp->lock);
}

static void
audit_init(Audit *a)
{
    g_mutex_init(&a->lock);
    g_cond_init(&a->cond);
    a->closes = 0;
    a->reasons = g_ptr_array_new_with_free_func(g_free);
}

static void
audit_clear(Audit *a)
{
    g_ptr_array_unref(a->reasons);
    g_cond_clear(&a->cond);
    g_mutex_clear(&a->lock);
}

static void
wait_done(TestPair *tp)
{
    g_mutex_lock(tp->lock);
    while (tp->done_calls == 0)
        g_cond_wait(tp->cond, tp->lock);
    g_mutex_unlock(tp->lock);
}

static void
wait_closes(Audit *a, unsigned n)
{
    g_mutex_lock(&a->lock);
    while (a->closes < n)
        g_cond_wait(&a->cond, &a->lock);
    g_mutex_unlock(&a->lock);
}

static unsigned
count_fds(void)
{
    g_autoptr(GDir) d = g_dir_open("/proc/self/fd", 0, NULL);
    unsigned n = 0;

    g_assert_nonnull(d);
    while (g_dir_read_name(d))
        n++;
    return n;
}

static void
make_socketpair(int fds[2])
{
    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
}

/* Two connected loopback TCP sockets. */
static void
make_tcp_pair(int fds[2])
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(sa);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    g_assert_cmpint(lfd, >=, 0);
    g_assert_cmpint(bind(lfd, (struct sockaddr *) &sa, sizeof(sa)), ==, 0);
    g_assert_cmpint(listen(lfd, 1), ==, 0);
    g_assert_cmpint(getsockname(lfd, (struct sockaddr *) &sa, &len), ==, 0);
    fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert_cmpint(connect(fds[0], (struct sockaddr *) &sa, sizeof(sa)), ==, 0);
    fds[1] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    g_assert_cmpint(fds[1], >=, 0);
    close(lfd);
}

/* Creates the test's ends and hands the engine its two. */
static void
add_pair(VmbSplice *s, TestPair *tp, bool tcp, const char *tag, GBytes *to_client_first,
         GBytes *to_upstream_first)
{
    int c[2], u[2];
    g_autoptr(GError) error = NULL;

    if (tcp) {
        make_tcp_pair(c);
        make_tcp_pair(u);
    } else {
        make_socketpair(c);
        make_socketpair(u);
    }
    tp->client = c[0];
    tp->lent_client_fd = c[1];
    tp->upstream = u[0];
    tp->lock = &pairs_lock;
    tp->cond = &pairs_cond;
    tp->done_calls = 0;
    g_assert_true(vmb_splice_add(s, c[1], u[1], to_client_first, to_upstream_first, tag,
                                 on_done, tp, &error));
    g_assert_no_error(error);
}

static void
set_nonblocking(int fd)
{
    g_assert_cmpint(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), ==, 0);
}

/* Reads @fd to EOF (blocking) and returns everything. */
static GByteArray *
read_to_eof(int fd)
{
    GByteArray *all = g_byte_array_new();
    guint8 buf[65536];
    ssize_t n;

    while ((n = read(fd, buf, sizeof(buf))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        g_assert_cmpint(n, >, 0);
        g_byte_array_append(all, buf, (guint) n);
    }
    return all;
}

static guint8 *
random_bytes(size_t len, guint32 seed)
{
    g_autoptr(GRand) r = g_rand_new_with_seed(seed);
    guint8 *b = g_malloc(len);

    for (size_t i = 0; i < len; i++)
        b[i] = (guint8) g_rand_int(r);
    return b;
}

static char *
sha256(const guint8 *data, size_t len)
{
    return g_compute_checksum_for_data(G_CHECKSUM_SHA256, data, len);
}

/* Both test ends send their data at once, shut down, and read until EOF: what each got. */
static void
exchange(int a, int b, const guint8 *ab, size_t ablen, const guint8 *ba, size_t balen,
         GByteArray *got_a, GByteArray *got_b)
{
    size_t sent_a = 0, sent_b = 0;
    bool eof_a = false, eof_b = false, shut_a = false, shut_b = false;
    guint8 buf[65536];

    set_nonblocking(a);
    set_nonblocking(b);
    while (!eof_a || !eof_b) {
        struct pollfd p[2] = {
            { .fd = a, .events = (eof_a ? 0 : POLLIN) | (shut_a ? 0 : POLLOUT) },
            { .fd = b, .events = (eof_b ? 0 : POLLIN) | (shut_b ? 0 : POLLOUT) },
        };
        int fds[2] = { a, b };
        const guint8 *out[2] = { ab, ba };
        size_t outlen[2] = { ablen, balen };
        size_t *sent[2] = { &sent_a, &sent_b };
        bool *eof[2] = { &eof_a, &eof_b };
        bool *shut[2] = { &shut_a, &shut_b };
        GByteArray *got[2] = { got_a, got_b };

        g_assert_cmpint(poll(p, 2, -1), >, 0);
        for (int i = 0; i < 2; i++) {
            if (p[i].revents & POLLOUT) {
                ssize_t n = send(fds[i], out[i] + *sent[i], MIN(outlen[i] - *sent[i], 100000),
                                 MSG_NOSIGNAL);
                if (n > 0)
                    *sent[i] += (size_t) n;
                else
                    g_assert_true(n < 0 && errno == EAGAIN);
            }
            if (!*shut[i] && *sent[i] == outlen[i]) {
                g_assert_cmpint(shutdown(fds[i], SHUT_WR), ==, 0);
                *shut[i] = true;
            }
            if (p[i].revents & (POLLIN | POLLHUP)) {
                ssize_t n = recv(fds[i], buf, sizeof(buf), 0);
                if (n == 0)
                    *eof[i] = true;
                else if (n > 0)
                    g_byte_array_append(got[i], buf, (guint) n);
                else
                    g_assert_true(errno == EAGAIN);
            }
        }
    }
}

static void
check_both_ways(bool tcp)
{
    const size_t len = 10 * 1024 * 1024;
    g_autofree guint8 *up = random_bytes(len, 1);
    g_autofree guint8 *down = random_bytes(len, 2);
    g_autoptr(GBytes) first_down = g_bytes_new_static("RFB 003.008\n", 12);
    g_autoptr(GBytes) first_up = g_bytes_new_static("extra-in", 8);
    g_autoptr(GByteArray) got_client = g_byte_array_new();
    g_autoptr(GByteArray) got_upstream = g_byte_array_new();
    g_autofree char *want_up = NULL, *want_down = NULL, *got_up = NULL, *got_down = NULL;
    VmbSpliceOptions opts = { .on_close = on_close };
    g_autoptr(VmbSplice) s = NULL;
    VmbSpliceStats st;
    TestPair tp;
    Audit audit;

    audit_init(&audit);
    opts.on_close_data = &audit;
    s = vmb_splice_new(&opts, NULL);
    g_assert_nonnull(s);
    add_pair(s, &tp, tcp, "vm1", first_down, first_up);
    exchange(tp.client, tp.upstream, up, len, down, len, got_client, got_upstream);

    /* What was handed over with the pair comes first, then the stream, byte for byte. */
    g_assert_cmpuint(got_upstream->len, ==, 8 + len);
    g_assert_cmpmem(got_upstream->data, 8, "extra-in", 8);
    g_assert_cmpuint(got_client->len, ==, 12 + len);
    g_assert_cmpmem(got_client->data, 12, "RFB 003.008\n", 12);
    want_up = sha256(up, len);
    got_up = sha256(got_upstream->data + 8, len);
    want_down = sha256(down, len);
    got_down = sha256(got_client->data + 12, len);
    g_assert_cmpstr(got_up, ==, want_up);
    g_assert_cmpstr(got_down, ==, want_down);

    wait_done(&tp);
    wait_closes(&audit, 1);
    g_assert_cmpstr(audit.reasons->pdata[0], ==, "vm1:closed");
    g_assert_cmpuint(audit.bytes_in, ==, 8 + len);
    g_assert_cmpuint(audit.bytes_out, ==, 12 + len);
    vmb_splice_stats(s, &st);
    g_assert_cmpuint(st.connections, ==, 0);
    g_assert_cmpuint(st.opened, ==, 1);
    g_assert_cmpuint(st.closed, ==, 1);
    g_assert_cmpuint(st.bytes_in, ==, 8 + len);
    g_assert_cmpuint(st.bytes_out, ==, 12 + len);
    g_assert_cmpuint(st.buffered, ==, 0);
    g_assert_cmpuint(st.buffer_memory, ==, 0);
    close(tp.client);
    close(tp.upstream);
    g_clear_pointer(&s, vmb_splice_free);
    g_assert_cmpuint(tp.done_calls, ==, 1);
    audit_clear(&audit);
}

TEST(both_ways_intact_socketpair)
{
    check_both_ways(false);
}

TEST(both_ways_intact_tcp)
{
    check_both_ways(true);
}

/* Reads exactly @len bytes from the blocking @fd into @buf; false on EOF or after 30 s
 * without progress (a relay that holds bytes back). */
static bool
read_exactly(int fd, guint8 *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t n;

        if (poll(&p, 1, 30000) != 1)
            return false;
        n = recv(fd, buf + got, len - got, 0);
        if (n <= 0)
            return false;
        got += (size_t) n;
    }
    return true;
}

typedef struct {
    int fd;
    const guint8 *data;
    size_t len;
} Writer;

static gpointer
writer_main(gpointer data)
{
    Writer *w = data;

    for (size_t sent = 0; sent < w->len;) {
        ssize_t n = send(w->fd, w->data + sent, w->len - sent, MSG_NOSIGNAL);
        g_assert_cmpint(n, >, 0);
        sent += (size_t) n;
    }
    return NULL;
}

/* A stream puts upstream in bulk mode (reported only once a whole buffer waits); the tail
 * of the stream and a small message after it still arrive, without EOF to push them. */
TEST(bulk_stream_tail_and_small_message_arrive)
{
    const size_t len = 3 * 1024 * 1024 + 123;   /* not a multiple of any buffer */
    g_autoptr(VmbSplice) s = vmb_splice_new(NULL, NULL);
    g_autofree guint8 *data = random_bytes(len, 4);
    g_autofree guint8 *got = g_malloc(len);
    guint8 small[5];
    TestPair tp;

    add_pair(s, &tp, true, "vm", NULL, NULL);
    for (int round = 0; round < 3; round++) {
        Writer w = { tp.upstream, data, len };
        GThread *writer = g_thread_new("writer", writer_main, &w);

        g_assert_true(read_exactly(tp.client, got, len));
        g_thread_join(writer);
        g_assert_cmpmem(got, len, data, len);
        g_assert_cmpint(send(tp.upstream, "ping", 5, MSG_NOSIGNAL), ==, 5);
        g_assert_true(read_exactly(tp.client, small, sizeof(small)));
        g_assert_cmpmem(small, sizeof(small), "ping", 5);
    }
    close(tp.upstream);
    close(tp.client);
    wait_done(&tp);
}

/* Upstream writes while the client reads nothing: the engine's buffers stay within their
 * bound and upstream is made to wait; then everything arrives intact. With a buffer of
 * @cap bytes, 8 KiB writes put upstream in bulk mode (its bytes wait in a pipe) or not. */
static void
check_backpressure(size_t cap, bool bulk)
{
    const size_t limit = 256 * 1024 * 1024;
    VmbSpliceOptions opts = { .buffer_size = cap };
    g_autoptr(VmbSplice) s = vmb_splice_new(&opts, NULL);
    g_autoptr(GByteArray) sent = g_byte_array_new();
    g_autoptr(GByteArray) got = NULL;
    g_autoptr(GRand) r = g_rand_new_with_seed(3);
    guint8 chunk[8192];
    VmbSpliceStats st;
    TestPair tp;
    unsigned quiet = 0, pipes = 0;

    add_pair(s, &tp, false, "vm", NULL, NULL);
    set_nonblocking(tp.upstream);
    /* Write until upstream's socket stays full: that only happens if the engine stopped
     * reading it, since the engine could otherwise take bytes forever. */
    while (quiet < 3) {
        struct pollfd p = { .fd = tp.upstream, .events = POLLOUT };
        ssize_t n;

        for (size_t i = 0; i < sizeof(chunk); i++)
            chunk[i] = (guint8) g_rand_int(r);
        n = send(tp.upstream, chunk, sizeof(chunk), MSG_NOSIGNAL);
        if (n > 0) {
            g_byte_array_append(sent, chunk, (guint) n);
            quiet = 0;
        } else {
            g_assert_true(n < 0 && errno == EAGAIN);
        }
        vmb_splice_stats(s, &st);
        g_assert_cmpuint(st.buffered, <=, cap);
        g_assert_cmpuint(st.buffer_memory, <=, cap);
        g_assert_cmpuint(sent->len, <, limit);
        pipes = MAX(pipes, st.pipes);
        if (n < 0 && poll(&p, 1, 200) == 0)
            quiet++;
    }
    vmb_splice_stats(s, &st);
    g_assert_cmpuint(st.buffered, <=, cap);
    /* Bytes are still waiting in upstream's socket that the engine did not take. */
    g_assert_cmpuint(sent->len, >, st.bytes_out + st.buffered);

    shutdown(tp.upstream, SHUT_WR);
    got = read_to_eof(tp.client);
    g_assert_cmpuint(got->len, ==, sent->len);
    g_assert_cmpmem(got->data, got->len, sent->data, sent->len);

    g_assert_cmpuint(pipes, ==, bulk ? 1 : 0);

    /* Drained buffers are freed and EOF ends bulk mode: idle pairs cost no buffer memory
     * and no pipe. */
    for (unsigned i = 0; i < 10000; i++) {
        vmb_splice_stats(s, &st);
        if (st.buffer_memory == 0 && st.pipes == 0)
            break;
        g_usleep(1000);
    }
    g_assert_cmpuint(st.buffered, ==, 0);
    g_assert_cmpuint(st.buffer_memory, ==, 0);
    g_assert_cmpuint(st.pipes, ==, 0);
    g_assert_cmpuint(st.connections, ==, 1);
    g_clear_pointer(&s, vmb_splice_free);
    close(tp.client);
    close(tp.upstream);
}

TEST(backpressure_bounds_memory)
{
    check_backpressure(4096, false);
}

TEST(backpressure_bounds_memory_bulk)
{
    check_backpressure(64 * 1024, true);
}

static gpointer
write_until_error(gpointer data)
{
    Writer *w = data;

    while (send(w->fd, w->data, w->len, MSG_NOSIGNAL) > 0)
        ;
    return NULL;
}

/* The browser goes away while a stream is moving through the pipe: the engine closes the
 * pair with the reason, and leaves no pipe or fd behind. Whether splice(2) or epoll tells
 * first is a race; on a socketpair, splice(2) meets EPIPE in most rounds, which would end
 * this test with SIGPIPE unless the engine blocks it. */
static void
check_bulk_receiver_gone(bool tcp)
{
    Audit audit;
    VmbSpliceOptions opts = { .on_close = on_close, .on_close_data = &audit };
    g_autoptr(VmbSplice) s = NULL;
    g_autofree guint8 *data = random_bytes(256 * 1024, 5);
    guint8 some[100000];
    VmbSpliceStats st;
    unsigned before;

    audit_init(&audit);
    s = vmb_splice_new(&opts, NULL);
    before = count_fds();
    for (unsigned round = 0; round < 10; round++) {
        Writer w;
        GThread *writer;
        TestPair tp;
        const char *reason;

        add_pair(s, &tp, tcp, "vm", NULL, NULL);
        w = (Writer) { tp.upstream, data, 256 * 1024 };
        writer = g_thread_new("writer", write_until_error, &w);
        g_assert_true(read_exactly(tp.client, some, sizeof(some)));
        /* The stream goes on while the client reads no more: its bytes wait in the pipe of
         * bulk mode, once the engine has seen it stream (not at once on a loaded machine). */
        for (int i = 0; i < 500; i++) {
            vmb_splice_stats(s, &st);
            if (st.pipes == 1)
                break;
            g_usleep(10000);
        }
        g_assert_cmpuint(st.pipes, ==, 1);
        /* Closing with unread bytes resets the connection. */
        close(tp.client);
        wait_done(&tp);
        wait_closes(&audit, round + 1);
        reason = audit.reasons->pdata[round];
        g_test_message("round %u: %s", round, reason);
        g_assert_true(g_str_has_prefix(reason, "vm:client write: ") ||
                      g_str_has_prefix(reason, "vm:client socket error: "));
        g_thread_join(writer);
        close(tp.upstream);
    }
    vmb_splice_stats(s, &st);
    g_assert_cmpuint(st.connections, ==, 0);
    g_assert_cmpuint(st.pipes, ==, 0);
    g_assert_cmpuint(st.buffered, ==, 0);
    g_assert_cmpuint(count_fds(), ==, before);
    g_clear_pointer(&s, vmb_splice_free);
    audit_clear(&audit);
}

TEST(bulk_receiver_gone_socketpair)
{
    check_bulk_receiver_gone(false);
}

TEST(bulk_receiver_gone_tcp)
{
    check_bulk_receiver_gone(true);
}

static void
check_half_close(bool client_first)
{
    Audit audit;
    VmbSpliceOptions opts = { .on_close = on_close, .on_close_data = &audit };
    g_autoptr(VmbSplice) s = NULL;
    g_autoptr(GByteArray) got1 = NULL;
    g_autoptr(GByteArray) got2 = NULL;
    TestPair tp;
    int first, second;

    audit_init(&audit);
    s = vmb_splice_new(&opts, NULL);
    add_pair(s, &tp, true, "vm", NULL, NULL);
    first = client_first ? tp.client : tp.upstream;
    second = client_first ? tp.upstream : tp.client;

    /* One side says all and shuts its write side: the other reads it all and then EOF... */
    g_assert_cmpint(write(first, "bye", 3), ==, 3);
    g_assert_cmpint(shutdown(first, SHUT_WR), ==, 0);
    got1 = read_to_eof(second);
    g_assert_cmpmem(got1->data, got1->len, "bye", 3);
    /* ...while the pair stays open the other way, */
    g_assert_cmpuint(audit.closes, ==, 0);
    g_assert_cmpint(write(second, "still here", 10), ==, 10);
    g_assert_cmpint(shutdown(second, SHUT_WR), ==, 0);
    got2 = read_to_eof(first);
    g_assert_cmpmem(got2->data, got2->len, "still here", 10);
    /* ...until that way is done too. */
    wait_done(&tp);
    wait_closes(&audit, 1);
    g_assert_cmpstr(audit.reasons->pdata[0], ==, "vm:closed");
    g_clear_pointer(&s, vmb_splice_free);
    g_assert_cmpuint(tp.done_calls, ==, 1);
    close(tp.client);
    close(tp.upstream);
    audit_clear(&audit);
}

TEST(half_close_client_first)
{
    check_half_close(true);
}

TEST(half_close_upstream_first)
{
    check_half_close(false);
}

TEST(close_tag)
{
    Audit audit;
    VmbSpliceOptions opts = { .on_close = on_close, .on_close_data = &audit };
    g_autoptr(VmbSplice) s = NULL;
    TestPair a1, a2, b;
    unsigned conns = 0;
    gint64 last = 0, before = g_get_real_time();
    guint64 in = 0, out = 0;
    char c;

    audit_init(&audit);
    s = vmb_splice_new(&opts, NULL);
    add_pair(s, &a1, false, "a", NULL, NULL);
    add_pair(s, &a2, false, "a", NULL, NULL);
    add_pair(s, &b, false, "b", NULL, NULL);
    g_assert_true(vmb_splice_tag_stats(s, "a", &conns, &last, &in, &out));
    g_assert_cmpuint(conns, ==, 2);
    g_assert_cmpint(last, >=, before);

    /* Traffic on a1 counts for "a" only. */
    g_assert_cmpint(write(a1.client, "ping", 4), ==, 4);
    g_assert_cmpint(read(a1.upstream, &c, 1), ==, 1);
    g_assert_cmpint(write(a1.upstream, "pong!", 5), ==, 5);
    for (unsigned i = 0; i < 10000 && (in < 4 || out < 5); i++) {
        g_usleep(1000);
        vmb_splice_tag_stats(s, "a", NULL, NULL, &in, &out);
    }
    g_assert_cmpuint(in, ==, 4);
    g_assert_cmpuint(out, ==, 5);
    vmb_splice_tag_stats(s, "b", &conns, NULL, &in, &out);
    g_assert_cmpuint(conns, ==, 1);
    g_assert_cmpuint(in + out, ==, 0);

    vmb_splice_close_tag(s, "a", "vm stopped");
    wait_done(&a1);
    wait_done(&a2);
    /* Both ends of both pairs see the end: the engine closed upstream, done the client. */
    for (TestPair *tp = &a1; tp; tp = tp == &a1 ? &a2 : NULL) {
        g_autoptr(GByteArray) rest_up = read_to_eof(tp->upstream);
        g_autoptr(GByteArray) rest_client = read_to_eof(tp->client);
        if (tp == &a1)
            g_assert_cmpmem(rest_client->data, rest_client->len, "pong!", 5);
        else
            g_assert_cmpuint(rest_client->len, ==, 0);
    }
    wait_closes(&audit, 2);
    g_assert_cmpstr(audit.reasons->pdata[0], ==, "a:vm stopped");
    g_assert_cmpstr(audit.reasons->pdata[1], ==, "a:vm stopped");
    g_assert_false(vmb_splice_tag_stats(s, "a", &conns, NULL, NULL, NULL));
    g_assert_cmpuint(conns, ==, 0);

    /* "b" is untouched and still relays. */
    g_assert_cmpint(write(b.client, "x", 1), ==, 1);
    g_assert_cmpint(read(b.upstream, &c, 1), ==, 1);
    g_assert_cmpint(c, ==, 'x');
    g_assert_true(vmb_splice_tag_stats(s, "b", &conns, NULL, NULL, NULL));
    g_assert_cmpuint(conns, ==, 1);

    /* Freeing the engine ends "b" too, and nobody's done runs twice. */
    g_clear_pointer(&s, vmb_splice_free);
    g_assert_cmpuint(a1.done_calls, ==, 1);
    g_assert_cmpuint(a2.done_calls, ==, 1);
    g_assert_cmpuint(b.done_calls, ==, 1);
    g_assert_cmpuint(audit.closes, ==, 3);
    g_assert_cmpstr(audit.reasons->pdata[2], ==, "b:shutdown");
    for (TestPair *tp = &a1; tp; tp = tp == &a1 ? &a2 : tp == &a2 ? &b : NULL) {
        close(tp->client);
        close(tp->upstream);
    }
    audit_clear(&audit);
}

/* Errors keep the contract: upstream's fd is owned (closed) even when adding fails. */
TEST(add_rejects_bad_fds)
{
    g_autoptr(VmbSplice) s = vmb_splice_new(NULL, NULL);
    g_autoptr(GError) error = NULL;
    int u[2];

    make_socketpair(u);
    g_assert_false(vmb_splice_add(s, -1, u[1], NULL, NULL, "x", NULL, NULL, &error));
    g_assert_error(error, VMB_ERROR, VMB_ERROR_INVALID);
    g_assert_cmpint(fcntl(u[1], F_GETFD), ==, -1);
    close(u[0]);
}

/* 200 pairs come and go, half by EOF, half by tag: no fd is left behind. */
TEST(many_pairs_no_fd_leak)
{
    enum { N = 200 };
    Audit audit;
    VmbSpliceOptions opts = { .on_close = on_close, .on_close_data = &audit };
    g_autoptr(VmbSplice) s = NULL;
    g_autofree TestPair *tp = g_new0(TestPair, N);
    unsigned before, during;
    VmbSpliceStats st;

    audit_init(&audit);
    s = vmb_splice_new(&opts, NULL);
    before = count_fds();
    for (unsigned i = 0; i < N; i++)
        add_pair(s, &tp[i], i % 4 == 0, i % 2 ? "by-tag" : "by-eof", NULL, NULL);
    during = count_fds();
    g_assert_cmpuint(during, ==, before + 4 * N);
    vmb_splice_stats(s, &st);
    g_assert_cmpuint(st.connections, ==, N);

    vmb_splice_close_tag(s, "by-tag", "test");
    for (unsigned i = 0; i < N; i += 2) {
        shutdown(tp[i].client, SHUT_WR);
        shutdown(tp[i].upstream, SHUT_WR);
    }
    wait_closes(&audit, N);
    for (unsigned i = 0; i < N; i++) {
        wait_done(&tp[i]);
        g_assert_cmpuint(tp[i].done_calls, ==, 1);
        close(tp[i].client);
        close(tp[i].upstream);
    }
    g_assert_cmpuint(count_fds(), ==, before);
    vmb_splice_stats(s, &st);
    g_assert_cmpuint(st.connections, ==, 0);
    g_assert_cmpuint(st.closed, ==, N);
    g_clear_pointer(&s, vmb_splice_free);
    audit_clear(&audit);
}

/* vmb_splice_sync() returns after the engine handled what was ready: a byte written to one
 * end is readable at the other at once, many times over, and a close is seen (done ran). */
TEST(splice_sync)
{
    g_autoptr(VmbSplice) s = vmb_splice_new(NULL, NULL);
    TestPair tp;
    char c;

    add_pair(s, &tp, false, "sync", NULL, NULL);
    for (unsigned i = 0; i < 500; i++) {
        char b = (char) i;

        g_assert_cmpint(send(tp.client, &b, 1, MSG_NOSIGNAL), ==, 1);
        vmb_splice_sync(s);
        g_assert_cmpint(recv(tp.upstream, &c, 1, MSG_DONTWAIT), ==, 1);
        g_assert_cmpint(c, ==, b);
    }
    close(tp.client);
    close(tp.upstream);
    vmb_splice_sync(s);
    g_mutex_lock(&pairs_lock);
    g_assert_cmpuint(tp.done_calls, ==, 1);
    g_mutex_unlock(&pairs_lock);
    g_clear_pointer(&s, vmb_splice_free);
}

/* A stepped engine has no thread: nothing moves until the caller steps it, a step moves what
 * was ready, and freeing it ends the open pairs on the caller's thread. */
TEST(splice_stepped)
{
    Audit audit;
    g_autoptr(VmbSplice) s = NULL;
    TestPair tp;
    char c;

    audit_init(&audit);
    s = vmb_splice_new(&(VmbSpliceOptions) { .on_close = on_close, .on_close_data = &audit,
                                             .stepped = true }, NULL);
    add_pair(s, &tp, false, "step", NULL, NULL);
    g_assert_cmpint(send(tp.client, "x", 1, MSG_NOSIGNAL), ==, 1);
    g_usleep(20 * 1000);
    g_assert_cmpint(recv(tp.upstream, &c, 1, MSG_DONTWAIT), ==, -1);
    vmb_splice_step(s, 0);      /* the add */
    for (unsigned i = 0; i < 100; i++) {
        vmb_splice_sync(s);
        g_assert_cmpint(recv(tp.upstream, &c, 1, MSG_DONTWAIT), ==, 1);
        g_assert_cmpint(send(tp.upstream, &c, 1, MSG_NOSIGNAL), ==, 1);
        vmb_splice_step(s, 1000);
        g_assert_cmpint(recv(tp.client, &c, 1, MSG_DONTWAIT), ==, 1);
        g_assert_cmpint(send(tp.client, &c, 1, MSG_NOSIGNAL), ==, 1);
    }
    g_assert_cmpuint(tp.done_calls, ==, 0);
    g_clear_pointer(&s, vmb_splice_free);
    g_assert_cmpuint(tp.done_calls, ==, 1);
    g_assert_cmpuint(audit.closes, ==, 1);
    g_assert_cmpstr(audit.reasons->pdata[0], ==, "step:shutdown");
    close(tp.client);
    close(tp.upstream);
    audit_clear(&audit);
}

TEST_MAIN()
