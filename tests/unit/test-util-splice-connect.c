// SPDX-License-Identifier: LGPL-2.1-or-later
// The relay's connects to QEMU (broker/console/vmb-splice-connect.c) against real loopback
// listeners: one handshake at a time per listener, a deadline for a listener that never
// answers, the bound of the queue, and shutdown with connects waiting.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test.h"
#include "vmb-error.h"
#include "vmb-splice.h"

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define ANSWER                                                                             \
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"    \
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\nRFB 003.008\n"

/* What the connects' callbacks saw. */
typedef struct {
    GMutex lock;
    GCond cond;
    unsigned ok;
    unsigned failed;
    unsigned too_many;
    GPtrArray *fds;     /* upstream sockets handed over */
    gint64 last_failure_us;
} Results;

static void
results_init(Results *r)
{
    g_mutex_init(&r->lock);
    g_cond_init(&r->cond);
    r->fds = g_ptr_array_new();
}

static void
results_clear(Results *r)
{
    for (guint i = 0; i < r->fds->len; i++)
        close(GPOINTER_TO_INT(r->fds->pdata[i]));
    g_ptr_array_unref(r->fds);
    g_mutex_clear(&r->lock);
    g_cond_clear(&r->cond);
}

static void
on_connect(VmbWsUpstream *up, const GError *error, void *data)
{
    Results *r = data;

    g_mutex_lock(&r->lock);
    if (up) {
        g_assert_cmpstr(up->accept, ==, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        g_assert_cmpuint(g_bytes_get_size(up->leftover), ==, 12);
        g_ptr_array_add(r->fds, GINT_TO_POINTER(up->fd));
        up->fd = -1;
        vmb_wsupstream_clear(up);
        r->ok++;
    } else if (g_error_matches(error, VMB_ERROR, VMB_ERROR_TOO_MANY)) {
        r->too_many++;
    } else {
        g_assert_true(g_error_matches(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE));
        r->failed++;
        r->last_failure_us = g_get_monotonic_time();
    }
    g_cond_broadcast(&r->cond);
    g_mutex_unlock(&r->lock);
}

/* Waits until @n callbacks ran, for at most @timeout_s. */
static void
results_wait(Results *r, unsigned n, unsigned timeout_s)
{
    gint64 deadline = g_get_monotonic_time() + (gint64) timeout_s * G_USEC_PER_SEC;

    g_mutex_lock(&r->lock);
    while (r->ok + r->failed + r->too_many < n)
        g_assert_true(g_cond_wait_until(&r->cond, &r->lock, deadline));
    g_mutex_unlock(&r->lock);
}

/* A loopback listener with QEMU's backlog of 1; returns its fd, *ret_port its port. */
static int
listener(unsigned *ret_port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g_assert_cmpint(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), ==, 0);
    g_assert_cmpint(listen(fd, 1), ==, 0);
    g_assert_cmpint(getsockname(fd, (struct sockaddr *) &sa, &len), ==, 0);
    *ret_port = ntohs(sa.sin_port);
    return fd;
}

typedef struct {
    int lfd;
    unsigned expected;
    unsigned overlaps;  /* connections found waiting while one handshake was under way */
} Server;

/* Answers @expected handshakes one by one, slowly, and counts connections that arrived
 * while a handshake was still unanswered. */
static gpointer
server_main(gpointer data)
{
    Server *sv = data;
    g_autoptr(GPtrArray) held = g_ptr_array_new();

    for (unsigned i = 0; i < sv->expected; i++) {
        g_autoptr(GString) req = g_string_new(NULL);
        int fd = accept4(sv->lfd, NULL, NULL, SOCK_CLOEXEC);
        int other;
        char c;

        g_assert_cmpint(fd, >=, 0);
        while (!g_str_has_suffix(req->str, "\r\n\r\n") && read(fd, &c, 1) == 1)
            g_string_append_c(req, c);
        g_usleep(20 * 1000);
        /* The relay connects the next viewer only after this one's 101. */
        other = poll(&(struct pollfd) { .fd = sv->lfd, .events = POLLIN }, 1, 0);
        if (other > 0)
            sv->overlaps++;
        g_assert_cmpint(write(fd, ANSWER, strlen(ANSWER)), ==, (ssize_t) strlen(ANSWER));
        g_ptr_array_add(held, GINT_TO_POINTER(fd));
    }
    for (guint i = 0; i < held->len; i++)
        close(GPOINTER_TO_INT(held->pdata[i]));
    return NULL;
}

