// SPDX-License-Identifier: LGPL-2.1-or-later
// Base images. An upload streams into storage.dir/uploads (not a pool: libvirt never lists a
// half-written file), qemu-img checks it as the declared format (no backing or data file,
// virtual size bounded), and a link() puts it in the base pool's folder under its name, never
// over an existing one. libvirt is asked on the bounded pool.
#include "svc-images.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dom-storage.h"
#include "svc-audit.h"
#include "vmb-error.h"
#include "vmb-file.h"
#include "vmb-json.h"
#include "vmb-secret.h"

struct SvcImages {
    SvcImagesOptions opts;
    char *name_prefix;
    char *storage_dir;
};

struct SvcImageUpload {
    SvcImages *images;
    DbUser *user;
    char *name;
    char *format;
    char *remote_addr;
    char *tmp_path;     /* removed unless finished */
    int fd;
    guint64 written;
};

typedef enum { JOB_LIST, JOB_REFRESH, JOB_DELETE } JobKind;

typedef struct {
    JobKind kind;
    DomHypervisor *hv;
    char *prefix;
    char *name;          /* delete */
    GPtrArray *images;   /* out: list */
    bool ok;             /* out */
    GError *error;       /* out */
} ImageJob;

void
svc_image_free(SvcImage *img)
{
    if (!img)
        return;
    dom_image_free(img->image);
    g_clear_pointer(&img->templates, g_ptr_array_unref);
    g_free(img);
}

SvcImages *
svc_images_new(const SvcImagesOptions *opts)
{
    SvcImages *images = g_new0(SvcImages, 1);

    images->opts = *opts;
    images->name_prefix = g_strdup(opts->name_prefix);
    images->storage_dir = g_strdup(opts->storage_dir);
    images->opts.name_prefix = images->name_prefix;
    images->opts.storage_dir = images->storage_dir;
    return images;
}

void
svc_images_free(SvcImages *images)
{
    if (!images)
        return;
    g_free(images->name_prefix);
    g_free(images->storage_dir);
    g_free(images);
}

static void
image_job_free(gpointer data)
{
    ImageJob *job = data;

    g_free(job->prefix);
    g_free(job->name);
    g_clear_pointer(&job->images, g_ptr_array_unref);
    g_clear_error(&job->error);
    g_free(job);
}

/* Deletes base image @name unless a disk is an overlay of it. */
static bool
delete_unused(virConnectPtr conn, const char *prefix, const char *name, GError **error)
{
    g_autofree char *path = dom_storage_volume_path(conn, prefix, DOM_POOL_BASE, name, NULL);
    int users;

    if (!path) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_NOT_FOUND, "No base image named %s.", name);
        return false;
    }
    users = dom_images_overlays(conn, prefix, path, error);
    if (users > 0)
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT,
                    "%d disk(s) are overlays of %s; delete or reset them first.", users, name);
    return users == 0 && dom_storage_delete_path(conn, path, error);
}

static void
image_job_run(gpointer data)
{
    ImageJob *job = data;
    g_autoptr(virConnect) conn = dom_hypervisor_get(job->hv, &job->error);

    if (!conn)
        return;
    switch (job->kind) {
    case JOB_LIST:
        job->images = dom_images_list(conn, job->prefix, &job->error);
        job->ok = job->images != NULL;
        break;
    case JOB_REFRESH:
        job->ok = dom_storage_refresh(conn, job->prefix, DOM_POOL_BASE, &job->error);
        break;
    case JOB_DELETE:
        job->ok = delete_unused(conn, job->prefix, job->name, &job->error);
        break;
    }
}

/* Runs a job of @kind on the bounded pool. */
static bool
run_job(SvcImages *images, JobKind kind, const char *name, GPtrArray **ret_images,
        GError **error)
{
    ImageJob *job = g_new0(ImageJob, 1);
    bool ok;

    job->kind = kind;
    job->hv = images->opts.hv;
    job->prefix = g_strdup(images->name_prefix);
    job->name = g_strdup(name);
    if (!vmb_bounded_run(images->opts.bounded, image_job_run, job, image_job_free,
                         images->opts.call_timeout_s * 1000, NULL)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE,
                    "libvirt did not answer within %u s; try again shortly.",
                    images->opts.call_timeout_s);
        return false;
    }
    ok = job->ok;
    if (!ok)
        g_propagate_error(error, g_steal_pointer(&job->error));
    else if (ret_images)
        *ret_images = g_steal_pointer(&job->images);
    image_job_free(job);
    return ok;
}

static bool
admin_only(const DbUser *caller, GError **error)
{
    if (caller->role == DB_ROLE_ADMIN)
        return true;
    g_set_error(error, VMB_ERROR, VMB_ERROR_FORBIDDEN, "Base images are for admins.");
    return false;
}

