// SPDX-License-Identifier: LGPL-2.1-or-later
// A thread that runs one function every so many seconds until it is stopped: the reaper's
// and the janitor's clock.
#pragma once

#include <glib.h>

typedef struct VmbPeriodic VmbPeriodic;

typedef void (*VmbPeriodicFunc)(gpointer data);

/* Runs @fn(@data) every @interval_s seconds (at least 1), the first time one interval from
 * now, on a thread named @name. */
VmbPeriodic *vmb_periodic_start(const char *name, unsigned interval_s, VmbPeriodicFunc fn,
                                gpointer data);
/* Stops and joins the thread (a run under way finishes first). */
void vmb_periodic_stop(VmbPeriodic *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmbPeriodic, vmb_periodic_stop)
