// SPDX-License-Identifier: LGPL-2.1-or-later
// Persistent disks are found by name in the disks pool: "<prefix>persist-<template>@<owner>
// .qcow2" (template names hold no '@'), with libvirt's sizes.
#include "dom-disks.h"

#include <string.h>

#include "dom-storage.h"
#include "dom-virt.h"

void
dom_disk_free(DomDisk *disk)
{
    if (!disk)
        return;
    g_free(disk->volume);
    g_free(disk->template_name);
    g_free(disk->owner);
    g_free(disk->path);
    g_free(disk);
}

/* The disk named @name, or NULL when it is no persistent disk of ours. */
static DomDisk *
parse_name(const char *prefix, const char *name)
{
    g_autofree char *head = g_strconcat(prefix, "persist-", NULL);
    g_autofree char *rest = NULL;
    char *at;
    DomDisk *disk;

    if (!g_str_has_prefix(name, head) || !g_str_has_suffix(name, ".qcow2"))
        return NULL;
    rest = g_strndup(name + strlen(head), strlen(name) - strlen(head) - strlen(".qcow2"));
    at = strchr(rest, '@');
    if (!at || at == rest || !at[1])
        return NULL;
    *at = '\0';
    disk = g_new0(DomDisk, 1);
    disk->volume = g_strdup(name);
    disk->template_name = g_strdup(rest);
    disk->owner = g_strdup(at + 1);
    return disk;
}

static gint
by_owner_template(gconstpointer a, gconstpointer b)
{
    const DomDisk *x = *(DomDisk *const *) a, *y = *(DomDisk *const *) b;
    int c = strcmp(x->owner, y->owner);

    return c ? c : strcmp(x->template_name, y->template_name);
}

/**
 * dom_disks_list:
 * @conn: a connection
 * @prefix: the configured name prefix
 * @error: return location for an error
 *
 * Refreshes the disks pool first, so that a volume removed behind libvirt's back is gone.
 *
 * Returns: (transfer full) (element-type DomDisk): the persistent disks, or NULL.
 */
GPtrArray *
dom_disks_list(virConnectPtr conn, const char *prefix, GError **error)
{
    g_autoptr(virStoragePool) pool = NULL;
    g_autoptr(GPtrArray) out = NULL;
    virStorageVolPtr *vols = NULL;
    int n;

    if (!dom_storage_refresh(conn, prefix, DOM_POOL_DISKS, error) ||
        !(pool = dom_storage_pool(conn, prefix, DOM_POOL_DISKS, error)))
        return NULL;
    n = virStoragePoolListAllVolumes(pool, &vols, 0);
    if (n < 0) {
        dom_virt_set_error(error, "listing the volumes of the disks pool");
        return NULL;
    }
    out = g_ptr_array_new_with_free_func((GDestroyNotify) dom_disk_free);
    for (int i = 0; i < n; i++) {
        DomDisk *disk = parse_name(prefix, virStorageVolGetName(vols[i]));
        virStorageVolInfo info;
        if (disk && virStorageVolGetInfo(vols[i], &info) == 0) {
            g_autofree char *path = virStorageVolGetPath(vols[i]);
            disk->path = g_strdup(path);
            disk->capacity = info.capacity;
            disk->allocation = info.allocation;
            g_ptr_array_add(out, disk);
        } else {
            dom_disk_free(disk);
        }
        virStorageVolFree(vols[i]);
    }
    free(vols);
    g_ptr_array_sort(out, by_owner_template);
    return g_steal_pointer(&out);
}

/**
 * dom_disks_base_capacity:
 * @conn: a connection
 * @prefix: the configured name prefix
 * @base_image: a volume of the base pool
 * @ret_bytes: (out): its virtual size: what an overlay on it offers the guest
 * @error: return location for an error
 *
 * Returns: true on success.
 */
bool
dom_disks_base_capacity(virConnectPtr conn, const char *prefix, const char *base_image,
                        guint64 *ret_bytes, GError **error)
{
    g_autoptr(virStoragePool) pool = dom_storage_pool(conn, prefix, DOM_POOL_BASE, error);
    g_autoptr(virStorageVol) vol = pool ? virStorageVolLookupByName(pool, base_image) : NULL;
    virStorageVolInfo info;

    if (pool && (!vol || virStorageVolGetInfo(vol, &info) < 0)) {
        dom_virt_set_error(error, "reading base image '%s'", base_image);
        return false;
    }
    if (!pool)
        return false;
    *ret_bytes = info.capacity;
    return true;
}
