// SPDX-License-Identifier: LGPL-2.1-or-later
// Opens the websocket connection to QEMU on behalf of a browser: non-blocking connect, the
// HTTP upgrade request with the browser's key, and a bounded read of QEMU's 101 reply.
#include "vmb-wsupstream.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmb-error.h"

/* Longest Host or Sec-WebSocket-Protocol value we put into a request. */
#define MAX_HEADER_VALUE 1024

static const char base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/**
 * vmb_wsupstream_key_valid:
 * @key: (nullable): a Sec-WebSocket-Key as the browser sent it
 *
 * RFC 6455 keys are 16 random bytes in base64: 22 alphabet characters and "==". Checked
 * before connecting, so that nothing malformed reaches QEMU or our request line.
 *
 * Returns: true when @key has that shape.
 */
bool
vmb_wsupstream_key_valid(const char *key)
{
    if (!key || strlen(key) != 24)
        return false;
    return strspn(key, base64_alphabet) == 22 && strcmp(key + 22, "==") == 0;
}

/* A value we copy into a header line: printable ASCII only, so no CR/LF can split it. */
static bool
header_value_valid(const char *value)
{
    size_t len = strlen(value);

    if (len == 0 || len > MAX_HEADER_VALUE)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) value[i] < 0x20 || (unsigned char) value[i] > 0x7e)
            return false;
    return true;
}

/* Milliseconds left until @deadline_us (monotonic), 0 when past. */
static int
ms_left(gint64 deadline_us)
{
    gint64 left = deadline_us - g_get_monotonic_time();

    if (left <= 0)
        return 0;
    return (int) MIN((left + 999) / 1000, G_MAXINT);
}

/* Waits for @events on @fd until @deadline_us; false with an error on timeout. */
static bool
wait_fd(int fd, short events, gint64 deadline_us, const char *what, GError **error)
{
    for (;;) {
        struct pollfd p = { .fd = fd, .events = events };
        int ms = ms_left(deadline_us);
        int n;

        if (ms == 0) {
            g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE,
                        "console upstream: timed out %s", what);
            return false;
        }
        n = poll(&p, 1, ms);
        if (n > 0)
            return true;
        if (n < 0 && errno != EINTR) {
            g_set_error(error, VMB_ERROR, VMB_ERROR_INTERNAL, "poll: %s", g_strerror(errno));
            return false;
        }
    }
}

/**
 * vmb_wsupstream_socket:
 * @addr: numeric IPv4 or IPv6 address ("::1" or "[::1]")
 * @port: its port
 * @ret_in_progress: (out): true when the connect goes on (wait for POLLOUT, then SO_ERROR)
 * @error: return location for an error
 *
 * Starts connecting a non-blocking, close-on-exec socket. Numeric addresses only: a DNS
 * lookup would block the caller.
 *
 * Returns: the socket, or -1.
 */
int
vmb_wsupstream_socket(const char *addr, unsigned port, bool *ret_in_progress, GError **error)
{
    struct addrinfo hints = {
        .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
    };
    struct addrinfo *ai = NULL;
    g_autofree char *host = NULL;
    char service[16];
    int fd, rc;

    /* "[::1]" as libvirt and URLs write IPv6 addresses. */
    if (addr[0] == '[' && g_str_has_suffix(addr, "]"))
        host = g_strndup(addr + 1, strlen(addr) - 2);
    else
        host = g_strdup(addr);
    g_snprintf(service, sizeof(service), "%u", port);
    rc = getaddrinfo(host, service, &hints, &ai);
    if (rc != 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID, "console upstream address '%s': %s",
                    addr, gai_strerror(rc));
        return -1;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INTERNAL, "socket: %s", g_strerror(errno));
        freeaddrinfo(ai);
        return -1;
    }
    rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    if (rc < 0 && errno != EINPROGRESS && errno != EINTR) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE, "console upstream %s:%u: %s",
                    addr, port, g_strerror(errno));
        close(fd);
        return -1;
    }
    *ret_in_progress = rc < 0;
    return fd;
}

