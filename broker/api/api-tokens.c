// SPDX-License-Identifier: LGPL-2.1-or-later
// /api/v1/tokens: a caller's own API tokens. The secret is in the creation reply only.
#include "api.h"

#include "api-common.h"
#include "api-render.h"
#include "db-tokens.h"
#include "svc-users.h"

/* Ten years: longer-lived tokens are refused. */
#define TOKEN_MAX_EXPIRES_S (G_GINT64_CONSTANT(10) * 365 * 86400)

/**
 * api_tokens_create:
 * @req: POST /api/v1/tokens {name, expires_in?}
 * @app: the daemon's state
 *
 * A token minted here ends no later than the session or token the request came with.
 *
 * Returns: 201 {id, token, name, expires_in}.
 */
HttpReply *
api_tokens_create(HttpRequest *req, void *app)
{
    App *a = app;
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(json_object) body = NULL;
    g_autoptr(json_object) out = json_object_new_object();
    g_autoptr(GError) error = NULL;
    g_autofree char *id = NULL;
    g_autofree char *token = NULL;
    const char *name = NULL;
    gint64 expires_in = 0;
    HttpReply *reply = api_authenticate(req, a, &caller);

    if (reply || (reply = api_json_body(req, &body)))
        return reply;
    if (!api_json_string(body, "name", true, &name, &error) ||
        !api_json_uint(body, "expires_in", TOKEN_MAX_EXPIRES_S, &expires_in, &error) ||
        !svc_users_token_lifetime(expires_in, caller->expires_at,
                                  /* rounded up: the row's clock runs on meanwhile */
                                  (g_get_real_time() + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC,
                                  &expires_in, &error))
        return api_error(req, error);
    /* Through a token ("t:" and its digest), that token becomes the new one's parent. */
    token = svc_users_create_token(a->users, caller->user, caller->user->username, name, expires_in,
                                   caller->kind == API_AUTH_TOKEN ? caller->credential + 2 : NULL,
                                   &id, &error);
    if (!token)
        return api_error(req, error);
    json_object_object_add(out, "id", json_object_new_string(id));
    json_object_object_add(out, "token", json_object_new_string(token));
    json_object_object_add(out, "name", json_object_new_string(name));
    json_object_object_add(out, "expires_in", expires_in ? json_object_new_int64(expires_in)
                                                         : NULL);
    return http_reply_json(201, out);
}

/**
 * api_tokens_list:
 * @req: GET /api/v1/tokens
 * @app: the daemon's state
 *
 * Returns: 200 [{id, name, created_at, expires_at, last_used_at, revoked}].
 */
HttpReply *
api_tokens_list(HttpRequest *req, void *app)
{
    App *a = app;
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) tokens = NULL;
    g_autoptr(json_object) out = json_object_new_array();
    HttpReply *reply = api_authenticate(req, a, &caller);

    if (reply)
        return reply;
    tokens = svc_users_tokens(a->users, caller->user, &error);
    if (!tokens)
        return api_error(req, error);
    for (guint i = 0; i < tokens->len; i++)
        json_object_array_add(out, api_render_token(tokens->pdata[i]));
    return http_reply_json(200, out);
}

/**
 * api_tokens_delete:
 * @req: DELETE /api/v1/tokens/{id}
 * @app: the daemon's state
 *
 * Returns: 204, or 404 for a token that is not the caller's.
 */
HttpReply *
api_tokens_delete(HttpRequest *req, void *app)
{
    App *a = app;
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(GError) error = NULL;
    HttpReply *reply = api_authenticate(req, a, &caller);

    if (reply)
        return reply;
    if (!svc_users_revoke_token(a->users, caller->user, http_request_param(req, "id"), false,
                                http_request_remote_addr(req), &error))
        return api_error(req, error);
    return http_reply_empty(204);
}
