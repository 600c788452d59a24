// SPDX-License-Identifier: LGPL-2.1-or-later
// libmicrohttpd glue. A request gets a context on the access handler's first call; the body
// is collected up to its route's bound; the handler runs once the body is complete; the
// completion callback logs the request and frees the context.
#include "http-server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <string.h>
#include <unistd.h>

#include "http-private.h"
#include "http-problem.h"
#include "vmb-error.h"
#include "vmb-log.h"
#include "http-route.h"
#include "http-watchdog.h"

/* Tells the watchdog (http-watchdog.c) where @req's connection is. */
#define WATCH_PHASE(req, phase) http_watchdog_phase((req)->srv->watchdog, (req)->hc, (phase))
#define WATCH_BODY(req, len) http_watchdog_body((req)->srv->watchdog, (req)->hc, (len))

#define HTTP_METRIC_REQUESTS "vmbroker_http_requests_total"
#define HTTP_METRIC_DURATION "vmbroker_http_request_duration_seconds"

/* --- requests --- */

static void
request_free(HttpRequest *req)
{
    if (req->deferred) {
        g_mutex_lock(&http_deferred_lock);
        req->deferred->conn = NULL;
        g_hash_table_remove(req->srv->deferred, req->deferred);
        g_mutex_unlock(&http_deferred_lock);
        http_deferred_unref(req->deferred);
    }
    if (req->route && req->route->stream && req->stream_ctx)
        req->route->stream->release(req->stream_ctx, req->stream_finished);
    http_reply_free(req->refusal);
    g_free(req->method);
    g_free(req->path);
    if (req->params)
        g_hash_table_unref(req->params);
    g_byte_array_unref(req->body);
    g_free(req->user);
    g_free(req->remote);
    if (req->upgrade_data && req->upgrade_free)
        req->upgrade_free(req->upgrade_data); /* the client left before the hand-over */
    g_free(req);
}

const char *
http_request_method(HttpRequest *req)
{
    return req->method;
}

const char *
http_request_path(HttpRequest *req)
{
    return req->path;
}

/**
 * http_request_param:
 * @req: the request
 * @name: a {name} of the route's pattern
 *
 * Returns: (nullable): the path segment it matched.
 */
const char *
http_request_param(HttpRequest *req, const char *name)
{
    return req->params ? g_hash_table_lookup(req->params, name) : NULL;
}

const char *
http_request_header(HttpRequest *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *
http_request_query(HttpRequest *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *
http_request_cookie(HttpRequest *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_COOKIE_KIND, name);
}

const char *
http_request_remote_addr(HttpRequest *req)
{
    return req->remote;
}

bool
http_request_is_https(HttpRequest *req)
{
    return req->https;
}

/**
 * http_request_body:
 * @req: the request
 * @ret_len: (out) (optional): the body's length
 *
 * Returns: the body, with a NUL after it (a NUL inside is the handler's to refuse).
 */
const char *
http_request_body(HttpRequest *req, size_t *ret_len)
{
    if (ret_len)
        *ret_len = req->body->len;
    return (const char *) req->body->data;
}

void
http_request_set_user(HttpRequest *req, const char *username)
{
    g_free(req->user);
    req->user = g_strdup(username);
}

/* --- libmicrohttpd callbacks --- */

static void
upgrade_cb(void *cls, struct MHD_Connection *conn, void *req_cls, const char *extra_in,
           size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    HttpRequest *req = cls;
    void *data = g_steal_pointer(&req->upgrade_data);

    WATCH_PHASE(req, HTTP_WATCH_UPGRADED);
    req->upgrade(data, sock, extra_in, extra_in_size, urh);
}

static enum MHD_Result
send_reply(HttpRequest *req, HttpReply *reply)
{
    gsize len = 0;
    const void *data = g_bytes_get_data(reply->body, &len);
    struct MHD_Response *resp;
    enum MHD_Result ret;

    if (reply->upgrade) {
        /* The request keeps the hand-over until libmicrohttpd runs it (or frees it). */
        req->upgrade = reply->upgrade;
        req->upgrade_data = g_steal_pointer(&reply->upgrade_data);
        req->upgrade_free = reply->upgrade_free;
        resp = MHD_create_response_for_upgrade(upgrade_cb, req);
    } else if (reply->stream) {
        HttpBodyStream *stream = g_steal_pointer(&reply->stream);
        stream->conn = req->conn;
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, http_body_stream_read,
                                                 stream, http_body_stream_gone);
    } else {
        /* The response holds a reference to the body instead of a copy of it (a cached VM
         * list is sent as it is kept). */
        resp = MHD_create_response_from_buffer_with_free_callback_cls(
            len, (void *) data, (MHD_ContentReaderFreeCallback) g_bytes_unref,
            g_bytes_ref(reply->body));
    }

    if (reply->content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, reply->content_type);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    for (guint i = 0; i + 1 < reply->headers->len; i += 2)
        MHD_add_response_header(resp, reply->headers->pdata[i], reply->headers->pdata[i + 1]);
    /* API answers carry user data: not cached anywhere unless the handler says so. */
    if (!MHD_get_response_header(resp, "Cache-Control"))
        MHD_add_response_header(resp, "Cache-Control", "no-store");
    ret = MHD_queue_response(req->conn, reply->status, resp);
    MHD_destroy_response(resp);
    req->status = reply->status;
    req->replied = true;
    return ret;
}

