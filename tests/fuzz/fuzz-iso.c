// SPDX-License-Identifier: LGPL-2.1-or-later
// The ISO head check (broker/util/vmb-iso.c) on any bytes: the first 8 bytes pick the file
// size the check is told (so short heads of long files are reached), the rest is the head.
#include <string.h>
#include <glib.h>

#include "fuzz.h"
#include "vmb-iso.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GError) error = NULL;
    guint64 file_size = 0;
    const uint8_t *head = data;
    size_t len = size;

    if (size >= 8) {
        memcpy(&file_size, data, 8);
        head = data + 8;
        len = size - 8;
    }
    /* The caller never passes more than the head, nor more than the file. */
    len = MIN(len, (size_t) VMB_ISO_HEAD_BYTES);
    file_size = MAX(file_size, (guint64) len);
    (void) vmb_iso_check(head, len, file_size, &error);
    /* And as the caller does: the whole input is the file. */
    g_clear_error(&error);
    (void) vmb_iso_check(data, MIN(size, (size_t) VMB_ISO_HEAD_BYTES), size, &error);
    return 0;
}