/* @name's format: @format when given, else its extension's. */
static const char *
image_format(const char *name, const char *format, GError **error)
{
    bool ok = strlen(name) <= 64 && (g_ascii_islower(name[0]) || g_ascii_isdigit(name[0]));

    for (const char *p = name; ok && *p; p++)
        ok = g_ascii_islower(*p) || g_ascii_isdigit(*p) || strchr("._-", *p);
    if (!ok) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID,
                    "A base image's name is 1 to 64 of a-z, 0-9, '.', '_' and '-', starting "
                    "with a letter or digit.");
        return NULL;
    }
    if (!format)
        format = g_str_has_suffix(name, ".qcow2") ? "qcow2"
                 : g_str_has_suffix(name, ".raw") || g_str_has_suffix(name, ".img") ? "raw"
                                                                                     : NULL;
    if (g_strcmp0(format, "qcow2") == 0 || g_strcmp0(format, "raw") == 0)
        return format;
    g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID,
                "Say the image's format: ?format=qcow2 or ?format=raw (or name it *.qcow2, "
                "*.raw).");
    return NULL;
}

static char *
base_path(SvcImages *images, const char *name)
{
    return g_build_filename(images->storage_dir, dom_storage_pool_kind_to_string(DOM_POOL_BASE),
                            name, NULL);
}

static void
set_too_large(GError **error, guint64 max)
{
    g_set_error(error, VMB_ERROR, VMB_ERROR_TOO_LARGE,
                "A base image is at most %" G_GUINT64_FORMAT " bytes (storage.max_image_bytes).",
                max);
}

/**
 * svc_images_upload_begin:
 * @images: the service
 * @caller: who uploads (an admin)
 * @name: the image's name in the base pool (what templates' base_image say)
 * @format: (nullable): "qcow2" or "raw"; NULL: from @name's extension
 * @declared: the Content-Length, or -1
 * @remote_addr: (nullable): for the audit log
 * @error: return location for an error (VMB_ERROR_FORBIDDEN, _INVALID, _CONFLICT for a name
 *   in use, _TOO_LARGE)
 *
 * Returns: (transfer full): the upload, or NULL.
 */
SvcImageUpload *
svc_images_upload_begin(SvcImages *images, const DbUser *caller, const char *name,
                        const char *format, gint64 declared, const char *remote_addr,
                        GError **error)
{
    g_autofree char *final = NULL;
    g_autofree char *dir = g_build_filename(images->storage_dir, "uploads", NULL);
    g_autofree char *token = NULL;
    SvcImageUpload *up;

    if (!admin_only(caller, error) || !(format = image_format(name, format, error)))
        return NULL;
    if (declared >= 0 && (guint64) declared > images->opts.max_bytes) {
        set_too_large(error, images->opts.max_bytes);
        return NULL;
    }
    final = base_path(images, name);
    if (g_file_test(final, G_FILE_TEST_EXISTS)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT,
                    "A base image named %s exists; delete it first or choose another name.",
                    name);
        return NULL;
    }
    if (g_mkdir_with_parents(dir, 0700) < 0 || !(token = vmb_secret_new_token("", error))) {
        if (!token && error && !*error)
            g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_INTERNAL, "creating %s: %s", dir,
                        g_strerror(errno));
        return NULL;
    }
    up = g_new0(SvcImageUpload, 1);
    up->images = images;
    up->user = db_user_copy(caller);
    up->name = g_strdup(name);
    up->format = g_strdup(format);
    up->remote_addr = g_strdup(remote_addr);
    up->tmp_path = g_strdup_printf("%s/image-%s.part", dir, token);
    up->fd = open(up->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (up->fd < 0) {
        g_set_error(error, VMB_ERROR_PRIVATE,
                    errno == ENOSPC ? VMB_ERROR_NO_SPACE : VMB_ERROR_INTERNAL,
                    "creating %s: %s", up->tmp_path, g_strerror(errno));
        g_clear_pointer(&up->tmp_path, g_free);
        svc_images_upload_free(up);
        return NULL;
    }
    return up;
}

bool
svc_images_upload_write(SvcImageUpload *up, const void *data, size_t len, GError **error)
{
    if (up->written + len > up->images->opts.max_bytes) {
        set_too_large(error, up->images->opts.max_bytes);
        return false;
    }
    if (!vmb_file_write_all(up->fd, data, len, up->tmp_path, error))
        return false;
    up->written += len;
    return true;
}

/**
 * svc_images_upload_finish:
 * @up: an upload whose body has all arrived
 * @error: return location for an error (VMB_ERROR_UNPROCESSABLE: not the declared format,
 *   a backing or data file; _TOO_LARGE: virtual size; _CONFLICT: the name was taken meanwhile)
 *
 * Returns: (transfer full): the image, now in the base pool; audited as image.upload.
 */
