// SPDX-License-Identifier: LGPL-2.1-or-later
// What every API handler needs: who is calling (bearer token or session cookie, with the
// CSRF rule for cookies), JSON bodies, and turning errors into problem replies.
#pragma once

#include "app.h"
#include "db-ops.h"
#include "db-users.h"
#include "db-vms.h"

typedef enum {
    API_AUTH_TOKEN,   /* Authorization: Bearer */
    API_AUTH_SESSION, /* session cookie */

    API_AUTH_LAST
} ApiAuthKind;

typedef struct {
    DbUser *user;      /* the caller */
    ApiAuthKind kind;  /* how they proved it */
    gint64 expires_at; /* when that proof ends (Unix seconds), 0 for a token without end */
    char *credential;  /* "s:" or "t:" and the session's or token's digest: what consoles
                        * opened through this request end with */
} ApiCaller;

void api_caller_free(ApiCaller *caller);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ApiCaller, api_caller_free)

/* scheme://host[:port] of http.public_url, what browsers send as Origin. */
char *api_public_origin(const App *app);

/* The session cookie's name: "__Host-vmb_session" behind https, else "vmb_session". */
const char *api_session_cookie(const App *app);

/* Authenticates the request. On failure returns the reply to send (401, 403 for a cookie
 * request that changes state without the CSRF token and a same-origin Origin, 503). */
HttpReply *api_authenticate(HttpRequest *req, App *app, ApiCaller **ret_caller);

/* Whether the caller may read /metrics and readyz detail (http.metrics_allow or an admin's
 * bearer token). */
bool api_sees_internals(HttpRequest *req, App *app);

/* Parses a JSON object body (415 unless application/json, 400 when malformed). */
HttpReply *api_json_body(HttpRequest *req, json_object **ret_obj);
HttpReply *api_json_decode(const char *ctype, const char *body, size_t len,
                           json_object **ret_obj);
/* Reads a member that must be a string (or absent when !required); VMB_ERROR_INVALID. */
bool api_json_string(json_object *obj, const char *key, bool required, const char **ret,
                     GError **error);
/* Reads a member that must be a non-negative integer (or absent: *ret untouched). */
bool api_json_uint(json_object *obj, const char *key, gint64 max, gint64 *ret,
                   GError **error);

/* The problem reply for @error; logs it when its detail is hidden from the client. */
HttpReply *api_error(HttpRequest *req, const GError *error);
HttpReply *api_error_at(const char *method, const char *path, const GError *error);

/* The answer to a request that queued an operation on a VM (api-vms.c): it waits for the
 * end without a thread, or answers 202 at once with `Prefer: respond-async`. */
HttpReply *api_vms_answer_op(HttpRequest *req, App *a, const DbUser *caller, const DbOp *op,
                             const DbVm *vm, const DbOp *active, const GError *error);

/* What a listing asks of its service, and how it renders one element. */
typedef GPtrArray *(*ApiListFunc)(App *a, const DbUser *caller, HttpRequest *req,
                                  GError **error);
typedef json_object *(*ApiRenderFunc)(gconstpointer item);
/* An authenticated GET that answers 200 with the JSON array of @list's elements. */
HttpReply *api_list_reply(HttpRequest *req, App *a, ApiListFunc list, ApiRenderFunc render);

/* A streamed upload's start: 415 unless the body is application/octet-stream (or
 * @other_type), 400 for a malformed Content-Length; *@ret_declared is it, or -1. */
HttpReply *api_upload_check(HttpRequest *req, const char *what, const char *other_type,
                            gint64 *ret_declared);
/* The problem for an upload's @error, logged (as @what) when it is the server's fault. */
HttpReply *api_upload_error(const char *what, const GError *error);
