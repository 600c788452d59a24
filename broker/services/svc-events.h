// SPDX-License-Identifier: LGPL-2.1-or-later
// Event streams: the changes of VMs and operations (rows of the events table, written by
// triggers whichever broker made them) handed to each stream allowed to see them, as
// server-sent events. One thread reads new events when PostgreSQL announces them and keeps
// the latest in memory; a stream is a cursor into them, woken when there is news.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"
#include "db-users.h"

typedef struct SvcEvents SvcEvents;
typedef struct SvcEventStream SvcEventStream;

typedef struct {
    DbPool *db;
    const char *conninfo;       /* for the LISTEN connection */
    unsigned max_streams;       /* streams at once, all users */
    unsigned max_per_user;      /* streams at once per user */
    unsigned keepalive_s;       /* a comment line after this much silence */
} SvcEventsOptions;

SvcEvents *svc_events_new(const SvcEventsOptions *opts);
/* Streams must be gone (their connections closed) before. */
void svc_events_free(SvcEvents *events);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SvcEvents, svc_events_free)

/* At shutdown: streams end once they have sent what they hold. */
void svc_events_end_streams(SvcEvents *events);

/* Called when the stream has something to send. */
typedef void (*SvcEventWakeFunc)(gpointer data);

/* A stream of what @caller may see, after event @last_id (a Last-Event-ID; < 0: from now).
 * VMB_ERROR_TOO_MANY over the bounds. */
SvcEventStream *svc_events_open(SvcEvents *events, const DbUser *caller, gint64 last_id,
                                SvcEventWakeFunc wake, gpointer wake_data, GError **error);
/* Up to @max bytes of text/event-stream; 0 when there is nothing now, -1 at its end. */
gssize svc_event_stream_read(SvcEventStream *stream, char *buf, size_t max);
void svc_event_stream_close(SvcEventStream *stream);

