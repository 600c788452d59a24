// SPDX-License-Identifier: LGPL-2.1-or-later
// POST /api/v1/templates, PUT and DELETE /api/v1/templates/{name}: templates an admin defines
// through the API (svc-templates), beside the read-only files of templates.dir.
#include "api.h"

#include "api-common.h"
#include "api-render.h"
#include "svc-templates.h"

/* The stored template @name as the listing shows it. */
static HttpReply *
template_reply(App *a, const char *name, unsigned status)
{
    g_autoptr(DomTemplateSet) set = svc_templates_get(a->templates);
    const DomTemplate *t = dom_template_set_lookup(set, name);
    g_autoptr(json_object) out = t ? api_render_template(t) : json_object_new_object();
    HttpReply *reply = http_reply_json(status, out);
    g_autofree char *location = g_strdup_printf("/api/v1/templates/%s", name);

    http_reply_add_header(reply, "Location", location);
    return reply;
}

/* The body's template definition, without its "name" member (POST names it there). */
static HttpReply *
definition(HttpRequest *req, char **ret_name, char **ret_text)
{
    g_autoptr(json_object) body = NULL;
    g_autoptr(GError) error = NULL;
    const char *name = NULL;
    HttpReply *reply = api_json_body(req, &body);

    if (reply)
        return reply;
    if (ret_name && !api_json_string(body, "name", true, &name, &error))
        return api_error(req, error);
    if (ret_name)
        *ret_name = g_strdup(name);
    json_object_object_del(body, "name");
    *ret_text = g_strdup(json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN));
    return NULL;
}

static HttpReply *
change(HttpRequest *req, App *a, bool create, bool remove)
{
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *name = remove || !create ? g_strdup(http_request_param(req, "name")) : NULL;
    g_autofree char *text = NULL;
    HttpReply *reply = api_authenticate(req, a, &caller);

    if (reply || (!remove && (reply = definition(req, create ? &name : NULL, &text))))
        return reply;
    if (!svc_templates_change(a->templates, caller->user, name, text, create,
                              http_request_remote_addr(req), &error))
        return api_error(req, error);
    return remove ? http_reply_empty(204) : template_reply(a, name, create ? 201 : 200);
}

/**
 * api_templates_create:
 * @req: POST /api/v1/templates {name, ...the fields of a template file}
 * @app: the daemon's state
 *
 * Returns: 201 with the template as GET /api/v1/templates lists it; 422 naming the field
 *   that is wrong; 409 for a name in use (a file's, or the API's).
 */
HttpReply *
api_templates_create(HttpRequest *req, void *app)
{
    return change(req, app, true, false);
}

/**
 * api_templates_update:
 * @req: PUT /api/v1/templates/{name} {...the fields of a template file}
 * @app: the daemon's state
 *
 * Returns: 200 with the template; 409 for a file's template; 404.
 */
HttpReply *
api_templates_update(HttpRequest *req, void *app)
{
    return change(req, app, false, false);
}

/**
 * api_templates_delete:
 * @req: DELETE /api/v1/templates/{name}
 * @app: the daemon's state
 *
 * Returns: 204; 409 for a file's template or one that VMs use; 404.
 */
HttpReply *
api_templates_delete(HttpRequest *req, void *app)
{
    return change(req, app, false, true);
}