/**
 * vmb_wsupstream_connected:
 * @fd: a socket from vmb_wsupstream_socket() that became writable
 * @error: return location for an error
 *
 * Returns: true when its connect succeeded.
 */
bool
vmb_wsupstream_connected(int fd, GError **error)
{
    int soerr = 0;
    socklen_t len = sizeof(soerr);

    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        soerr = errno;
    if (soerr != 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE, "console upstream: connect: %s",
                    g_strerror(soerr));
        return false;
    }
    return true;
}

/* Connects to @addr:@port by @deadline_us, blocking the caller. */
static int
connect_numeric(const char *addr, unsigned port, gint64 deadline_us, GError **error)
{
    bool in_progress = false;
    int fd = vmb_wsupstream_socket(addr, port, &in_progress, error);

    if (fd < 0 || !in_progress)
        return fd;
    if (!wait_fd(fd, POLLOUT, deadline_us, "connecting", error) ||
        !vmb_wsupstream_connected(fd, error)) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool
send_all(int fd, const char *data, size_t len, gint64 deadline_us, GError **error)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = send(fd, data + done, len - done, MSG_NOSIGNAL);
        if (n >= 0) {
            done += (size_t) n;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN) {
            g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE,
                        "console upstream: sending the upgrade request: %s", g_strerror(errno));
            return false;
        }
        if (!wait_fd(fd, POLLOUT, deadline_us, "sending the upgrade request", error))
            return false;
    }
    return true;
}

/* Position just after the CRLFCRLF ending the headers in @buf, or 0 when not there yet. */
static size_t
headers_end(const guint8 *buf, size_t len)
{
    for (size_t i = 0; i + 4 <= len; i++)
        if (memcmp(buf + i, "\r\n\r\n", 4) == 0)
            return i + 4;
    return 0;
}

/* Checks "HTTP/1.x 101 ..." and collects the two headers we relay. */
static bool
parse_response(const char *head, char **ret_accept, char **ret_protocol, GError **error)
{
    g_auto(GStrv) lines = g_strsplit(head, "\r\n", -1);
    g_autofree char *accept = NULL;
    g_autofree char *protocol = NULL;
    /* An answer that starts with its blank line has no status line: g_strsplit("") is {}. */
    const char *status = lines[0] ? lines[0] : "";

    if (!g_str_has_prefix(status, "HTTP/1.") || strlen(status) < 12 || status[8] != ' ' ||
        strncmp(status + 9, "101", 3) != 0 || (status[12] != ' ' && status[12] != '\0')) {
        g_autofree char *shown = g_strndup(status, 80);
        g_autofree char *escaped = g_strescape(shown, NULL);
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE,
                    "console upstream refused the upgrade: '%s'", escaped);
        return false;
    }
    for (size_t i = 1; lines[0] && lines[i]; i++) {
        const char *colon = strchr(lines[i], ':');
        g_autofree char *name = NULL;
        g_autofree char *value = NULL;
        char **slot = NULL;

        if (!colon)
            continue;
        name = g_strstrip(g_strndup(lines[i], (gsize) (colon - lines[i])));
        value = g_strstrip(g_strdup(colon + 1));
        if (g_ascii_strcasecmp(name, "Sec-WebSocket-Accept") == 0)
            slot = &accept;
        else if (g_ascii_strcasecmp(name, "Sec-WebSocket-Protocol") == 0)
            slot = &protocol;
        else
            continue;
        /* These values go into our own response: no duplicates, no control bytes. */
        if (*slot || !header_value_valid(value)) {
            g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE,
                        "console upstream sent a bad or repeated %s header", name);
            return false;
        }
        *slot = g_steal_pointer(&value);
    }
    if (!accept) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE,
                    "console upstream sent no Sec-WebSocket-Accept");
        return false;
    }
    *ret_accept = g_steal_pointer(&accept);
    *ret_protocol = g_steal_pointer(&protocol);
    return true;
}

