// SPDX-License-Identifier: LGPL-2.1-or-later
// ISO uploads: streamed to a private temporary file while hashed, bounded by a size cap and
// a per-user quota, checked to be a bootable ISO, stored once per content in the ISO pool.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-isos.h"
#include "db-pool.h"
#include "db-users.h"
#include "dom-hypervisor.h"
#include "vmb-bounded.h"

typedef struct SvcIsos SvcIsos;
typedef struct SvcUpload SvcUpload;

typedef struct {
    DbPool *db;              /* PostgreSQL */
    DomHypervisor *hv;       /* libvirt (pool refresh) */
    VmbBounded *bounded;     /* where the pool refresh runs */
    unsigned call_timeout_s; /* how long a request waits for it */
    const char *storage_dir; /* storage.dir: isos/ is the ISO pool, uploads/ the temp files */
    const char *name_prefix; /* libvirt.name_prefix, for volume names */
    guint64 max_bytes;       /* one ISO at most */
    guint64 quota_bytes;     /* one user's ISOs together at most (admins: no quota) */
} SvcIsosOptions;

SvcIsos *svc_isos_new(const SvcIsosOptions *opts);
void svc_isos_free(SvcIsos *isos);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SvcIsos, svc_isos_free)

/* @declared: Content-Length, or -1 when the body is chunked. VMB_ERROR_TOO_LARGE over the
 * cap or the quota, VMB_ERROR_INVALID for a bad name. */
/* @remote_addr (nullable) goes to the audit log with the upload. */
SvcUpload *svc_isos_upload_begin(SvcIsos *isos, const DbUser *user, const char *name,
                                 gint64 declared, const char *remote_addr, GError **error);
bool svc_isos_upload_write(SvcUpload *up, const void *data, size_t len, GError **error);
/* Checks, stores and records the ISO; @ret_existed: the user had this content already. */
DbIso *svc_isos_upload_finish(SvcUpload *up, bool *ret_existed, GError **error);
/* Frees the upload; an unfinished one leaves no file behind. */
void svc_isos_upload_free(SvcUpload *up);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SvcUpload, svc_isos_upload_free)

GPtrArray *svc_isos_list(SvcIsos *isos, const DbUser *user, GError **error);
bool svc_isos_delete(SvcIsos *isos, const DbUser *user, const char *id,
                     const char *remote_addr, GError **error);
