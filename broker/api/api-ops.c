// SPDX-License-Identifier: LGPL-2.1-or-later
// /api/v1/operations/{id} and /api/v1/vms/{id}/operations: what a VM's operations do and
// how they ended.
#include "api.h"

#include "api-common.h"
#include "api-render.h"
#include "svc-vms.h"

/**
 * api_ops_get:
 * @req: GET /api/v1/operations/{id}
 * @app: the daemon's state
 *
 * Returns: 200 operation; 404 unless the caller may see its VM or asked for it.
 */
HttpReply *
api_ops_get(HttpRequest *req, void *app)
{
    App *a = app;
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(DbOp) op = NULL;
    g_autoptr(json_object) out = NULL;
    HttpReply *reply = api_authenticate(req, a, &caller);

    if (reply)
        return reply;
    op = svc_vms_operation(a->vms, caller->user, http_request_param(req, "id"), &error);
    if (!op)
        return api_error(req, error);
    out = api_render_op(op, caller->user->role == DB_ROLE_ADMIN);
    return http_reply_json(200, out);
}

/**
 * api_ops_list_vm:
 * @req: GET /api/v1/vms/{id}/operations
 * @app: the daemon's state
 *
 * Returns: 200 [operation], newest first (the last 100).
 */
HttpReply *
api_ops_list_vm(HttpRequest *req, void *app)
{
    App *a = app;
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) list = NULL;
    g_autoptr(json_object) out = json_object_new_array();
    HttpReply *reply = api_authenticate(req, a, &caller);

    if (reply)
        return reply;
    list = svc_vms_operations(a->vms, caller->user, http_request_param(req, "id"), &error);
    if (!list)
        return api_error(req, error);
    for (guint i = 0; i < list->len; i++)
        json_object_array_add(out, api_render_op(list->pdata[i],
                                                 caller->user->role == DB_ROLE_ADMIN));
    return http_reply_json(200, out);
}
