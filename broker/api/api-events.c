// SPDX-License-Identifier: LGPL-2.1-or-later
// GET /api/v1/events: server-sent events of the VMs and operations the caller may see. The
// connection waits suspended between events (no thread of its own); its one log line is
// written when it ends.
#include "api.h"

#include "api-common.h"
#include "http-problem.h"
#include "svc-events.h"

typedef struct {
    SvcEventStream *stream; /* NULL until opened */
} EventsConn;

static gssize
events_read(void *data, char *buf, size_t max)
{
    EventsConn *c = data;
    return c->stream ? svc_event_stream_read(c->stream, buf, max) : -1;
}

static void
events_free(void *data)
{
    EventsConn *c = data;

    if (c->stream)
        svc_event_stream_close(c->stream);
    g_free(c);
}

static void
events_wake(gpointer data)
{
    http_body_stream_wake(data);
}

/* Last-Event-ID (the header a browser's EventSource resends), or -1. */
static gint64
last_event_id(HttpRequest *req)
{
    const char *text = http_request_header(req, "Last-Event-ID");
    guint64 id;

    if (!text || !g_ascii_string_to_unsigned(text, 10, 0, G_MAXINT64, &id, NULL))
        return -1;
    return (gint64) id;
}

/**
 * api_events:
 * @req: GET /api/v1/events
 * @app: the daemon's state
 *
 * Returns: 200 text/event-stream of "vm" and "operation" events (data: the changed object
 * in JSON), "reset" when the client must reload; 429 over the per-user or total bound.
 */
HttpReply *
api_events(HttpRequest *req, void *app)
{
    App *a = app;
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(GError) error = NULL;
    HttpReply *reply = api_authenticate(req, a, &caller);
    EventsConn *c;
    HttpBodyStream *stream = NULL;

    if (reply)
        return reply;
    c = g_new0(EventsConn, 1);
    reply = http_reply_body_stream(200, "text/event-stream", events_read, c, events_free,
                                   &stream);
    /* The reply holds the stream; the hub's wake may use it while the stream is open, and the
     * stream closes (events_free) before it goes. */
    http_body_stream_unref(stream);
    c->stream = svc_events_open(a->events, caller->user, last_event_id(req), events_wake,
                                stream, &error);
    if (!c->stream) {
        http_reply_free(reply);
        return api_error(req, error);
    }
    http_reply_add_header(reply, "X-Accel-Buffering", "no"); /* nginx: pass events on */
    return reply;
}
