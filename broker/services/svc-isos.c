// SPDX-License-Identifier: LGPL-2.1-or-later
// The upload path: bytes go to uploads/<random>.part (O_EXCL|O_NOFOLLOW, mode 0600) and
// through SHA-256 as they arrive, never all into memory. When the body is complete the head
// of the file is checked, the file is renamed into the ISO pool's folder under a name made
// from its hash (so identical content is stored once), the pool is refreshed and the row
// inserted. Every failure removes the temporary file; a row that cannot be inserted takes
// its freshly stored file with it. An upload reserves its share of the user's quota when it
// starts (its declared length, or all that is left when it declares none) and gives it back
// when it ends, so uploads side by side cannot together pass the quota (in this process:
// each replica reserves on its own).
#include "svc-isos.h"

#include <errno.h>
#include <openssl/evp.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dom-storage.h"
#include "svc-audit.h"
#include "svc-users.h"
#include "vmb-error.h"
#include "vmb-file.h"
#include "vmb-iso.h"
#include "vmb-secret.h"

struct SvcIsos {
    SvcIsosOptions opts;
    char *storage_dir;
    char *name_prefix;
    GMutex lock;           /* guards reserved */
    GHashTable *reserved;  /* user id -> guint64 *: bytes held by that user's open uploads */
};

struct SvcUpload {
    SvcIsos *isos;
    DbUser *user;
    char *name;
    char *remote_addr; /* the uploader's address, for the audit log; nullable */
    char *tmp_path;   /* NULL once renamed or removed */
    int fd;
    EVP_MD_CTX *sha;  /* libcrypto: several times GChecksum's speed where the CPU has SHA */
    guint64 written;
    guint64 limit;    /* the smaller of the cap and what the quota leaves */
    guint64 reserved; /* quota bytes held for this upload until it ends */
};

typedef struct {
    DomHypervisor *hv;
    char *name_prefix;
} RefreshJob;

static void
refresh_job_free(gpointer data)
{
    RefreshJob *job = data;

    g_free(job->name_prefix);
    g_free(job);
}

static void
refresh_job_run(gpointer data)
{
    RefreshJob *job = data;
    g_autoptr(virConnect) conn = dom_hypervisor_get(job->hv, NULL);

    if (conn)
        dom_storage_refresh(conn, job->name_prefix, DOM_POOL_ISOS, NULL);
}

/* Refreshes the ISO pool so virsh sees a change at once; waits at most call_timeout_s (a
 * hung libvirtd never holds the request longer; the refresh then ends on its own). */
static void
refresh_pool(SvcIsos *isos)
{
    RefreshJob *job = g_new0(RefreshJob, 1);

    job->hv = isos->opts.hv;
    job->name_prefix = g_strdup(isos->name_prefix);
    if (vmb_bounded_run(isos->opts.bounded, refresh_job_run, job, refresh_job_free,
                        isos->opts.call_timeout_s * 1000, NULL))
        refresh_job_free(job);
}

/**
 * svc_isos_new:
 * @opts: settings; copied
 *
 * Returns: (transfer full): the ISO service.
 */
SvcIsos *
svc_isos_new(const SvcIsosOptions *opts)
{
    SvcIsos *isos = g_new0(SvcIsos, 1);

    isos->opts = *opts;
    isos->storage_dir = g_strdup(opts->storage_dir);
    isos->name_prefix = g_strdup(opts->name_prefix);
    g_mutex_init(&isos->lock);
    isos->reserved = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    return isos;
}

/**
 * svc_isos_free:
 * @isos: (nullable): the service
 */
void
svc_isos_free(SvcIsos *isos)
{
    if (!isos)
        return;
    g_free(isos->storage_dir);
    g_free(isos->name_prefix);
    g_hash_table_unref(isos->reserved);
    g_mutex_clear(&isos->lock);
    g_free(isos);
}

static bool
name_valid(const char *name)
{
    glong n = g_utf8_validate(name, -1, NULL) ? g_utf8_strlen(name, -1) : -1;

    if (n < 1 || n > 200 || name[0] == '.' || strpbrk(name, "/\\"))
        return false;
    for (const char *p = name; *p; p = g_utf8_next_char(p))
        if (g_unichar_iscntrl(g_utf8_get_char(p)))
            return false;
    return true;
}

