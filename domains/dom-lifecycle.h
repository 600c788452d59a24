// SPDX-License-Identifier: LGPL-2.1-or-later
// A VM's life on libvirt: define (persistent), start, graceful stop with a fallback to
// destroy, destroy, undefine with its ephemeral volumes, state, screenshot, metadata.
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <libvirt/libvirt.h>

#include "dom-xml.h"

typedef enum {
    DOM_STATE_RUNNING,
    DOM_STATE_PAUSED,
    DOM_STATE_STOPPING, /* shutting down */
    DOM_STATE_SHUTOFF,
    DOM_STATE_CRASHED,
    DOM_STATE_OTHER,    /* blocked, suspended by power management, no state */

    DOM_STATE_LAST
} DomState;

const char *dom_lifecycle_state_to_string(DomState state);
int dom_lifecycle_state_from_string(const char *s);

/* Domains */
virDomainPtr dom_lifecycle_define(virConnectPtr conn, const char *xml, GError **error);
virDomainPtr dom_lifecycle_lookup(virConnectPtr conn, const char *name, GError **error);
bool dom_lifecycle_save(virDomainPtr dom, GError **error);
bool dom_lifecycle_start(virDomainPtr dom, GError **error);
bool dom_lifecycle_stop(virDomainPtr dom, guint timeout_ms, bool *ret_forced, GError **error);
bool dom_lifecycle_destroy(virDomainPtr dom, GError **error);
bool dom_lifecycle_reboot(virDomainPtr dom, GError **error);
/* The VNC password the domain runs with (from its secure XML). */
char *dom_lifecycle_vnc_password(virDomainPtr dom, GError **error);
bool dom_lifecycle_undefine(virDomainPtr dom, bool delete_ephemeral, GError **error);

/* Looking at them */
/* (element-type utf8): names of every domain (defined or transient) starting with @prefix. */
GPtrArray *dom_lifecycle_list_names(virConnectPtr conn, const char *prefix, GError **error);
/* Why a domain that does not run stopped, as libvirt recorded it. */
typedef enum {
    DOM_STOP_UNKNOWN,   /* not said, or a cause vmbroker does not tell apart */
    DOM_STOP_SHUTDOWN,  /* the guest powered off */
    DOM_STOP_DESTROYED, /* destroyed (virsh destroy) */
    DOM_STOP_CRASHED,   /* the guest crashed */
    DOM_STOP_FAILED,    /* QEMU ended unexpectedly (killed, failed) */
} DomStopCause;
/* Why a domain's CPUs are paused, as libvirt recorded it. */
typedef enum {
    DOM_PAUSE_UNKNOWN = 0,    /* not said: QEMU stopped the guest itself (an emulation
                               * failure such as a KVM internal error) */
    DOM_PAUSE_USER,           /* a libvirt client asked (virsh suspend) */
    DOM_PAUSE_IOERROR,        /* a disk I/O error */
    DOM_PAUSE_WATCHDOG,       /* the guest's watchdog fired */
    DOM_PAUSE_CRASHED,        /* the guest crashed (a panic device told) */
    DOM_PAUSE_MIGRATION,      /* migrating, or a post-copy migration */
    DOM_PAUSE_MIGRATION_FAILED, /* a post-copy migration failed */
    DOM_PAUSE_SAVE,           /* saving, dumping or snapshotting its memory */
    DOM_PAUSE_SNAPSHOT,       /* restored from a snapshot taken paused */
    DOM_PAUSE_SHUTTING_DOWN,  /* paused while it shuts down */
    DOM_PAUSE_STARTING_UP,    /* being started */

    DOM_PAUSE_LAST
} DomPauseCause;

/* The stable name of a pause cause ("unknown", "user", "io-error" ...), NULL out of range. */
const char *dom_lifecycle_pause_cause_to_string(DomPauseCause cause);

/* A domain's state as vmbroker tells states apart. */
typedef struct {
    bool running;        /* not shut off, not crashed: running, paused, shutting down ... */
    bool paused;         /* running, with its CPUs stopped (pause says why) */
    DomPauseCause pause; /* when paused */
    DomStopCause stop;   /* when not running (DOM_STOP_UNKNOWN otherwise) */
} DomRunState;

/* Reads the domain's state and reason once (virDomainGetState). */
bool dom_lifecycle_run_state(virDomainPtr dom, DomRunState *ret_state, GError **error);
/* Whether the domain runs (running, paused, shutting down, ...): not shut off, not crashed;
 * when it does not, @ret_cause (optional) says why. */
bool dom_lifecycle_is_running(virDomainPtr dom, bool *ret_running, DomStopCause *ret_cause,
                              GError **error);
bool dom_lifecycle_state(virDomainPtr dom, DomState *ret_state, GError **error);
GBytes *dom_lifecycle_screenshot(virDomainPtr dom, char **ret_mime, GError **error);
DomMetadata *dom_lifecycle_metadata(virDomainPtr dom, GError **error);
