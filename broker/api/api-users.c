// SPDX-License-Identifier: LGPL-2.1-or-later
// /api/v1/users: the admin's view of the accounts, and disabling one.
#include "api.h"


#include "api-common.h"
#include "api-render.h"
#include "svc-users.h"

/**
 * api_users_list:
 * @req: GET /api/v1/users
 * @app: the daemon's state
 *
 * Returns: 200 [{id, username, role, disabled}]; 403 for non-admins.
 */
HttpReply *
api_users_list(HttpRequest *req, void *app)
{
    App *a = app;
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) users = NULL;
    g_autoptr(json_object) out = json_object_new_array();
    HttpReply *reply = api_authenticate(req, a, &caller);

    if (reply)
        return reply;
    users = svc_users_list(a->users, caller->user, &error);
    if (!users)
        return api_error(req, error);
    for (guint i = 0; i < users->len; i++)
        json_object_array_add(out, api_render_user(users->pdata[i], true));
    return http_reply_json(200, out);
}

static HttpReply *
set_disabled(HttpRequest *req, App *a, bool disabled)
{
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(GError) error = NULL;
    HttpReply *reply = api_authenticate(req, a, &caller);

    if (reply)
        return reply;
    if (!svc_users_set_disabled(a->users, caller->user, http_request_param(req, "id"), disabled,
                                http_request_remote_addr(req), &error))
        return api_error(req, error);
    return http_reply_empty(204);
}

/**
 * api_users_disable:
 * @req: POST /api/v1/users/{id}/disable
 * @app: the daemon's state
 *
 * The user can no longer sign in or use tokens; their sessions end. Their VMs stay.
 *
 * Returns: 204; 403 for non-admins; 404; 409 for oneself.
 */
HttpReply *
api_users_disable(HttpRequest *req, void *app)
{
    return set_disabled(req, app, true);
}

/**
 * api_users_enable:
 * @req: POST /api/v1/users/{id}/enable
 * @app: the daemon's state
 *
 * Returns: 204; 403 for non-admins; 404.
 */
HttpReply *
api_users_enable(HttpRequest *req, void *app)
{
    return set_disabled(req, app, false);
}
