// SPDX-License-Identifier: LGPL-2.1-or-later
// vmbroker's storage pools and volumes through libvirt's storage API. Formats are always
// stated, never probed into use: an image whose real format disagrees is refused.
#include "dom-storage.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "dom-virt.h"
#include "vmb-error.h"

#define X(s) ((const xmlChar *) (s))

static const char *const pool_kind_names[] = {
    [DOM_POOL_ISOS] = "isos",
    [DOM_POOL_BASE] = "base",
    [DOM_POOL_DISKS] = "disks",
};
G_STATIC_ASSERT(G_N_ELEMENTS(pool_kind_names) == DOM_POOL_LAST);

/**
 * dom_storage_pool_kind_to_string:
 * @kind: a pool kind
 *
 * Returns: "isos", "base" or "disks" (the pool's suffix and folder), NULL out of range.
 */
const char *
dom_storage_pool_kind_to_string(DomPoolKind kind)
{
    if ((unsigned) kind >= DOM_POOL_LAST)
        return NULL;
    return pool_kind_names[kind];
}

/**
 * dom_storage_pool_kind_from_string:
 * @s: a pool kind's name
 *
 * Returns: the kind, or -1.
 */
int
dom_storage_pool_kind_from_string(const char *s)
{
    for (int i = 0; s && i < DOM_POOL_LAST; i++)
        if (strcmp(s, pool_kind_names[i]) == 0)
            return i;
    return -1;
}

/**
 * dom_storage_pool_name:
 * @prefix: the configured name prefix
 * @kind: which pool
 *
 * Returns: (transfer full): "<prefix>isos", "<prefix>base" or "<prefix>disks".
 */
char *
dom_storage_pool_name(const char *prefix, DomPoolKind kind)
{
    return g_strconcat(prefix, pool_kind_names[kind], NULL);
}

static char *
pool_xml(const char *name, const char *path, DomPoolOwner owner)
{
    g_autoptr(xmlDoc) doc = xmlNewDoc(X("1.0"));
    g_autoptr(xmlBuffer) buf = xmlBufferCreate();
    xmlNode *pool = xmlNewNode(NULL, X("pool"));
    xmlNode *target;
    xmlNode *perms;

    xmlDocSetRootElement(doc, pool);
    xmlNewProp(pool, X("type"), X("dir"));
    xmlNewTextChild(pool, NULL, X("name"), X(name));
    target = xmlNewChild(pool, NULL, X("target"), NULL);
    xmlNewTextChild(target, NULL, X("path"), X(path));
    /* vmbroker writes uploads into the folder itself (so owns it where it runs beside
     * libvirtd); QEMU runs as another user and only traverses it to open its files. */
    perms = xmlNewChild(target, NULL, X("permissions"), NULL);
    xmlNewTextChild(perms, NULL, X("mode"), X("0711"));
    if (owner.uid >= 0) {
        g_autofree char *uid = g_strdup_printf("%ld", owner.uid);
        xmlNewTextChild(perms, NULL, X("owner"), X(uid));
    }
    if (owner.gid >= 0) {
        g_autofree char *gid = g_strdup_printf("%ld", owner.gid);
        xmlNewTextChild(perms, NULL, X("group"), X(gid));
    }
    xmlNodeDump(buf, doc, pool, 0, 1);
    return g_strdup((const char *) xmlBufferContent(buf));
}

