// SPDX-License-Identifier: LGPL-2.1-or-later
// The screenshot reader (domains/dom-screen.c): the guest draws what QEMU's screendump
// encodes, so the PNG and PPM readers take the input as it comes (CRCs are not read, so
// the fuzzer reaches the pixels). Whatever it is, the answer is a verdict or an error of
// kind INVALID, within the memory and work of one screen at most.
#include <glib.h>

#include "dom-screen.h"
#include "fuzz.h"
#include "vmb-error.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GBytes) image = g_bytes_new(data, size);
    g_autoptr(GError) error = NULL;
    bool blank = false;

    if (!dom_screen_blank(image, &blank, &error))
        g_assert(error && error->domain == VMB_ERROR && error->code == VMB_ERROR_INVALID);
    else
        g_assert(!error);
    return 0;
}