static enum MHD_Result
send_problem(HttpRequest *req, VmbErrorKind kind, const char *detail)
{
    g_autoptr(HttpReply) reply = http_problem_kind(kind, detail, NULL);
    return send_reply(req, reply);
}

/* Joins every X-Forwarded-For header, in order, with commas (a chain may arrive split). */
static enum MHD_Result
collect_xff(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    GString *all = cls;

    if (value && g_ascii_strcasecmp(key, "X-Forwarded-For") == 0) {
        if (all->len)
            g_string_append_c(all, ',');
        g_string_append(all, value);
    }
    return MHD_YES;
}

/* The client behind a trusted proxy: its address and whether it came over https. */
static void
request_forwarded(HttpServer *srv, HttpRequest *req)
{
    g_autoptr(GString) xff = g_string_new(NULL);
    const char *proto;
    bool trusted = false;

    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, collect_xff, xff);
    req->remote = vmb_cidr_client_addr(srv->opts.trusted_proxies, req->peer,
                                       xff->len ? xff->str : NULL, &trusted);
    proto = trusted ? MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                                  "X-Forwarded-Proto") : NULL;
    req->https = proto && g_ascii_strcasecmp(proto, "https") == 0;
}

static HttpRequest *
request_new(HttpServer *srv, struct MHD_Connection *conn, const char *method, const char *url)
{
    HttpRequest *req = g_new0(HttpRequest, 1);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

    req->srv = srv;
    req->conn = conn;
    req->hc = http_watchdog_of(conn);
    req->method = g_strdup(method);
    req->path = g_strdup(url);
    req->body = g_byte_array_new();
    req->started_us = g_get_monotonic_time();
    g_strlcpy(req->peer, "-", sizeof(req->peer));
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *) (const void *) sa)->sin_addr,
                      req->peer, sizeof(req->peer));
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *) (const void *) sa)->sin6_addr,
                      req->peer, sizeof(req->peer));
    }
    if (vmb_cidr_list_len(srv->opts.trusted_proxies) > 0)
        request_forwarded(srv, req);
    else
        req->remote = g_strdup(req->peer);
    return req;
}

