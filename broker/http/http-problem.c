// SPDX-License-Identifier: LGPL-2.1-or-later
// problem+json: kind -> status, titles, and what detail is safe to show.
#include "http-problem.h"

#include <microhttpd.h>

#define PROBLEM_TYPE_BASE "https://vmbroker.dev/problems/"
#define PROBLEM_CONTENT_TYPE "application/problem+json"

static const struct {
    unsigned status;  /* HTTP status of the kind */
    bool show_detail; /* the error's message is written for clients */
} kind_map[] = {
    [VMB_ERROR_INTERNAL] = { 500, false },
    [VMB_ERROR_INVALID] = { 400, true },
    [VMB_ERROR_UNPROCESSABLE] = { 422, true },
    [VMB_ERROR_NOT_FOUND] = { 404, true },
    [VMB_ERROR_CONFLICT] = { 409, true },
    [VMB_ERROR_UNAUTHORIZED] = { 401, true },
    [VMB_ERROR_FORBIDDEN] = { 403, true },
    [VMB_ERROR_TOO_LARGE] = { 413, true },
    [VMB_ERROR_UNSUPPORTED_MEDIA] = { 415, true },
    [VMB_ERROR_TOO_MANY] = { 429, true },
    [VMB_ERROR_UNAVAILABLE] = { 503, false },
    [VMB_ERROR_EXHAUSTED] = { 503, true },
    [VMB_ERROR_NO_SPACE] = { 507, true },
    [VMB_ERROR_CONFIG] = { 500, false },
    [VMB_ERROR_SCHEMA] = { 500, false },
    [VMB_ERROR_HOST_UNSUITABLE] = { 503, true },
    [VMB_ERROR_TIMEOUT] = { 503, true },
    [VMB_ERROR_METHOD_NOT_ALLOWED] = { 405, true },
    [VMB_ERROR_UPGRADE_REQUIRED] = { 426, true },
};
G_STATIC_ASSERT(G_N_ELEMENTS(kind_map) == VMB_ERROR_LAST);

/**
 * http_problem_status:
 * @kind: an error kind
 *
 * Returns: the HTTP status that @kind is answered with.
 */
unsigned
http_problem_status(VmbErrorKind kind)
{
    if ((unsigned) kind >= VMB_ERROR_LAST)
        kind = VMB_ERROR_INTERNAL;
    return kind_map[kind].status;
}

static const char *
generic_detail(unsigned status)
{
    switch (status) {
    case 503:
        return "A service vmbroker depends on is unavailable; try again shortly.";
    case 507:
        return "The server has no storage left for this request.";
    default:
        return "The server failed to handle this request; it has been logged.";
    }
}

static HttpReply *
problem_reply(unsigned status, const char *type, const char *detail, json_object *extra)
{
    g_autoptr(json_object) obj = json_object_new_object();
    g_autoptr(json_object) more = extra;
    const char *title = MHD_get_reason_phrase_for(status);
    HttpReply *reply;

    json_object_object_add(obj, "type", json_object_new_string(type));
    json_object_object_add(obj, "title", json_object_new_string(title ? title : "Error"));
    json_object_object_add(obj, "status", json_object_new_int((int) status));
    json_object_object_add(obj, "detail", json_object_new_string(detail));
    if (more) {
        json_object_object_foreach(more, key, value)
            json_object_object_add(obj, key, json_object_get(value));
    }
    reply = http_reply_json(status, obj);
    g_free(reply->content_type);
    reply->content_type = g_strdup(PROBLEM_CONTENT_TYPE);
    return reply;
}

/**
 * http_problem_from_error:
 * @error: the error a handler got
 * @extra: (nullable) (transfer full): members to add to the problem object
 *
 * Returns: (transfer full): a problem+json reply whose status comes from the error's kind.
 */
HttpReply *
http_problem_from_error(const GError *error, json_object *extra)
{
    VmbErrorKind kind = vmb_error_kind(error);
    unsigned status = http_problem_status(kind);
    g_autofree char *type = g_strconcat(PROBLEM_TYPE_BASE, vmb_error_kind_to_string(kind), NULL);

    /* A private message (libvirt's words, paths) stays in the log: the handler logs it. */
    return problem_reply(status, type,
                         kind_map[kind].show_detail && !vmb_error_is_private(error)
                             ? error->message : generic_detail(status), extra);
}

/**
 * http_problem_kind:
 * @kind: what went wrong; gives the status and the problem type
 * @detail: text for the client, written for it (no internals)
 * @extra: (nullable) (transfer full): members to add to the problem object
 *
 * Returns: (transfer full): a problem+json reply.
 */
HttpReply *
http_problem_kind(VmbErrorKind kind, const char *detail, json_object *extra)
{
    g_autofree char *type = NULL;

    if ((unsigned) kind >= VMB_ERROR_LAST)
        kind = VMB_ERROR_INTERNAL;
    type = g_strconcat(PROBLEM_TYPE_BASE, vmb_error_kind_to_string(kind), NULL);
    return problem_reply(kind_map[kind].status, type, detail, extra);
}
