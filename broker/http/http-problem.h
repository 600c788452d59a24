// SPDX-License-Identifier: LGPL-2.1-or-later
// RFC 9457 problem+json replies. The one place where an error kind becomes an HTTP status,
// and where it is decided what of an error's message a client may see.
#pragma once

#include "http-server.h"
#include "vmb-error.h"

unsigned http_problem_status(VmbErrorKind kind);
/* A problem reply for @error; internals (INTERNAL, UNAVAILABLE ...) get a generic detail.
 * @extra (nullable, taken) is an object whose members are added to the problem. */
HttpReply *http_problem_from_error(const GError *error, json_object *extra);
/* A problem reply of @kind with a detail written for the client. */
HttpReply *http_problem_kind(VmbErrorKind kind, const char *detail, json_object *extra);