/* The first call for a request: route it, start a stream or check the declared length. */
static enum MHD_Result
request_begin(HttpServer *srv, HttpRequest *req)
{
    const char *clen;
    guint64 declared;
    unsigned status = 0;

    req->route = http_route_find(srv->opts.routes, srv->opts.nroutes, req->method, req->path,
                                 &req->params, &status);
    if (!req->route)
        return status == 404 ? send_problem(req, VMB_ERROR_NOT_FOUND, "No such resource.")
                             : send_problem(req, VMB_ERROR_METHOD_NOT_ALLOWED,
                                            "Method not allowed here.");
    if (req->route->stream) {
        HttpReply *refused = req->route->stream->begin(req, srv->opts.app, &req->stream_ctx);
        if (refused) {
            g_autoptr(HttpReply) r = refused;
            return send_reply(req, r);
        }
        return MHD_YES;
    }
    req->max_body = req->route->max_body ? req->route->max_body : srv->opts.max_body_bytes;
    clen = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                       MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (clen && g_ascii_string_to_unsigned(clen, 10, 0, G_MAXUINT64, &declared, NULL) &&
        declared > req->max_body) {
        g_autofree char *detail = g_strdup_printf(
            "The request body is larger than %" G_GUINT64_FORMAT " bytes.", req->max_body);
        return send_problem(req, VMB_ERROR_TOO_LARGE, detail);
    }
    return MHD_YES;
}

/* Drops body bytes that arrive after an early answer; MHD_NO (closing the connection) once
 * more than http.discard_max_bytes were dropped. */
static enum MHD_Result
discard(HttpServer *srv, HttpRequest *req, size_t *upload_data_size)
{
    req->drained += *upload_data_size;
    *upload_data_size = 0;
    return req->drained <= srv->opts.discard_max_bytes ? MHD_YES : MHD_NO;
}

