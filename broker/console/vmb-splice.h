// SPDX-License-Identifier: LGPL-2.1-or-later
// The console relay engine: one thread with an epoll loop copies bytes both ways between a
// browser's (upgraded) socket and QEMU's websocket connection, for many pairs at once, with
// bounded buffers, backpressure, half-close, per-tag statistics and close-by-tag.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "vmb-wsupstream.h"

typedef struct VmbSplice VmbSplice;

/* Called once per pair, from the engine thread, after it stopped using the client fd: the
 * caller may now close that socket (MHD_UPGRADE_ACTION_CLOSE). */
typedef void (*VmbSpliceDoneFunc)(void *done_data);

/* Called once per pair, from the engine thread, when it ends (before its done function).
 * @bytes_in: read from the client and sent upstream; @bytes_out: written to the client;
 * @reason: "closed" for a clean two-way close, the close_tag reason, "shutdown" from
 * vmb_splice_free(), or a description of the socket error; @done_data: the pair's, as
 * given to vmb_splice_add(); @data: the engine's on_close_data. */
typedef void (*VmbSpliceCloseFunc)(const char *tag, guint64 bytes_in, guint64 bytes_out,
                                   const char *reason, void *done_data, void *data);

/* Called once per vmb_splice_connect(), from the engine thread, when it ends: on success
 * @upstream is QEMU's side with its handshake done (the callee takes its fields: it must
 * leave it as VMB_WSUPSTREAM_INIT or clear it), else @upstream is NULL and @error says why.
 * Must not block. */
typedef void (*VmbSpliceConnectFunc)(VmbWsUpstream *upstream, const GError *error,
                                     void *data);

/* Connects that may wait for one upstream (address and port) behind the one in flight. */
#define VMB_SPLICE_CONNECT_QUEUE 256
/* How often the engine looks for connects past their deadline, in ms. */
#define VMB_SPLICE_CONNECT_TICK_MS 50

/* Per-direction buffer of a pair when none is configured (console.buffer_bytes' default). */
#define VMB_SPLICE_DEFAULT_BUFFER (64 * 1024)

typedef struct {
    size_t buffer_size;          /* bound of each direction's buffer; 0 for the default */
    VmbSpliceCloseFunc on_close; /* (nullable) audit hook for every pair that ends */
    void *on_close_data;         /* passed to on_close */
    bool stepped;                /* no thread: the caller runs the loop (vmb_splice_step()) */
} VmbSpliceOptions;

typedef struct {
    unsigned connections;        /* pairs open now */
    guint64 opened;              /* pairs added since vmb_splice_new() */
    guint64 closed;              /* pairs ended since vmb_splice_new() */
    guint64 bytes_in;            /* client -> upstream, all pairs ever */
    guint64 bytes_out;           /* upstream -> client, all pairs ever */
    guint64 buffered;            /* bytes held for pairs now, in buffers and pipes */
    guint64 buffer_memory;       /* bytes allocated for pair buffers now (not pipes) */
    unsigned pipes;              /* bulk mode's pipes open now, two fds each */
} VmbSpliceStats;

/* Lifecycle */
VmbSplice *vmb_splice_new(const VmbSpliceOptions *options, GError **error);
void vmb_splice_free(VmbSplice *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmbSplice, vmb_splice_free)

/* Pairs (any thread) */
bool vmb_splice_add(VmbSplice *s, int client_fd, int upstream_fd, GBytes *to_client_first,
                    GBytes *to_upstream_first, const char *tag, VmbSpliceDoneFunc done,
                    void *done_data, GError **error);
void vmb_splice_close_tag(VmbSplice *s, const char *tag, const char *reason);
void vmb_splice_sync(VmbSplice *s);
void vmb_splice_step(VmbSplice *s, unsigned timeout_ms);
void vmb_splice_step_tick(VmbSplice *s);
bool vmb_splice_connect(VmbSplice *s, const char *addr, unsigned port, const char *ws_key,
                        const char *ws_protocol, unsigned timeout_ms, unsigned wait_ms,
                        VmbSpliceConnectFunc done, void *done_data, GError **error);

/* Statistics (any thread) */
bool vmb_splice_tag_stats(VmbSplice *s, const char *tag, unsigned *ret_connections,
                          gint64 *ret_last_client_activity_us, guint64 *ret_bytes_in,
                          guint64 *ret_bytes_out);
void vmb_splice_stats(VmbSplice *s, VmbSpliceStats *ret);
