// SPDX-License-Identifier: LGPL-2.1-or-later
// Test and bench only: a minimal websocket + RFB client (see console-client.h).
#include "console-client.h"

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <nettle/des.h>

#include "vmb-error.h"
#include "vmb-secret.h"

#define RAW_ALLOC (256 * 1024)

void
ws_client_init(WsClient *c, int fd)
{
    memset(c, 0, sizeof(*c));
    c->fd = fd;
    c->raw_alloc = RAW_ALLOC;
    c->raw = g_malloc(c->raw_alloc);
}

void
ws_client_clear(WsClient *c)
{
    g_clear_pointer(&c->raw, g_free);
}

void
ws_client_push(WsClient *c, const void *data, size_t len)
{
    g_assert(c->raw_len + len <= c->raw_alloc);
    memcpy(c->raw + c->raw_len, data, len);
    c->raw_len += len;
}

static bool
send_all(int fd, const guint8 *p, size_t len, GError **error)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE, "send: %s",
                        g_strerror(errno));
            return false;
        }
        p += n;
        len -= (size_t) n;
    }
    return true;
}

bool
ws_send(WsClient *c, const void *data, size_t len, GError **error)
{
    g_autofree guint8 *frame = g_malloc(len + 14);
    size_t h = 0;
    guint32 mask = g_random_int();
    const guint8 *m = (const guint8 *) &mask;

    frame[h++] = 0x82;  /* FIN, binary */
    if (len < 126) {
        frame[h++] = (guint8) (0x80 | len);
    } else if (len < 65536) {
        frame[h++] = 0x80 | 126;
        frame[h++] = (guint8) (len >> 8);
        frame[h++] = (guint8) len;
    } else {
        frame[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            frame[h++] = (guint8) ((guint64) len >> (8 * i));
    }
    memcpy(frame + h, m, 4);
    h += 4;
    for (size_t i = 0; i < len; i++)
        frame[h + i] = ((const guint8 *) data)[i] ^ m[i % 4];
    return send_all(c->fd, frame, h + len, error);
}

/* Makes at least @want unparsed bytes available. */
static bool
fill(WsClient *c, size_t want, GError **error)
{
    while (c->raw_len - c->raw_head < want) {
        ssize_t n;
        if (c->raw_head > 0) {
            memmove(c->raw, c->raw + c->raw_head, c->raw_len - c->raw_head);
            c->raw_len -= c->raw_head;
            c->raw_head = 0;
        }
        n = recv(c->fd, c->raw + c->raw_len, c->raw_alloc - c->raw_len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE, "websocket: %s",
                        n == 0 ? "EOF" : g_strerror(errno));
            return false;
        }
        c->raw_len += (size_t) n;
    }
    return true;
}

/* Parses the next frame header; control frames are consumed whole. */
static bool
next_frame(WsClient *c, GError **error)
{
    for (;;) {
        guint8 b0, b1;
        size_t hl = 2;
        guint64 len;

        if (!fill(c, 2, error))
            return false;
        b0 = c->raw[c->raw_head];
        b1 = c->raw[c->raw_head + 1];
        if (b1 & 0x80) {
            g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE, "masked server frame");
            return false;
        }
        len = b1 & 0x7f;
        if (len == 126)
            hl += 2;
        else if (len == 127)
            hl += 8;
        if (!fill(c, hl, error))
            return false;
        if (len >= 126) {
            len = 0;
            for (size_t i = 2; i < hl; i++)
                len = (len << 8) | c->raw[c->raw_head + i];
        }
        c->raw_head += hl;
        switch (b0 & 0x0f) {
        case 0x0: case 0x1: case 0x2:
            c->frame_left = len;
            if (len > 0)
                return true;
            continue;
        case 0x8:
            g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE, "websocket close frame");
            return false;
        default:    /* ping, pong: skip */
            if (!fill(c, len, error))
                return false;
            c->raw_head += len;
            continue;
        }
    }
}

bool
ws_recv(WsClient *c, void *buf, size_t len, GError **error)
{
    guint8 *out = buf;

    while (len > 0) {
        size_t take;

        if (c->frame_left == 0 && !next_frame(c, error))
            return false;
        if (c->raw_len == c->raw_head && !fill(c, 1, error))
            return false;
        take = MIN(MIN(len, c->frame_left), c->raw_len - c->raw_head);
        if (out) {
            memcpy(out, c->raw + c->raw_head, take);
            out += take;
        }
        c->raw_head += take;
        c->frame_left -= take;
        len -= take;
    }
    return true;
}