static bool
is_privileged(const DbUser *user)
{
    return user->role == DB_ROLE_ADMIN || user->role == DB_ROLE_SERVICE;
}

static void
set_too_large(GError **error, guint64 limit, bool quota)
{
    g_set_error(error, VMB_ERROR, VMB_ERROR_TOO_LARGE,
                quota ? "The upload would exceed your ISO quota; %" G_GUINT64_FORMAT
                        " bytes are left. Delete an ISO first."
                      : "An ISO may have at most %" G_GUINT64_FORMAT " bytes.", limit);
}

/* Holds @up's share of its user's quota: what the ISOs take (@used) and the user's other
 * open uploads hold leave @left; @declared (or, unknown, all that is left) is taken from it.
 * Sets up->limit and up->reserved. */
static bool
reserve_quota(SvcIsos *isos, SvcUpload *up, guint64 used, gint64 declared, GError **error)
{
    guint64 *held, left, want;

    g_mutex_lock(&isos->lock);
    held = g_hash_table_lookup(isos->reserved, up->user->id);
    left = used + (held ? *held : 0) >= isos->opts.quota_bytes
               ? 0 : isos->opts.quota_bytes - used - (held ? *held : 0);
    up->limit = MIN(isos->opts.max_bytes, left);
    want = declared >= 0 ? (guint64) declared : up->limit;
    if (want > up->limit || (declared < 0 && want == 0)) {
        g_mutex_unlock(&isos->lock);
        set_too_large(error, up->limit, left < isos->opts.max_bytes);
        return false;
    }
    if (!held) {
        held = g_new0(guint64, 1);
        g_hash_table_insert(isos->reserved, g_strdup(up->user->id), held);
    }
    *held += want;
    up->reserved = want;
    up->limit = want;
    g_mutex_unlock(&isos->lock);
    return true;
}

static void
release_quota(SvcUpload *up)
{
    guint64 *held;

    if (!up->reserved)
        return;
    g_mutex_lock(&up->isos->lock);
    held = g_hash_table_lookup(up->isos->reserved, up->user->id);
    if (held && (*held -= MIN(*held, up->reserved)) == 0)
        g_hash_table_remove(up->isos->reserved, up->user->id);
    g_mutex_unlock(&up->isos->lock);
    up->reserved = 0;
}

/**
 * svc_isos_upload_begin:
 * @isos: the service
 * @user: the uploader
 * @name: the uploader's label (the file name is the server's)
 * @declared: the body's declared length, -1 when unknown
 * @error: return location for an error
 *
 * A user's upload (not an admin's or a service's) reserves @declared bytes of the quota,
 * or all that is left when @declared is unknown, until svc_isos_upload_free().
 *
 * Returns: (transfer full): the upload, with its temporary file open; or NULL.
 */
SvcUpload *
svc_isos_upload_begin(SvcIsos *isos, const DbUser *user, const char *name, gint64 declared,
                      const char *remote_addr, GError **error)
{
    g_autoptr(SvcUpload) up = g_new0(SvcUpload, 1);
    g_autofree char *dir = g_build_filename(isos->storage_dir, "uploads", NULL);
    g_autofree char *token = NULL;
    g_autoptr(DbConn) db = NULL;
    guint64 cap = isos->opts.max_bytes;
    gint64 used = 0;

    up->fd = -1;
    if (!name_valid(name)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID,
                    "An ISO name has 1 to 200 printable characters, no '/' or '\\', and does "
                    "not start with '.'.");
        return NULL;
    }
    up->isos = isos;
    up->user = g_new0(DbUser, 1);
    up->user->id = g_strdup(user->id);
    up->user->username = g_strdup(user->username);
    up->user->role = user->role;
    if (!is_privileged(user)) {
        db = db_pool_acquire(isos->opts.db, error);
        if (!db || !db_isos_owner_bytes(db, user->id, &used, error) ||
            !reserve_quota(isos, up, (guint64) MAX(used, 0), declared, error))
            return NULL;
    } else {
        up->limit = cap;
        if (declared >= 0 && (guint64) declared > up->limit) {
            set_too_large(error, up->limit, false);
            return NULL;
        }
    }
    if (g_mkdir_with_parents(dir, 0700) < 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INTERNAL, "creating %s: %s", dir,
                    g_strerror(errno));
        return NULL;
    }
    token = vmb_secret_new_token("", error);
    if (!token)
        return NULL;
    up->tmp_path = g_strdup_printf("%s/%s.part", dir, token);
    up->fd = open(up->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (up->fd < 0) {
        g_set_error(error, VMB_ERROR_PRIVATE,
                    errno == ENOSPC ? VMB_ERROR_NO_SPACE : VMB_ERROR_INTERNAL,
                    "creating %s: %s", up->tmp_path, g_strerror(errno));
        g_clear_pointer(&up->tmp_path, g_free);
        return NULL;
    }
    up->remote_addr = g_strdup(remote_addr);
    up->name = g_strdup(name);
    up->sha = EVP_MD_CTX_new();
    if (!up->sha || EVP_DigestInit_ex(up->sha, EVP_sha256(), NULL) != 1) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INTERNAL, "SHA-256 unavailable");
        return NULL;
    }
    return g_steal_pointer(&up);
}

