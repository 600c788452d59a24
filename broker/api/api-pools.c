// SPDX-License-Identifier: LGPL-2.1-or-later
// /api/v1/pools: the warm pools, for admins (svc-pools).
#include "api.h"

#include "api-common.h"
#include "api-render.h"
#include "svc-pools.h"

static GPtrArray *
list_pools(App *a, const DbUser *caller, HttpRequest *req, GError **error)
{
    return svc_pools_list(a->pools, caller, error);
}

static json_object *
render_pool(gconstpointer item)
{
    return api_render_pool(item);
}

/**
 * api_pools_list:
 * @req: GET /api/v1/pools
 * @app: the daemon's state
 *
 * Returns: 200 [{template, size, ready, starting, saved, schedules}]; 403 for non-admins.
 */
HttpReply *
api_pools_list(HttpRequest *req, void *app)
{
    return api_list_reply(req, app, list_pools, render_pool);
}

/**
 * api_pools_set:
 * @req: PUT /api/v1/pools/{name} {size}
 * @app: the daemon's state
 *
 * Returns: 200 with the pool; 400 for a size out of 0-64 or a template that cannot have a
 *   pool; 403; 404 for an unknown template.
 */
HttpReply *
api_pools_set(HttpRequest *req, void *app)
{
    App *a = app;
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(json_object) body = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(json_object) out = NULL;
    SvcPoolInfo *pool;
    const char *name = http_request_param(req, "name");
    gint64 size = -1;
    HttpReply *reply = api_authenticate(req, a, &caller);

    if (reply || (reply = api_json_body(req, &body)))
        return reply;
    if (!api_json_uint(body, "size", G_MAXINT32, &size, &error) ||
        !(pool = svc_pools_set_size(a->pools, caller->user, name, size,
                                    http_request_remote_addr(req), &error)))
        return api_error(req, error);
    out = api_render_pool(pool);
    svc_pool_info_free(pool);
    return http_reply_json(200, out);
}

/**
 * api_pools_schedule:
 * @req: POST /api/v1/pools/{name}/schedules {from, until, size}
 * @app: the daemon's state
 *
 * Returns: 201 with the pool and its schedules; 400 for times or a size out of bounds, a
 *   template that cannot have a pool; 403; 404; 429 past 100 schedules of a template.
 */
HttpReply *
api_pools_schedule(HttpRequest *req, void *app)
{
    App *a = app;
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(json_object) body = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(json_object) out = NULL;
    const char *from = NULL, *until = NULL;
    SvcPoolInfo *pool;
    gint64 size = -1;
    HttpReply *reply = api_authenticate(req, a, &caller);

    if (reply || (reply = api_json_body(req, &body)))
        return reply;
    if (!api_json_string(body, "from", true, &from, &error) ||
        !api_json_string(body, "until", true, &until, &error) ||
        !api_json_uint(body, "size", G_MAXINT32, &size, &error) ||
        !(pool = svc_pools_add_schedule(a->pools, caller->user, http_request_param(req, "name"),
                                        from, until, size, http_request_remote_addr(req),
                                        &error)))
        return api_error(req, error);
    out = api_render_pool(pool);
    svc_pool_info_free(pool);
    return http_reply_json(201, out);
}
