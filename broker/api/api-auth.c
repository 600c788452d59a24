// SPDX-License-Identifier: LGPL-2.1-or-later
// /api/v1/auth/* and /api/v1/me: sign in, sign out, sign up, who am I.
#include "api.h"

#include "api-common.h"
#include "api-render.h"
#include "http-problem.h"

static HttpReply *
throttled_reply(HttpRequest *req, const GError *error, unsigned retry_after_s)
{
    HttpReply *reply = api_error(req, error);

    if (vmb_error_kind(error) == VMB_ERROR_TOO_MANY) {
        g_autofree char *secs = g_strdup_printf("%u", MAX(retry_after_s, 1u));
        http_reply_add_header(reply, "Retry-After", secs);
    }
    return reply;
}

/* Secure when http.public_url is https, or when a trusted proxy says the browser came over
 * https. */
static char *
session_cookie(const App *app, HttpRequest *req, const char *value, unsigned max_age_s)
{
    bool secure = app->secure_cookies || http_request_is_https(req);

    return g_strdup_printf("%s=%s; Path=/; Max-Age=%u; HttpOnly; SameSite=Strict%s",
                           api_session_cookie(app), value, max_age_s,
                           secure ? "; Secure" : "");
}

/* Reads {username, password} from the body; returns a reply on failure. */
static HttpReply *
read_credentials(HttpRequest *req, json_object **ret_obj, const char **ret_user,
                 const char **ret_password)
{
    g_autoptr(GError) error = NULL;
    HttpReply *bad = api_json_body(req, ret_obj);

    if (bad)
        return bad;
    if (!api_json_string(*ret_obj, "username", true, ret_user, &error) ||
        !api_json_string(*ret_obj, "password", true, ret_password, &error))
        return api_error(req, error);
    return NULL;
}

/**
 * api_auth_login:
 * @req: POST /api/v1/auth/login {username, password}
 * @app: the daemon's state
 *
 * Returns: 200 {user, csrf_token} with the session cookie; 401; 429 with Retry-After.
 */
HttpReply *
api_auth_login(HttpRequest *req, void *app)
{
    App *a = app;
    g_autoptr(json_object) body = NULL;
    g_autoptr(json_object) out = json_object_new_object();
    g_autoptr(SvcLogin) login = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *cookie = NULL;
    const char *username = NULL, *password = NULL;
    unsigned retry = 0;
    HttpReply *reply = read_credentials(req, &body, &username, &password);

    if (reply)
        return reply;
    login = svc_auth_login(a->auth, username, password, http_request_remote_addr(req),
                           &retry, &error);
    if (!login)
        return throttled_reply(req, error, retry);
    http_request_set_user(req, login->user->username);
    json_object_object_add(out, "user", api_render_user(login->user, false));
    json_object_object_add(out, "csrf_token", json_object_new_string(login->csrf_token));
    reply = http_reply_json(200, out);
    cookie = session_cookie(a, req, login->session_secret, a->cfg->auth_session_max_s);
    http_reply_add_header(reply, "Set-Cookie", cookie);
    return reply;
}

/**
 * api_auth_logout:
 * @req: POST /api/v1/auth/logout
 * @app: the daemon's state
 *
 * Ends the cookie's session (a bearer caller has none) and clears the cookie.
 *
 * Returns: 204.
 */
HttpReply *
api_auth_logout(HttpRequest *req, void *app)
{
    App *a = app;
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *cookie = NULL;
    HttpReply *reply = api_authenticate(req, a, &caller);
    const char *secret = http_request_cookie(req, api_session_cookie(a));

    if (reply)
        return reply;
    if (caller->kind == API_AUTH_SESSION && !svc_auth_logout(a->auth, secret, &error))
        return api_error(req, error);
    reply = http_reply_empty(204);
    cookie = session_cookie(a, req, "", 0);
    http_reply_add_header(reply, "Set-Cookie", cookie);
    return reply;
}

/**
 * api_auth_signup:
 * @req: POST /api/v1/auth/signup {username, password}
 * @app: the daemon's state
 *
 * Returns: 201 {user} when auth.signup is on; 403 when it is off; 409 for a taken name;
 * 429 with Retry-After past auth.signups_per_addr attempts from the address in a window.
 */
HttpReply *
api_auth_signup(HttpRequest *req, void *app)
{
    App *a = app;
    g_autoptr(json_object) body = NULL;
    g_autoptr(json_object) out = json_object_new_object();
    g_autoptr(GError) error = NULL;
    const char *username = NULL, *password = NULL;
    unsigned retry = 0;
    HttpReply *reply;

    if (!a->cfg->auth_signup)
        return http_problem_kind(VMB_ERROR_FORBIDDEN, "Sign-up is closed on this server; ask an admin.", NULL);
    reply = read_credentials(req, &body, &username, &password);
    if (reply)
        return reply;
    if (!svc_auth_signup(a->auth, username, password, http_request_remote_addr(req),
                         &retry, &error))
        return throttled_reply(req, error, retry);
    json_object_object_add(out, "username", json_object_new_string(username));
    json_object_object_add(out, "role", json_object_new_string("user"));
    return http_reply_json(201, out);
}

/**
 * api_auth_me:
 * @req: GET /api/v1/me
 * @app: the daemon's state
 *
 * Returns: 200 {id, username, role, auth}, and for a signed-in browser the session's
 * csrf_token.
 */
HttpReply *
api_auth_me(HttpRequest *req, void *app)
{
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(json_object) out = NULL;
    HttpReply *reply = api_authenticate(req, app, &caller);

    if (reply)
        return reply;
    out = api_render_user(caller->user, false);
    json_object_object_add(out, "auth", json_object_new_string(
                               caller->kind == API_AUTH_TOKEN ? "token" : "session"));
    if (caller->kind == API_AUTH_SESSION) {
        /* Every tab of the browser gets the session's token here, not only the one that
         * signed in. */
        g_autofree char *csrf = svc_auth_csrf_token(
            http_request_cookie(req, api_session_cookie(app)));
        json_object_object_add(out, "csrf_token", json_object_new_string(csrf));
    }
    reply = http_reply_json(200, out);
    http_reply_add_header(reply, "Cache-Control", "no-store");
    return reply;
}
