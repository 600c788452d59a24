// SPDX-License-Identifier: LGPL-2.1-or-later
// Authentication, CSRF, JSON bodies and error replies shared by the handlers.
#include "api-common.h"

#include <string.h>

#include "http-problem.h"
#include "vmb-log.h"
#include "vmb-secret.h"

/* Nesting deeper than this in a request body is refused. */
#define JSON_MAX_DEPTH 16

/**
 * api_caller_free:
 * @caller: (nullable): a caller
 */
void
api_caller_free(ApiCaller *caller)
{
    if (!caller)
        return;
    db_user_free(caller->user);
    g_free(caller->credential);
    g_free(caller);
}

/**
 * api_session_cookie:
 * @app: the daemon's state
 *
 * Returns: the session cookie's name.
 */
const char *
api_session_cookie(const App *app)
{
    return app->secure_cookies ? "__Host-vmb_session" : "vmb_session";
}

/**
 * api_error:
 * @req: the request
 * @error: what went wrong
 *
 * Returns: (transfer full): the problem reply.
 */
HttpReply *
api_error(HttpRequest *req, const GError *error)
{
    return api_error_at(http_request_method(req), http_request_path(req), error);
}

/**
 * api_error_at:
 * @method: the request's method, for the log
 * @path: its path, for the log
 * @error: what went wrong
 *
 * api_error() for work that outlives its HttpRequest (a deferred answer's).
 *
 * Returns: (transfer full): the problem reply.
 */
HttpReply *
api_error_at(const char *method, const char *path, const GError *error)
{
    VmbErrorKind kind = vmb_error_kind(error);
    unsigned status = http_problem_status(kind);

    if (status >= 500 || vmb_error_is_private(error)) {
        g_autofree char *logged = vmb_log_field(path);
        vmb_warning("%s %s: %s", method, logged, error->message);
    }
    return http_problem_from_error(error, NULL);
}

static bool
method_changes_state(const char *method)
{
    return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
           strcmp(method, "OPTIONS") != 0;
}

/**
 * api_public_origin:
 * @app: the daemon's state
 *
 * Returns: (transfer full): the origin (scheme://host[:port]) of http.public_url.
 */
char *
api_public_origin(const App *app)
{
    const char *url = app->cfg->http_public_url;
    const char *p = strstr(url, "://");
    const char *slash = p ? strchr(p + 3, '/') : NULL;

    return slash ? g_strndup(url, (size_t) (slash - url)) : g_strdup(url);
}

static HttpReply *
check_csrf(HttpRequest *req, App *app, const char *csrf_hash)
{
    const char *token = http_request_header(req, "X-CSRF-Token");
    const char *origin = http_request_header(req, "Origin");
    const char *fetch_site = http_request_header(req, "Sec-Fetch-Site");
    g_autofree char *ours = api_public_origin(app);
    g_autofree char *digest = NULL;

    if (!token)
        return http_problem_kind(VMB_ERROR_FORBIDDEN, "A signed-in request that changes something needs the "
                                     "X-CSRF-Token header that login returned.", NULL);
    digest = vmb_secret_sha256_hex(token, strlen(token));
    if (!vmb_secret_equal(digest, csrf_hash))
        return http_problem_kind(VMB_ERROR_FORBIDDEN, "The X-CSRF-Token header does not match this session.",
                                NULL);
    if (origin ? strcmp(origin, ours) != 0
               : !(fetch_site && strcmp(fetch_site, "same-origin") == 0))
        return http_problem_kind(VMB_ERROR_FORBIDDEN, "Cross-site request refused: the Origin is not this "
                                     "site's.", NULL);
    return NULL;
}

/**
 * api_authenticate:
 * @req: the request
 * @app: the daemon's state
 * @ret_caller: (out): the caller, set when NULL is returned
 *
 * A bearer token wins over a cookie. Cookie-authenticated requests that change state must
 * pass the CSRF rule.
 *
 * Returns: (transfer full) (nullable): NULL when authenticated, else the reply to send.
 */