/* A streamed body (ISO uploads): each chunk to the route's stream, then its answer. */
static enum MHD_Result
request_stream(HttpServer *srv, HttpRequest *req, const char *upload_data,
               size_t *upload_data_size)
{
    g_autoptr(HttpReply) reply = NULL;

    WATCH_BODY(req, *upload_data_size);
    if (req->replied)
        return discard(srv, req, upload_data_size);
    if (*upload_data_size > 0 && req->refusal) {
        /* Answering before the body is read would close a socket with unread data, and
         * the client would see a reset instead of the answer: read on, within reason. */
        if (discard(srv, req, upload_data_size) == MHD_YES)
            return MHD_YES;
        reply = g_steal_pointer(&req->refusal);
    } else if (*upload_data_size > 0) {
        req->refusal = req->route->stream->chunk(req->stream_ctx, upload_data,
                                                 *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    } else if (req->refusal) {
        reply = g_steal_pointer(&req->refusal);
    } else {
        WATCH_PHASE(req, HTTP_WATCH_BUSY);
        reply = req->route->stream->finish(req->stream_ctx, req, srv->opts.app);
        req->stream_finished = true;
    }
    return send_reply(req, reply);
}

/* The handler answers later: suspend, unless the answer came already. */
static enum MHD_Result
deferred_suspend(HttpRequest *req)
{
    HttpServer *srv = req->srv;
    g_autoptr(HttpReply) reply = NULL;

    g_mutex_lock(&http_deferred_lock);
    reply = g_steal_pointer(&req->deferred->reply);
    if (!reply) {
        req->deferred->suspended = true;
        g_hash_table_add(srv->deferred, req->deferred);
        MHD_suspend_connection(req->conn);
    }
    g_mutex_unlock(&http_deferred_lock);
    return reply ? send_reply(req, reply) : MHD_YES;
}

/* A suspended request resumed: its answer is there. */
static enum MHD_Result
deferred_resume(HttpRequest *req)
{
    g_autoptr(HttpReply) reply = NULL;

    g_mutex_lock(&http_deferred_lock);
    reply = g_steal_pointer(&req->deferred->reply);
    g_mutex_unlock(&http_deferred_lock);
    return reply && !req->replied ? send_reply(req, reply) : MHD_YES;
}

static enum MHD_Result
access_handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
               const char *version, const char *upload_data, size_t *upload_data_size,
               void **req_cls)
{
    HttpServer *srv = cls;
    HttpRequest *req = *req_cls;
    const guint8 nul = 0;
    g_autoptr(HttpReply) reply = NULL;

    if (!req) {
        req = request_new(srv, conn, method, url);
        *req_cls = req;
        g_atomic_int_inc(&srv->inflight);
        WATCH_PHASE(req, HTTP_WATCH_BODY);
        return request_begin(srv, req);
    }
    if (req->route && req->route->stream)
        return request_stream(srv, req, upload_data, upload_data_size);
    if (req->deferred)
        return deferred_resume(req);
    if (*upload_data_size > 0) {
        WATCH_BODY(req, *upload_data_size);
        if (req->replied)
            return discard(srv, req, upload_data_size);
        if (req->body->len + *upload_data_size > req->max_body) {
            g_autofree char *detail = g_strdup_printf(
                "The request body is larger than %" G_GUINT64_FORMAT " bytes.", req->max_body);
            *upload_data_size = 0;
            return send_problem(req, VMB_ERROR_TOO_LARGE, detail);
        }
        g_byte_array_append(req->body, (const guint8 *) upload_data, (guint) *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    WATCH_PHASE(req, HTTP_WATCH_BUSY);
    if (req->replied)
        return MHD_YES;
    /* The body is NUL-terminated for handlers that read it as text, without counting it. */
    g_byte_array_append(req->body, &nul, 1);
    g_byte_array_set_size(req->body, req->body->len - 1);
    reply = req->route->handler(req, srv->opts.app);
    if (reply->deferred)
        return deferred_suspend(req);
    return send_reply(req, reply);
}

/* Routine reads (a page polling its list, a probe) are logged once per connection, at the
 * first; the rest at debug. Whatever changes something, fails or ends early has its line. */
static VmbLogLevel
log_level(HttpServer *srv, const HttpRequest *req, enum MHD_RequestTerminationCode toe)
{
    bool routine = (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0) &&
                   req->replied && req->status >= 200 && req->status < 400 &&
                   toe == MHD_REQUEST_TERMINATED_COMPLETED_OK;
    unsigned before = req->hc ? http_watchdog_count_request(srv->watchdog, req->hc) : 0;

    return before > 0 && routine ? VMB_LOG_DEBUG : VMB_LOG_INFO;
}

static void
completed_cb(void *cls, struct MHD_Connection *conn, void **req_cls,
             enum MHD_RequestTerminationCode toe)
{
    HttpServer *srv = cls;
    HttpRequest *req = *req_cls;
    double ms;

    if (!req)
        return;
    ms = (double) (g_get_monotonic_time() - req->started_us) / 1000.0;
    if (srv->opts.metrics) {
        /* Labels come from the route table, never from the client, to bound cardinality. */
        const char *route = req->route ? req->route->pattern : "unmatched";
        const char *method = req->route ? req->route->method : "-";
        char status[8];
        g_snprintf(status, sizeof(status), "%u", req->replied ? req->status : 0);
        vmb_metrics_add(srv->opts.metrics, HTTP_METRIC_REQUESTS, 1, "route", route,
                        "method", method, "status", status, NULL);
        vmb_metrics_observe(srv->opts.metrics, HTTP_METRIC_DURATION, ms / 1000.0,
                            "route", route, NULL);
    }
    /* The method, path and user come from the client: each stays one field of one line. */
    g_autofree char *method = vmb_log_field(req->method);
    g_autofree char *path = vmb_log_field(req->path);
    g_autofree char *user = vmb_log_field(req->user);
    vmb_log(log_level(srv, req, toe), "http %s %s %u %.2fms user=%s addr=%s%s", method, path,
             req->replied ? req->status : 0, ms, user, req->remote,
             toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection closed early)");
    WATCH_PHASE(req, HTTP_WATCH_HEAD); /* the next request's head is due from now */
    request_free(req);
    *req_cls = NULL;
    g_atomic_int_dec_and_test(&srv->inflight);
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    g_strchomp(msg);
    vmb_warning("libmicrohttpd: %s", msg);
}

/**
 * http_server_start:
 * @opts: listen address, limits and routes; the routes and app must outlive the server
 * @error: return location for an error
 *
 * Returns: (transfer full): a running server, or NULL.
 */
HttpServer *
http_server_start(const HttpServerOptions *opts, GError **error)
{
    g_autofree HttpServer *srv = g_new0(HttpServer, 1);
    struct sockaddr_storage ss = { 0 };
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE;

    srv->opts = *opts;
    srv->deferred = g_hash_table_new(g_direct_hash, g_direct_equal);
    srv->watchdog = http_watchdog_start(opts->head_timeout_s, opts->min_body_rate);
    if (opts->metrics) {
        static const double bounds[] = { 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30 };
        vmb_metrics_declare(opts->metrics, HTTP_METRIC_REQUESTS, VMB_METRIC_COUNTER,
                            "HTTP requests by route, method and status.", NULL, 0);
        vmb_metrics_declare(opts->metrics, HTTP_METRIC_DURATION, VMB_METRIC_HISTOGRAM,
                            "HTTP request duration by route.", bounds, G_N_ELEMENTS(bounds));
    }
    if (strchr(opts->listen_host, ':')) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t) opts->listen_port);
        inet_pton(AF_INET6, opts->listen_host, &sin6->sin6_addr);
        flags |= MHD_USE_IPv6;
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *) &ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t) opts->listen_port);
        inet_pton(AF_INET, opts->listen_host, &sin->sin_addr);
    }
    srv->daemon = MHD_start_daemon(
        flags, (uint16_t) opts->listen_port, NULL, NULL, access_handler, srv,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &ss,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned int) opts->threads,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int) opts->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int) opts->per_ip_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) opts->connection_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) (64 * 1024),
        MHD_OPTION_NOTIFY_COMPLETED, completed_cb, srv,
        MHD_OPTION_NOTIFY_CONNECTION, http_watchdog_notify, srv->watchdog,
        MHD_OPTION_END);
    if (!srv->daemon) {
        http_watchdog_stop(srv->watchdog);
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFIG,
                    "cannot listen on %s port %u (in use, or not an address of this host?)",
                    opts->listen_host, opts->listen_port);
        g_hash_table_unref(srv->deferred);
        return NULL;
    }
    return g_steal_pointer(&srv);
}

