// SPDX-License-Identifier: LGPL-2.1-or-later
// Error kinds shared by every layer. A lower layer reports a GError in the VMB_ERROR
// domain whose code is a VmbErrorKind; only the HTTP layer maps a kind to a status.
#pragma once

#include <stdbool.h>
#include <glib.h>

typedef enum {
    VMB_ERROR_INTERNAL = 0,      /* a bug or an unexpected failure: never detailed to clients */
    VMB_ERROR_INVALID,           /* malformed input */
    VMB_ERROR_UNPROCESSABLE,     /* well-formed input naming something unusable */
    VMB_ERROR_NOT_FOUND,         /* no such object (or not visible to the caller) */
    VMB_ERROR_CONFLICT,          /* the object's state forbids the operation */
    VMB_ERROR_UNAUTHORIZED,      /* no or bad credentials */
    VMB_ERROR_FORBIDDEN,         /* credentials fine, permission missing */
    VMB_ERROR_TOO_LARGE,         /* a client-controlled size over its bound */
    VMB_ERROR_UNSUPPORTED_MEDIA, /* wrong content type */
    VMB_ERROR_TOO_MANY,          /* throttled */
    VMB_ERROR_UNAVAILABLE,       /* a dependency (PostgreSQL, libvirt) is down */
    VMB_ERROR_EXHAUSTED,         /* no capacity left (ports, memory) */
    VMB_ERROR_NO_SPACE,          /* storage full */
    VMB_ERROR_CONFIG,            /* bad configuration */
    VMB_ERROR_SCHEMA,            /* database schema newer than this binary */
    VMB_ERROR_HOST_UNSUITABLE,   /* the host cannot run the guest as configured (no KVM) */
    VMB_ERROR_TIMEOUT,           /* a dependency did not answer within its bound; work goes on */
    VMB_ERROR_METHOD_NOT_ALLOWED, /* the path exists, the method does not */
    VMB_ERROR_UPGRADE_REQUIRED,  /* a websocket endpoint asked for another protocol version */

    VMB_ERROR_LAST
} VmbErrorKind;

#define VMB_ERROR (vmb_error_quark())

GQuark vmb_error_quark(void);

/* The same kinds, for messages that name internals (libvirt's words, object names, paths):
 * the log shows them, a client gets only the kind's generic words. domains/ reports in it. */
#define VMB_ERROR_PRIVATE (vmb_error_private_quark())

GQuark vmb_error_private_quark(void);

/* Stable lower-case name of a kind ("not-found"), used in logs and problem type URIs. */
const char *vmb_error_kind_to_string(VmbErrorKind kind);
VmbErrorKind vmb_error_kind_from_string(const char *name);

/* The kind of @error: its code in the VMB_ERROR or VMB_ERROR_PRIVATE domain,
 * VMB_ERROR_INTERNAL otherwise. */
VmbErrorKind vmb_error_kind(const GError *error);
/* Whether @error is in VMB_ERROR_PRIVATE. */
bool vmb_error_is_private(const GError *error);
