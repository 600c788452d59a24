// SPDX-License-Identifier: LGPL-2.1-or-later
// The upstream websocket handshake of broker/util/vmb-wsupstream.c against a real loopback
// server thread that answers with fixed bytes (QEMU itself: tests/integration).
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test.h"
#include "vmb-error.h"
#include "vmb-wsupstream.h"

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="

typedef struct {
    int lfd;
    unsigned port;
    const char *response;   /* NULL: accept, read, never answer */
    size_t response_len;
    GString *request;       /* what the client sent, up to CRLFCRLF */
    bool close_after_response; /* close at once instead of waiting for the client's EOF */
    GThread *thread;
} Server;

static gpointer
server_main(gpointer data)
{
    Server *sv = data;
    int fd = accept4(sv->lfd, NULL, NULL, SOCK_CLOEXEC);
    char c;

    g_assert_cmpint(fd, >=, 0);
    while (!g_str_has_suffix(sv->request->str, "\r\n\r\n") && read(fd, &c, 1) == 1)
        g_string_append_c(sv->request, c);
    if (sv->response)
        g_assert_cmpint(write(fd, sv->response, sv->response_len), ==,
                        (ssize_t) sv->response_len);
    /* Hold the connection until the client is done with it. */
    while (!sv->close_after_response && read(fd, &c, 1) > 0)
        ;
    close(fd);
    return NULL;
}

/* Listens on @family's loopback; the server thread starts answering when started. */
static bool
server_listen(Server *sv, int family)
{
    struct sockaddr_storage ss = { .ss_family = (sa_family_t) family };
    socklen_t len = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);

    if (family == AF_INET)
        ((struct sockaddr_in *) &ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else
        ((struct sockaddr_in6 *) &ss)->sin6_addr = in6addr_loopback;
    sv->lfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sv->lfd < 0 || bind(sv->lfd, (struct sockaddr *) &ss, len) < 0) {
        if (sv->lfd >= 0)
            close(sv->lfd);
        return false;
    }
    g_assert_cmpint(listen(sv->lfd, 4), ==, 0);
    g_assert_cmpint(getsockname(sv->lfd, (struct sockaddr *) &ss, &len), ==, 0);
    sv->port = ntohs(family == AF_INET ? ((struct sockaddr_in *) &ss)->sin_port
                                       : ((struct sockaddr_in6 *) &ss)->sin6_port);
    sv->request = g_string_new(NULL);
    return true;
}

static void
server_start(Server *sv, int family, const char *response, size_t len)
{
    g_assert_true(server_listen(sv, family));
    sv->response = response;
    sv->response_len = len;
    sv->thread = g_thread_new("server", server_main, sv);
}

static void
server_stop(Server *sv)
{
    g_thread_join(sv->thread);
    close(sv->lfd);
    g_string_free(sv->request, TRUE);
}

#define OK_101                                                                             \
    "HTTP/1.1 101 Switching Protocols\r\n"                                               \
    "Upgrade: websocket\r\n"                                                             \
    "Connection: Upgrade\r\n"                                                            \
    "sec-websocket-accept:   s3pPLMBiTxaQ9kYGzzhZRbK+xOo=  \r\n"                         \
    "Sec-WebSocket-Protocol: binary\r\n"                                                 \
    "\r\n"

TEST(key_shape)
{
    g_assert_true(vmb_wsupstream_key_valid(KEY));
    g_assert_false(vmb_wsupstream_key_valid(NULL));
    g_assert_false(vmb_wsupstream_key_valid(""));
    g_assert_false(vmb_wsupstream_key_valid("dGhlIHNhbXBsZSBub25jZQ="));   /* 23 */
    g_assert_false(vmb_wsupstream_key_valid("dGhlIHNhbXBsZSBub25jZQ=A"));  /* padding */
    g_assert_false(vmb_wsupstream_key_valid("dGhlIHNhbXBsZSBub25j\r\n=="));
    g_assert_false(vmb_wsupstream_key_valid("dGhlIHNhbXBsZSBub25jZQ==x"));
}