/**
 * vmb_wsupstream_request:
 * @addr: QEMU's websocket address, numeric
 * @port: its port
 * @host_header: (nullable): value of the Host header; NULL for "@addr:@port"
 * @ws_key: the browser's Sec-WebSocket-Key, forwarded unchanged
 * @ws_protocol: (nullable): the browser's Sec-WebSocket-Protocol, forwarded unchanged
 * @error: return location for an error
 *
 * Returns: (transfer full): the upgrade request to send to QEMU, or NULL with
 * VMB_ERROR_INVALID for a malformed key, protocol, Host or port.
 */
GString *
vmb_wsupstream_request(const char *addr, unsigned port, const char *host_header,
                       const char *ws_key, const char *ws_protocol, GError **error)
{
    g_autofree char *default_host = NULL;
    GString *req;

    if (!vmb_wsupstream_key_valid(ws_key)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID, "malformed Sec-WebSocket-Key");
        return NULL;
    }
    if (ws_protocol && !header_value_valid(ws_protocol)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID, "malformed Sec-WebSocket-Protocol");
        return NULL;
    }
    if (port == 0 || port > 65535) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID, "console upstream port %u", port);
        return NULL;
    }
    if (!host_header) {
        bool v6 = strchr(addr, ':') && addr[0] != '[';
        default_host = g_strdup_printf(v6 ? "[%s]:%u" : "%s:%u", addr, port);
        host_header = default_host;
    }
    if (!header_value_valid(host_header)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID, "malformed Host header value");
        return NULL;
    }
    req = g_string_sized_new(256);
    g_string_append_printf(req,
                           "GET / HTTP/1.1\r\n"
                           "Host: %s\r\n"
                           "Upgrade: websocket\r\n"
                           "Connection: Upgrade\r\n"
                           "Sec-WebSocket-Key: %s\r\n"
                           "Sec-WebSocket-Version: 13\r\n",
                           host_header, ws_key);
    if (ws_protocol)
        g_string_append_printf(req, "Sec-WebSocket-Protocol: %s\r\n", ws_protocol);
    g_string_append(req, "\r\n");
    return req;
}

/**
 * vmb_wsupstream_response:
 * @resp: what QEMU sent so far
 * @new_bytes: how many of them the last read added
 * @ws_protocol: (nullable): the protocol the browser offered
 * @ret: (out): accept, protocol and leftover, set when complete (fd untouched)
 * @error: return location for an error
 *
 * Parses QEMU's answer once its headers are complete: fed after every read.
 *
 * Returns: 1 when @ret is filled, 0 when more bytes are needed, -1 on error (a refusal, a
 * malformed answer, or headers past VMB_WSUPSTREAM_MAX_HEADERS).
 */
int
vmb_wsupstream_response(const GByteArray *resp, size_t new_bytes, const char *ws_protocol,
                        VmbWsUpstream *ret, GError **error)
{
    /* Only the new bytes and the three before them can complete the terminator. */
    size_t from = resp->len - new_bytes >= 3 ? resp->len - new_bytes - 3 : 0;
    size_t end = headers_end(resp->data + from, resp->len - from);
    g_autofree char *head = NULL;
    g_autofree char *accept = NULL;
    g_autofree char *protocol = NULL;

    if (!end) {
        if (resp->len < VMB_WSUPSTREAM_MAX_HEADERS)
            return 0;
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE,
                    "console upstream: response headers longer than %d bytes",
                    VMB_WSUPSTREAM_MAX_HEADERS);
        return -1;
    }
    end += from;
    /* The header block without its final CRLF pair; a NUL inside would end it early, which
     * can only lose headers, never invent one. */
    head = g_strndup((const char *) resp->data, end - 4);
    if (!parse_response(head, &accept, &protocol, error))
        return -1;
    ret->accept = g_steal_pointer(&accept);
    /* RFC 6455 makes a browser fail a connection whose server picked a protocol it never
     * offered, and QEMU always names "binary". */
    ret->protocol = ws_protocol ? g_steal_pointer(&protocol) : NULL;
    ret->leftover = g_bytes_new(resp->data + end, resp->len - end);
    return 1;
}

