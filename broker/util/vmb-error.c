// SPDX-License-Identifier: LGPL-2.1-or-later
// The VMB_ERROR and VMB_ERROR_PRIVATE domains and their kind names.
#include "vmb-error.h"

G_DEFINE_QUARK(vmb-error-quark, vmb_error)
G_DEFINE_QUARK(vmb-error-private-quark, vmb_error_private)

static const char *const kind_names[] = {
    [VMB_ERROR_INTERNAL] = "internal",
    [VMB_ERROR_INVALID] = "invalid",
    [VMB_ERROR_UNPROCESSABLE] = "unprocessable",
    [VMB_ERROR_NOT_FOUND] = "not-found",
    [VMB_ERROR_CONFLICT] = "conflict",
    [VMB_ERROR_UNAUTHORIZED] = "unauthorized",
    [VMB_ERROR_FORBIDDEN] = "forbidden",
    [VMB_ERROR_TOO_LARGE] = "too-large",
    [VMB_ERROR_UNSUPPORTED_MEDIA] = "unsupported-media-type",
    [VMB_ERROR_TOO_MANY] = "too-many-requests",
    [VMB_ERROR_UNAVAILABLE] = "unavailable",
    [VMB_ERROR_EXHAUSTED] = "exhausted",
    [VMB_ERROR_NO_SPACE] = "insufficient-storage",
    [VMB_ERROR_CONFIG] = "config",
    [VMB_ERROR_SCHEMA] = "schema",
    [VMB_ERROR_HOST_UNSUITABLE] = "host-unsuitable",
    [VMB_ERROR_TIMEOUT] = "timeout",
    [VMB_ERROR_METHOD_NOT_ALLOWED] = "method-not-allowed",
    [VMB_ERROR_UPGRADE_REQUIRED] = "upgrade-required",
};
G_STATIC_ASSERT(G_N_ELEMENTS(kind_names) == VMB_ERROR_LAST);

/**
 * vmb_error_kind_to_string:
 * @kind: an error kind
 *
 * Returns: the kind's stable name; "internal" for a value out of range.
 */
const char *
vmb_error_kind_to_string(VmbErrorKind kind)
{
    if ((unsigned) kind >= VMB_ERROR_LAST)
        return kind_names[VMB_ERROR_INTERNAL];
    return kind_names[kind];
}

/**
 * vmb_error_kind_from_string:
 * @name: (nullable): a name vmb_error_kind_to_string() gave
 *
 * Returns: its kind; VMB_ERROR_INTERNAL for NULL or an unknown name.
 */
VmbErrorKind
vmb_error_kind_from_string(const char *name)
{
    for (unsigned k = 0; name && k < VMB_ERROR_LAST; k++)
        if (g_strcmp0(kind_names[k], name) == 0)
            return (VmbErrorKind) k;
    return VMB_ERROR_INTERNAL;
}

/**
 * vmb_error_kind:
 * @error: (nullable): an error
 *
 * Returns: @error's kind when it is in the VMB_ERROR or VMB_ERROR_PRIVATE domain, else
 * VMB_ERROR_INTERNAL.
 */
VmbErrorKind
vmb_error_kind(const GError *error)
{
    if (!error || (error->domain != VMB_ERROR && error->domain != VMB_ERROR_PRIVATE) ||
        (unsigned) error->code >= VMB_ERROR_LAST)
        return VMB_ERROR_INTERNAL;
    return (VmbErrorKind) error->code;
}

/**
 * vmb_error_is_private:
 * @error: (nullable): an error
 *
 * Returns: whether @error's message names internals (libvirt's words, domain, pool and
 * volume names, host paths) and so belongs in the log, never in an answer to a client.
 */
bool
vmb_error_is_private(const GError *error)
{
    return error && error->domain == VMB_ERROR_PRIVATE;
}
