// SPDX-License-Identifier: LGPL-2.1-or-later
// Base images of overlay templates, for admins: uploaded as a stream (never held in memory),
// checked by qemu-img before they join the base pool, listed with the templates that name
// them, and deleted when nothing uses them.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"
#include "db-users.h"
#include "dom-hypervisor.h"
#include "dom-images.h"
#include "svc-templates.h"
#include "vmb-bounded.h"

typedef struct SvcImages SvcImages;
typedef struct SvcImageUpload SvcImageUpload;

typedef struct {
    DbPool *db;                /* for the audit log */
    DomHypervisor *hv;
    SvcTemplates *templates;   /* which templates name an image */
    VmbBounded *bounded;       /* where libvirt is asked */
    unsigned call_timeout_s;   /* how long a request waits for it */
    const char *name_prefix;
    const char *storage_dir;   /* images go to its base/ folder */
    guint64 max_bytes;         /* an image's file and virtual size, at most */
} SvcImagesOptions;

/* A base image as listed: the volume and the loaded templates that name it. */
typedef struct {
    DomImage *image;
    GPtrArray *templates;      /* (element-type utf8) */
} SvcImage;

void svc_image_free(SvcImage *img);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SvcImage, svc_image_free)

SvcImages *svc_images_new(const SvcImagesOptions *opts);
void svc_images_free(SvcImages *images);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SvcImages, svc_images_free)

/* Admins only. @format: "qcow2" or "raw", NULL to take it from @name's extension. */
SvcImageUpload *svc_images_upload_begin(SvcImages *images, const DbUser *caller,
                                        const char *name, const char *format, gint64 declared,
                                        const char *remote_addr, GError **error);
bool svc_images_upload_write(SvcImageUpload *up, const void *data, size_t len,
                             GError **error);
/* Checks the file and makes it volume @name of the base pool. */
SvcImage *svc_images_upload_finish(SvcImageUpload *up, GError **error);
/* Removes what an unfinished upload wrote. */
void svc_images_upload_free(SvcImageUpload *up);

/* Admins only: the base images (element-type SvcImage), by name. */
GPtrArray *svc_images_list(SvcImages *images, const DbUser *caller, GError **error);
/* Admins only: deletes @name unless a template names it or a disk is an overlay of it. */
bool svc_images_delete(SvcImages *images, const DbUser *caller, const char *name,
                       const char *remote_addr, GError **error);