/**
 * svc_isos_upload_write:
 * @up: the upload
 * @data: the next bytes of the body
 * @len: their count
 * @error: return location for an error (VMB_ERROR_TOO_LARGE, VMB_ERROR_NO_SPACE)
 *
 * Returns: true when the bytes are written.
 */
bool
svc_isos_upload_write(SvcUpload *up, const void *data, size_t len, GError **error)
{
    if (up->written + len > up->limit) {
        set_too_large(error, up->limit, up->limit < up->isos->opts.max_bytes);
        return false;
    }
    if (!vmb_file_write_all(up->fd, data, len, up->tmp_path, error))
        return false;
    if (EVP_DigestUpdate(up->sha, data, len) != 1) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INTERNAL, "SHA-256 failed");
        return false;
    }
    up->written += len;
    return true;
}

static bool
check_head(SvcUpload *up, GError **error)
{
    g_autofree guint8 *head = g_malloc(VMB_ISO_HEAD_BYTES);
    g_autofree char *path = g_strdup(up->tmp_path);
    ssize_t n;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INTERNAL, "opening %s: %s", path,
                    g_strerror(errno));
        return false;
    }
    n = pread(fd, head, VMB_ISO_HEAD_BYTES, 0);
    close(fd);
    if (n < 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INTERNAL, "reading %s: %s", path,
                    g_strerror(errno));
        return false;
    }
    return vmb_iso_check(head, (size_t) n, up->written, error);
}

/**
 * svc_isos_upload_finish:
 * @up: the upload, its body complete
 * @ret_existed: (out): the uploader had this content already (that ISO is returned)
 * @error: return location for an error (VMB_ERROR_UNPROCESSABLE: not a bootable ISO)
 *
 * Returns: (transfer full): the uploader's ISO, or NULL with nothing left behind.
 */
