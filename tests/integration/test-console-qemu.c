// SPDX-License-Identifier: LGPL-2.1-or-later
// The console path on a real QEMU: vmb_wsupstream_connect() with a browser's key, then a
// vmb_splice pair; this test plays the browser (websocket frames, RFB, VNC password) over
// its end of a socketpair and gets a real framebuffer update through the engine.
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "console-client.h"
#include "test.h"
#include "vmb-error.h"
#include "vmb-splice.h"
#include "vmb-wsupstream.h"

/* This machine's share of ports for tests that start QEMU themselves. */
#define PORT_LO 6400
#define PORT_HI 6499
#define PASSWORD "t0pSecr8"

static TestQemu qemu;

static void
stop_qemu(void)
{
    test_qemu_stop(&qemu);
}

typedef struct {
    GMutex lock;
    GCond cond;
    int client_fd;
    bool done;
} Done;

static void
on_done(void *data)
{
    Done *d = data;

    g_mutex_lock(&d->lock);
    close(d->client_fd);
    d->done = true;
    g_cond_signal(&d->cond);
    g_mutex_unlock(&d->lock);
}

/* A full, non-incremental update in raw encoding covers the whole screen; while the
 * guest boots it may change modes in between (DesktopSize), so ask again then.
 * Returns the bytes of pixels read. */
static guint64
read_whole_screen(WsClient *ws, RfbServerInit *si)
{
    g_autoptr(GError) error = NULL;
    guint64 pixels = 0;

    for (unsigned i = 0; i < 100; i++) {
        g_assert_true(rfb_request_update(ws, si, false, &error));
        g_assert_true(rfb_read_update(ws, si, &pixels, &error));
        g_assert_no_error(error);
        if (pixels == (guint64) si->width * si->height * (si->bits_per_pixel / 8))
            break;
        fprintf(stderr, "update of %" G_GUINT64_FORMAT " bytes, screen now %ux%u\n", pixels,
                si->width, si->height);
    }
    g_assert_cmpuint(pixels, ==, (guint64) si->width * si->height * (si->bits_per_pixel / 8));
    return pixels;
}

/* The engine's counts for "vm-1": one connection, more sent than the @pixels read. */
static void
check_relay_counts(VmbSplice *s, guint64 pixels)
{
    guint64 in = 0, out = 0;
    unsigned conns = 0;

    /* The engine counts a send after it returned, which may be after we read its bytes. */
    for (unsigned i = 0; i < 10000; i++) {
        g_assert_true(vmb_splice_tag_stats(s, "vm-1", &conns, NULL, &in, &out));
        if (out > pixels)
            break;
        g_usleep(1000);
    }
    g_assert_cmpuint(conns, ==, 1);
    g_assert_cmpuint(out, >, pixels);
    g_assert_cmpuint(in, >, 0);
}

/* The VM stops: the engine ends the pair, and the browser's end (@fd) sees EOF once it
 * has read what the engine relayed before (a guest that changes modes while we read may
 * have sent one more update). The engine closed its end, so no read below can block. */
static void
stop_and_see_eof(VmbSplice *s, Done *done, int fd)
{
    char buf[65536];
    ssize_t n;

    vmb_splice_close_tag(s, "vm-1", "vm stopped");
    g_mutex_lock(&done->lock);
    while (!done->done)
        g_cond_wait(&done->cond, &done->lock);
    g_mutex_unlock(&done->lock);
    do
        n = read(fd, buf, sizeof(buf));
    while (n > 0);
    g_assert_cmpint(n, ==, 0);
}

TEST(console_through_splice)
{
    g_autoptr(GError) error = NULL;
    g_auto(VmbWsUpstream) up = VMB_WSUPSTREAM_INIT;
    g_auto(VmbWsUpstream) bad = VMB_WSUPSTREAM_INIT;
    g_autofree char *key = ws_random_key();
    g_autofree char *want_accept = ws_expected_accept(key);
    g_autoptr(VmbSplice) s = NULL;
    RfbServerInit si = { 0 };
    WsClient ws;
    Done done = { .done = false };
    guint64 pixels = 0;
    int sp[2];

    if (!test_qemu_available()) {
        fprintf(stderr, "qemu-system-x86_64 or %s missing: skipped\n", TEST_QEMU_ISO);
        exit(77);
    }
    g_assert_true(test_qemu_start(&qemu, PASSWORD, PORT_LO, PORT_HI, &error));
    g_assert_no_error(error);
    atexit(stop_qemu);
    fprintf(stderr, "QEMU pid %d, VNC %u, websocket %u\n", qemu.pid, qemu.vnc_port,
            qemu.ws_port);

    /* QEMU's VNC port speaks plain RFB, not HTTP: a clean UNAVAILABLE, not a hang. */
    g_assert_false(vmb_wsupstream_connect("127.0.0.1", qemu.vnc_port, NULL, key, NULL, 2000,
                                          &bad, &error));
    g_assert_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE);
    g_clear_error(&error);

    g_assert_true(vmb_wsupstream_connect("127.0.0.1", qemu.ws_port, NULL, key, "binary", 10000,
                                         &up, &error));
    g_assert_no_error(error);
    /* QEMU computed the accept from the key we forwarded, so the browser will accept it. */
    g_assert_cmpstr(up.accept, ==, want_accept);
    g_assert_cmpstr(up.protocol, ==, "binary");

    s = vmb_splice_new(NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp), ==, 0);
    g_mutex_init(&done.lock);
    g_cond_init(&done.cond);
    done.client_fd = sp[1];
    g_assert_true(vmb_splice_add(s, sp[1], up.fd, up.leftover, NULL, "vm-1", on_done, &done,
                                 &error));
    up.fd = -1;     /* the engine owns it now */

    ws_client_init(&ws, sp[0]);
    g_assert_true(rfb_handshake(&ws, PASSWORD, &si, &error));
    g_assert_no_error(error);
    fprintf(stderr, "desktop '%s' %ux%u, %u bpp\n", si.name, si.width, si.height,
            si.bits_per_pixel);
    g_assert_cmpuint(si.width, >, 0);
    g_assert_cmpuint(si.height, >, 0);
    g_assert_true(rfb_set_encodings(&ws, &error));
    pixels = read_whole_screen(&ws, &si);
    check_relay_counts(s, pixels);

    stop_and_see_eof(s, &done, sp[0]);
    close(sp[0]);
    ws_client_clear(&ws);
    g_free(si.name);
    g_clear_pointer(&s, vmb_splice_free);
    stop_qemu();
}

TEST_MAIN()
