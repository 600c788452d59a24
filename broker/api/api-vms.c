// SPDX-License-Identifier: LGPL-2.1-or-later
// /api/v1/templates and /api/v1/vms: the VM resource, its power actions and console tickets.
#include "api.h"

#include <string.h>

#include "api-common.h"
#include "api-render.h"
#include "dom-template.h"
#include "http-problem.h"
#include "svc-vms.h"


/* Adds console_url and novnc_url, each carrying its own one-time ticket for @user_id. */
static bool
add_console_urls(App *a, json_object *obj, const DbVm *vm, const char *user_id,
                 GError **error)
{
    g_autofree char *t1 = svc_vms_mint_ticket(a->vms, vm, "page", user_id, error);
    g_autofree char *t2 = t1 ? svc_vms_mint_ticket(a->vms, vm, "ws", user_id, error) : NULL;
    g_autofree char *path = NULL;
    g_autofree char *path_escaped = NULL;
    g_autofree char *console_url = NULL;
    g_autofree char *novnc_url = NULL;

    if (!t2)
        return false;
    /* Tickets ride in the fragment: browsers send it to no server and no Referer. */
    console_url = g_strdup_printf("%s/ui/console.html#vm=%s&ticket=%s",
                                  a->cfg->http_public_url, vm->id, t1);
    path = g_strdup_printf("api/v1/vms/%s/console/ws?ticket=%s", vm->id, t2);
    path_escaped = g_uri_escape_string(path, NULL, FALSE);
    novnc_url = g_strdup_printf("%s/novnc/vnc.html#path=%s&autoconnect=true&resize=scale",
                                a->cfg->http_public_url, path_escaped);
    json_object_object_add(obj, "console_url", json_object_new_string(console_url));
    json_object_object_add(obj, "novnc_url", json_object_new_string(novnc_url));
    return true;
}

/**
 * api_templates_list:
 * @req: GET /api/v1/templates
 * @app: the daemon's state
 *
 * Returns: 200 [{name, kind, memory_mib, vcpus, ...}].
 */
HttpReply *
api_templates_list(HttpRequest *req, void *app)
{
    App *a = app;
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(json_object) out = json_object_new_array();
    HttpReply *reply = api_authenticate(req, a, &caller);

    if (reply)
        return reply;
    for (guint i = 0; i < dom_template_set_count(a->templates); i++)
        json_object_array_add(out, api_render_template(dom_template_set_nth(a->templates, i)));
    return http_reply_json(200, out);
}

/* 409 at the running limit, listing the owner's VMs with fresh console links. */
static HttpReply *
limit_reply(App *a, HttpRequest *req, const GError *error, GPtrArray *running)
{
    g_autoptr(json_object) list = json_object_new_array();
    json_object *extra = json_object_new_object();
    g_autoptr(GError) err = NULL;

    for (guint i = 0; running && i < running->len; i++) {
        const DbVm *vm = running->pdata[i];
        json_object *o = api_render_vm(vm);
        if (vm->state == DB_VM_RUNNING && !add_console_urls(a, o, vm, vm->owner_id, &err)) {
            json_object_put(o);
            json_object_put(extra);
            return api_error(req, err);
        }
        json_object_array_add(list, o);
    }
    json_object_object_add(extra, "running", g_steal_pointer(&list));
    return http_problem_from_error(error, extra);
}

/**
 * api_vms_create:
 * @req: POST /api/v1/vms {template, iso?, name?, owner?}
 * @app: the daemon's state
 *
 * Returns: 201 {vm, console_url, novnc_url}; 409 at the running limit (with the running
 * VMs and their console_url); 422, 503 ...
 */
HttpReply *
api_vms_create(HttpRequest *req, void *app)
{
    App *a = app;
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(json_object) body = NULL;
    g_autoptr(json_object) out = json_object_new_object();
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) running = NULL;
    g_autoptr(DbVm) vm = NULL;
    SvcVmRequest r = { 0 };
    HttpReply *reply = api_authenticate(req, a, &caller);

    if (reply || (reply = api_json_body(req, &body)))
        return reply;
    if (!api_json_string(body, "template", true, &r.template_name, &error) ||
        !api_json_string(body, "iso", false, &r.iso_id, &error) ||
        !api_json_string(body, "name", false, &r.name, &error) ||
        !api_json_string(body, "owner", false, &r.owner, &error))
        return api_error(req, error);
    r.caller = caller->user;
    r.remote_addr = http_request_remote_addr(req);
    vm = svc_vms_create(a->vms, &r, &running, &error);
    if (!vm) {
        return running ? limit_reply(a, req, error, running) : api_error(req, error);
    }
    json_object_object_add(out, "vm", api_render_vm(vm));
    /* The links are the owner's: a service account acting for a student hands them on. */
    if (!add_console_urls(a, out, vm, vm->owner_id, &error))
        return api_error(req, error);
    reply = http_reply_json(201, out);
    {
        g_autofree char *location = g_strdup_printf("/api/v1/vms/%s", vm->id);
        http_reply_add_header(reply, "Location", location);
    }
    return reply;
}

/**
 * api_vms_list:
 * @req: GET /api/v1/vms[?owner=NAME]
 * @app: the daemon's state
 *
 * The rendered list is kept in the read cache, under what it shows (svc_vms_list_key).
 *
 * Returns: 200 [vm]: the caller's VMs; every VM for admins and service accounts.
 */
