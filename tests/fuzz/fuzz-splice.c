// SPDX-License-Identifier: LGPL-2.1-or-later
// The splice engine (broker/console/vmb-splice*.c) driven by random events on two real
// socketpairs: the input is a program of writes, reads, half-closes, closes and close-by-tag
// on the browser's and QEMU's far ends, paced by vmb_splice_sync() (the engine handles what
// is ready before the next step) and by bulk ticks brought forward (vmb_splice_step_tick()).
// The sockets' buffers are small, so a few writes fill them and the engine meets a full
// receiver often (and an input costs little).
// Whatever the order, each side receives a prefix of what the other sent, in order, and
// every pair ends exactly once, with its fds released. The engine is stepped: its loop runs
// on this thread, so a run does the same each time and a crash replays alone.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <glib.h>

#include "fuzz.h"
#include "vmb-splice.h"

static VmbSplice *engine;
static unsigned done_count;

static void
on_done(void *data)
{
    done_count++;
}

typedef struct {
    int fd;               /* our end; -1 once closed */
    GByteArray *sent;     /* what we wrote into it */
    GByteArray *got;      /* what we read from it */
} End;

static void
end_write(End *e, const uint8_t *p, size_t n)
{
    ssize_t w;

    if (e->fd < 0)
        return;
    w = send(e->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w > 0)
        g_byte_array_append(e->sent, p, (guint) w);
}

static void
end_read(End *e)
{
    uint8_t buf[8192];
    ssize_t n;

    if (e->fd < 0)
        return;
    n = recv(e->fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0)
        g_byte_array_append(e->got, buf, (guint) n);
}

static void
small_buffers(int fd)
{
    int size = 4096;

    g_assert(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)) == 0);
    g_assert(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size)) == 0);
}

/* What @to got must be a prefix of what @from sent (@first ahead of it, from the engine). */
static void
check_prefix(const End *from, const End *to, const char *first)
{
    size_t lead = first ? strlen(first) : 0;
    size_t got = to->got->len;

    /* (An empty GByteArray's data is NULL, which memcmp must not see.) */
    g_assert(got <= lead + from->sent->len);
    if (got && lead)
        g_assert(memcmp(to->got->data, first, MIN(got, lead)) == 0);
    if (got > lead)
        g_assert(memcmp(to->got->data + lead, from->sent->data, got - lead) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char first[] = "RFB 003.008\n";
    int browser[2], qemu[2];
    End b = { .sent = g_byte_array_new(), .got = g_byte_array_new() };
    End q = { .sent = g_byte_array_new(), .got = g_byte_array_new() };
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) lead = g_bytes_new_static(first, strlen(first));
    unsigned before;
    gint64 deadline;

    if (!engine) {
        signal(SIGPIPE, SIG_IGN);   /* the engine's loop runs here (its thread blocks it) */
        engine = vmb_splice_new(&(VmbSpliceOptions) { .buffer_size = 4096, .stepped = true },
                                &error);
        g_assert(engine);
    }
    g_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, browser) == 0);
    g_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, qemu) == 0);
    for (unsigned i = 0; i < 2; i++) {
        small_buffers(browser[i]);
        small_buffers(qemu[i]);
    }
    b.fd = browser[0];
    q.fd = qemu[0];
    before = done_count;
    g_assert(vmb_splice_add(engine, browser[1], qemu[1], lead, NULL, "fuzz", on_done,
                            GINT_TO_POINTER(browser[1]), &error));

    for (size_t i = 0; i < size; i++) {
        uint8_t op = data[i] & 7, arg = data[i] >> 3;
        const uint8_t *payload = data + i + 1;
        size_t n = MIN((size_t) arg * 97 + 1, size - i - 1);

        switch (op) {
        case 0: end_write(&b, payload, n); break;
        case 1: end_write(&q, payload, n); break;
        case 2: end_read(&b); break;
        case 3: end_read(&q); break;
        case 4: if (b.fd >= 0) shutdown(b.fd, arg & 1 ? SHUT_WR : SHUT_RD); break;
        case 5: if (q.fd >= 0) shutdown(q.fd, arg & 1 ? SHUT_WR : SHUT_RD); break;
        case 6:
            if (arg == 31)
                vmb_splice_step_tick(engine);
            else
                vmb_splice_sync(engine);
            break;
        case 7: if (arg == 0) vmb_splice_close_tag(engine, "fuzz", "fuzz"); break;
        }
    }
    end_read(&b);
    end_read(&q);
    check_prefix(&b, &q, NULL);
    check_prefix(&q, &b, first);

    /* Our ends go away: the engine must end the pair, once, and give the fds back. */
    close(b.fd);
    close(q.fd);
    deadline = g_get_monotonic_time() + 10 * G_TIME_SPAN_SECOND;
    while (done_count == before) {
        g_assert(g_get_monotonic_time() < deadline);
        vmb_splice_step(engine, 100);
    }
    g_assert_cmpuint(done_count, ==, before + 1);
    /* The engine's side of the browser socket is ours to close after done (as MHD's is). */
    close(browser[1]);
    g_byte_array_unref(b.sent);
    g_byte_array_unref(b.got);
    g_byte_array_unref(q.sent);
    g_byte_array_unref(q.got);
    return 0;
}
