// SPDX-License-Identifier: LGPL-2.1-or-later
// /api/v1/isos: uploads (a raw streamed body, never multipart, never held in memory), the
// list, and deletion.
#include "api.h"

#include <string.h>

#include "api-common.h"
#include "api-render.h"
#include "svc-isos.h"

typedef struct {
    App *app;
    SvcUpload *upload;
} UploadCtx;

static HttpReply *
upload_begin(HttpRequest *req, void *app, void **ret_ctx)
{
    App *a = app;
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(GError) error = NULL;
    gint64 declared = -1;
    UploadCtx *ctx;
    SvcUpload *up;
    HttpReply *reply = api_authenticate(req, a, &caller);

    if (reply || (reply = api_upload_check(req, "the ISO", "application/x-iso9660-image",
                                           &declared)))
        return reply;
    up = svc_isos_upload_begin(a->isos, caller->user, http_request_param(req, "iso"), declared,
                               http_request_remote_addr(req), &error);
    if (!up)
        return api_upload_error("ISO", error);
    ctx = g_new0(UploadCtx, 1);
    ctx->app = a;
    ctx->upload = up;
    *ret_ctx = ctx;
    return NULL;
}

static HttpReply *
upload_chunk(void *data, const void *bytes, size_t len)
{
    UploadCtx *ctx = data;
    g_autoptr(GError) error = NULL;

    if (!svc_isos_upload_write(ctx->upload, bytes, len, &error))
        return api_upload_error("ISO", error);
    return NULL;
}

static HttpReply *
upload_finish(void *data, HttpRequest *req, void *app)
{
    UploadCtx *ctx = data;
    g_autoptr(GError) error = NULL;
    g_autoptr(DbIso) iso = NULL;
    g_autoptr(json_object) out = NULL;
    bool existed = false;
    HttpReply *reply;

    iso = svc_isos_upload_finish(ctx->upload, &existed, &error);
    if (!iso)
        return api_upload_error("ISO", error);
    out = api_render_iso(iso);
    reply = http_reply_json(existed ? 200 : 201, out);
    {
        g_autofree char *location = g_strdup_printf("/api/v1/isos/%s", iso->id);
        http_reply_add_header(reply, "Location", location);
    }
    return reply;
}

static void
upload_release(void *data, bool finished)
{
    UploadCtx *ctx = data;

    /* An upload that did not finish (refused, or the client left) leaves no file behind. */
    svc_isos_upload_free(ctx->upload);
    g_free(ctx);
}

const HttpStream api_isos_upload = {
    .begin = upload_begin,
    .chunk = upload_chunk,
    .finish = upload_finish,
    .release = upload_release,
};

/**
 * api_isos_list:
 * @req: GET /api/v1/isos
 * @app: the daemon's state
 *
 * Returns: 200 [{id, name, size, sha256, public}]: own and public ISOs (admins: all).
 */
HttpReply *
api_isos_list(HttpRequest *req, void *app)
{
    App *a = app;
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) list = NULL;
    g_autoptr(json_object) out = json_object_new_array();
    HttpReply *reply = api_authenticate(req, a, &caller);

    if (reply)
        return reply;
    list = svc_isos_list(a->isos, caller->user, &error);
    if (!list)
        return api_error(req, error);
    for (guint i = 0; i < list->len; i++)
        json_object_array_add(out, api_render_iso(list->pdata[i]));
    return http_reply_json(200, out);
}

/**
 * api_isos_delete:
 * @req: DELETE /api/v1/isos/{iso} (the ISO's id)
 * @app: the daemon's state
 *
 * Returns: 204; 404 for another user's ISO; 409 while a VM uses it.
 */
HttpReply *
api_isos_delete(HttpRequest *req, void *app)
{
    App *a = app;
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(GError) error = NULL;
    HttpReply *reply = api_authenticate(req, a, &caller);

    if (reply)
        return reply;
    if (!svc_isos_delete(a->isos, caller->user, http_request_param(req, "iso"),
                         http_request_remote_addr(req), &error))
        return api_error(req, error);
    return http_reply_empty(204);
}