static bool
ensure_pool(virConnectPtr conn, const char *name, const char *path, DomPoolOwner owner,
            GError **error)
{
    g_autoptr(virStoragePool) pool = virStoragePoolLookupByName(conn, name);
    int active;

    if (!pool) {
        g_autofree char *xml = NULL;

        if (virGetLastErrorCode() != VIR_ERR_NO_STORAGE_POOL) {
            dom_virt_set_error(error, "looking up storage pool '%s'", name);
            return false;
        }
        xml = pool_xml(name, path, owner);
        pool = virStoragePoolDefineXML(conn, xml, 0);
        if (!pool) {
            dom_virt_set_error(error, "defining storage pool '%s' at %s", name, path);
            return false;
        }
        if (virStoragePoolBuild(pool, 0) < 0) {
            dom_virt_set_error(error, "building storage pool '%s' at %s", name, path);
            /* Best effort: a half-made pool would make the next attempt fail differently. */
            virStoragePoolUndefine(pool);
            return false;
        }
        if (virStoragePoolSetAutostart(pool, 1) < 0) {
            dom_virt_set_error(error, "marking storage pool '%s' autostart", name);
            return false;
        }
    } else {
        g_autofree char *desc = virStoragePoolGetXMLDesc(pool, 0);
        g_autoptr(xmlDoc) doc = NULL;
        g_autofree char *have = NULL;

        if (!desc) {
            dom_virt_set_error(error, "reading storage pool '%s'", name);
            return false;
        }
        doc = dom_virt_parse_xml(desc, "a storage pool", error);
        if (!doc)
            return false;
        have = dom_virt_xpath_string(doc, "/pool/target/path");
        /* Someone else's pool under our name: refuse rather than write into it. */
        if (g_strcmp0(have, path) != 0) {
            g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_CONFIG,
                        "storage pool '%s' exists at %s, not at %s: is another vmbroker using "
                        "the same name prefix?",
                        name, have ? have : "(no path)", path);
            return false;
        }
    }
    active = virStoragePoolIsActive(pool);
    if (active < 0) {
        dom_virt_set_error(error, "querying storage pool '%s'", name);
        return false;
    }
    if (!active && virStoragePoolCreate(pool, 0) < 0) {
        dom_virt_set_error(error, "starting storage pool '%s'", name);
        return false;
    }
    if (active && virStoragePoolRefresh(pool, 0) < 0) {
        dom_virt_set_error(error, "refreshing storage pool '%s'", name);
        return false;
    }
    return true;
}

/**
 * dom_storage_ensure_pools:
 * @conn: a connection
 * @prefix: the configured name prefix
 * @storage_dir: the configured storage folder; the pools live in its isos/, base/, disks/
 * @owner: owner and group of the folders of pools defined now (an existing pool is left as
 *   it is)
 * @error: return location for an error
 *
 * Defines (persistent, autostart), builds and starts vmbroker's dir pools where missing,
 * starts inactive ones and refreshes active ones. A pool of our name at another path is a
 * configuration error. @storage_dir is created mode 0711 if missing; every folder above it
 * must already be searchable by QEMU's user.
 *
 * Returns: true on success.
 */
bool
dom_storage_ensure_pools(virConnectPtr conn, const char *prefix, const char *storage_dir,
                         DomPoolOwner owner, GError **error)
{
    if (!g_path_is_absolute(storage_dir)) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_CONFIG,
                    "storage.dir must be an absolute path, not '%s'", storage_dir);
        return false;
    }
    if (g_mkdir_with_parents(storage_dir, 0711) < 0) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_CONFIG, "creating storage folder %s: %s",
                    storage_dir, g_strerror(errno));
        return false;
    }
    return dom_storage_ensure_remote_pools(conn, prefix, storage_dir, owner, error);
}

/**
 * dom_storage_ensure_remote_pools:
 * @conn: a connection, to a libvirtd on another machine maybe
 * @prefix: the configured name prefix
 * @storage_dir: where the pools' folders go on that machine (libvirt makes them: its
 *   parent must exist there)
 * @owner: as for dom_storage_ensure_pools()
 * @error: return location for an error
 *
 * dom_storage_ensure_pools() without making @storage_dir on this machine.
 *
 * Returns: true on success.
 */
bool
dom_storage_ensure_remote_pools(virConnectPtr conn, const char *prefix, const char *storage_dir,
                                DomPoolOwner owner, GError **error)
{
    for (int k = 0; k < DOM_POOL_LAST; k++) {
        g_autofree char *name = dom_storage_pool_name(prefix, (DomPoolKind) k);
        g_autofree char *path = g_build_filename(storage_dir, pool_kind_names[k], NULL);

        if (!ensure_pool(conn, name, path, owner, error))
            return false;
    }
    return true;
}

