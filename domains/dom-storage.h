// SPDX-License-Identifier: LGPL-2.1-or-later
// Storage through libvirt's storage API: vmbroker's own dir pools (ISOs, base images,
// disks), qcow2 overlays with an explicit backing format, blank disks, format checks.
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <libvirt/libvirt.h>

#include "dom-template.h"

typedef enum {
    DOM_POOL_ISOS,  /* uploaded ISOs */
    DOM_POOL_BASE,  /* base images of overlay templates */
    DOM_POOL_DISKS, /* per-VM disks: overlays and blank disks */

    DOM_POOL_LAST
} DomPoolKind;

/* Names */
const char *dom_storage_pool_kind_to_string(DomPoolKind kind);
int dom_storage_pool_kind_from_string(const char *s);
char *dom_storage_pool_name(const char *prefix, DomPoolKind kind);

/* Pools */
/* Who owns the pools' folders: @uid and @gid (-1: libvirt's default, libvirtd's own). */
typedef struct {
    long uid;
    long gid;
} DomPoolOwner;
#define DOM_POOL_OWNER_DEFAULT ((DomPoolOwner) { -1, -1 })
bool dom_storage_ensure_pools(virConnectPtr conn, const char *prefix, const char *storage_dir,
                              DomPoolOwner owner, GError **error);
bool dom_storage_ensure_remote_pools(virConnectPtr conn, const char *prefix,
                                     const char *storage_dir, DomPoolOwner owner,
                                     GError **error);
virStoragePoolPtr dom_storage_pool(virConnectPtr conn, const char *prefix, DomPoolKind kind,
                                   GError **error);

/* Volumes */
virStorageVolPtr dom_storage_volume(virConnectPtr conn, const char *prefix, DomPoolKind kind,
                                   const char *vol_name, GError **error);
char *dom_storage_volume_path(virConnectPtr conn, const char *prefix, DomPoolKind kind,
                              const char *vol_name, GError **error);
char *dom_storage_volume_format(virConnectPtr conn, const char *path, GError **error);
char *dom_storage_volume_xml(const char *name, guint64 capacity_bytes, const char *format,
                             const char *backing_path, const char *backing_format);
char *dom_storage_create_blank(virConnectPtr conn, const char *prefix, const char *vol_name,
                               guint size_gib, GError **error);
char *dom_storage_create_overlay(virConnectPtr conn, const char *prefix, const char *vol_name,
                                 const DomTemplate *tmpl, char **ret_backing_path,
                                 GError **error);
char *dom_storage_persistent_volume_name(const char *prefix, const char *owner,
                                         const DomTemplate *tmpl);
char *dom_storage_reuse_overlay(virConnectPtr conn, const char *prefix, const char *vol_name,
                                const DomTemplate *tmpl, char **ret_backing_path,
                                bool *ret_created, GError **error);
bool dom_storage_delete_path(virConnectPtr conn, const char *path, GError **error);
/* Makes a pool see files placed in its folder from outside libvirt (uploads). */
bool dom_storage_refresh(virConnectPtr conn, const char *prefix, DomPoolKind kind,
                         GError **error);

/* What a file really is */
char *dom_storage_file_format(const char *path, GError **error);
bool dom_storage_check_iso(const char *path, GError **error);

/* What a host may lack for a template. */
typedef enum {
    DOM_NEED_NOTHING = 0,
    DOM_NEED_BASE_IMAGE, /* the overlay's base image is not in the base pool */
    DOM_NEED_ISO_FILE,   /* the fixed ISO file is not there */
    DOM_NEED_NETWORK,    /* the libvirt network is not defined or not running */
} DomTemplateNeed;

/* Whether the host has what a guest of @tmpl needs; false only when libvirt failed. */
bool dom_storage_template_need(virConnectPtr conn, const char *prefix, const DomTemplate *tmpl,
                               DomTemplateNeed *ret_need, GError **error);
