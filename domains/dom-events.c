// SPDX-License-Identifier: LGPL-2.1-or-later
// The libvirt event loop. libvirt needs an event implementation registered before a
// connection opens for that connection to deliver events and run keepalive; one thread runs
// virEventRunDefaultImpl() for the life of the process (libvirt cannot unregister it).
#include "dom-events.h"

#include <libvirt/libvirt.h>

#include "dom-virt.h"
#include "vmb-error.h"

static gsize loop_started;
static bool loop_ok; /* written once inside the g_once section */

static gpointer
loop_main(gpointer data)
{
    for (;;)
        if (virEventRunDefaultImpl() < 0)
            g_usleep(100 * 1000); /* a failed poll must not spin */
    return NULL;
}

/**
 * dom_events_loop_start:
 * @error: return location for an error
 *
 * Registers libvirt's default event implementation and starts the thread running it. Call
 * it before opening the connections that should deliver events, and after blocking the
 * signals the caller waits for (the thread inherits the signal mask).
 *
 * Returns: true when the loop runs.
 */
bool
dom_events_loop_start(GError **error)
{
    if (g_once_init_enter(&loop_started)) {
        dom_virt_init();
        if (virEventRegisterDefaultImpl() == 0) {
            g_thread_unref(g_thread_new("vmb-libvirt-events", loop_main, NULL));
            loop_ok = true;
        }
        g_once_init_leave(&loop_started, 1);
    }
    if (!loop_ok)
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_INTERNAL,
                    "cannot register libvirt's event loop");
    return loop_ok;
}

/**
 * dom_events_loop_running:
 *
 * Returns: true once dom_events_loop_start() succeeded.
 */
bool
dom_events_loop_running(void)
{
    return loop_ok;
}