/**
 * dom_storage_pool:
 * @conn: a connection
 * @prefix: the configured name prefix
 * @kind: which pool
 * @error: return location for an error
 *
 * Returns: (transfer full): the pool, or NULL with a not-found error.
 */
virStoragePoolPtr
dom_storage_pool(virConnectPtr conn, const char *prefix, DomPoolKind kind, GError **error)
{
    g_autofree char *name = dom_storage_pool_name(prefix, kind);
    virStoragePoolPtr pool = virStoragePoolLookupByName(conn, name);

    if (!pool)
        dom_virt_set_error(error, "looking up storage pool '%s'", name);
    return pool;
}

/**
 * dom_storage_volume:
 * @conn: a connection
 * @prefix: the configured name prefix
 * @kind: which pool
 * @vol_name: the volume
 * @error: return location for an error (not found, among others)
 *
 * Returns: (transfer full): the volume, or NULL.
 */
virStorageVolPtr
dom_storage_volume(virConnectPtr conn, const char *prefix, DomPoolKind kind, const char *vol_name,
                   GError **error)
{
    g_autoptr(virStoragePool) pool = dom_storage_pool(conn, prefix, kind, error);
    virStorageVolPtr vol;

    if (!pool)
        return NULL;
    vol = virStorageVolLookupByName(pool, vol_name);
    if (!vol)
        dom_virt_set_error(error, "looking up volume '%s' in storage pool '%s%s'", vol_name,
                           prefix, pool_kind_names[kind]);
    return vol;
}

static char *
volume_path(virStorageVolPtr vol, GError **error)
{
    const char *name = virStorageVolGetName(vol);
    char *path = virStorageVolGetPath(vol);

    if (!path)
        dom_virt_set_error(error, "reading the path of volume '%s'", name);
    return path;
}

/**
 * dom_storage_volume_path:
 * @conn: a connection
 * @prefix: the configured name prefix
 * @kind: the pool holding the volume
 * @vol_name: the volume's name
 * @error: return location for an error
 *
 * Returns: (transfer full): the volume's file path, or NULL (not-found when missing).
 */
char *
dom_storage_volume_path(virConnectPtr conn, const char *prefix, DomPoolKind kind,
                        const char *vol_name, GError **error)
{
    g_autoptr(virStorageVol) vol = dom_storage_volume(conn, prefix, kind, vol_name, error);

    return vol ? volume_path(vol, error) : NULL;
}

static char *
vol_format(virStorageVolPtr vol, GError **error)
{
    const char *name = virStorageVolGetName(vol);
    g_autofree char *xml = virStorageVolGetXMLDesc(vol, 0);
    g_autoptr(xmlDoc) doc = NULL;
    char *format;

    if (!xml) {
        dom_virt_set_error(error, "reading volume '%s'", name);
        return NULL;
    }
    doc = dom_virt_parse_xml(xml, "a storage volume", error);
    if (!doc)
        return NULL;
    format = dom_virt_xpath_string(doc, "/volume/target/format/@type");
    if (!format)
        format = g_strdup("raw");
    return format;
}

/**
 * dom_storage_volume_format:
 * @conn: a connection
 * @path: a volume's path
 * @error: return location for an error
 *
 * libvirt's view of a volume's format, as its pool's last refresh found it ("raw", "qcow2",
 * "iso", ...).
 *
 * Returns: (transfer full): the format, or NULL on error.
 */
char *
dom_storage_volume_format(virConnectPtr conn, const char *path, GError **error)
{
    g_autoptr(virStorageVol) vol = virStorageVolLookupByPath(conn, path);

    if (!vol) {
        dom_virt_set_error(error, "looking up volume %s", path);
        return NULL;
    }
    return vol_format(vol, error);
}

/* A volume's XML for virStorageVolCreateXML (format "qcow2" or "raw"; an overlay names its
 * backing image). */
