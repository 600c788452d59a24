// SPDX-License-Identifier: LGPL-2.1-or-later
// Crash points: read VMB_CRASH_AT once (not VMBROKER_*: the config loader owns that
// namespace and refuses unknown names), then compare names at each point.
#include "vmb-crash.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

/**
 * vmb_crash_point:
 * @point: the name of this point, e.g. "create:after-define"
 *
 * Kills the process with SIGKILL (no cleanup, no atexit, like a power cut of the broker)
 * when VMB_CRASH_AT names @point; returns otherwise.
 */
void
vmb_crash_point(const char *point)
{
    static const char *at;
    static gsize done;

    if (g_once_init_enter(&done)) {
        at = g_getenv("VMB_CRASH_AT");
        g_once_init_leave(&done, 1);
    }
    if (at && strcmp(at, point) == 0)
        raise(SIGKILL);
}