TEST(bad_input_is_invalid_before_connecting)
{
    g_auto(VmbWsUpstream) u = VMB_WSUPSTREAM_INIT;
    g_autoptr(GError) e1 = NULL;
    g_autoptr(GError) e2 = NULL;
    g_autoptr(GError) e3 = NULL;
    g_autoptr(GError) e4 = NULL;

    /* Port 1 on loopback has no listener; INVALID shows nothing was tried. */
    g_assert_false(vmb_wsupstream_connect("127.0.0.1", 1, NULL, "short", NULL, 1000, &u, &e1));
    g_assert_error(e1, VMB_ERROR, VMB_ERROR_INVALID);
    g_assert_false(vmb_wsupstream_connect("127.0.0.1", 1, NULL, KEY, "binary\r\nX-Evil: 1", 1000,
                                          &u, &e2));
    g_assert_error(e2, VMB_ERROR, VMB_ERROR_INVALID);
    g_assert_false(vmb_wsupstream_connect("qemu.example", 1, NULL, KEY, NULL, 1000, &u, &e3));
    g_assert_error(e3, VMB_ERROR, VMB_ERROR_INVALID);
    g_assert_false(vmb_wsupstream_connect("127.0.0.1", 1, "a\nb", KEY, NULL, 1000, &u, &e4));
    g_assert_error(e4, VMB_ERROR, VMB_ERROR_INVALID);
    g_assert_cmpint(u.fd, ==, -1);
}

TEST(refused_is_unavailable)
{
    Server sv = { 0 };
    g_auto(VmbWsUpstream) u = VMB_WSUPSTREAM_INIT;
    g_autoptr(GError) error = NULL;
    unsigned port;

    /* A port that was just free and is closed again: nothing listens there. */
    g_assert_true(server_listen(&sv, AF_INET));
    port = sv.port;
    close(sv.lfd);
    g_string_free(sv.request, TRUE);
    g_assert_false(vmb_wsupstream_connect("127.0.0.1", port, NULL, KEY, NULL, 2000, &u, &error));
    g_assert_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE);
    g_assert_cmpint(u.fd, ==, -1);
}

TEST(silent_upstream_times_out)
{
    Server sv = { 0 };
    g_auto(VmbWsUpstream) u = VMB_WSUPSTREAM_INIT;
    g_autoptr(GError) error = NULL;

    /* Listening but never answering: the backlog accepts the connection, no 101 comes. */
    g_assert_true(server_listen(&sv, AF_INET));
    g_assert_false(vmb_wsupstream_connect("127.0.0.1", sv.port, NULL, KEY, NULL, 200, &u, &error));
    g_assert_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE);
    g_assert_nonnull(strstr(error->message, "timed out"));
    close(sv.lfd);
    g_string_free(sv.request, TRUE);
}