HttpReply *
api_authenticate(HttpRequest *req, App *app, ApiCaller **ret_caller)
{
    const char *authz = http_request_header(req, "Authorization");
    const char *cookie = http_request_cookie(req, api_session_cookie(app));
    g_autoptr(ApiCaller) caller = g_new0(ApiCaller, 1);
    g_autoptr(GError) error = NULL;

    if (authz) {
        if (g_ascii_strncasecmp(authz, "Bearer ", 7) != 0 || !authz[7]) {
            HttpReply *r = http_problem_kind(VMB_ERROR_UNAUTHORIZED, "Use 'Authorization: Bearer <token>'.", NULL);
            http_reply_add_header(r, "WWW-Authenticate", "Bearer");
            return r;
        }
        g_autofree char *digest = vmb_secret_sha256_hex(authz + 7, strlen(authz + 7));
        caller->kind = API_AUTH_TOKEN;
        caller->credential = g_strconcat("t:", digest, NULL);
        caller->user = svc_auth_token(app->auth, authz + 7, &caller->expires_at,
                                      &error);
    } else if (cookie && *cookie) {
        g_autofree char *csrf_hash = NULL;
        g_autofree char *digest = vmb_secret_sha256_hex(cookie, strlen(cookie));
        caller->kind = API_AUTH_SESSION;
        caller->credential = g_strconcat("s:", digest, NULL);
        caller->user = svc_auth_session(app->auth, cookie, &csrf_hash,
                                        &caller->expires_at, &error);
        if (caller->user && method_changes_state(http_request_method(req))) {
            HttpReply *refused = check_csrf(req, app, csrf_hash);
            if (refused)
                return refused;
        }
    } else {
        HttpReply *r = http_problem_kind(VMB_ERROR_UNAUTHORIZED, "Sign in, or send an API token.", NULL);
        http_reply_add_header(r, "WWW-Authenticate", "Bearer");
        return r;
    }
    if (!caller->user)
        return api_error(req, error);
    http_request_set_user(req, caller->user->username);
    *ret_caller = g_steal_pointer(&caller);
    return NULL;
}

/**
 * api_sees_internals:
 * @req: the request
 * @app: the daemon's state
 *
 * Whether the caller may read the broker's internals (/metrics, readyz detail): a client
 * address in http.metrics_allow, or a bearer token of an admin. No cookie: a page of ours
 * has no business there.
 *
 * Returns: true when allowed.
 */
bool
api_sees_internals(HttpRequest *req, App *app)
{
    const char *authz = http_request_header(req, "Authorization");
    g_autoptr(DbUser) user = NULL;

    if (vmb_cidr_list_contains(app->cfg->http_metrics_allow, http_request_remote_addr(req)))
        return true;
    if (!authz || g_ascii_strncasecmp(authz, "Bearer ", 7) != 0 || !authz[7])
        return false;
    user = svc_auth_token(app->auth, authz + 7, NULL, NULL);
    if (user)
        http_request_set_user(req, user->username);
    return user && user->role == DB_ROLE_ADMIN;
}

/**
 * api_json_body:
 * @req: the request
 * @ret_obj: (out): the parsed object, set when NULL is returned
 *
 * Returns: (transfer full) (nullable): NULL on success, else the 400 or 415 reply.
 */
HttpReply *
api_json_body(HttpRequest *req, json_object **ret_obj)
{
    size_t len = 0;
    const char *body = http_request_body(req, &len);

    return api_json_decode(http_request_header(req, "Content-Type"), body, len, ret_obj);
}

/**
 * api_json_decode:
 * @ctype: (nullable): the Content-Type header
 * @body: the body, NUL-terminated after @len bytes
 * @len: its length
 * @ret_obj: (out): the parsed object, set when NULL is returned
 *
 * api_json_body() without the request, for its fuzz target.
 *
 * Returns: (transfer full) (nullable): NULL on success, else the 400 or 415 reply.
 */
HttpReply *
api_json_decode(const char *ctype, const char *body, size_t len, json_object **ret_obj)
{
    g_autoptr(json_tokener) tok = NULL;
    g_autoptr(json_object) obj = NULL;

    if (!ctype || g_ascii_strncasecmp(ctype, "application/json", 16) != 0 ||
        (ctype[16] != '\0' && ctype[16] != ';'))
        return http_problem_kind(VMB_ERROR_UNSUPPORTED_MEDIA, "Send the body as application/json.", NULL);
    if (strlen(body) != len || !g_utf8_validate(body, (gssize) len, NULL))
        return http_problem_kind(VMB_ERROR_INVALID, "The body is not valid UTF-8 text.", NULL);
    tok = json_tokener_new_ex(JSON_MAX_DEPTH);
    obj = json_tokener_parse_ex(tok, body, (int) len);
    if (!obj || json_tokener_get_error(tok) != json_tokener_success ||
        json_tokener_get_parse_end(tok) != len)
        return http_problem_kind(VMB_ERROR_INVALID, "The body is not valid JSON.", NULL);
    if (!json_object_is_type(obj, json_type_object))
        return http_problem_kind(VMB_ERROR_INVALID, "The body must be a JSON object.", NULL);
    *ret_obj = g_steal_pointer(&obj);
    return NULL;
}

