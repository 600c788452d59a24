// SPDX-License-Identifier: LGPL-2.1-or-later
// Recognizes a bootable ISO 9660 image from its first sectors: the primary volume
// descriptor, and an El Torito boot record or a hybrid MBR. Everything else is refused
// with a reason a person can act on (a qcow2 or VMDK disk, an empty or truncated file).
#pragma once

#include <stdbool.h>
#include <glib.h>

/* Bytes of a file vmb_iso_check needs to see: the system area and the first descriptors. */
#define VMB_ISO_HEAD_BYTES (32768 + 2 * 2048)

/* @head: the file's first min(@file_size, VMB_ISO_HEAD_BYTES) bytes. VMB_ERROR_UNPROCESSABLE
 * with the reason when it is not a bootable ISO of at least its declared size. */
bool vmb_iso_check(const guint8 *head, size_t head_len, guint64 file_size, GError **error);
