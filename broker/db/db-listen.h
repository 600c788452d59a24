// SPDX-License-Identifier: LGPL-2.1-or-later
// A LISTEN connection of its own, on a thread of its own: it counts the notifications of one
// channel, so that readers can tell whether anything was announced since they last looked.
#pragma once

#include <stdbool.h>
#include <glib.h>

typedef struct DbListener DbListener;

/* Connects in the background (and again whenever the connection is lost). */
DbListener *db_listener_start(const char *conninfo, const char *channel,
                              unsigned connect_timeout_s);
void db_listener_stop(DbListener *listener);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DbListener, db_listener_stop)

/* True, with a count that moves at every notification read and every (dis)connect, while the
 * connection is up; false while the listener is disconnected. Two atomic loads: no lock,
 * no system call. */
bool db_listener_current(DbListener *listener, guint64 *ret_generation);