static guint32
be32(const guint8 *p)
{
    return (guint32) p[0] << 24 | (guint32) p[1] << 16 | (guint32) p[2] << 8 | p[3];
}

/* VNC's DES: the password as key, each byte's bits reversed, on both challenge halves. */
static void
vnc_des(const char *password, const guint8 challenge[16], guint8 response[16])
{
    struct des_ctx ctx;
    guint8 key[8] = { 0 };

    for (size_t i = 0; i < 8 && password[i]; i++) {
        guint8 b = (guint8) password[i], r = 0;
        for (int bit = 0; bit < 8; bit++)
            if (b & (1u << bit))
                r |= (guint8) (0x80u >> bit);
        key[i] = r;
    }
    des_set_key(&ctx, key);
    des_encrypt(&ctx, 16, response, challenge);
}

bool
rfb_handshake(WsClient *c, const char *password, RfbServerInit *ret, GError **error)
{
    guint8 version[12], ntypes, types[256], challenge[16], response[16], result[4], init[24];
    guint8 two = 2, shared = 1;
    bool has_vnc_auth = false;
    guint32 name_len;

    if (!ws_recv(c, version, 12, error))
        return false;
    if (memcmp(version, "RFB 003.008\n", 12) != 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE, "RFB version '%.11s'", version);
        return false;
    }
    if (!ws_send(c, "RFB 003.008\n", 12, error) || !ws_recv(c, &ntypes, 1, error) ||
        !ws_recv(c, types, ntypes, error))
        return false;
    for (unsigned i = 0; i < ntypes; i++)
        has_vnc_auth |= types[i] == 2;
    if (!has_vnc_auth) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE, "no VNC authentication offered");
        return false;
    }
    if (!ws_send(c, &two, 1, error) || !ws_recv(c, challenge, 16, error))
        return false;
    vnc_des(password, challenge, response);
    if (!ws_send(c, response, 16, error) || !ws_recv(c, result, 4, error))
        return false;
    if (be32(result) != 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE, "SecurityResult %u",
                    be32(result));
        return false;
    }
    if (!ws_send(c, &shared, 1, error) || !ws_recv(c, init, 24, error))
        return false;
    name_len = be32(init + 20);
    ret->width = (guint16) (init[0] << 8 | init[1]);
    ret->height = (guint16) (init[2] << 8 | init[3]);
    ret->bits_per_pixel = init[4];
    ret->name = g_malloc0((gsize) name_len + 1);
    return ws_recv(c, ret->name, name_len, error);
}

bool
rfb_request_update(WsClient *c, const RfbServerInit *si, bool incremental, GError **error)
{
    guint8 req[10] = { 3, incremental ? 1 : 0, 0, 0, 0, 0,
                       (guint8) (si->width >> 8), (guint8) si->width,
                       (guint8) (si->height >> 8), (guint8) si->height };

    return ws_send(c, req, sizeof(req), error);
}

bool
rfb_set_encodings(WsClient *c, GError **error)
{
    static const guint8 msg[] = { 2, 0, 0, 2, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x21 };

    G_STATIC_ASSERT(RFB_ENCODING_DESKTOP_SIZE == (gint32) 0xffffff21);
    return ws_send(c, msg, sizeof(msg), error);
}

bool
rfb_read_update(WsClient *c, RfbServerInit *si, guint64 *ret_pixel_bytes, GError **error)
{
    guint8 type;

    for (;;) {
        guint8 hdr[16];

        if (!ws_recv(c, &type, 1, error))
            return false;
        if (type == 0)
            break;
        if (type == 2)      /* Bell */
            continue;
        if (type == 3) {    /* ServerCutText */
            if (!ws_recv(c, hdr, 7, error) || !ws_recv(c, NULL, be32(hdr + 3), error))
                return false;
            continue;
        }
        if (type == 1) {    /* SetColourMapEntries */
            if (!ws_recv(c, hdr, 5, error) ||
                !ws_recv(c, NULL, 6u * (guint) (hdr[3] << 8 | hdr[4]), error))
                return false;
            continue;
        }
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE, "RFB message type %u", type);
        return false;
    }
    {
        guint8 hdr[3];
        guint64 pixels = 0;
        unsigned nrects;

        if (!ws_recv(c, hdr, 3, error))
            return false;
        nrects = (unsigned) (hdr[1] << 8 | hdr[2]);
        for (unsigned i = 0; i < nrects; i++) {
            guint8 rect[12];
            guint64 bytes;

            if (!ws_recv(c, rect, 12, error))
                return false;
            if ((gint32) be32(rect + 8) == RFB_ENCODING_DESKTOP_SIZE) {
                si->width = (guint16) (rect[4] << 8 | rect[5]);
                si->height = (guint16) (rect[6] << 8 | rect[7]);
                continue;
            }
            if (be32(rect + 8) != 0) {
                g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE, "encoding %d",
                            (gint32) be32(rect + 8));
                return false;
            }
            bytes = (guint64) (rect[4] << 8 | rect[5]) * (rect[6] << 8 | rect[7]) *
                    (si->bits_per_pixel / 8);
            if (!ws_recv(c, NULL, bytes, error))
                return false;
            pixels += bytes;
        }
        *ret_pixel_bytes = pixels;
    }
    return true;
}

