// SPDX-License-Identifier: LGPL-2.1-or-later
// What a guest's screen shows, from a screenshot (dom_lifecycle_screenshot): whether it is
// still blank, for console-ready.
#pragma once

#include <stdbool.h>
#include <glib.h>

/* Largest screen read: a side, and the pixels in all (a 16 MiB VGA framebuffer's worth). A
 * fuzz build reads at most 256×256 pixels: the same checks and paths, but a small
 * compressed image that inflates to a whole screen costs the fuzzer microseconds, not the
 * tens of milliseconds that made it try a few hundred inputs a second. */
#define DOM_SCREEN_MAX_SIDE 8192
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define DOM_SCREEN_MAX_PIXELS (256u * 256u)
#else
#define DOM_SCREEN_MAX_PIXELS (4096u * 4096u)
#endif

/* Whether @image, a PNG (8-bit RGB or RGBA, as QEMU's screendump writes through libvirt) or
 * a binary PPM, is one flat colour. The guest draws what is in it: a malformed, unsupported
 * or oversized image is VMB_ERROR_INVALID, and reading stops at the first second colour. */
bool dom_screen_blank(GBytes *image, bool *ret_blank, GError **error);