char *
dom_storage_volume_xml(const char *name, guint64 capacity_bytes, const char *format,
                       const char *backing_path, const char *backing_format)
{
    g_autoptr(xmlDoc) doc = xmlNewDoc(X("1.0"));
    g_autoptr(xmlBuffer) buf = xmlBufferCreate();
    xmlNode *vol = xmlNewNode(NULL, X("volume"));
    xmlNode *n;
    char num[32];

    xmlDocSetRootElement(doc, vol);
    xmlNewTextChild(vol, NULL, X("name"), X(name));
    g_snprintf(num, sizeof(num), "%" G_GUINT64_FORMAT, capacity_bytes);
    n = xmlNewTextChild(vol, NULL, X("capacity"), X(num));
    xmlNewProp(n, X("unit"), X("bytes"));
    xmlNewTextChild(vol, NULL, X("allocation"), X("0"));
    n = xmlNewChild(vol, NULL, X("target"), NULL);
    n = xmlNewChild(n, NULL, X("format"), NULL);
    xmlNewProp(n, X("type"), X(format));
    if (backing_path) {
        n = xmlNewChild(vol, NULL, X("backingStore"), NULL);
        xmlNewTextChild(n, NULL, X("path"), X(backing_path));
        n = xmlNewChild(n, NULL, X("format"), NULL);
        xmlNewProp(n, X("type"), X(backing_format));
    }
    xmlNodeDump(buf, doc, vol, 0, 1);
    return g_strdup((const char *) xmlBufferContent(buf));
}

static char *
create_volume(virConnectPtr conn, const char *prefix, const char *xml, const char *vol_name,
              GError **error)
{
    g_autoptr(virStoragePool) pool = dom_storage_pool(conn, prefix, DOM_POOL_DISKS, error);
    g_autoptr(virStorageVol) vol = NULL;

    if (!pool)
        return NULL;
    vol = virStorageVolCreateXML(pool, xml, 0);
    if (!vol) {
        dom_virt_set_error(error, "creating volume '%s' in storage pool '%sdisks'", vol_name,
                           prefix);
        return NULL;
    }
    return volume_path(vol, error);
}

static bool
check_vol_name(const char *vol_name, GError **error)
{
    if (!vol_name[0] || strchr(vol_name, '/') || vol_name[0] == '.') {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_INVALID, "'%s' is not a usable volume name",
                    vol_name);
        return false;
    }
    return true;
}

/**
 * dom_storage_refresh:
 * @conn: a connection
 * @prefix: the configured name prefix
 * @kind: which of vmbroker's pools
 * @error: return location for an error
 *
 * Returns: true when the pool's volume list is current.
 */
bool
dom_storage_refresh(virConnectPtr conn, const char *prefix, DomPoolKind kind, GError **error)
{
    g_autoptr(virStoragePool) pool = dom_storage_pool(conn, prefix, kind, error);

    if (!pool)
        return false;
    if (virStoragePoolRefresh(pool, 0) < 0) {
        dom_virt_set_error(error, "refreshing pool '%s'", virStoragePoolGetName(pool));
        return false;
    }
    return true;
}

/**
 * dom_storage_create_blank:
 * @conn: a connection
 * @prefix: the configured name prefix
 * @vol_name: name of the new volume in the disks pool, e.g. "<domain>-disk0.qcow2"
 * @size_gib: its virtual size
 * @error: return location for an error
 *
 * Creates an empty, sparse qcow2 volume.
 *
 * Returns: (transfer full): the new volume's path, or NULL on error.
 */
char *
dom_storage_create_blank(virConnectPtr conn, const char *prefix, const char *vol_name,
                         guint size_gib, GError **error)
{
    g_autofree char *xml = NULL;

    if (!check_vol_name(vol_name, error))
        return NULL;
    xml = dom_storage_volume_xml(vol_name, (guint64) size_gib << 30, "qcow2", NULL, NULL);
    return create_volume(conn, prefix, xml, vol_name, error);
}

/**
 * dom_storage_create_overlay:
 * @conn: a connection
 * @prefix: the configured name prefix
 * @vol_name: name of the new volume in the disks pool
 * @tmpl: an overlay template: its base image (in the base pool) and base format
 * @ret_backing_path: (out) (optional): the base image's path, for the domain XML
 * @error: return location for an error
 *
 * Creates a qcow2 overlay whose header names the base image and its format explicitly.
 * A base image whose format, as libvirt sees it, is not the template's is refused
 * (unprocessable): a raw image is never taken for qcow2 or the other way round.
 *
 * Returns: (transfer full): the overlay's path, or NULL on error.
 */
