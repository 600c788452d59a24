// SPDX-License-Identifier: LGPL-2.1-or-later
// Templates: the JSON files in templates/ that say what a VM looks like (kind, memory,
// vcpus, devices, limits). Loading validates every field and names file, field and reason.
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <json-c/json.h>

typedef enum {
    DOM_TEMPLATE_KIND_ISO,     /* boot an ISO; optionally a blank disk to install into */
    DOM_TEMPLATE_KIND_OVERLAY, /* a qcow2 overlay on a base image */

    DOM_TEMPLATE_KIND_LAST
} DomTemplateKind;

typedef enum {
    DOM_NETWORK_ISOLATED, /* vmbroker's guest network: outbound NAT only (the default) */
    DOM_NETWORK_LIBVIRT, /* a named libvirt network */
    DOM_NETWORK_NONE,    /* no network card */

    DOM_NETWORK_LAST
} DomNetworkMode;

typedef enum {
    DOM_VIDEO_VGA,
    DOM_VIDEO_CIRRUS,
    DOM_VIDEO_VIRTIO,
    DOM_VIDEO_BOCHS,
    DOM_VIDEO_QXL,

    DOM_VIDEO_LAST
} DomVideoModel;

typedef enum {
    DOM_DISK_BUS_VIRTIO,
    DOM_DISK_BUS_SATA,
    DOM_DISK_BUS_SCSI,
    DOM_DISK_BUS_IDE,

    DOM_DISK_BUS_LAST
} DomDiskBus;

typedef enum {
    DOM_BOOT_CDROM,
    DOM_BOOT_HD,
    DOM_BOOT_NETWORK,

    DOM_BOOT_LAST
} DomBootDevice;

typedef enum {
    DOM_IMAGE_FORMAT_RAW,
    DOM_IMAGE_FORMAT_QCOW2,

    DOM_IMAGE_FORMAT_LAST
} DomImageFormat;

/* A loaded, validated template. Read-only for callers. */
/* The most guests a template's warm pool may keep. */
#define DOM_TEMPLATE_WARM_POOL_MAX 64
/* How long a pool's guest runs with its screen up before it is saved, unless said. */
#define DOM_TEMPLATE_MEMORY_IMAGE_AFTER_S 10

typedef struct {
    char *name;              /* the file name without ".json": [a-z0-9][a-z0-9_-]* */
    char *path;              /* the file it was loaded from; NULL: defined through the API */
    char *description;       /* free text for people, may be empty */
    DomTemplateKind kind;
    guint memory_mib;        /* guest RAM */
    guint vcpus;
    DomVideoModel video;
    DomDiskBus disk_bus;     /* bus of the hard disk (the CD-ROM is always IDE) */
    DomNetworkMode network;
    char *network_name;      /* the libvirt network, for DOM_NETWORK_LIBVIRT only */
    DomBootDevice boot[DOM_BOOT_LAST]; /* boot order, first n_boot entries */
    guint n_boot;
    guint idle_timeout_s;    /* 0: never idle out; enforced by the reaper */
    guint max_lifetime_s;    /* 0: unlimited; enforced by the reaper */
    bool console_exclusive;  /* a new console viewer closes the older ones */
    guint warm_pool;         /* guests kept booted for creates to take; 0: none */
    bool memory_image;       /* the pool's guests wait saved to disk, restored when taken */
    guint memory_image_after_s; /* how long a guest's screen is up before it is saved */
    /* kind iso */
    char *iso_path;          /* a fixed ISO on the host; NULL: the user picks an uploaded ISO */
    guint disk_gib;          /* size of a blank qcow2 disk; 0: none */
    /* kind overlay */
    char *base_image;        /* volume name in the base-image pool */
    DomImageFormat base_format;
    bool persistent;         /* keep the overlay per user and re-attach it next time */
} DomTemplate;

typedef struct _DomTemplateSet DomTemplateSet;

/* Enum names as they appear in template files and in libvirt XML */
const char *dom_template_kind_to_string(DomTemplateKind kind);
int dom_template_kind_from_string(const char *s);
const char *dom_template_network_to_string(DomNetworkMode mode);
int dom_template_network_from_string(const char *s);
const char *dom_template_video_to_string(DomVideoModel model);
int dom_template_video_from_string(const char *s);
const char *dom_template_disk_bus_to_string(DomDiskBus bus);
int dom_template_disk_bus_from_string(const char *s);
const char *dom_template_boot_to_string(DomBootDevice dev);
int dom_template_boot_from_string(const char *s);
const char *dom_template_image_format_to_string(DomImageFormat format);
int dom_template_image_format_from_string(const char *s);

/* One template */
DomTemplate *dom_template_load_file(const char *path, GError **error);
DomTemplate *dom_template_parse(const char *name, const char *text, gsize len,
                                const char *where, GError **error);
void dom_template_free(DomTemplate *tmpl);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DomTemplate, dom_template_free)

bool dom_template_needs_iso(const DomTemplate *tmpl);
bool dom_template_has_disk(const DomTemplate *tmpl);
json_object *dom_template_to_json(const DomTemplate *tmpl);

/* A folder of templates */
DomTemplateSet *dom_template_set_load_dir(const char *dir, GError **error);
DomTemplateSet *dom_template_set_ref(DomTemplateSet *set);
void dom_template_set_unref(DomTemplateSet *set);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DomTemplateSet, dom_template_set_unref)

/* Adds @tmpl (transfer full) to a set no reader holds yet; false when the name is taken. */
bool dom_template_set_add(DomTemplateSet *set, DomTemplate *tmpl);
const DomTemplate *dom_template_set_lookup(const DomTemplateSet *set, const char *name);
guint dom_template_set_count(const DomTemplateSet *set);
const DomTemplate *dom_template_set_nth(const DomTemplateSet *set, guint i);
