// SPDX-License-Identifier: LGPL-2.1-or-later
// Bounded waits on work that may hang (a libvirt call has no timeout of its own): the work
// runs on a worker thread, the caller waits for it at most so long. A caller that gives up
// hands the work its data: work not started yet never runs, work under way finishes on its
// own (its own undo included) and then frees the data.
#pragma once

#include <stdbool.h>
#include <glib.h>

typedef struct VmbBounded VmbBounded;

/* Does the work, leaving its results in @data. */
typedef void (*VmbBoundedFunc)(gpointer data);

VmbBounded *vmb_bounded_new(guint max_threads);
/* Waits for every job; queued jobs whose callers gave up are freed without running. */
void vmb_bounded_free(VmbBounded *b);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmbBounded, vmb_bounded_free)

bool vmb_bounded_run(VmbBounded *b, VmbBoundedFunc fn, gpointer data, GDestroyNotify free_data,
                     guint timeout_ms, bool *ret_started);
