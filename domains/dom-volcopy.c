// SPDX-License-Identifier: LGPL-2.1-or-later
// Volume copies between hosts (dom-volcopy.h). The destination volume is made raw with the
// source file's physical size, and the bytes are copied as they are: an ISO stays an ISO, a
// qcow2 base image stays qcow2 (the domain's disk says the format, from the template).
#include "dom-volcopy.h"

#include <string.h>

#include "dom-virt.h"

#define CHUNK (256 * 1024)
/* Progress is told about once per this many bytes. */
#define PROGRESS_EVERY (64u << 20)

/* Reads @vol whole through a download stream, hashing it and (with @to) sending it on. */
static char *
stream_volume(virConnectPtr conn, virStorageVolPtr vol, virStreamPtr to, guint64 total,
              DomVolCopyProgress progress, void *data, GError **error)
{
    g_autoptr(virStream) st = virStreamNew(conn, 0);
    g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
    g_autofree char *buf = g_malloc(CHUNK);
    guint64 done = 0, told = 0;
    int n;

    if (!st || virStorageVolDownload(vol, st, 0, 0, 0) < 0) {
        dom_virt_set_error(error, "starting the download of volume '%s'",
                           virStorageVolGetName(vol));
        return NULL;
    }
    while ((n = virStreamRecv(st, buf, CHUNK)) > 0) {
        g_checksum_update(sum, (const guchar *) buf, n);
        for (int off = 0; to && off < n;) {
            int sent = virStreamSend(to, buf + off, (size_t) (n - off));
            if (sent < 0) {
                dom_virt_set_error(error, "sending volume '%s'", virStorageVolGetName(vol));
                virStreamAbort(st);
                return NULL;
            }
            off += sent;
        }
        done += (guint64) n;
        if (progress && done - told >= PROGRESS_EVERY) {
            progress(done, total, data);
            told = done;
        }
    }
    if (n < 0 || virStreamFinish(st) < 0) {
        dom_virt_set_error(error, "reading volume '%s'", virStorageVolGetName(vol));
        if (n >= 0)
            return NULL;
        virStreamAbort(st);
        return NULL;
    }
    return g_strdup(g_checksum_get_string(sum));
}

/* The file's size on disk: what the copy carries. */
static bool
physical_size(virStorageVolPtr vol, guint64 *ret, GError **error)
{
    virStorageVolInfo info;

    if (virStorageVolGetInfoFlags(vol, &info, VIR_STORAGE_VOL_GET_PHYSICAL) < 0) {
        dom_virt_set_error(error, "reading the size of volume '%s'", virStorageVolGetName(vol));
        return false;
    }
    *ret = info.allocation; /* the physical size, with the flag */
    return true;
}

char *
dom_volcopy_sha256(virConnectPtr conn, const char *prefix, DomPoolKind kind, const char *name,
                   DomVolCopyProgress progress, void *data, GError **error)
{
    g_autoptr(virStorageVol) vol = dom_storage_volume(conn, prefix, kind, name, error);
    guint64 total = 0;

    if (!vol || !physical_size(vol, &total, error))
        return NULL;
    return stream_volume(conn, vol, NULL, total, progress, data, error);
}

/* Makes @name on @dst and streams @from into it; the digest of what was sent. */
static char *
send_copy(virConnectPtr src, virStorageVolPtr from, virConnectPtr dst, virStoragePoolPtr pool,
          const char *name, guint64 total, DomVolCopyProgress progress, void *data,
          virStorageVolPtr *ret_made, GError **error)
{
    g_autofree char *xml = dom_storage_volume_xml(name, total, "raw", NULL, NULL);
    g_autoptr(virStream) up = virStreamNew(dst, 0);
    char *sent;

    *ret_made = virStorageVolCreateXML(pool, xml, 0);
    if (!*ret_made) {
        dom_virt_set_error(error, "creating volume '%s' on the destination", name);
        return NULL;
    }
    if (!up || virStorageVolUpload(*ret_made, up, 0, total, 0) < 0) {
        dom_virt_set_error(error, "starting the upload of volume '%s'", name);
        return NULL;
    }
    sent = stream_volume(src, from, up, total, progress, data, error);
    if (!sent) {
        virStreamAbort(up);
        return NULL;
    }
    if (virStreamFinish(up) < 0) {
        dom_virt_set_error(error, "finishing the upload of volume '%s'", name);
        g_free(sent);
        return NULL;
    }
    return sent;
}

/**
 * dom_volcopy:
 * @src: the host that has the volume
 * @dst: the host that needs it
 * @prefix: the configured name prefix (the pools' names)
 * @kind: which pool
 * @name: the volume
 * @sha256: (hex) what its content must hash to
 * @progress: (nullable): told how far the copy, then the check, has come
 * @data: for @progress
 * @error: return location for an error
 *
 * Returns: true when @dst holds a checked copy; on failure nothing is left on @dst.
 */
bool
dom_volcopy(virConnectPtr src, virConnectPtr dst, const char *prefix, DomPoolKind kind,
            const char *name, const char *sha256, DomVolCopyProgress progress, void *data,
            GError **error)
{
    g_autoptr(virStorageVol) from = dom_storage_volume(src, prefix, kind, name, error);
    g_autoptr(virStoragePool) pool = dom_storage_pool(dst, prefix, kind, error);
    g_autoptr(virStorageVol) made = NULL;
    g_autofree char *sent = NULL;
    g_autofree char *landed = NULL;
    guint64 total = 0;

    if (!from || !pool || !physical_size(from, &total, error))
        return false;
    sent = send_copy(src, from, dst, pool, name, total, progress, data, &made, error);
    if (sent && strcmp(sent, sha256) != 0)
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_CONFLICT,
                    "volume '%s' does not hold the content recorded for it (SHA-256 %s, not "
                    "%s)", name, sent, sha256);
    else if (sent)
        landed = stream_volume(dst, made, NULL, total, progress, data, error);
    if (landed && strcmp(landed, sha256) == 0)
        return true;
    if (landed)
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_UNAVAILABLE,
                    "the copy of volume '%s' reads back as SHA-256 %s, not %s", name, landed,
                    sha256);
    if (made)
        virStorageVolDelete(made, 0);
    return false;
}
