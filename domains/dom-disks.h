// SPDX-License-Identifier: LGPL-2.1-or-later
// Users' persistent disks: the qcow2 overlays of persistent overlay templates, one per user
// and template, in vmbroker's disks pool (dom_storage_persistent_volume_name()).
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <libvirt/libvirt.h>

typedef struct {
    char *volume;         /* its name in the disks pool */
    char *template_name;  /* the template it belongs to */
    char *owner;          /* the owner's user name ('/' written as '_') */
    char *path;
    guint64 capacity;     /* bytes the guest sees */
    guint64 allocation;   /* bytes it takes on the host */
} DomDisk;

void dom_disk_free(DomDisk *disk);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DomDisk, dom_disk_free)

/* Every persistent disk in the pool (element-type DomDisk), by owner then template. */
GPtrArray *dom_disks_list(virConnectPtr conn, const char *prefix, GError **error);
/* The virtual size of base image @base_image (a volume of the base pool). */
bool dom_disks_base_capacity(virConnectPtr conn, const char *prefix, const char *base_image,
                             guint64 *ret_bytes, GError **error);
