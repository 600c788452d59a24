// SPDX-License-Identifier: LGPL-2.1-or-later
// The upstream websocket handshake reader against a loopback "QEMU" that answers the upgrade
// request with the fuzz input (all but its first byte) and closes: the real connect, send,
// bounded read and response parsing, nothing replaced. The first byte's second bit picks
// the path: the blocking
// vmb_wsupstream_connect() (broker/console/vmb-wsupstream.c), or the splice engine's event
// loop (vmb_splice_connect(), broker/console/vmb-splice-connect.c), which the broker uses.
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <glib.h>

#include "fuzz.h"
#include "vmb-splice.h"
#include "vmb-wsupstream.h"

static int listen_fd = -1;
static unsigned listen_port;
/* What the server sends to each connection it accepts: this execution's answer. A connection
 * the server accepts late (its client gave up) gets a newer answer nobody reads, so a lost
 * connection cannot put the answers out of step with their executions. */
static GMutex answer_lock;
static GBytes *answer;
static VmbSplice *engine;

/* What the engine's connect ended with. */
typedef struct {
    const char *protocol;   /* what the browser offered */
    size_t answer_size;     /* what the server sent */
    GMutex lock;
    GCond cond;
    bool ended;
    bool connected;
} Result;

static gpointer
server_main(gpointer unused)
{
    for (;;) {
        g_autoptr(GBytes) sent = NULL;
        const guint8 *p;
        gsize len;
        char sink[4096];
        int fd = accept(listen_fd, NULL, NULL);

        if (fd < 0)
            continue;
        g_mutex_lock(&answer_lock);
        sent = g_bytes_ref(answer);
        g_mutex_unlock(&answer_lock);
        p = g_bytes_get_data(sent, &len);
        while (len > 0) {
            ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
            if (n <= 0)
                break;
            p += n;
            len -= (size_t) n;
        }
        shutdown(fd, SHUT_WR);
        while (recv(fd, sink, sizeof(sink), 0) > 0)
            ;
        close(fd);
    }
    return NULL;
}

static void
start_server(void)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t alen = sizeof(a);

    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert(listen_fd >= 0);
    g_assert(bind(listen_fd, (struct sockaddr *) &a, sizeof(a)) == 0);
    g_assert(listen(listen_fd, 4) == 0);
    g_assert(getsockname(listen_fd, (struct sockaddr *) &a, &alen) == 0);
    listen_port = ntohs(a.sin_port);
    g_thread_unref(g_thread_new("fuzz-qemu", server_main, NULL));
}

/* Engine thread: checks a connection as the blocking path does, then lets it go. */
static void
on_connected(VmbWsUpstream *up, const GError *error, void *data)
{
    Result *r = data;

    if (up) {
        g_assert(up->fd >= 0 && up->accept && up->leftover);
        g_assert(!up->protocol || r->protocol);
        g_assert(g_bytes_get_size(up->leftover) < r->answer_size);
        vmb_wsupstream_clear(up);
    } else
        g_assert(error);
    g_mutex_lock(&r->lock);
    r->ended = true;
    r->connected = up != NULL;
    g_cond_signal(&r->cond);
    g_mutex_unlock(&r->lock);
}

static bool
connect_by_engine(const char *protocol, size_t answer_size)
{
    Result r = { .protocol = protocol, .answer_size = answer_size };
    g_autoptr(GError) error = NULL;
    bool connected;

    if (!engine) {
        engine = vmb_splice_new(NULL, &error);
        g_assert(engine);
    }
    g_mutex_init(&r.lock);
    g_cond_init(&r.cond);
    g_assert(vmb_splice_connect(engine, "127.0.0.1", listen_port, "dGhlIHNhbXBsZSBub25jZQ==",
                                protocol, 5000, 5000, on_connected, &r, &error));
    g_mutex_lock(&r.lock);
    while (!r.ended)
        g_cond_wait(&r.cond, &r.lock);
    connected = r.connected;
    g_mutex_unlock(&r.lock);
    g_cond_clear(&r.cond);
    g_mutex_clear(&r.lock);
    return connected;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_auto(VmbWsUpstream) u = VMB_WSUPSTREAM_INIT;
    g_autoptr(GError) error = NULL;
    const char *protocol;

    /* The first byte says whether the browser offered a protocol, and which path runs. */
    if (size < 1)
        return 0;
    protocol = data[0] & 1 ? "binary" : NULL;
    if (listen_fd < 0)
        start_server();
    g_mutex_lock(&answer_lock);
    g_clear_pointer(&answer, g_bytes_unref);
    answer = g_bytes_new(data + 1, size - 1);
    g_mutex_unlock(&answer_lock);
    if (data[0] & 2) {
        connect_by_engine(protocol, size - 1);
        return 0;
    }
    if (vmb_wsupstream_connect("127.0.0.1", listen_port, NULL, "dGhlIHNhbXBsZSBub25jZQ==",
                               protocol, 5000, &u, &error)) {
        g_assert(u.fd >= 0 && u.accept && u.leftover);
        g_assert(!u.protocol || protocol);
        g_assert(g_bytes_get_size(u.leftover) < size - 1);
    }
    return 0;
}