DbIso *
svc_isos_upload_finish(SvcUpload *up, bool *ret_existed, GError **error)
{
    SvcIsos *isos = up->isos;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char digest[2 * 32 + 1];
    g_autofree char *volume = NULL;
    g_autofree char *final = NULL;
    g_autoptr(DbConn) db = NULL;
    bool stored_now = false;
    DbIso *iso;

    if (EVP_DigestFinal_ex(up->sha, md, &mdlen) != 1 || mdlen != 32) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INTERNAL, "SHA-256 failed");
        return NULL;
    }
    for (unsigned i = 0; i < mdlen; i++)
        g_snprintf(digest + 2 * i, 3, "%02x", md[i]);
    volume = g_strdup_printf("%siso-%s.iso", isos->name_prefix, digest);
    final = g_build_filename(isos->storage_dir, "isos", volume, NULL);
    if (fdatasync(up->fd) < 0) {
        g_set_error(error, VMB_ERROR_PRIVATE,
                    errno == ENOSPC ? VMB_ERROR_NO_SPACE : VMB_ERROR_INTERNAL,
                    "syncing %s: %s", up->tmp_path, g_strerror(errno));
        return NULL;
    }
    if (!check_head(up, error))
        return NULL;
    if (g_file_test(final, G_FILE_TEST_EXISTS)) {
        unlink(up->tmp_path); /* stored once: the same bytes are there already */
    } else {
        /* QEMU (another user) reads it; the folder's mode keeps others out. */
        if (fchmod(up->fd, 0644) < 0 || rename(up->tmp_path, final) < 0) {
            g_set_error(error, VMB_ERROR, VMB_ERROR_INTERNAL, "storing %s: %s", final,
                        g_strerror(errno));
            return NULL;
        }
        stored_now = true;
    }
    g_clear_pointer(&up->tmp_path, g_free);

    db = db_pool_acquire(isos->opts.db, error);
    iso = db ? db_isos_insert(db, up->user->id, up->name, digest, (gint64) up->written, volume,
                              is_privileged(up->user), ret_existed, error)
             : NULL;
    if (!iso) {
        if (stored_now)
            unlink(final);
        return NULL;
    }
    /* After the row, outside its statement: the ISO exists whether or not its audit row is
     * written, so a failure here is logged by nobody but costs the client nothing. */
    if (!*ret_existed) {
        g_autoptr(json_object) detail = json_object_new_object();
        json_object_object_add(detail, "name", json_object_new_string(iso->name));
        json_object_object_add(detail, "size", json_object_new_int64((gint64) up->written));
        json_object_object_add(detail, "sha256", json_object_new_string(digest));
        svc_audit_write(db, up->user, "iso.upload", "iso", iso->id, up->remote_addr, detail,
                        NULL);
    }
    /* Best effort: the next refresh (or start-up) shows it to virsh otherwise. It may wait
     * for libvirt: not with a database connection in hand. */
    g_clear_pointer(&db, db_conn_release);
    refresh_pool(isos);
    return iso;
}

/**
 * svc_isos_upload_free:
 * @up: (nullable): an upload
 */
void
svc_isos_upload_free(SvcUpload *up)
{
    if (!up)
        return;
    release_quota(up);
    if (up->fd >= 0)
        close(up->fd);
    if (up->tmp_path)
        unlink(up->tmp_path);
    g_free(up->tmp_path);
    g_free(up->name);
    g_free(up->remote_addr);
    db_user_free(up->user);
    EVP_MD_CTX_free(up->sha);
    g_free(up);
}

/**
 * svc_isos_list:
 * @isos: the service
 * @user: who asks: admins see every ISO, others their own and the public ones
 * @error: return location for an error
 *
 * Returns: (transfer full) (element-type DbIso): the ISOs.
 */
GPtrArray *
svc_isos_list(SvcIsos *isos, const DbUser *user, GError **error)
{
    g_autoptr(DbConn) db = db_pool_acquire(isos->opts.db, error);

    return db ? db_isos_list(db, user->role == DB_ROLE_ADMIN ? NULL : user->id, error)
              : NULL;
}

/**
 * svc_isos_delete:
 * @isos: the service
 * @user: who asks: their own ISO, or any for an admin
 * @id: the ISO
 * @remote_addr: (nullable): the caller's address, for the audit log
 * @error: return location for an error (NOT_FOUND, CONFLICT while a VM uses it)
 *
 * Returns: true when deleted; the file goes when no row refers to it any more.
 */
bool
svc_isos_delete(SvcIsos *isos, const DbUser *user, const char *id, const char *remote_addr,
                GError **error)
{
    g_autoptr(DbConn) db = db_pool_acquire(isos->opts.db, error);
    g_autofree char *volume = NULL;
    bool unused = false;

    if (!db || !db_isos_delete(db, id, user->role == DB_ROLE_ADMIN ? NULL : user->id,
                               &volume, &unused, error))
        return false;
    /* Like an upload's, after the row is gone: the ISO is deleted either way. */
    svc_audit_write(db, user, "iso.delete", "iso", id, remote_addr, NULL, NULL);
    if (unused) {
        g_autofree char *path = g_build_filename(isos->storage_dir, "isos", volume, NULL);
        unlink(path);
        g_clear_pointer(&db, db_conn_release);
        refresh_pool(isos);
    }
    return true;
}