HttpReply *
api_vms_list(HttpRequest *req, void *app)
{
    App *a = app;
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) list = NULL;
    g_autoptr(json_object) out = json_object_new_array();
    g_autofree char *key = NULL;
    const char *owner = http_request_query(req, "owner");
    HttpReply *reply = api_authenticate(req, a, &caller);
    GBytes *body;
    guint64 gen;

    if (reply)
        return reply;
    key = svc_vms_list_key(caller->user, owner);
    body = key ? db_cache_lookup(a->cache, key, (DbCacheCopyFunc) g_bytes_ref, &gen) : NULL;
    if (body)
        return http_reply_new(200, "application/json", body);
    list = svc_vms_list(a->vms, caller->user, owner, &error);
    if (!list)
        return api_error(req, error);
    for (guint i = 0; i < list->len; i++)
        json_object_array_add(out, api_render_vm(list->pdata[i]));
    reply = http_reply_json(200, out);
    if (key)
        db_cache_store(a->cache, key, gen, g_bytes_ref(reply->body),
                       (GDestroyNotify) g_bytes_unref);
    return reply;
}

typedef enum {
    VM_ACTION_GET,
    VM_ACTION_STOP,
    VM_ACTION_START,
    VM_ACTION_REBOOT,

    VM_ACTION_LAST
} VmAction;

static HttpReply *
vm_action(HttpRequest *req, App *a, VmAction action)
{
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(DbVm) vm = NULL;
    g_autoptr(json_object) out = NULL;
    const char *id = http_request_param(req, "id");
    const char *addr = http_request_remote_addr(req);
    HttpReply *reply = api_authenticate(req, a, &caller);
    unsigned status = 200;

    if (reply)
        return reply;
    switch (action) {
    case VM_ACTION_GET:
        vm = svc_vms_get(a->vms, caller->user, id, &error);
        break;
    case VM_ACTION_STOP:
        vm = svc_vms_stop(a->vms, caller->user, id, caller->user->role == DB_ROLE_USER
                              ? "stopped by its owner" : "stopped by an administrator",
                          addr, &error);
        status = 202;
        break;
    case VM_ACTION_START:
        vm = svc_vms_start(a->vms, caller->user, id, addr, &error);
        break;
    case VM_ACTION_REBOOT:
        vm = svc_vms_reboot(a->vms, caller->user, id, addr, &error);
        status = 202;
        break;
    case VM_ACTION_LAST:
        g_assert_not_reached();
    }
    if (!vm)
        return api_error(req, error);
    out = api_render_vm(vm);
    return http_reply_json(status, out);
}

HttpReply *
api_vms_get(HttpRequest *req, void *app)
{
    return vm_action(req, app, VM_ACTION_GET);
}

HttpReply *
api_vms_stop(HttpRequest *req, void *app)
{
    return vm_action(req, app, VM_ACTION_STOP);
}

HttpReply *
api_vms_start(HttpRequest *req, void *app)
{
    return vm_action(req, app, VM_ACTION_START);
}

HttpReply *
api_vms_reboot(HttpRequest *req, void *app)
{
    return vm_action(req, app, VM_ACTION_REBOOT);
}

/**
 * api_vms_delete:
 * @req: DELETE /api/v1/vms/{id}
 * @app: the daemon's state
 *
 * Returns: 204.
 */
HttpReply *
api_vms_delete(HttpRequest *req, void *app)
{
    App *a = app;
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(GError) error = NULL;
    HttpReply *reply = api_authenticate(req, a, &caller);

    if (reply)
        return reply;
    if (!svc_vms_delete(a->vms, caller->user, http_request_param(req, "id"),
                        http_request_remote_addr(req), &error))
        return api_error(req, error);
    return http_reply_empty(204);
}

/**
 * api_vms_console_ticket:
 * @req: POST /api/v1/vms/{id}/console
 * @app: the daemon's state
 *
 * Returns: 201 {ticket, expires_at, ws_path, console_url, novnc_url}: three one-time
 * tickets, one per way in.
 */
HttpReply *
api_vms_console_ticket(HttpRequest *req, void *app)
{
    App *a = app;
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(DbVm) vm = NULL;
    g_autoptr(json_object) out = json_object_new_object();
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autoptr(GDateTime) expires = NULL;
    g_autofree char *ticket = NULL;
    g_autofree char *ws_path = NULL;
    HttpReply *reply = api_authenticate(req, a, &caller);

    if (reply)
        return reply;
    vm = svc_vms_get(a->vms, caller->user, http_request_param(req, "id"), &error);
    if (!vm)
        return api_error(req, error);
    if (vm->state != DB_VM_RUNNING) {
        g_autofree char *detail = g_strdup_printf("The VM is %s; start it first.",
                                                  db_vm_state_to_string(vm->state));
        return http_problem_kind(VMB_ERROR_CONFLICT, detail, NULL);
    }
    ticket = svc_vms_mint_ticket(a->vms, vm, "ws", caller->user->id, &error);
    if (!ticket || !add_console_urls(a, out, vm, caller->user->id, &error))
        return api_error(req, error);
    expires = g_date_time_add_seconds(now, a->cfg->console_ticket_ttl_s);
    ws_path = g_strdup_printf("/api/v1/vms/%s/console/ws?ticket=%s", vm->id, ticket);
    json_object_object_add(out, "ticket", json_object_new_string(ticket));
    json_object_object_add(out, "expires_at", api_render_time(expires));
    json_object_object_add(out, "ws_path", json_object_new_string(ws_path));
    return http_reply_json(201, out);
}