char *
dom_storage_create_overlay(virConnectPtr conn, const char *prefix, const char *vol_name,
                           const DomTemplate *tmpl, char **ret_backing_path, GError **error)
{
    g_autoptr(virStorageVol) base = NULL;
    g_autofree char *base_path = NULL;
    g_autofree char *have = NULL;
    g_autofree char *xml = NULL;
    const char *want = dom_template_image_format_to_string(tmpl->base_format);
    virStorageVolInfo info;
    char *path;

    if (tmpl->kind != DOM_TEMPLATE_KIND_OVERLAY) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_INVALID, "template '%s' is not an overlay template",
                    tmpl->name);
        return NULL;
    }
    if (!check_vol_name(vol_name, error))
        return NULL;
    base = dom_storage_volume(conn, prefix, DOM_POOL_BASE, tmpl->base_image, error);
    if (!base)
        return NULL;
    have = vol_format(base, error);
    if (!have)
        return NULL;
    if (strcmp(have, want) != 0) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_UNPROCESSABLE,
                    "base image '%s' of template '%s' is %s, but the template says %s",
                    tmpl->base_image, tmpl->name, have, want);
        return NULL;
    }
    if (virStorageVolGetInfo(base, &info) < 0) {
        dom_virt_set_error(error, "reading the size of base image '%s'", tmpl->base_image);
        return NULL;
    }
    base_path = volume_path(base, error);
    if (!base_path)
        return NULL;
    xml = dom_storage_volume_xml(vol_name, info.capacity, "qcow2", base_path, want);
    path = create_volume(conn, prefix, xml, vol_name, error);
    if (path && ret_backing_path)
        *ret_backing_path = g_steal_pointer(&base_path);
    return path;
}

/**
 * dom_storage_persistent_volume_name:
 * @prefix: the configured name prefix
 * @owner: the owner's user name
 * @tmpl: a persistent overlay template
 *
 * The one overlay volume a user keeps for @tmpl: "<prefix>persist-<template>@<owner>.qcow2".
 * Template names cannot hold '@', so two users or templates never share a name; '/' in
 * @owner becomes '_'.
 *
 * Returns: (transfer full): the volume name.
 */
char *
dom_storage_persistent_volume_name(const char *prefix, const char *owner,
                                   const DomTemplate *tmpl)
{
    g_autofree char *safe = g_strdup(owner);

    g_strdelimit(safe, "/", '_');
    return g_strconcat(prefix, "persist-", tmpl->name, "@", safe, ".qcow2", NULL);
}

/**
 * dom_storage_reuse_overlay:
 * @conn: a connection
 * @prefix: the configured name prefix
 * @vol_name: the overlay's name (dom_storage_persistent_volume_name())
 * @tmpl: a persistent overlay template
 * @ret_backing_path: (out) (optional): the base image's path, for the domain XML
 * @ret_created: (out) (optional): whether the overlay was made now
 * @error: return location for an error
 *
 * Re-attaches a user's persistent overlay: returns the existing volume when it is a qcow2
 * overlay of the template's base image, or creates it as dom_storage_create_overlay()
 * does. An existing volume of another format or on another base is refused (conflict)
 * rather than silently replaced: it holds the user's data.
 *
 * Returns: (transfer full): the overlay's path, or NULL on error.
 */
