// SPDX-License-Identifier: LGPL-2.1-or-later
// The HTTP server: libmicrohttpd with a thread pool on epoll, a route table with {param}
// segments, bounded request bodies, one log line per request, and a draining stop.
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <json-c/json.h>

#include "vmb-cidr.h"
#include "vmb-json.h"

#include "vmb-metrics.h"


typedef struct HttpServer HttpServer;
typedef struct HttpRequest HttpRequest;

/* Called once the 101 is sent: @sock is the client's socket (never close() it: end it with
 * http_upgrade_close(@handle)), @extra the bytes the server read past the request. */
typedef void (*HttpUpgradeFunc)(void *data, int sock, const void *extra, size_t extra_len,
                                void *handle);

/* A response under construction; handlers return one, the server sends and frees it. */
typedef struct {
    unsigned status;        /* HTTP status code */
    char *content_type;     /* Content-Type header */
    GBytes *body;           /* the whole body */
    GPtrArray *headers;     /* extra headers: name, value, name, value ... (char *) */
    HttpUpgradeFunc upgrade; /* set for a 101 that hands the connection over */
    void *upgrade_data;     /* passed to @upgrade */
    GDestroyNotify upgrade_free; /* frees @upgrade_data if @upgrade never runs */
    struct HttpDeferred *deferred; /* set for a reply that comes later */
    struct HttpBodyStream *stream; /* set for a body produced bit by bit */
} HttpReply;

/* A body produced bit by bit (server-sent events): @read fills @buf with at most @max bytes
 * and returns how many, 0 when it has nothing now (the connection then waits, holding no
 * thread, until http_body_stream_wake()), or -1 to end the body. Called from the server's
 * threads; @free_data runs once the connection is gone. */
typedef gssize (*HttpBodyReadFunc)(void *data, char *buf, size_t max);
typedef struct HttpBodyStream HttpBodyStream;

/* A reply that comes later, from any thread: the connection waits suspended, holding no
 * thread. */
typedef struct HttpDeferred HttpDeferred;

HttpReply *http_reply_new(unsigned status, const char *content_type, GBytes *body);
/* Serializes @obj (borrowed) as application/json. */
HttpReply *http_reply_json(unsigned status, json_object *obj);
HttpReply *http_reply_empty(unsigned status);
/* A 101 Switching Protocols; @fn takes the connection over (and @data) once it is sent. */
HttpReply *http_reply_upgrade(HttpUpgradeFunc fn, void *data, GDestroyNotify free_data);
/* Closes an upgraded connection; callable from any thread, once. */
void http_upgrade_close(void *handle);
void http_reply_add_header(HttpReply *reply, const char *name, const char *value);
/* Returned by a handler that answers later: *ret_deferred is the answerer's, who must call
 * http_deferred_finish() on it once. */
HttpReply *http_reply_deferred(HttpRequest *req, HttpDeferred **ret_deferred);
/* A reply whose body comes from @read (see HttpBodyReadFunc); *ret_stream (optional) is a
 * reference for http_body_stream_wake(), released with http_body_stream_unref(). */
HttpReply *http_reply_body_stream(unsigned status, const char *content_type,
                                  HttpBodyReadFunc read, void *data, GDestroyNotify free_data,
                                  HttpBodyStream **ret_stream);
/* The body has more to say: a waiting connection asks @read again. Any thread. */
void http_body_stream_wake(HttpBodyStream *stream);
void http_body_stream_unref(HttpBodyStream *stream);
/* Sends @reply (transfer full) on the deferred request, or drops it when the server went
 * away meanwhile; releases @deferred. Any thread. */
void http_deferred_finish(HttpDeferred *deferred, HttpReply *reply);
void http_reply_free(HttpReply *reply);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HttpReply, http_reply_free)

typedef HttpReply *(*HttpHandlerFunc)(HttpRequest *req, void *app);

/* A route whose body is too large to hold (uploads) gets it chunk by chunk. Each callback
 * may refuse by returning a reply (the rest of the body is then discarded). */
typedef struct {
    /* Headers are in: check them, set *ret_ctx. */
    HttpReply *(*begin)(HttpRequest *req, void *app, void **ret_ctx);
    /* The next piece of the body. */
    HttpReply *(*chunk)(void *ctx, const void *data, size_t len);
    /* The body is complete: the answer. */
    HttpReply *(*finish)(void *ctx, HttpRequest *req, void *app);
    /* Always called last, after finish or when the request ended early: frees @ctx and
     * undoes what an unfinished request left (a partial file). */
    void (*release)(void *ctx, bool finished);
} HttpStream;

typedef struct {
    const char *method;      /* "GET", "POST" ... */
    const char *pattern;     /* "/api/v1/vms/{id}/stop": {name} matches one segment; a last
                              * segment "*" matches the rest (parameter "*") */
    HttpHandlerFunc handler; /* builds the reply */
    guint64 max_body;        /* body bound for this route, 0 for the server's default */
    const HttpStream *stream; /* (nullable) streamed body: @handler unused, no bound here */
} HttpRoute;

typedef struct {
    const char *listen_host;        /* IP address */
    unsigned listen_port;           /* 0 picks a free port */
    unsigned threads;               /* worker threads */
    unsigned max_connections;       /* all clients together */
    unsigned per_ip_connections;    /* from one address */
    unsigned connection_timeout_s;  /* idle timeout */
    unsigned head_timeout_s;        /* a request head must come whole within this, from the
                                     * connection's start or the previous request's end;
                                     * 0 for no deadline */
    unsigned min_body_rate;         /* bytes a second a body must average over each 10 s */
    guint64 discard_max_bytes;      /* body read and dropped after an early answer, at most */
    guint64 max_body_bytes;         /* default body bound */
    const HttpRoute *routes;        /* the route table */
    size_t nroutes;                 /* its length */
    void *app;                      /* passed to every handler */
    VmbMetrics *metrics;            /* (nullable) gets vmbroker_http_requests_total and
                                     * vmbroker_http_request_duration_seconds */
    const VmbCidrList *trusted_proxies; /* (nullable) peers whose X-Forwarded-For and
                                     * X-Forwarded-Proto are believed; must outlive the server */
} HttpServerOptions;

HttpServer *http_server_start(const HttpServerOptions *opts, GError **error);
unsigned http_server_port(HttpServer *srv);
/* Stops accepting, waits up to @drain_timeout_s for requests in flight (deferred ones are
 * then answered 503), then stops. */
void http_server_stop(HttpServer *srv, unsigned drain_timeout_s);

/* --- request accessors, valid during the handler --- */
const char *http_request_method(HttpRequest *req);
const char *http_request_path(HttpRequest *req);
const char *http_request_param(HttpRequest *req, const char *name);
const char *http_request_header(HttpRequest *req, const char *name);
const char *http_request_query(HttpRequest *req, const char *name);
const char *http_request_cookie(HttpRequest *req, const char *name);
/* The client's address: the TCP peer's, or the one a trusted proxy forwarded
 * (http.trusted_proxies). Every handler, the access log, throttles and audit use this one. */
const char *http_request_remote_addr(HttpRequest *req);
/* Whether the client reached us over https, as a trusted proxy's X-Forwarded-Proto says
 * (this server speaks plain HTTP itself). */
bool http_request_is_https(HttpRequest *req);
/* The body, NUL-terminated for convenience; @ret_len (optional) gets its length. */
const char *http_request_body(HttpRequest *req, size_t *ret_len);
/* Names the authenticated user in the request's log line. */
void http_request_set_user(HttpRequest *req, const char *username);
