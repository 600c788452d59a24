// SPDX-License-Identifier: LGPL-2.1-or-later
// The upstream half of a console: a TCP connection to QEMU's own websocket server, opened
// with the browser's Sec-WebSocket-Key so that QEMU's Sec-WebSocket-Accept can be relayed
// to the browser unchanged. No framing and no crypto here: bytes are spliced afterwards.
#pragma once

#include <stdbool.h>
#include <glib.h>

/* Longest response header block accepted from upstream, CRLFCRLF included. */
#define VMB_WSUPSTREAM_MAX_HEADERS 8192

typedef struct {
    int fd;            /* connected socket, non-blocking and close-on-exec; -1 when none */
    char *accept;      /* upstream's Sec-WebSocket-Accept, to send to the browser as is */
    char *protocol;    /* upstream's Sec-WebSocket-Protocol; NULL when none or not asked for */
    GBytes *leftover;  /* bytes upstream sent after its headers (maybe "RFB 003.008\n"): send
                        * them to the browser before anything else; never NULL, maybe empty */
} VmbWsUpstream;

/* Initialiser for a VmbWsUpstream that owns nothing (fd -1, not 0):
 *   g_auto(VmbWsUpstream) u = VMB_WSUPSTREAM_INIT; */
#define VMB_WSUPSTREAM_INIT { .fd = -1 }

/* True when @key has the shape of a Sec-WebSocket-Key: 16 bytes in base64, 24 characters. */
bool vmb_wsupstream_key_valid(const char *key);

bool vmb_wsupstream_connect(const char *addr, unsigned port, const char *host_header,
                            const char *ws_key, const char *ws_protocol, unsigned timeout_ms,
                            VmbWsUpstream *ret, GError **error);

/* The pieces of vmb_wsupstream_connect() for an event loop (the relay's connect queue):
 * start the connect, check it once writable, build the request, parse the answer. */
int vmb_wsupstream_socket(const char *addr, unsigned port, bool *ret_in_progress,
                          GError **error);
bool vmb_wsupstream_connected(int fd, GError **error);
GString *vmb_wsupstream_request(const char *addr, unsigned port, const char *host_header,
                                const char *ws_key, const char *ws_protocol, GError **error);
int vmb_wsupstream_response(const GByteArray *resp, size_t new_bytes, const char *ws_protocol,
                            VmbWsUpstream *ret, GError **error);

/* Closes the fd (if any) and frees the strings; leaves @u as VMB_WSUPSTREAM_INIT. */
void vmb_wsupstream_clear(VmbWsUpstream *u);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(VmbWsUpstream, vmb_wsupstream_clear)
