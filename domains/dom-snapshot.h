// SPDX-License-Identifier: LGPL-2.1-or-later
// Internal snapshots of a running guest: its disks (inside their qcow2 files) and its memory,
// as ordinary libvirt snapshots (`virsh snapshot-list`). A revert happens in the running
// QEMU, which keeps the console ports and VNC password it has now.
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <libvirt/libvirt.h>

typedef struct {
    char *name;
    char *description;
    gint64 created;  /* seconds since the epoch */
    char *state;     /* the guest's state when it was taken: "running", "paused", ... */
} DomSnapshot;

void dom_snapshot_free(DomSnapshot *snap);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DomSnapshot, dom_snapshot_free)

/* The domain's snapshots, newest first (element-type DomSnapshot). */
GPtrArray *dom_snapshot_list(virDomainPtr dom, GError **error);
/* How many it has, or -1. */
int dom_snapshot_count(virDomainPtr dom, GError **error);
/* Bytes the domain's writable disks take on the host now, their snapshots included. */
bool dom_snapshot_disk_bytes(virDomainPtr dom, guint64 *ret_bytes, GError **error);
/* Takes snapshot @name of the running domain, disks and memory, atomically. */
bool dom_snapshot_create(virDomainPtr dom, const char *name, const char *description,
                         GError **error);
/* Brings the running domain back to snapshot @name. */
bool dom_snapshot_revert(virDomainPtr dom, const char *name, GError **error);
/* Deletes snapshot @name (with @metadata_only, libvirt's record alone: its disk is gone). */
bool dom_snapshot_delete(virDomainPtr dom, const char *name, bool metadata_only,
                         GError **error);
/* Deletes every snapshot of the domain. */
bool dom_snapshot_delete_all(virDomainPtr dom, bool metadata_only, GError **error);