/**
 * http_server_port:
 * @srv: a running server
 *
 * Returns: the port it listens on (useful when started with port 0).
 */
unsigned
http_server_port(HttpServer *srv)
{
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    return di ? di->port : srv->opts.listen_port;
}

/* At shutdown: requests still waiting for an answer get a 503 now. */
static void
answer_deferred(HttpServer *srv)
{
    GHashTableIter it;
    gpointer key;

    g_mutex_lock(&http_deferred_lock);
    g_hash_table_iter_init(&it, srv->deferred);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        HttpDeferred *d = key;
        d->reply = http_problem_kind(VMB_ERROR_UNAVAILABLE,
                                     "The broker is shutting down; the work goes on: look at "
                                     "the VM again shortly.", NULL);
        d->suspended = false;
        MHD_resume_connection(d->conn);
        g_hash_table_iter_remove(&it);
    }
    g_mutex_unlock(&http_deferred_lock);
    /* Let the resumed connections send their answers. */
    g_usleep(200 * 1000);
}

/**
 * http_server_stop:
 * @srv: (nullable) (transfer full): a running server
 * @drain_timeout_s: how long to wait for requests in flight
 *
 * Closes the listening socket first, so no new connection is accepted, lets requests in
 * flight finish (up to the timeout), then stops the threads and frees the server.
 */
void
http_server_stop(HttpServer *srv, unsigned drain_timeout_s)
{
    gint64 deadline;
    MHD_socket lsock;

    if (!srv)
        return;
    lsock = MHD_quiesce_daemon(srv->daemon);
    if (lsock != MHD_INVALID_SOCKET)
        close(lsock);
    deadline = g_get_monotonic_time() + (gint64) drain_timeout_s * G_USEC_PER_SEC;
    while (g_atomic_int_get(&srv->inflight) > 0 && g_get_monotonic_time() < deadline)
        g_usleep(20 * 1000);
    answer_deferred(srv);
    MHD_stop_daemon(srv->daemon);
    http_watchdog_stop(srv->watchdog); /* the daemon's stop removed every connection */
    g_hash_table_unref(srv->deferred);
    g_free(srv);
}