char *
dom_storage_reuse_overlay(virConnectPtr conn, const char *prefix, const char *vol_name,
                          const DomTemplate *tmpl, char **ret_backing_path, bool *ret_created,
                          GError **error)
{
    g_autoptr(virStoragePool) pool = NULL;
    g_autoptr(virStorageVol) vol = NULL;
    g_autofree char *xml = NULL;
    g_autofree char *base_path = NULL;
    g_autofree char *have_fmt = NULL, *have_base = NULL, *have_base_fmt = NULL;
    g_autoptr(xmlDoc) doc = NULL;
    char *path;

    if (!check_vol_name(vol_name, error))
        return NULL;
    pool = dom_storage_pool(conn, prefix, DOM_POOL_DISKS, error);
    if (!pool)
        return NULL;
    vol = virStorageVolLookupByName(pool, vol_name);
    if (!vol) {
        if (virGetLastErrorCode() != VIR_ERR_NO_STORAGE_VOL) {
            dom_virt_set_error(error, "looking up volume '%s'", vol_name);
            return NULL;
        }
        path = dom_storage_create_overlay(conn, prefix, vol_name, tmpl, ret_backing_path, error);
        if (path && ret_created)
            *ret_created = true;
        return path;
    }

    base_path = dom_storage_volume_path(conn, prefix, DOM_POOL_BASE, tmpl->base_image, error);
    if (!base_path)
        return NULL;
    xml = virStorageVolGetXMLDesc(vol, 0);
    if (!xml) {
        dom_virt_set_error(error, "reading volume '%s'", vol_name);
        return NULL;
    }
    doc = dom_virt_parse_xml(xml, "a storage volume", error);
    if (!doc)
        return NULL;
    have_fmt = dom_virt_xpath_string(doc, "/volume/target/format/@type");
    have_base = dom_virt_xpath_string(doc, "/volume/backingStore/path");
    have_base_fmt = dom_virt_xpath_string(doc, "/volume/backingStore/format/@type");
    if (g_strcmp0(have_fmt, "qcow2") != 0 || g_strcmp0(have_base, base_path) != 0 ||
        g_strcmp0(have_base_fmt, dom_template_image_format_to_string(tmpl->base_format)) != 0) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_CONFLICT,
                    "volume '%s' exists but is not a qcow2 overlay of %s (%s): left alone",
                    vol_name, base_path, dom_template_image_format_to_string(tmpl->base_format));
        return NULL;
    }
    path = volume_path(vol, error);
    if (!path)
        return NULL;
    if (ret_backing_path)
        *ret_backing_path = g_steal_pointer(&base_path);
    if (ret_created)
        *ret_created = false;
    return path;
}

/**
 * dom_storage_delete_path:
 * @conn: a connection
 * @path: a volume's path
 * @error: return location for an error
 *
 * Deletes the volume at @path through its pool. A volume that is already gone is not an
 * error, so that deleting a VM can be retried.
 *
 * Returns: true on success.
 */
bool
dom_storage_delete_path(virConnectPtr conn, const char *path, GError **error)
{
    g_autoptr(virStorageVol) vol = virStorageVolLookupByPath(conn, path);

    if (!vol) {
        if (virGetLastErrorCode() == VIR_ERR_NO_STORAGE_VOL)
            return true;
        dom_virt_set_error(error, "looking up volume %s", path);
        return false;
    }
    if (virStorageVolDelete(vol, 0) < 0) {
        dom_virt_set_error(error, "deleting volume %s", path);
        return false;
    }
    return true;
}

/**
 * dom_storage_file_format:
 * @path: an image file
 * @error: return location for an error
 *
 * qemu-img's view of what @path is ("raw", "qcow2", ...). Used to check files, never to
 * choose the format QEMU opens them with.
 *
 * Returns: (transfer full): the format, or NULL on error.
 */
char *
dom_storage_file_format(const char *path, GError **error)
{
    const char *argv[] = { "qemu-img", "info", "--output=json", "-U", "--", path, NULL };
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    g_autoptr(GError) local = NULL;
    g_autoptr(json_object) root = NULL;
    json_object *fmt;
    int status = 0;

    if (!g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_CLOEXEC_PIPES,
                      NULL, NULL, &out, &err, &status, &local)) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_INTERNAL, "running qemu-img on %s: %s", path,
                    local->message);
        return NULL;
    }
    if (!g_spawn_check_wait_status(status, NULL)) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_UNPROCESSABLE, "qemu-img cannot read %s: %s",
                    path, g_strstrip(err));
        return NULL;
    }
    root = json_tokener_parse(out);
    if (!root || !json_object_object_get_ex(root, "format", &fmt) ||
        !json_object_is_type(fmt, json_type_string)) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_INTERNAL, "qemu-img gave no format for %s", path);
        return NULL;
    }
    return g_strdup(json_object_get_string(fmt));
}

