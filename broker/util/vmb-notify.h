// SPDX-License-Identifier: LGPL-2.1-or-later
// systemd's readiness protocol without libsystemd: datagrams to $NOTIFY_SOCKET (READY=1,
// STOPPING=1, WATCHDOG=1, STATUS=...), as sd_notify(3) documents it.
#pragma once

#include <stdbool.h>
#include <glib.h>

/* Sends @state ("READY=1\nSTATUS=...") to the service manager. False when there is none
 * ($NOTIFY_SOCKET unset) or the datagram could not be sent; nothing else to do then. */
bool vmb_notify(const char *state);
/* The watchdog interval the manager asked for ($WATCHDOG_USEC, for this process when
 * $WATCHDOG_PID is set), in microseconds; 0 when there is none. */
guint64 vmb_notify_watchdog_usec(void);