/**
 * api_json_string:
 * @obj: a JSON object
 * @key: the member
 * @required: whether it must be present
 * @ret: (out): the string, borrowed from @obj; untouched when absent
 * @error: return location for a VMB_ERROR_INVALID error
 *
 * Returns: true when the member is a string, or absent and optional.
 */
bool
api_json_string(json_object *obj, const char *key, bool required, const char **ret,
                GError **error)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(obj, key, &v) || json_object_is_type(v, json_type_null)) {
        if (!required)
            return true;
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID, "'%s' is required.", key);
        return false;
    }
    if (!json_object_is_type(v, json_type_string)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID, "'%s' must be a string.", key);
        return false;
    }
    /* "\u0000" decodes to a NUL: C would see the text cut short there. */
    if (strlen(json_object_get_string(v)) != (size_t) json_object_get_string_len(v)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID, "'%s' must not contain NUL.", key);
        return false;
    }
    *ret = json_object_get_string(v);
    return true;
}

/**
 * api_json_uint:
 * @obj: a JSON object
 * @key: the member
 * @max: the largest value allowed
 * @ret: (out): the value; untouched when absent
 * @error: return location for a VMB_ERROR_INVALID error
 *
 * Returns: true when the member is an integer from 0 to @max, or absent.
 */
bool
api_json_uint(json_object *obj, const char *key, gint64 max, gint64 *ret, GError **error)
{
    json_object *v = NULL;
    gint64 n;

    if (!json_object_object_get_ex(obj, key, &v) || json_object_is_type(v, json_type_null))
        return true;
    n = json_object_get_int64(v);
    if (!json_object_is_type(v, json_type_int) || n < 0 || n > max) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID,
                    "'%s' must be a whole number from 0 to %" G_GINT64_FORMAT ".", key, max);
        return false;
    }
    *ret = n;
    return true;
}

/**
 * api_list_reply:
 * @req: a GET
 * @a: the daemon's state
 * @list: fetches the caller's elements (NULL with an error)
 * @render: renders one
 *
 * Returns: 200 [element], or the authentication's or @list's problem.
 */
HttpReply *
api_list_reply(HttpRequest *req, App *a, ApiListFunc list, ApiRenderFunc render)
{
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) items = NULL;
    g_autoptr(json_object) out = json_object_new_array();
    HttpReply *reply = api_authenticate(req, a, &caller);

    if (reply)
        return reply;
    items = list(a, caller->user, req, &error);
    if (!items)
        return api_error(req, error);
    for (guint i = 0; i < items->len; i++)
        json_object_array_add(out, render(items->pdata[i]));
    return http_reply_json(200, out);
}

/**
 * api_upload_check:
 * @req: a streamed upload's request
 * @what: what is uploaded, for the client ("the ISO")
 * @other_type: (nullable): a Content-Type accepted besides application/octet-stream
 * @ret_declared: (out): the Content-Length, or -1 without one
 *
 * Returns: (nullable): NULL when the upload may start, else the 415 or 400 reply.
 */
HttpReply *
api_upload_check(HttpRequest *req, const char *what, const char *other_type,
                 gint64 *ret_declared)
{
    const char *ctype = http_request_header(req, "Content-Type");
    const char *clen = http_request_header(req, "Content-Length");
    guint64 declared = 0;

    if (!ctype || (g_ascii_strcasecmp(ctype, "application/octet-stream") != 0 &&
                   (!other_type || g_ascii_strcasecmp(ctype, other_type) != 0))) {
        g_autofree char *words = g_strdup_printf("Send %s as the raw body, with Content-Type "
                                                 "application/octet-stream.", what);
        return http_problem_kind(VMB_ERROR_UNSUPPORTED_MEDIA, words, NULL);
    }
    if (clen && !g_ascii_string_to_unsigned(clen, 10, 0, G_MAXINT64, &declared, NULL))
        return http_problem_kind(VMB_ERROR_INVALID, "Content-Length is not a number.", NULL);
    *ret_declared = clen ? (gint64) declared : -1;
    return NULL;
}

HttpReply *
api_upload_error(const char *what, const GError *error)
{
    if (http_problem_status(vmb_error_kind(error)) >= 500)
        vmb_warning("%s upload: %s", what, error->message);
    return http_problem_from_error(error, NULL);
}
