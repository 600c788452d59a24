// SPDX-License-Identifier: LGPL-2.1-or-later
// Base images: the volumes of vmbroker's base pool that overlay templates name. An uploaded
// file becomes one only after qemu-img has found it to be what it was declared to be.
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <libvirt/libvirt.h>

typedef struct {
    char *name;
    char *format;         /* "qcow2", "raw" (libvirt's reading) */
    char *path;
    guint64 capacity;     /* virtual size */
    guint64 allocation;   /* bytes on the host */
} DomImage;

void dom_image_free(DomImage *img);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DomImage, dom_image_free)

/* Checks file @path with qemu-img (opened as @format, never probed; bounded in memory and
 * CPU): it is a @format image ("qcow2" or "raw") with no backing file and no external data
 * file, of at most @max_virtual bytes. VMB_ERROR_UNPROCESSABLE (words for the uploader) or
 * VMB_ERROR_TOO_LARGE otherwise. */
bool dom_images_check(const char *path, const char *format, guint64 max_virtual,
                      guint64 *ret_virtual, GError **error);
/* The base pool's volumes (element-type DomImage), by name; the pool is refreshed first. */
GPtrArray *dom_images_list(virConnectPtr conn, const char *prefix, GError **error);
/* How many volumes of the disks pool are overlays of @base_path. */
int dom_images_overlays(virConnectPtr conn, const char *prefix, const char *base_path,
                        GError **error);
