// SPDX-License-Identifier: LGPL-2.1-or-later
// Base images: checking an uploaded file with `qemu-img info` before it becomes a volume,
// listing the base pool, and finding the overlays that still need an image.
#include "dom-images.h"

#include <string.h>
#include <sys/resource.h>

#include "dom-storage.h"
#include "dom-virt.h"

/* qemu-img reads an untrusted header: bounded like any parser of client input. */
#define QEMU_IMG_MEMORY (G_GUINT64_CONSTANT(1) << 30)
#define QEMU_IMG_CPU_S 30

void
dom_image_free(DomImage *img)
{
    if (!img)
        return;
    g_free(img->name);
    g_free(img->format);
    g_free(img->path);
    g_free(img);
}

static void
limit_child(gpointer data)
{
    struct rlimit mem = { QEMU_IMG_MEMORY, QEMU_IMG_MEMORY };
    struct rlimit cpu = { QEMU_IMG_CPU_S, QEMU_IMG_CPU_S };

    setrlimit(RLIMIT_AS, &mem);
    setrlimit(RLIMIT_CPU, &cpu);
}

/* `qemu-img info --output=json` of @path opened as @format, or NULL (UNPROCESSABLE when
 * qemu-img cannot read it so). */
static json_object *
qemu_img_info(const char *path, const char *format, GError **error)
{
    const char *argv[] = { "qemu-img", "info", "--output=json", "-U", "-f", format, "--",
                           path, NULL };
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    g_autoptr(GError) local = NULL;
    json_object *root;
    int status = 0;

    if (!g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_CLOEXEC_PIPES,
                      limit_child, NULL, &out, &err, &status, &local)) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_INTERNAL, "running qemu-img on %s: %s",
                    path, local->message);
        return NULL;
    }
    if (!g_spawn_check_wait_status(status, NULL)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNPROCESSABLE,
                    "This file cannot be read as a %s image.", format);
        return NULL;
    }
    root = json_tokener_parse(out);
    if (!root)
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_INTERNAL, "qemu-img said no JSON on %s",
                    path);
    return root;
}

/**
 * dom_images_check:
 * @path: the uploaded file
 * @format: what the uploader declared: "qcow2" or "raw"
 * @max_virtual: the largest virtual size allowed
 * @ret_virtual: (out) (optional): its virtual size
 * @error: return location for an error
 *
 * Returns: true when @path may become a base image.
 */
bool
dom_images_check(const char *path, const char *format, guint64 max_virtual,
                 guint64 *ret_virtual, GError **error)
{
    g_autoptr(json_object) info = qemu_img_info(path, format, error);
    json_object *v, *spec, *data;
    guint64 size;

    if (!info)
        return false;
    if (!json_object_object_get_ex(info, "format", &v) ||
        g_strcmp0(json_object_get_string(v), format) != 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNPROCESSABLE,
                    "The file is not the %s image it was declared to be.", format);
        return false;
    }
    if (json_object_object_get_ex(info, "backing-filename", &v) ||
        json_object_object_get_ex(info, "full-backing-filename", &v)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNPROCESSABLE,
                    "The image has a backing file; a base image must stand alone "
                    "(convert it to a standalone image first).");
        return false;
    }
    if (json_object_object_get_ex(info, "format-specific", &spec) &&
        json_object_object_get_ex(spec, "data", &data) &&
        json_object_object_get_ex(data, "data-file", &v)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNPROCESSABLE,
                    "The image keeps its data in an external file; a base image must stand "
                    "alone.");
        return false;
    }
    size = json_object_object_get_ex(info, "virtual-size", &v)
               ? (guint64) json_object_get_int64(v) : G_MAXUINT64;
    if (size > max_virtual) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_TOO_LARGE,
                    "The image's virtual size is over the %" G_GUINT64_FORMAT " bytes allowed.",
                    max_virtual);
        return false;
    }
    if (ret_virtual)
        *ret_virtual = size;
    return true;
}

