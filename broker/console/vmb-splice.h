// SPDX-License-Identifier: LGPL-2.1-or-later
// The console relay engine: one thread with an epoll loop copies bytes both ways between a
// browser's (upgraded) socket and QEMU's websocket connection, for many pairs at once, with
// bounded buffers, backpressure, half-close, per-tag statistics and close-by-tag.
#pragma once

#include <stdbool.h>
#include <glib.h>

typedef struct VmbSplice VmbSplice;

/* Called once per pair, from the engine thread, after it stopped using the client fd: the
 * caller may now close that socket (MHD_UPGRADE_ACTION_CLOSE). */
typedef void (*VmbSpliceDoneFunc)(void *done_data);

/* Called once per pair, from the engine thread, when it ends (before its done function).
 * @bytes_in: read from the client and sent upstream; @bytes_out: written to the client;
 * @reason: "closed" for a clean two-way close, the close_tag reason, "shutdown" from
 * vmb_splice_free(), or a description of the socket error. */
typedef void (*VmbSpliceCloseFunc)(const char *tag, guint64 bytes_in, guint64 bytes_out,
                                   const char *reason, void *data);

/* Per-direction buffer of a pair when none is configured (console.buffer_bytes' default). */
#define VMB_SPLICE_DEFAULT_BUFFER (64 * 1024)

typedef struct {
    size_t buffer_size;          /* bound of each direction's buffer; 0 for the default */
    VmbSpliceCloseFunc on_close; /* (nullable) audit hook for every pair that ends */
    void *on_close_data;         /* passed to on_close */
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

/* Statistics (any thread) */
bool vmb_splice_tag_stats(VmbSplice *s, const char *tag, unsigned *ret_connections,
                          gint64 *ret_last_client_activity_us, guint64 *ret_bytes_in,
                          guint64 *ret_bytes_out);
void vmb_splice_stats(VmbSplice *s, VmbSpliceStats *ret);
