// SPDX-License-Identifier: LGPL-2.1-or-later
// /api/v1/hosts: the hypervisor hosts, for admins (svc-hosts).
#include "api.h"

#include <string.h>

#include "api-common.h"
#include "api-render.h"
#include "svc-hosts.h"
#include "vmb-error.h"

static GPtrArray *
list_hosts(App *a, const DbUser *caller, HttpRequest *req, GError **error)
{
    return svc_hosts_list(a->hosts, caller, error);
}

static json_object *
render_host(gconstpointer item)
{
    return api_render_host(item);
}

/**
 * api_hosts_list:
 * @req: GET /api/v1/hosts
 * @app: the daemon's state
 *
 * Returns: 200 [host]; 403 for non-admins.
 */
HttpReply *
api_hosts_list(HttpRequest *req, void *app)
{
    return api_list_reply(req, app, list_hosts, render_host);
}

/* The members a body may have; any other is refused, so a misspelt one is not lost. */
static bool
check_members(json_object *body, bool create, GError **error)
{
    static const char *const known[] = { "name", "uri", "console_address", "vnc_ports",
                                         "ws_ports", "memory_mib", "enabled", NULL };

    json_object_object_foreach(body, key, value) {
        (void) value;
        if (!g_strv_contains(known, key) || (!create && strcmp(key, "name") == 0)) {
            g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID, "Unknown member '%.64s'.", key);
            return false;
        }
    }
    return true;
}

/* The body's fields; their strings belong to @body. */
static bool
read_fields(json_object *body, bool create, SvcHostFields *f, GError **error)
{
    json_object *enabled = NULL;

    if (!check_members(body, create, error) ||
        !api_json_string(body, "uri", false, &f->uri, error) ||
        !api_json_string(body, "console_address", false, &f->console_address, error) ||
        !api_json_string(body, "vnc_ports", false, &f->vnc_ports, error) ||
        !api_json_string(body, "ws_ports", false, &f->ws_ports, error) ||
        !api_json_uint(body, "memory_mib", G_MAXINT64, &f->memory_mib, error))
        return false;
    if (json_object_object_get_ex(body, "enabled", &enabled)) {
        if (!json_object_is_type(enabled, json_type_boolean)) {
            g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID, "'enabled' must be true or false.");
            return false;
        }
        f->enabled = json_object_get_boolean(enabled);
    }
    return true;
}

static HttpReply *
host_reply(const DbHost *host, unsigned status)
{
    g_autoptr(json_object) out = api_render_host(host);
    HttpReply *reply = http_reply_json(status, out);
    g_autofree char *location = g_strdup_printf("/api/v1/hosts/%s", host->name);

    http_reply_add_header(reply, "Location", location);
    return reply;
}

static HttpReply *
add_or_change(HttpRequest *req, App *a, bool create)
{
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(json_object) body = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(DbHost) host = NULL;
    SvcHostFields fields = SVC_HOST_FIELDS_INIT;
    const char *name = create ? NULL : http_request_param(req, "name");
    HttpReply *reply = api_authenticate(req, a, &caller);

    if (reply || (reply = api_json_body(req, &body)))
        return reply;
    if (!read_fields(body, create, &fields, &error) ||
        (create && !api_json_string(body, "name", true, &name, &error)))
        return api_error(req, error);
    host = create ? svc_hosts_add(a->hosts, caller->user, name, &fields,
                                  http_request_remote_addr(req), &error)
                  : svc_hosts_change(a->hosts, caller->user, name, &fields,
                                     http_request_remote_addr(req), &error);
    if (!host)
        return api_error(req, error);
    return host_reply(host, create ? 201 : 200);
}

/**
 * api_hosts_add:
 * @req: POST /api/v1/hosts {name, uri, console_address, vnc_ports?, ws_ports?, memory_mib?,
 *   enabled?}
 * @app: the daemon's state
 *
 * Returns: 201 host; 400 naming the member that is wrong; 403; 409 for a name taken.
 */
HttpReply *
api_hosts_add(HttpRequest *req, void *app)
{
    return add_or_change(req, app, true);
}

/**
 * api_hosts_change:
 * @req: PATCH /api/v1/hosts/{name} {uri?, console_address?, vnc_ports?, ws_ports?,
 *   memory_mib?, enabled?}
 * @app: the daemon's state
 *
 * Returns: 200 host; 400; 403; 404; 409 for a setting of the config file's host.
 */
HttpReply *
api_hosts_change(HttpRequest *req, void *app)
{
    return add_or_change(req, app, false);
}

/**
 * api_hosts_remove:
 * @req: DELETE /api/v1/hosts/{name}
 * @app: the daemon's state
 *
 * Returns: 204; 403; 404; 409 while it has VMs, or for the config file's host.
 */
HttpReply *
api_hosts_remove(HttpRequest *req, void *app)
{
    App *a = app;
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(GError) error = NULL;
    HttpReply *reply = api_authenticate(req, a, &caller);

    if (reply)
        return reply;
    if (!svc_hosts_remove(a->hosts, caller->user, http_request_param(req, "name"),
                          http_request_remote_addr(req), &error))
        return api_error(req, error);
    return http_reply_empty(204);
}