/* Reads until QEMU's answer is complete and fills @ret from it. */
static bool
read_response(int fd, gint64 deadline_us, const char *ws_protocol, VmbWsUpstream *ret,
              GError **error)
{
    g_autoptr(GByteArray) buf = g_byte_array_sized_new(1024);
    guint8 chunk[2048];

    for (;;) {
        size_t want = MIN(sizeof(chunk), VMB_WSUPSTREAM_MAX_HEADERS - buf->len);
        ssize_t n = recv(fd, chunk, want, 0);
        int done;

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            if (!wait_fd(fd, POLLIN, deadline_us, "waiting for the upgrade response", error))
                return false;
            continue;
        }
        if (n < 0) {
            g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE,
                        "console upstream: reading the upgrade response: %s", g_strerror(errno));
            return false;
        }
        if (n == 0) {
            g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE,
                        "console upstream closed the connection during the upgrade");
            return false;
        }
        g_byte_array_append(buf, chunk, (guint) n);
        done = vmb_wsupstream_response(buf, (size_t) n, ws_protocol, ret, error);
        if (done != 0)
            return done > 0;
    }
}

/**
 * vmb_wsupstream_connect:
 * @addr: numeric IPv4 or IPv6 address of QEMU's websocket listener ("::1" or "[::1]")
 * @port: its port
 * @host_header: (nullable): value of the Host header; NULL for "@addr:@port"
 * @ws_key: the browser's Sec-WebSocket-Key, forwarded unchanged
 * @ws_protocol: (nullable): the browser's Sec-WebSocket-Protocol, forwarded unchanged
 * @timeout_ms: bound on connecting, sending and reading the reply, all together
 * @ret: (out): the connection; set only on success (initialise with VMB_WSUPSTREAM_INIT)
 * @error: return location for an error
 *
 * Connects and performs the websocket upgrade with QEMU, reading at most
 * VMB_WSUPSTREAM_MAX_HEADERS bytes of response headers. The caller relays ret->accept (and
 * ret->protocol when not NULL) in its own 101 to the browser, sends ret->leftover to the
 * browser first, and then copies bytes both ways (vmb_splice_add()).
 *
 * ret->protocol is NULL when the browser offered no protocol even if QEMU names one:
 * RFC 6455 makes a browser fail a connection whose server picked a protocol it never offered,
 * and QEMU always names "binary".
 *
 * Errors: VMB_ERROR_INVALID for a malformed key, protocol, Host or address;
 * VMB_ERROR_UNAVAILABLE when QEMU does not answer in time, refuses, or answers anything but a
 * well-formed 101.
 *
 * Returns: true on success.
 */
bool
vmb_wsupstream_connect(const char *addr, unsigned port, const char *host_header,
                       const char *ws_key, const char *ws_protocol, unsigned timeout_ms,
                       VmbWsUpstream *ret, GError **error)
{
    gint64 deadline_us = g_get_monotonic_time() + (gint64) timeout_ms * 1000;
    g_auto(VmbWsUpstream) got = VMB_WSUPSTREAM_INIT;
    g_autoptr(GString) req = NULL;

    g_return_val_if_fail(addr && ret, false);

    req = vmb_wsupstream_request(addr, port, host_header, ws_key, ws_protocol, error);
    if (!req)
        return false;
    got.fd = connect_numeric(addr, port, deadline_us, error);
    if (got.fd < 0)
        return false;
    if (!send_all(got.fd, req->str, req->len, deadline_us, error) ||
        !read_response(got.fd, deadline_us, ws_protocol, &got, error))
        return false;
    *ret = got;
    got = (VmbWsUpstream) VMB_WSUPSTREAM_INIT;
    return true;
}

/**
 * vmb_wsupstream_clear:
 * @u: (nullable): a connection, from VMB_WSUPSTREAM_INIT or vmb_wsupstream_connect()
 *
 * Closes the socket unless it was taken (set u->fd to -1 after handing it on) and frees the
 * rest, leaving @u as VMB_WSUPSTREAM_INIT.
 */
void
vmb_wsupstream_clear(VmbWsUpstream *u)
{
    if (!u)
        return;
    if (u->fd >= 0)
        close(u->fd);
    u->fd = -1;
    g_clear_pointer(&u->accept, g_free);
    g_clear_pointer(&u->protocol, g_free);
    g_clear_pointer(&u->leftover, g_bytes_unref);
}