static gint
by_name(gconstpointer a, gconstpointer b)
{
    return strcmp((*(DomImage *const *) a)->name, (*(DomImage *const *) b)->name);
}

/* A volume's format and backing path, as libvirt reads them. */
static bool
volume_facts(virStorageVolPtr vol, char **ret_format, char **ret_backing)
{
    g_autofree char *xml = virStorageVolGetXMLDesc(vol, 0);
    g_autoptr(xmlDoc) doc = xml ? dom_virt_parse_xml(xml, "a storage volume", NULL) : NULL;

    if (!doc)
        return false;
    if (ret_format)
        *ret_format = dom_virt_xpath_string(doc, "/volume/target/format/@type");
    if (ret_backing)
        *ret_backing = dom_virt_xpath_string(doc, "/volume/backingStore/path");
    return true;
}

/* The volumes of one of vmbroker's pools, refreshed: *@ret_vols (free each, then the
 * array) holds *@ret_n of them. */
static bool
pool_volumes(virConnectPtr conn, const char *prefix, DomPoolKind kind,
             virStorageVolPtr **ret_vols, int *ret_n, GError **error)
{
    g_autoptr(virStoragePool) pool = NULL;

    if (!dom_storage_refresh(conn, prefix, kind, error) ||
        !(pool = dom_storage_pool(conn, prefix, kind, error)))
        return false;
    *ret_n = virStoragePoolListAllVolumes(pool, ret_vols, 0);
    if (*ret_n < 0) {
        dom_virt_set_error(error, "listing the volumes of the %s pool",
                           dom_storage_pool_kind_to_string(kind));
        return false;
    }
    return true;
}

/**
 * dom_images_list:
 * @conn: a connection
 * @prefix: the configured name prefix
 * @error: return location for an error
 *
 * Returns: (transfer full) (element-type DomImage): the base images, by name, or NULL.
 */
GPtrArray *
dom_images_list(virConnectPtr conn, const char *prefix, GError **error)
{
    virStorageVolPtr *vols = NULL;
    int n = 0;
    GPtrArray *out;

    if (!pool_volumes(conn, prefix, DOM_POOL_BASE, &vols, &n, error))
        return NULL;
    out = g_ptr_array_new_with_free_func((GDestroyNotify) dom_image_free);
    for (int i = 0; i < n; i++) {
        DomImage *img = g_new0(DomImage, 1);
        virStorageVolInfo info;
        char *path = virStorageVolGetPath(vols[i]);
        img->name = g_strdup(virStorageVolGetName(vols[i]));
        img->path = g_strdup(path);
        free(path);
        if (virStorageVolGetInfo(vols[i], &info) == 0) {
            img->capacity = info.capacity;
            img->allocation = info.allocation;
        }
        volume_facts(vols[i], &img->format, NULL);
        g_ptr_array_add(out, img);
        virStorageVolFree(vols[i]);
    }
    free(vols);
    g_ptr_array_sort(out, by_name);
    return out;
}

/**
 * dom_images_overlays:
 * @conn: a connection
 * @prefix: the configured name prefix
 * @base_path: a base image's path
 * @error: return location for an error
 *
 * Returns: how many disks (persistent or a VM's own) are overlays of @base_path, or -1.
 */
int
dom_images_overlays(virConnectPtr conn, const char *prefix, const char *base_path,
                    GError **error)
{
    virStorageVolPtr *vols = NULL;
    int n = 0, count = 0;

    if (!pool_volumes(conn, prefix, DOM_POOL_DISKS, &vols, &n, error))
        return -1;
    for (int i = 0; i < n; i++) {
        g_autofree char *backing = NULL;
        if (volume_facts(vols[i], NULL, &backing) && g_strcmp0(backing, base_path) == 0)
            count++;
        virStorageVolFree(vols[i]);
    }
    free(vols);
    return count;
}
