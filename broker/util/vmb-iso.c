// SPDX-License-Identifier: LGPL-2.1-or-later
// ISO 9660 (ECMA-119) sniffing. Sector 16 holds the primary volume descriptor; sector 17 an
// El Torito boot record when the disc boots that way; a hybrid image has an MBR signature
// in its first sector instead (or as well). Only fixed offsets are read: nothing here
// follows a pointer from the file, so no input can make it read out of bounds.
#include "vmb-iso.h"

#include <string.h>

#include "vmb-error.h"

#define SECTOR 2048
#define PVD_OFFSET (16 * SECTOR)
#define BOOT_RECORD_OFFSET (17 * SECTOR)

static guint32
le32(const guint8 *p)
{
    return (guint32) p[0] | (guint32) p[1] << 8 | (guint32) p[2] << 16 | (guint32) p[3] << 24;
}

static guint16
le16(const guint8 *p)
{
    return (guint16) (p[0] | p[1] << 8);
}

/**
 * vmb_iso_check:
 * @head: the start of the file
 * @head_len: bytes in @head
 * @file_size: the whole file's size
 * @error: return location for the reason
 *
 * Returns: true for a bootable ISO 9660 image no shorter than its volume says.
 */
bool
vmb_iso_check(const guint8 *head, size_t head_len, guint64 file_size, GError **error)
{
    const guint8 *pvd = head + PVD_OFFSET;
    guint64 volume_bytes;
    bool el_torito, mbr;

    if (file_size == 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNPROCESSABLE, "The file is empty.");
        return false;
    }
    if (head_len >= 4 && memcmp(head, "QFI\xfb", 4) == 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNPROCESSABLE,
                    "This is a qcow2 disk image, not an ISO.");
        return false;
    }
    if (head_len >= 4 && (memcmp(head, "KDMV", 4) == 0 || memcmp(head, "# Disk Descriptor", 4) == 0)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNPROCESSABLE,
                    "This is a VMDK disk image, not an ISO.");
        return false;
    }
    if (head_len < PVD_OFFSET + SECTOR) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNPROCESSABLE,
                    "The file is too short for an ISO (%" G_GUINT64_FORMAT " bytes): truncated, "
                    "or not an ISO.", file_size);
        return false;
    }
    if (pvd[0] != 1 || memcmp(pvd + 1, "CD001", 5) != 0 ||
        pvd[6] != 1) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNPROCESSABLE,
                    "This is not an ISO 9660 image (no primary volume descriptor).");
        return false;
    }
    /* Volume space size (both-endian at 80) times the logical block size (at 128). */
    volume_bytes = (guint64) le32(pvd + 80) * le16(pvd + 128);
    if (volume_bytes > file_size) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNPROCESSABLE,
                    "The ISO is truncated: its volume has %" G_GUINT64_FORMAT " bytes, the "
                    "upload %" G_GUINT64_FORMAT ".", volume_bytes, file_size);
        return false;
    }
    el_torito = head_len >= BOOT_RECORD_OFFSET + SECTOR &&
                head[BOOT_RECORD_OFFSET] == 0 &&
                memcmp(head + BOOT_RECORD_OFFSET + 1, "CD001", 5) == 0 &&
                memcmp(head + BOOT_RECORD_OFFSET + 7, "EL TORITO SPECIFICATION", 23) == 0;
    mbr = head[510] == 0x55 && head[511] == 0xaa;
    if (!el_torito && !mbr) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNPROCESSABLE,
                    "The ISO does not boot (no El Torito boot record, no hybrid MBR).");
        return false;
    }
    return true;
}
