// SPDX-License-Identifier: LGPL-2.1-or-later
// The upstream websocket handshake reader (broker/console/vmb-wsupstream.c) against a
// loopback "QEMU" that answers the upgrade request with the fuzz input and closes: the real
// connect, send, bounded read and response parsing, nothing replaced.
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <glib.h>

#include "fuzz.h"
#include "vmb-wsupstream.h"

static int listen_fd = -1;
static unsigned listen_port;
static GAsyncQueue *answers;   /* GBytes the server sends, one per connection */

static gpointer
server_main(gpointer unused)
{
    for (;;) {
        g_autoptr(GBytes) answer = g_async_queue_pop(answers);
        const guint8 *p;
        gsize len;
        char sink[4096];
        int fd = accept(listen_fd, NULL, NULL);

        if (fd < 0)
            continue;
        p = g_bytes_get_data(answer, &len);
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
    answers = g_async_queue_new_full((GDestroyNotify) g_bytes_unref);
    g_thread_unref(g_thread_new("fuzz-qemu", server_main, NULL));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_auto(VmbWsUpstream) u = VMB_WSUPSTREAM_INIT;
    g_autoptr(GError) error = NULL;
    /* The first byte says whether the browser offered a protocol. */
    const char *protocol = size && (data[0] & 1) ? "binary" : NULL;

    if (listen_fd < 0)
        start_server();
    g_async_queue_push(answers, g_bytes_new(data, size));
    if (vmb_wsupstream_connect("127.0.0.1", listen_port, NULL, "dGhlIHNhbXBsZSBub25jZQ==",
                               protocol, 5000, &u, &error)) {
        g_assert(u.fd >= 0 && u.accept && u.leftover);
        g_assert(!u.protocol || protocol);
        g_assert(g_bytes_get_size(u.leftover) < size);
    }
    return 0;
}
