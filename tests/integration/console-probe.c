// SPDX-License-Identifier: LGPL-2.1-or-later
// A browser's console connection, for the black-box tests: opens the broker's console
// websocket, and with a password goes through RFB's VNC authentication to a framebuffer
// update. Prints one JSON object with what happened; exits 0 unless it could not run.
//   console-probe HOST PORT PATH ORIGIN|- [PASSWORD] [HOLD_SECONDS]
// With HOLD_SECONDS it keeps the connection open that long, or until the broker closes it
// ("peer_closed": true).
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "console-client.h"

static int
connect_to(const char *host, const char *port)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
    int fd;

    if (getaddrinfo(host, port, &hints, &ai) != 0)
        return -1;
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

/* Keeps the connection open for up to @seconds, discarding what arrives; true when the
 * broker closed it first. */
static bool
hold_open(int fd, unsigned seconds)
{
    gint64 end = g_get_monotonic_time() + (gint64) seconds * G_USEC_PER_SEC;
    char buf[65536];

    for (;;) {
        gint64 left_ms = (end - g_get_monotonic_time()) / 1000;
        struct pollfd p = { .fd = fd, .events = POLLIN };

        if (left_ms <= 0)
            return false;
        if (poll(&p, 1, (int) left_ms) > 0 && read(fd, buf, sizeof(buf)) <= 0)
            return true;
    }
}

int
main(int argc, char **argv)
{
    g_autofree char *key = ws_random_key();
    g_autofree char *want_accept = ws_expected_accept(key);
    g_autoptr(GString) req = g_string_new(NULL);
    g_autoptr(GString) head = g_string_new(NULL);
    g_autoptr(GError) error = NULL;
    const char *password = argc > 5 ? argv[5] : NULL;
    unsigned hold = argc > 6 ? (unsigned) g_ascii_strtoull(argv[6], NULL, 10) : 0;
    unsigned status = 0;
    const char *accept_ok = "false";
    WsClient ws;
    RfbServerInit si = { 0 };
    guint64 pixels = 0;
    bool peer_closed = false;
    char version[13] = "";
    int fd;

    if (argc < 5) {
        fprintf(stderr, "usage: console-probe HOST PORT PATH ORIGIN|- [PASSWORD] [HOLD_S]\n");
        return 2;
    }
    fd = connect_to(argv[1], argv[2]);
    if (fd < 0) {
        fprintf(stderr, "console-probe: cannot connect\n");
        return 1;
    }
    g_string_append_printf(req, "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                           "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n",
                           argv[3], argv[1], argv[2], key);
    if (strcmp(argv[4], "-") != 0)
        g_string_append_printf(req, "Origin: %s\r\n", argv[4]);
    g_string_append(req, "\r\n");
    if (write(fd, req->str, req->len) != (ssize_t) req->len)
        return 1;
    /* Read the answer's head byte by byte, so nothing past it is consumed. */
    while (!g_str_has_suffix(head->str, "\r\n\r\n") && head->len < 16384) {
        char c;
        if (read(fd, &c, 1) != 1)
            break;
        g_string_append_c(head, c);
    }
    sscanf(head->str, "HTTP/1.1 %u", &status);
    if (status == 101) {
        g_autofree char *needle = g_strdup_printf("Sec-WebSocket-Accept: %s\r\n", want_accept);
        accept_ok = strstr(head->str, needle) ? "true" : "false";
        ws_client_init(&ws, fd);
        if (password) {
            /* An update may carry only a DesktopSize change (the guest switched modes while
             * booting): then ask again for the whole screen at its new size. */
            if (rfb_handshake(&ws, password, &si, &error) && rfb_set_encodings(&ws, &error))
                for (int i = 0; i < 100 && pixels != (guint64) si.width * si.height *
                                                     (si.bits_per_pixel / 8); i++)
                    if (!rfb_request_update(&ws, &si, false, &error) ||
                        !rfb_read_update(&ws, &si, &pixels, &error))
                        break;
            g_strlcpy(version, "RFB 003.008", sizeof(version));
        } else if (ws_recv(&ws, version, 12, &error)) {
            version[11] = '\0'; /* drop the newline */
        }
        if (hold) {
            /* The test waits for this line: from now on a close is the peer's doing. */
            fputs("holding\n", stderr);
            fflush(stderr);
            peer_closed = hold_open(fd, hold);
        }
    }
    printf("{\"status\": %u, \"accept_ok\": %s, \"rfb\": \"%s\", \"width\": %u, "
           "\"height\": %u, \"update_bytes\": %" G_GUINT64_FORMAT ", \"peer_closed\": %s, "
           "\"error\": \"%s\"}\n",
           status, accept_ok, version, si.width, si.height, pixels,
           peer_closed ? "true" : "false",
           error ? g_strescape(error->message, NULL) : "");
    close(fd);
    return 0;
}