char *
ws_expected_accept(const char *key)
{
    g_autoptr(GChecksum) sha1 = g_checksum_new(G_CHECKSUM_SHA1);
    guint8 digest[20];
    gsize len = sizeof(digest);

    g_checksum_update(sha1, (const guchar *) key, (gssize) strlen(key));
    g_checksum_update(sha1, (const guchar *) "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
    g_checksum_get_digest(sha1, digest, &len);
    return g_base64_encode(digest, len);
}

char *
ws_random_key(void)
{
    guint8 raw[16];

    g_assert(vmb_secret_random(raw, sizeof(raw), NULL));
    return g_base64_encode(raw, sizeof(raw));
}

bool
test_qemu_available(void)
{
    g_autofree char *qemu = g_find_program_in_path("qemu-system-x86_64");

    return qemu && g_file_test(TEST_QEMU_ISO, G_FILE_TEST_EXISTS);
}

static bool
port_free(unsigned port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((guint16) port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    bool ok;

    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    ok = bind(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

static void
die_with_parent(gpointer data)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

/* True once something accepts TCP connections on @port. */
static bool
port_listening(unsigned port)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((guint16) port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok = connect(fd, (struct sockaddr *) &sa, sizeof(sa)) == 0;

    close(fd);
    return ok;
}

bool
test_qemu_start(TestQemu *q, const char *password, unsigned port_lo, unsigned port_hi,
                GError **error)
{
    /* Start at a place that depends on the pid, so parallel runs rarely collide. */
    unsigned span = port_hi - port_lo + 1;
    unsigned start = (unsigned) getpid() % span;

    for (unsigned i = 0; i + 1 < span; i += 2) {
        unsigned vnc = port_lo + (start + i) % span;
        unsigned ws = port_lo + (start + i + 1) % span;
        g_autofree char *vnc_arg = NULL;
        g_autofree char *secret = NULL;
        GPid pid;
        int status;

        if (vnc < 5900 || !port_free(vnc) || !port_free(ws))
            continue;
        vnc_arg = g_strdup_printf("127.0.0.1:%u,websocket=%u,password-secret=vncpw",
                                  vnc - 5900, ws);
        secret = g_strdup_printf("secret,id=vncpw,data=%s", password);
        {
            const char *argv[] = {
                "qemu-system-x86_64", "-machine", "pc", "-accel", "tcg", "-m", "64",
                "-display", "none", "-vnc", vnc_arg, "-object", secret,
                "-cdrom", TEST_QEMU_ISO, "-monitor", "none", "-serial", "none",
                "-parallel", "none", "-nodefaults", "-vga", "std", NULL,
            };
            if (!g_spawn_async(NULL, (char **) argv, NULL,
                               G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD |
                                   G_SPAWN_STDOUT_TO_DEV_NULL,
                               die_with_parent, NULL, &pid, error))
                return false;
        }
        /* Ready when the websocket port listens; a port grabbed meanwhile makes QEMU exit. */
        for (unsigned t = 0; t < 200; t++) {
            if (waitpid(pid, &status, WNOHANG) == pid) {
                pid = 0;
                break;
            }
            if (port_listening(ws)) {
                q->pid = pid;
                q->vnc_port = vnc;
                q->ws_port = ws;
                return true;
            }
            g_usleep(50 * 1000);
        }
        if (pid) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
        }
    }
    g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE, "could not start QEMU on ports %u-%u",
                port_lo, port_hi);
    return false;
}

void
test_qemu_stop(TestQemu *q)
{
    int status;

    if (q->pid <= 0)
        return;
    kill(q->pid, SIGKILL);
    waitpid(q->pid, &status, 0);
    q->pid = 0;
}