static void
test_connects_to_one_listener_go_one_at_a_time(void)
{
    g_autoptr(VmbSplice) s = vmb_splice_new(NULL, NULL);
    Server sv = { .expected = 40 };
    Results r = { 0 };
    unsigned port = 0;
    GThread *thread;

    results_init(&r);
    sv.lfd = listener(&port);
    thread = g_thread_new("server", server_main, &sv);
    /* Forty viewers at once against a backlog of 1: none may be dropped. */
    for (unsigned i = 0; i < sv.expected; i++)
        g_assert_true(vmb_splice_connect(s, "127.0.0.1", port, KEY, NULL, 20000, 20000,
                                         on_connect, &r, NULL));
    results_wait(&r, sv.expected, 30);
    g_thread_join(thread);
    g_assert_cmpuint(r.ok, ==, sv.expected);
    g_assert_cmpuint(sv.overlaps, ==, 0);
    close(sv.lfd);
    results_clear(&r);
}

static void
test_a_listener_that_never_answers_costs_its_deadline(void)
{
    g_autoptr(VmbSplice) s = vmb_splice_new(NULL, NULL);
    Results r = { 0 };
    unsigned port = 0;
    int lfd = listener(&port);
    gint64 start = g_get_monotonic_time();

    results_init(&r);
    /* Twelve viewers of a listener that never accepts: the waiting ones fail when their
     * wait is over, not one handshake timeout after another. */
    for (unsigned i = 0; i < 12; i++)
        g_assert_true(vmb_splice_connect(s, "127.0.0.1", port, KEY, NULL, 400, 400,
                                         on_connect, &r, NULL));
    results_wait(&r, 12, 10);
    g_assert_cmpuint(r.failed, ==, 12);
    g_assert_cmpint(r.last_failure_us - start, >=, 400 * 1000);
    g_assert_cmpint(r.last_failure_us - start, <, 2 * G_USEC_PER_SEC);
    close(lfd);
    results_clear(&r);
}

static void
test_the_queue_is_bounded_and_shutdown_ends_it(void)
{
    VmbSplice *s = vmb_splice_new(NULL, NULL);
    Results r = { 0 };
    unsigned port = 0;
    int lfd = listener(&port);
    unsigned n = VMB_SPLICE_CONNECT_QUEUE + 1 + 5;

    results_init(&r);
    /* One in flight, VMB_SPLICE_CONNECT_QUEUE waiting, five refused at once. */
    for (unsigned i = 0; i < n; i++)
        g_assert_true(vmb_splice_connect(s, "127.0.0.1", port, KEY, NULL, 60000, 60000,
                                         on_connect, &r, NULL));
    results_wait(&r, 5, 10);
    g_assert_cmpuint(r.too_many, ==, 5);
    g_assert_cmpuint(r.failed, ==, 0);
    /* Freeing the engine ends the others, each once. */
    vmb_splice_free(s);
    g_assert_cmpuint(r.failed, ==, n - 5);
    g_assert_cmpuint(r.ok, ==, 0);
    close(lfd);
    results_clear(&r);
}

static void
test_a_refused_connect_fails_at_once(void)
{
    g_autoptr(VmbSplice) s = vmb_splice_new(NULL, NULL);
    g_autoptr(GError) error = NULL;
    Results r = { 0 };
    unsigned port = 0;
    int lfd = listener(&port);

    results_init(&r);
    close(lfd); /* nothing listens there now */
    g_assert_true(vmb_splice_connect(s, "127.0.0.1", port, KEY, NULL, 10000, 10000,
                                     on_connect, &r, NULL));
    results_wait(&r, 1, 5);
    g_assert_cmpuint(r.failed, ==, 1);
    g_assert_false(vmb_splice_connect(s, "127.0.0.1", port, "not a key", NULL, 10000, 10000,
                                      on_connect, &r, &error));
    g_assert_error(error, VMB_ERROR, VMB_ERROR_INVALID);
    results_clear(&r);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/splice-connect/one-at-a-time",
                    test_connects_to_one_listener_go_one_at_a_time);
    g_test_add_func("/splice-connect/never-answers",
                    test_a_listener_that_never_answers_costs_its_deadline);
    g_test_add_func("/splice-connect/bounded-queue",
                    test_the_queue_is_bounded_and_shutdown_ends_it);
    g_test_add_func("/splice-connect/refused", test_a_refused_connect_fails_at_once);
    return g_test_run();
}
