// SPDX-License-Identifier: LGPL-2.1-or-later
// Inside the HTTP server: what http-server.c (requests, libmicrohttpd's callbacks, start and
// stop) and http-reply.c (replies, deferred replies, streamed bodies) share. Not for use
// outside broker/http.
#pragma once

#include <arpa/inet.h>
#include <microhttpd.h>

#include "http-route.h"
#include "http-server.h"
#include "http-watchdog.h"

struct HttpServer {
    struct MHD_Daemon *daemon;
    HttpServerOptions opts;
    gint inflight;      /* requests between first call and completion */
    HttpWatchdog *watchdog; /* the head deadline and the body rate */
    GHashTable *deferred; /* HttpDeferred of suspended requests (a set) */
};

/* Guards every HttpDeferred and each server's set of them (http-reply.c). Not the server's
 * own: an answer may come after the server was freed (a service ending its waits at
 * shutdown), and then it must find the request gone (conn NULL) without touching it. */
extern GMutex http_deferred_lock;

/* Shared by a suspended request and its answerer; freed by the last of the two. */
struct HttpDeferred {
    gint refs;
    HttpServer *srv;
    struct MHD_Connection *conn; /* NULL once the request is gone */
    HttpReply *reply;            /* the answer, once given */
    bool suspended;              /* the connection waits for it */
};

struct HttpRequest {
    HttpServer *srv;
    struct MHD_Connection *conn;
    HttpWatched *hc;          /* the connection's watchdog record (nullable) */
    char *method;
    char *path;
    const HttpRoute *route;   /* NULL when none matched */
    GHashTable *params;       /* {name} -> value */
    GByteArray *body;
    guint64 max_body;
    bool replied;             /* a response is queued */
    unsigned status;          /* for the log line */
    char *user;               /* for the log line */
    void *stream_ctx;         /* a streamed body's context, until released */
    bool stream_finished;     /* finish() ran */
    HttpReply *refusal;       /* a streamed body refused midway: sent once the body is read */
    guint64 drained;          /* bytes discarded since the refusal */
    HttpUpgradeFunc upgrade;  /* a queued 101's hand-over, until it runs */
    void *upgrade_data;
    GDestroyNotify upgrade_free;
    char peer[INET6_ADDRSTRLEN]; /* the TCP peer */
    char *remote;             /* the client: @peer, or what a trusted proxy forwarded */
    bool https;               /* a trusted proxy said X-Forwarded-Proto: https */
    gint64 started_us;
    HttpDeferred *deferred;   /* an answer that comes later */
};

struct HttpBodyStream {
    gint refs;
    GMutex lock;
    struct MHD_Connection *conn; /* NULL until the response is queued, and once it is gone */
    bool suspended;              /* the connection waits for a wake */
    bool woken;                  /* a wake came while @read was running */
    HttpBodyReadFunc read;
    void *data;
    GDestroyNotify free_data;
};

void http_deferred_unref(HttpDeferred *d);
/* libmicrohttpd's content reader and its free callback for a body stream. */
ssize_t http_body_stream_read(void *cls, uint64_t pos, char *buf, size_t max);
void http_body_stream_gone(void *cls);
