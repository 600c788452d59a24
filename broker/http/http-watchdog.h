// SPDX-License-Identifier: LGPL-2.1-or-later
// Deadlines libmicrohttpd does not keep: a whole request head within a time, a minimum rate
// for bodies. The server tells the watchdog where each connection is; a thread shuts down
// those that fall behind. Internal to broker/http.
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <microhttpd.h>

typedef struct HttpWatchdog HttpWatchdog;
typedef struct HttpWatched HttpWatched;

/* Where a connection is. */
typedef enum {
    HTTP_WATCH_HEAD,     /* waiting for a request head (a new connection, or after a request) */
    HTTP_WATCH_BODY,     /* reading a request body (or discarding it after an early answer) */
    HTTP_WATCH_BUSY,     /* a handler or a reply has it: no deadline */
    HTTP_WATCH_UPGRADED, /* handed over (websocket): never touched again */
} HttpWatchPhase;

/* @head_timeout_s: 0 for no head deadline; @min_body_rate: bytes/s, 0 for none. */
HttpWatchdog *http_watchdog_start(unsigned head_timeout_s, unsigned min_body_rate);
/* Stops the thread; every connection must have been removed, or be removed after. */
void http_watchdog_stop(HttpWatchdog *w);
/* libmicrohttpd's MHD_OPTION_NOTIFY_CONNECTION callback, with the watchdog as @cls: adds
 * and removes connections. */
void http_watchdog_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code);
/* The record of @conn (nullable: not watched). */
HttpWatched *http_watchdog_of(struct MHD_Connection *conn);
/* A new connection on socket @fd, waiting for its first head. */
HttpWatched *http_watchdog_add(HttpWatchdog *w, int fd);
/* The connection is about to be closed: forgets it (and frees @c). */
void http_watchdog_remove(HttpWatchdog *w, HttpWatched *c);
void http_watchdog_phase(HttpWatchdog *w, HttpWatched *c, HttpWatchPhase phase);
/* Counts a finished request of @c; returns how many it had finished before. */
unsigned http_watchdog_count_request(HttpWatchdog *w, HttpWatched *c);
/* @len more body bytes arrived. */
void http_watchdog_body(HttpWatchdog *w, HttpWatched *c, size_t len);