static void
check_handshake(int family, const char *addr)
{
    static const char response[] = OK_101 "RFB 003.008\n";
    Server sv = { 0 };
    g_auto(VmbWsUpstream) u = VMB_WSUPSTREAM_INIT;
    g_autoptr(GError) error = NULL;
    g_autofree char *host = NULL;
    gsize len;
    const char *left;

    if (!server_listen(&sv, family)) {
        fprintf(stderr, "no %s loopback here, case skipped\n", addr);
        return;
    }
    sv.response = response;
    sv.response_len = sizeof(response) - 1;
    sv.thread = g_thread_new("server", server_main, &sv);
    g_assert_true(vmb_wsupstream_connect(addr, sv.port, NULL, KEY, "binary, base64", 5000, &u,
                                         &error));
    g_assert_no_error(error);
    g_assert_cmpint(u.fd, >=, 0);
    g_assert_cmpint(fcntl(u.fd, F_GETFD) & FD_CLOEXEC, !=, 0);
    g_assert_cmpint(fcntl(u.fd, F_GETFL) & O_NONBLOCK, !=, 0);
    g_assert_cmpstr(u.accept, ==, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    g_assert_cmpstr(u.protocol, ==, "binary");
    left = g_bytes_get_data(u.leftover, &len);
    g_assert_cmpmem(left, len, "RFB 003.008\n", 12);

    g_assert_true(g_str_has_prefix(sv.request->str, "GET / HTTP/1.1\r\n"));
    host = g_strdup_printf(family == AF_INET ? "\r\nHost: %s:%u\r\n" : "\r\nHost: [%s]:%u\r\n",
                           addr, sv.port);
    g_assert_nonnull(strstr(sv.request->str, host));
    g_assert_nonnull(strstr(sv.request->str, "\r\nUpgrade: websocket\r\n"));
    g_assert_nonnull(strstr(sv.request->str, "\r\nConnection: Upgrade\r\n"));
    g_assert_nonnull(strstr(sv.request->str, "\r\nSec-WebSocket-Key: " KEY "\r\n"));
    g_assert_nonnull(strstr(sv.request->str, "\r\nSec-WebSocket-Version: 13\r\n"));
    g_assert_nonnull(strstr(sv.request->str, "\r\nSec-WebSocket-Protocol: binary, base64\r\n"));
    vmb_wsupstream_clear(&u);   /* closes: the server thread sees EOF and ends */
    server_stop(&sv);
}

TEST(handshake_ipv4)
{
    check_handshake(AF_INET, "127.0.0.1");
}

TEST(handshake_ipv6)
{
    check_handshake(AF_INET6, "::1");
}

TEST(protocol_not_offered_is_not_relayed)
{
    Server sv = { 0 };
    g_auto(VmbWsUpstream) u = VMB_WSUPSTREAM_INIT;
    g_autoptr(GError) error = NULL;

    server_start(&sv, AF_INET, OK_101, strlen(OK_101));
    g_assert_true(vmb_wsupstream_connect("127.0.0.1", sv.port, "vm.example:443", KEY, NULL, 5000,
                                         &u, &error));
    g_assert_nonnull(strstr(sv.request->str, "\r\nHost: vm.example:443\r\n"));
    g_assert_null(strstr(sv.request->str, "Protocol"));
    g_assert_cmpstr(u.accept, ==, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    g_assert_null(u.protocol);
    g_assert_cmpuint(g_bytes_get_size(u.leftover), ==, 0);
    vmb_wsupstream_clear(&u);
    server_stop(&sv);
}

static void
check_rejected(const char *response, size_t len, const char *message_part)
{
    Server sv = { 0 };
    g_auto(VmbWsUpstream) u = VMB_WSUPSTREAM_INIT;
    g_autoptr(GError) error = NULL;

    server_start(&sv, AF_INET, response, len);
    g_assert_false(vmb_wsupstream_connect("127.0.0.1", sv.port, NULL, KEY, NULL, 5000, &u,
                                          &error));
    g_assert_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE);
    g_assert_nonnull(strstr(error->message, message_part));
    g_assert_cmpint(u.fd, ==, -1);
    server_stop(&sv);
}

TEST(upstream_refusals_are_unavailable)
{
    static const char not_101[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    static const char no_accept[] =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
    static const char injected[] = "HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: a\x01" "b\r\n\r\n";
    static const char twice[] = "HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: a\r\n"
                                "Sec-WebSocket-Accept: b\r\n\r\n";
    static const char status_1010[] = "HTTP/1.1 1010 X\r\nSec-WebSocket-Accept: a\r\n\r\n";
    g_autoptr(GString) huge = g_string_new("HTTP/1.1 101 Switching Protocols\r\n");

    check_rejected(not_101, sizeof(not_101) - 1, "400 Bad Request");
    check_rejected(no_accept, sizeof(no_accept) - 1, "no Sec-WebSocket-Accept");
    check_rejected(injected, sizeof(injected) - 1, "bad or repeated");
    check_rejected(twice, sizeof(twice) - 1, "bad or repeated");
    check_rejected(status_1010, sizeof(status_1010) - 1, "refused");
    while (huge->len <= VMB_WSUPSTREAM_MAX_HEADERS)
        g_string_append(huge, "X-Padding: 0123456789012345678901234567890123456789\r\n");
    g_string_append(huge, "Sec-WebSocket-Accept: a\r\n\r\n");
    check_rejected(huge->str, huge->len, "longer than");
}

TEST(upstream_closing_early_is_unavailable)
{
    static const char cut[] = "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Acc";
    Server sv = { .close_after_response = true };
    g_auto(VmbWsUpstream) u = VMB_WSUPSTREAM_INIT;
    g_autoptr(GError) error = NULL;

    server_start(&sv, AF_INET, cut, sizeof(cut) - 1);
    g_assert_false(vmb_wsupstream_connect("127.0.0.1", sv.port, NULL, KEY, NULL, 5000, &u,
                                          &error));
    g_assert_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE);
    g_assert_nonnull(strstr(error->message, "closed the connection"));
    server_stop(&sv);
}

TEST_MAIN()
