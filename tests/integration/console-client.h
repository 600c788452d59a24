// SPDX-License-Identifier: LGPL-2.1-or-later
// Test and bench only: the browser's side of a console in a few lines: websocket frames
// (masked binary out, unmasked in) and the RFB 3.8 handshake with VNC authentication.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <glib.h>

typedef struct {
    int fd;              /* blocking socket carrying websocket frames, past the upgrade */
    guint8 *raw;         /* received bytes not yet parsed */
    size_t raw_head;
    size_t raw_len;
    size_t raw_alloc;
    guint64 frame_left;  /* payload bytes left in the current data frame */
} WsClient;

typedef struct {
    guint16 width;
    guint16 height;
    guint8 bits_per_pixel;
    char *name;
} RfbServerInit;

void ws_client_init(WsClient *c, int fd);
void ws_client_clear(WsClient *c);
/* Adds bytes already read from the socket (a handshake's leftover) before what follows. */
void ws_client_push(WsClient *c, const void *data, size_t len);

/* Sends @len bytes as one masked binary frame. */
bool ws_send(WsClient *c, const void *data, size_t len, GError **error);
/* Receives exactly @len payload bytes into @buf (NULL to discard them). */
bool ws_recv(WsClient *c, void *buf, size_t len, GError **error);

/* The server's 12-byte version, security type 2 with @password, ClientInit (shared). */
bool rfb_handshake(WsClient *c, const char *password, RfbServerInit *ret, GError **error);
bool rfb_request_update(WsClient *c, const RfbServerInit *si, bool incremental, GError **error);
/* Pseudo-encoding by which the server announces a new screen size. */
#define RFB_ENCODING_DESKTOP_SIZE (-223)

/* SetEncodings: raw, DesktopSize (the guest changes modes while it boots). */
bool rfb_set_encodings(WsClient *c, GError **error);
/* Reads messages up to and including a FramebufferUpdate in raw encoding; its pixel bytes.
 * A DesktopSize rectangle updates @si. */
bool rfb_read_update(WsClient *c, RfbServerInit *si, guint64 *ret_pixel_bytes, GError **error);

/* The Sec-WebSocket-Accept a server must answer to @key (RFC 6455, 4.2.2). */
char *ws_expected_accept(const char *key);
/* A fresh random Sec-WebSocket-Key. */
char *ws_random_key(void);

/* A QEMU guest (memtest86+) with VNC on loopback, password-protected, and QEMU's websocket
 * listener; its ports are picked free within [port_lo, port_hi]. */
typedef struct {
    GPid pid;            /* 0 when not running */
    unsigned vnc_port;
    unsigned ws_port;
} TestQemu;

#define TEST_QEMU_ISO "/usr/lib/memtest86+/memtest86+x64.iso"

/* Whether qemu-system-x86_64 and the ISO exist (else: skip). */
bool test_qemu_available(void);
bool test_qemu_start(TestQemu *q, const char *password, unsigned port_lo, unsigned port_hi,
                     GError **error);
/* SIGKILL and reap; also happens by PR_SET_PDEATHSIG if the caller dies first. */
void test_qemu_stop(TestQemu *q);
