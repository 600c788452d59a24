// SPDX-License-Identifier: LGPL-2.1-or-later
// /api/v1/images: base images of overlay templates, for admins: a streamed upload (the raw
// body, never held in memory), the list with the templates that name each, and deletion.
#include "api.h"

#include "api-common.h"
#include "api-render.h"
#include "svc-images.h"

static HttpReply *
upload_begin(HttpRequest *req, void *app, void **ret_ctx)
{
    App *a = app;
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(GError) error = NULL;
    gint64 declared = -1;
    HttpReply *reply = api_authenticate(req, a, &caller);

    if (reply || (reply = api_upload_check(req, "the image", NULL, &declared)))
        return reply;
    *ret_ctx = svc_images_upload_begin(a->images, caller->user, http_request_param(req, "name"),
                                       http_request_query(req, "format"), declared,
                                       http_request_remote_addr(req), &error);
    return *ret_ctx ? NULL : api_upload_error("base image", error);
}

static HttpReply *
upload_chunk(void *data, const void *bytes, size_t len)
{
    g_autoptr(GError) error = NULL;

    return svc_images_upload_write(data, bytes, len, &error)
               ? NULL : api_upload_error("base image", error);
}

static json_object *
render_image(gconstpointer item)
{
    return api_render_image(item);
}

static HttpReply *
upload_finish(void *data, HttpRequest *req, void *app)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SvcImage) img = svc_images_upload_finish(data, &error);
    g_autoptr(json_object) out = NULL;
    g_autofree char *location = NULL;
    HttpReply *reply;

    if (!img)
        return api_upload_error("base image", error);
    out = render_image(img);
    reply = http_reply_json(201, out);
    location = g_strdup_printf("/api/v1/images/%s", img->image->name);
    http_reply_add_header(reply, "Location", location);
    return reply;
}

static void
upload_release(void *data, bool finished)
{
    svc_images_upload_free(data); /* an unfinished upload leaves no file behind */
}

const HttpStream api_images_upload = {
    .begin = upload_begin,
    .chunk = upload_chunk,
    .finish = upload_finish,
    .release = upload_release,
};

static GPtrArray *
list_images(App *a, const DbUser *caller, HttpRequest *req, GError **error)
{
    return svc_images_list(a->images, caller, error);
}

/**
 * api_images_list:
 * @req: GET /api/v1/images
 * @app: the daemon's state
 *
 * Returns: 200 [image] for admins; 403 for others.
 */
HttpReply *
api_images_list(HttpRequest *req, void *app)
{
    return api_list_reply(req, app, list_images, render_image);
}

/**
 * api_images_delete:
 * @req: DELETE /api/v1/images/{name}
 * @app: the daemon's state
 *
 * Returns: 204; 409 while a template names it or a disk is an overlay of it.
 */
HttpReply *
api_images_delete(HttpRequest *req, void *app)
{
    App *a = app;
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(GError) error = NULL;
    HttpReply *reply = api_authenticate(req, a, &caller);

    if (reply)
        return reply;
    if (!svc_images_delete(a->images, caller->user, http_request_param(req, "name"),
                           http_request_remote_addr(req), &error))
        return api_error(req, error);
    return http_reply_empty(204);
}
