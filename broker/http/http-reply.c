// SPDX-License-Identifier: LGPL-2.1-or-later
// Replies: whole bodies, 101 hand-overs, replies that come later from another thread
// (deferred: the connection waits suspended) and bodies produced bit by bit (event streams).
#include "http-private.h"

#include <string.h>

GMutex http_deferred_lock;

/* --- replies --- */

/**
 * http_reply_new:
 * @status: HTTP status
 * @content_type: (nullable): Content-Type, NULL for a reply without body
 * @body: (nullable) (transfer full): the body
 *
 * Returns: (transfer full): a reply.
 */
HttpReply *
http_reply_new(unsigned status, const char *content_type, GBytes *body)
{
    HttpReply *reply = g_new0(HttpReply, 1);

    reply->status = status;
    reply->content_type = g_strdup(content_type);
    reply->body = body ? body : g_bytes_new_static("", 0);
    reply->headers = g_ptr_array_new_with_free_func(g_free);
    return reply;
}

/**
 * http_reply_json:
 * @status: HTTP status
 * @obj: (transfer none): the JSON value to send
 *
 * Returns: (transfer full): an application/json reply.
 */
HttpReply *
http_reply_json(unsigned status, json_object *obj)
{
    const char *text = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
                                                           JSON_C_TO_STRING_NOSLASHESCAPE);
    return http_reply_new(status, "application/json", g_bytes_new(text, strlen(text)));
}

/**
 * http_reply_empty:
 * @status: HTTP status, typically 204
 *
 * Returns: (transfer full): a reply without body.
 */
HttpReply *
http_reply_empty(unsigned status)
{
    return http_reply_new(status, NULL, NULL);
}

/**
 * http_reply_upgrade:
 * @fn: takes the connection over once the 101 is sent
 * @data: (transfer full): passed to @fn, which then owns it
 * @free_data: (nullable): frees @data when @fn never runs (the client went away first)
 *
 * The handler adds the protocol's headers (Upgrade, Sec-WebSocket-Accept ...).
 *
 * Returns: (transfer full): a 101 reply.
 */
HttpReply *
http_reply_upgrade(HttpUpgradeFunc fn, void *data, GDestroyNotify free_data)
{
    HttpReply *reply = http_reply_new(101, NULL, NULL);

    reply->upgrade = fn;
    reply->upgrade_data = data;
    reply->upgrade_free = free_data;
    return reply;
}

/**
 * http_upgrade_close:
 * @handle: the handle an HttpUpgradeFunc got
 */
void
http_upgrade_close(void *handle)
{
    MHD_upgrade_action(handle, MHD_UPGRADE_ACTION_CLOSE);
}

/**
 * http_reply_add_header:
 * @reply: a reply
 * @name: header name
 * @value: header value
 */
void
http_reply_add_header(HttpReply *reply, const char *name, const char *value)
{
    g_ptr_array_add(reply->headers, g_strdup(name));
    g_ptr_array_add(reply->headers, g_strdup(value));
}

/**
 * http_reply_free:
 * @reply: (nullable): a reply
 */
void
http_reply_free(HttpReply *reply)
{
    if (!reply)
        return;
    g_free(reply->content_type);
    g_bytes_unref(reply->body);
    g_ptr_array_unref(reply->headers);
    if (reply->upgrade_data && reply->upgrade_free)
        reply->upgrade_free(reply->upgrade_data);
    http_body_stream_unref(reply->stream); /* never sent */
    g_free(reply);
}

/* --- deferred replies --- */

void
http_deferred_unref(HttpDeferred *d)
{
    if (!g_atomic_int_dec_and_test(&d->refs))
        return;
    http_reply_free(d->reply);
    g_free(d);
}

/**
 * http_reply_deferred:
 * @req: the request being handled
 * @ret_deferred: (out): for http_deferred_finish()
 *
 * Returns: (transfer full): the reply the handler returns.
 */
HttpReply *
http_reply_deferred(HttpRequest *req, HttpDeferred **ret_deferred)
{
    HttpDeferred *d = g_new0(HttpDeferred, 1);
    HttpReply *reply = http_reply_empty(503);

    d->refs = 2; /* the request's and the answerer's */
    d->srv = req->srv;
    d->conn = req->conn;
    req->deferred = d;
    reply->deferred = d;
    *ret_deferred = d;
    return reply;
}

/**
 * http_deferred_finish:
 * @deferred: (transfer full): from http_reply_deferred()
 * @reply: (transfer full): the answer
 */
void
http_deferred_finish(HttpDeferred *deferred, HttpReply *reply)
{
    HttpServer *srv = deferred->srv;

    g_mutex_lock(&http_deferred_lock);
    if (deferred->reply || !deferred->conn) {
        http_reply_free(reply); /* answered already (at shutdown), or the request is gone */
    } else {
        deferred->reply = reply;
        if (deferred->suspended) {
            deferred->suspended = false;
            g_hash_table_remove(srv->deferred, deferred);
            MHD_resume_connection(deferred->conn);
        }
    }
    g_mutex_unlock(&http_deferred_lock);
    http_deferred_unref(deferred);
}

/* --- streamed bodies --- */


HttpReply *
http_reply_body_stream(unsigned status, const char *content_type, HttpBodyReadFunc read,
                       void *data, GDestroyNotify free_data, HttpBodyStream **ret_stream)
{
    HttpReply *reply = http_reply_new(status, content_type, NULL);
    HttpBodyStream *s = g_new0(HttpBodyStream, 1);

    s->refs = 1;
    g_mutex_init(&s->lock);
    s->read = read;
    s->data = data;
    s->free_data = free_data;
    if (ret_stream) {
        g_atomic_int_inc(&s->refs);
        *ret_stream = s;
    }
    reply->stream = s;
    return reply;
}

void
http_body_stream_unref(HttpBodyStream *stream)
{
    if (!stream || !g_atomic_int_dec_and_test(&stream->refs))
        return;
    if (stream->free_data)
        stream->free_data(stream->data);
    g_mutex_clear(&stream->lock);
    g_free(stream);
}

void
http_body_stream_wake(HttpBodyStream *stream)
{
    g_mutex_lock(&stream->lock);
    if (stream->suspended && stream->conn) {
        stream->suspended = false;
        MHD_resume_connection(stream->conn);
    } else {
        stream->woken = true;
    }
    g_mutex_unlock(&stream->lock);
}

/* libmicrohttpd asks for more of the body; with nothing to send, the connection is
 * suspended until a wake (and holds no thread). */
ssize_t
http_body_stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    HttpBodyStream *s = cls;
    gssize n = s->read(s->data, buf, max);

    if (n < 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (n > 0)
        return n;
    g_mutex_lock(&s->lock);
    if (s->woken) {
        s->woken = false; /* news since the read began: ask again at once */
    } else {
        s->suspended = true;
        MHD_suspend_connection(s->conn);
    }
    g_mutex_unlock(&s->lock);
    return 0;
}

void
http_body_stream_gone(void *cls)
{
    HttpBodyStream *s = cls;

    g_mutex_lock(&s->lock);
    s->conn = NULL;
    g_mutex_unlock(&s->lock);
    http_body_stream_unref(s);
}