/**
 * dom_storage_check_iso:
 * @path: an ISO image file
 * @error: return location for an error
 *
 * An ISO is attached as a raw, read-only CD-ROM; a file that qemu-img sees as anything
 * but raw (say, a qcow2 header uploaded as an "ISO") is refused as unprocessable.
 *
 * Returns: true when @path is a raw image.
 */
bool
dom_storage_check_iso(const char *path, GError **error)
{
    g_autofree char *format = dom_storage_file_format(path, error);

    if (!format)
        return false;
    if (strcmp(format, "raw") != 0) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_UNPROCESSABLE,
                    "ISO %s is a %s image, not a raw ISO image", path, format);
        return false;
    }
    return true;
}

/* Whether @name is a volume of the base pool, refreshing the pool once when it is not (an
 * admin may just have copied the file into its folder). */
static bool
base_volume_present(virConnectPtr conn, const char *prefix, const char *name, bool *ret_present,
                    GError **error)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(virStoragePool) pool = dom_storage_pool(conn, prefix, DOM_POOL_BASE, &err);
    g_autoptr(virStorageVol) vol = NULL;

    if (!pool) {
        if (vmb_error_kind(err) != VMB_ERROR_NOT_FOUND) {
            g_propagate_error(error, g_steal_pointer(&err));
            return false;
        }
        *ret_present = false;
        return true;
    }
    vol = virStorageVolLookupByName(pool, name);
    if (!vol && virStoragePoolRefresh(pool, 0) == 0)
        vol = virStorageVolLookupByName(pool, name);
    if (!vol && virGetLastErrorCode() != VIR_ERR_NO_STORAGE_VOL) {
        dom_virt_set_error(error, "looking up volume '%s' in storage pool '%s%s'", name, prefix,
                           pool_kind_names[DOM_POOL_BASE]);
        return false;
    }
    *ret_present = vol != NULL;
    return true;
}

static bool
network_present(virConnectPtr conn, const char *name, bool *ret_present, GError **error)
{
    virNetworkPtr net = virNetworkLookupByName(conn, name);
    int active;

    if (!net) {
        if (virGetLastErrorCode() != VIR_ERR_NO_NETWORK) {
            dom_virt_set_error(error, "looking up network '%s'", name);
            return false;
        }
        *ret_present = false;
        return true;
    }
    active = virNetworkIsActive(net);
    virNetworkFree(net);
    *ret_present = active == 1;
    return true;
}

/**
 * dom_storage_template_need:
 * @conn: a connection to the host
 * @prefix: the configured name prefix
 * @tmpl: a template
 * @ret_need: (out): what the host lacks for @tmpl, DOM_NEED_NOTHING when nothing
 * @error: return location for an error
 *
 * Looks for what a guest of @tmpl needs before it is made: its base image in the base pool,
 * its fixed ISO file, its libvirt network (defined and running).
 *
 * Returns: true when the host could be asked (then @ret_need says), false on a libvirt error.
 */
bool
dom_storage_template_need(virConnectPtr conn, const char *prefix, const DomTemplate *tmpl,
                          DomTemplateNeed *ret_need, GError **error)
{
    bool present = true;

    if (tmpl->kind == DOM_TEMPLATE_KIND_OVERLAY && tmpl->base_image) {
        if (!base_volume_present(conn, prefix, tmpl->base_image, &present, error))
            return false;
        if (!present) {
            *ret_need = DOM_NEED_BASE_IMAGE;
            return true;
        }
    }
    if (tmpl->iso_path && !g_file_test(tmpl->iso_path, G_FILE_TEST_IS_REGULAR)) {
        *ret_need = DOM_NEED_ISO_FILE;
        return true;
    }
    if (tmpl->network == DOM_NETWORK_LIBVIRT && tmpl->network_name) {
        if (!network_present(conn, tmpl->network_name, &present, error))
            return false;
        if (!present) {
            *ret_need = DOM_NEED_NETWORK;
            return true;
        }
    }
    *ret_need = DOM_NEED_NOTHING;
    return true;
}
