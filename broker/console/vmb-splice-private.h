// SPDX-License-Identifier: LGPL-2.1-or-later
// Inside the console relay: the types the engine thread (vmb-splice-engine.c) and the public
// calls (vmb-splice.c) share. Not for use outside these two files.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "vmb-splice.h"

#define MAX_EVENTS 64
#define BULK_MIN (8 * 1024)
#define BULK_TICK_MS 8

enum { CLIENT = 0, UPSTREAM = 1 };

typedef struct Pair Pair;

/* Changes to the shared counters, gathered per pair and applied under one lock. */
typedef struct {
    guint64 sent[2];
    bool client_activity;
    gint64 buffered;
    gint64 memory;
    int pipes;
} Delta;

typedef struct {
    char *tag;
    unsigned connections;
    gint64 last_client_us;
    guint64 bytes_in;
    guint64 bytes_out;
} TagStats;

typedef struct {
    Pair *pair;
    int fd;
    unsigned side;       /* CLIENT or UPSTREAM: index in pair->end and of what it sends */
    guint32 registered;  /* events in the epoll set now, 0 when not in it */
    bool bulk;           /* in bulk mode: SO_RCVLOWAT raised, read on each tick */
    GList bulk_link;     /* in VmbSplice.bulk while bulk */
} End;

/* Bytes read from end[d] waiting to be sent to end[!d]. */
typedef struct {
    guint8 *data;        /* NULL when empty */
    size_t alloc;
    size_t head;
    size_t tail;
    int pipe[2];         /* bulk mode's pipe, or -1s */
    size_t piped;        /* bytes in it */
    bool eof;            /* end[d] said EOF */
    bool shut;           /* ...and end[!d] got shutdown(SHUT_WR) after the buffer drained */
} Dir;

struct Pair {
    End end[2];
    Dir dir[2];
    char *tag;
    TagStats *stats;     /* in VmbSplice.tags; valid while this pair counts in it */
    VmbSpliceDoneFunc done;
    void *done_data;
    guint64 bytes[2];    /* sent per direction: [CLIENT] = in, [UPSTREAM] = out */
    Delta delta;         /* not yet in the shared counters */
    bool dead;           /* closed; freed after the current batch of events */
    GList link;          /* in VmbSplice.pairs */
};

/* A websocket connect to QEMU, waiting in its upstream's queue or in flight. */
typedef struct {
    char *key;           /* the Upstream it belongs to: "addr port" */
    char *addr;
    unsigned port;
    char *ws_protocol;   /* the browser's, or NULL */
    GString *request;    /* the upgrade request */
    size_t sent;         /* of it */
    GByteArray *resp;    /* QEMU's answer so far */
    int fd;              /* -1 until started */
    bool connected;
    gint64 deadline_us;  /* monotonic: of the wait in the queue, then of the handshake */
    gint64 timeout_us;   /* the handshake's bound once it starts */
    VmbSpliceConnectFunc done;
    void *done_data;
} Connect;

/* One QEMU websocket listener: its backlog is 1, so one connect at a time. */
typedef struct {
    char *key;
    Connect *active;     /* in flight, or NULL */
    GQueue waiting;      /* of Connect *, oldest first */
} Upstream;

typedef enum { CMD_ADD, CMD_CLOSE_TAG, CMD_STOP, CMD_CONNECT, CMD_SYNC } CmdKind;

typedef struct {
    CmdKind kind;
    Pair *pair;          /* CMD_ADD */
    Connect *connect;    /* CMD_CONNECT */
    char *tag;           /* CMD_CLOSE_TAG */
    char *reason;        /* CMD_CLOSE_TAG */
    guint64 sync;        /* CMD_SYNC: its number */
} Cmd;

struct VmbSplice {
    size_t cap;
    VmbSpliceCloseFunc on_close;
    void *on_close_data;
    int epfd;
    int evfd;
    int cepfd;           /* epoll set of connects in flight, itself in epfd */
    GThread *thread;     /* NULL when stepped */
    bool stepped;

    GMutex lock;         /* guards the fields down to the next comment */
    GQueue commands;     /* of Cmd *, for the engine thread */
    bool stopping;
    GHashTable *tags;    /* tag -> TagStats * of open pairs */
    VmbSpliceStats totals;
    guint64 syncs_asked;  /* vmb_splice_sync() calls numbered so far */
    guint64 syncs_done;   /* the highest whose loop pass ended */
    GCond synced;         /* signalled when syncs_done grows */

    /* engine thread only */
    guint64 sync_seen;    /* the highest CMD_SYNC run in this loop pass */
    guint64 sync_waking;  /* the highest to wake at the end of this pass */
    guint8 *scratch;
    GQueue pairs;        /* of Pair *, linked through Pair.link */
    GQueue bulk;         /* of End *, linked through End.bulk_link */
    gint64 next_tick_us; /* when the bulk ends are read next (monotonic) */
    GPtrArray *graveyard;
    GHashTable *upstreams; /* key -> Upstream * with a connect in flight or waiting */
    unsigned connecting;   /* connects in all queues, in flight included */
    gint64 next_connect_check_us;
};

void vmb_splice_tag_stats_free(TagStats *t);
void vmb_splice_cmd_free(Cmd *c);
void vmb_splice_pair_free(Pair *p);
/* Wakes the engine thread to run its commands. */
void vmb_splice_wake(VmbSplice *s);
/* The connect queues (vmb-splice-connect.c), engine thread only except _free. */
void vmb_splice_connect_free(Connect *c);
void vmb_splice_connect_start(VmbSplice *s, Connect *c);
void vmb_splice_connect_events(VmbSplice *s);
void vmb_splice_connect_expire(VmbSplice *s);
void vmb_splice_connect_stop(VmbSplice *s);
/* The engine thread, and the loop it runs (which a stepped engine's caller runs). */
gpointer vmb_splice_engine_main(gpointer data);
bool vmb_splice_engine_pass(VmbSplice *s, int timeout_ms);
void vmb_splice_engine_shutdown(VmbSplice *s);