SvcImage *
svc_images_upload_finish(SvcImageUpload *up, GError **error)
{
    SvcImages *images = up->images;
    g_autofree char *final = base_path(images, up->name);
    g_autoptr(json_object) detail = json_object_new_object();
    g_autoptr(DbConn) db = NULL;
    guint64 virtual_size = 0;
    SvcImage *img;

    if (fdatasync(up->fd) < 0) {
        g_set_error(error, VMB_ERROR_PRIVATE,
                    errno == ENOSPC ? VMB_ERROR_NO_SPACE : VMB_ERROR_INTERNAL,
                    "syncing %s: %s", up->tmp_path, g_strerror(errno));
        return NULL;
    }
    if (!dom_images_check(up->tmp_path, up->format, images->opts.max_bytes, &virtual_size,
                          error))
        return NULL;
    /* QEMU (another user) reads it; link() never replaces a file of that name. */
    if (fchmod(up->fd, 0644) < 0 || link(up->tmp_path, final) < 0) {
        g_set_error(error, VMB_ERROR_PRIVATE,
                    errno == EEXIST ? VMB_ERROR_CONFLICT : VMB_ERROR_INTERNAL,
                    "storing %s: %s", final, g_strerror(errno));
        return NULL;
    }
    run_job(images, JOB_REFRESH, NULL, NULL, NULL); /* best effort: start-up refreshes too */
    json_object_object_add(detail, "format", json_object_new_string(up->format));
    json_object_object_add(detail, "size", json_object_new_uint64(up->written));
    json_object_object_add(detail, "virtual_size", json_object_new_uint64(virtual_size));
    if ((db = db_pool_acquire(images->opts.db, NULL)))
        svc_audit_write(db, up->user, "image.upload", "image", up->name, up->remote_addr,
                        detail, NULL);
    img = g_new0(SvcImage, 1);
    img->image = g_new0(DomImage, 1);
    img->image->name = g_strdup(up->name);
    img->image->format = g_strdup(up->format);
    img->image->path = g_steal_pointer(&final);
    img->image->capacity = virtual_size;
    img->image->allocation = up->written;
    img->templates = g_ptr_array_new_with_free_func(g_free);
    return img;
}

void
svc_images_upload_free(SvcImageUpload *up)
{
    if (!up)
        return;
    if (up->fd >= 0)
        close(up->fd);
    if (up->tmp_path)
        unlink(up->tmp_path); /* the base pool holds its own link when it finished */
    db_user_free(up->user);
    g_free(up->name);
    g_free(up->format);
    g_free(up->remote_addr);
    g_free(up->tmp_path);
    g_free(up);
}

/* The loaded templates whose base_image is @name (element-type utf8). */
static GPtrArray *
templates_naming(SvcImages *images, const char *name)
{
    g_autoptr(DomTemplateSet) set = svc_templates_get(images->opts.templates);
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);

    for (guint i = 0; i < dom_template_set_count(set); i++) {
        const DomTemplate *t = dom_template_set_nth(set, i);
        if (t->kind == DOM_TEMPLATE_KIND_OVERLAY && g_strcmp0(t->base_image, name) == 0)
            g_ptr_array_add(out, g_strdup(t->name));
    }
    return out;
}

GPtrArray *
svc_images_list(SvcImages *images, const DbUser *caller, GError **error)
{
    g_autoptr(GPtrArray) vols = NULL;
    GPtrArray *out;

    if (!admin_only(caller, error) || !run_job(images, JOB_LIST, NULL, &vols, error))
        return NULL;
    out = g_ptr_array_new_with_free_func((GDestroyNotify) svc_image_free);
    for (guint i = 0; i < vols->len; i++) {
        SvcImage *img = g_new0(SvcImage, 1);
        img->image = g_steal_pointer(&vols->pdata[i]);
        img->templates = templates_naming(images, img->image->name);
        g_ptr_array_add(out, img);
    }
    return out;
}

bool
svc_images_delete(SvcImages *images, const DbUser *caller, const char *name,
                  const char *remote_addr, GError **error)
{
    g_autoptr(GPtrArray) users = NULL;
    g_autoptr(DbConn) db = NULL;

    if (!admin_only(caller, error))
        return false;
    users = templates_naming(images, name);
    if (users->len > 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT,
                    "Template %s uses this image; change or remove the template first.",
                    (const char *) users->pdata[0]);
        return false;
    }
    if (!run_job(images, JOB_DELETE, name, NULL, error))
        return false;
    if ((db = db_pool_acquire(images->opts.db, NULL)))
        svc_audit_write(db, caller, "image.delete", "image", name, remote_addr, NULL, NULL);
    return true;
}
