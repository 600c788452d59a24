// SPDX-License-Identifier: LGPL-2.1-or-later
// A volume of one of vmbroker's pools copied to the same pool on another host, through
// libvirt's download and upload streams (no shared filesystem, no other protocol), and
// checked by SHA-256 against what the database says its content is.
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <libvirt/libvirt.h>

#include "dom-storage.h"

/* Called every so often while bytes flow: the copy's, then the check's. */
typedef void (*DomVolCopyProgress)(guint64 done, guint64 total, void *data);

/* The SHA-256 (hex) of volume @name of pool @kind on @conn, read through a download
 * stream; @progress may be NULL. */
char *dom_volcopy_sha256(virConnectPtr conn, const char *prefix, DomPoolKind kind,
                         const char *name, DomVolCopyProgress progress, void *data,
                         GError **error);
/* Copies volume @name of pool @kind from @src to @dst (it must not be there), then reads
 * the copy back: both digests must be @sha256, else the copy is deleted (VMB_ERROR_CONFLICT
 * when the source's content is not what @sha256 says). */
bool dom_volcopy(virConnectPtr src, virConnectPtr dst, const char *prefix, DomPoolKind kind,
                 const char *name, const char *sha256, DomVolCopyProgress progress,
                 void *data, GError **error);
