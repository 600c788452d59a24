// SPDX-License-Identifier: LGPL-2.1-or-later
// /api/v1/templates and /api/v1/vms: the VM resource, its power actions and console tickets.
#include "api.h"

#include <string.h>

#include "api-common.h"
#include "api-render.h"
#include "dom-template.h"
#include "http-problem.h"
#include "svc-vms.h"
#include "vmb-log.h"


/* Adds console_url and novnc_url, each carrying its own one-time ticket for @user_id,
 * minted through @credential (nullable: ApiCaller.credential). */
static bool
add_console_urls(App *a, json_object *obj, const DbVm *vm, const char *user_id,
                 const char *credential, GError **error)
{
    g_autofree char *t1 = svc_console_mint_ticket(a->console, vm, "page", user_id, credential,
                                                  error);
    g_autofree char *t2 = t1 ? svc_console_mint_ticket(a->console, vm, "ws", user_id,
                                                       credential, error)
                             : NULL;
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
 * Every template says whether this host has what it needs (`available`), and if not why
 * (`unavailable_reason`), and for admins what to do about it (`admin_hint`).
 *
 * Returns: 200 [{name, kind, memory_mib, vcpus, ..., available, unavailable_reason}].
 */
HttpReply *
api_templates_list(HttpRequest *req, void *app)
{
    App *a = app;
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(json_object) out = json_object_new_array();
    g_autoptr(GPtrArray) needs = NULL;
    g_autoptr(GError) error = NULL;
    HttpReply *reply = api_authenticate(req, a, &caller);

    if (reply)
        return reply;
    needs = svc_vms_template_needs(a->vms, &error);
    if (!needs) {
        /* libvirt cannot say now: the list still comes, with `available` null (unknown). */
        g_autoptr(DomTemplateSet) set = svc_templates_get(a->templates);

        vmb_warning("GET /api/v1/templates: %s", error->message);
        for (guint i = 0; i < dom_template_set_count(set); i++) {
            json_object *t = api_render_template(dom_template_set_nth(set, i));
            json_object_object_add(t, "available", NULL);
            json_object_object_add(t, "unavailable_reason", NULL);
            json_object_array_add(out, t);
        }
        return http_reply_json(200, out);
    }
    for (guint i = 0; i < needs->len; i++) {
        const SvcTemplateNeed *n = needs->pdata[i];
        json_object *t = api_render_template(n->tmpl);

        json_object_object_add(t, "available", json_object_new_boolean(n->reason == NULL));
        json_object_object_add(t, "unavailable_reason", api_render_string(n->reason));
        if (caller->user->role == DB_ROLE_ADMIN)
            json_object_object_add(t, "admin_hint", api_render_string(n->hint));
        json_object_array_add(out, t);
    }
    return http_reply_json(200, out);
}

/* 409 at the running limit, listing the owner's VMs with fresh console links (@path: the
 * request's, for the log). */
static HttpReply *
limit_reply(App *a, const char *path, const GError *error, GPtrArray *running)
{
    g_autoptr(json_object) list = json_object_new_array();
    json_object *extra = json_object_new_object();
    g_autoptr(GError) err = NULL;

    for (guint i = 0; running && i < running->len; i++) {
        const DbVm *vm = running->pdata[i];
        json_object *o = api_render_vm(vm);
        if (vm->state == DB_VM_RUNNING && !add_console_urls(a, o, vm, vm->owner_id, NULL, &err)) {
            json_object_put(o);
            json_object_put(extra);
            return api_error_at("POST", path, err);
        }
        json_object_array_add(list, o);
    }
    json_object_object_add(extra, "running", g_steal_pointer(&list));
    return http_problem_from_error(error, extra);
}

/* --- waiting for an operation, with the connection suspended --- */

/* Admins see why an operation failed in libvirt's words too. */
static bool
admin_view(const DbUser *user)
{
    return user->role == DB_ROLE_ADMIN;
}

typedef struct {
    App *a;
    HttpDeferred *deferred;
    DbUser *caller;
    char *vm_id;
    DbOpKind kind;
} OpWait;

static void
op_wait_free(OpWait *w)
{
    db_user_free(w->caller);
    g_free(w->vm_id);
    g_free(w);
}

/* The answer a create gives once its VM runs: 201 {vm, console_url, novnc_url}. */
static HttpReply *
created_reply(App *a, const DbVm *vm)
{
    g_autoptr(json_object) out = json_object_new_object();
    g_autoptr(GError) error = NULL;
    g_autofree char *location = g_strdup_printf("/api/v1/vms/%s", vm->id);
    HttpReply *reply;

    json_object_object_add(out, "vm", api_render_vm(vm));
    /* The links are the owner's: a service account acting for a student hands them on.
     * (Minted after the operation, they are bound to the owner alone: see svc-console.) */
    if (!add_console_urls(a, out, vm, vm->owner_id, NULL, &error))
        return http_problem_from_error(error, NULL);
    reply = http_reply_json(201, out);
    http_reply_add_header(reply, "Location", location);
    return reply;
}

/* Whether @op is a snapshot operation doing @action. */
static bool
snapshot_action_is(const DbOp *op, const char *action)
{
    g_autoptr(json_object) params = NULL;
    json_object *v;

    if (op->kind != DB_OP_SNAPSHOT)
        return false;
    params = json_tokener_parse(op->params ? op->params : "{}");
    return params && json_object_object_get_ex(params, "action", &v) &&
           g_strcmp0(json_object_get_string(v), action) == 0;
}

/* 201 {name, vm} for a snapshot taken, at its address. */
static HttpReply *
snapshot_created_reply(const DbVm *vm, const DbOp *op)
{
    g_autoptr(json_object) params = json_tokener_parse(op->params ? op->params : "{}");
    g_autoptr(json_object) out = json_object_new_object();
    json_object *name = NULL;
    g_autofree char *location = NULL;
    HttpReply *reply;

    json_object_object_get_ex(params, "name", &name);
    json_object_object_add(out, "name", json_object_get(name));
    json_object_object_add(out, "vm", api_render_vm(vm));
    location = g_strdup_printf("/api/v1/vms/%s/snapshots/%s", vm->id,
                               json_object_get_string(name));
    reply = http_reply_json(201, out);
    http_reply_add_header(reply, "Location", location);
    return reply;
}

/* What a waiting request answers when its operation ended (or did not, in time). */
static HttpReply *
op_reply(OpWait *w, const DbOp *op)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DbVm) vm = NULL;
    json_object *extra = json_object_new_object();

    if (!op) {
        vmb_warning("VM %s: the hypervisor did not finish the %s within %u s; answered 503, "
                    "the work goes on in the background", w->vm_id, db_op_kind_to_string(w->kind),
                    w->a->cfg->libvirt_call_timeout_s);
        json_object_put(extra);
        return http_problem_kind(VMB_ERROR_TIMEOUT,
                                 "The operation did not end in time. It goes on in the "
                                 "background: look at the VM again shortly.", NULL);
    }
    json_object_object_add(extra, "operation", api_render_op(op, admin_view(w->caller)));
    if (op->state != DB_OP_SUCCEEDED) {
        error = svc_ops_error(op);
        return http_problem_from_error(error, extra);
    }
    json_object_put(extra);
    if (op->kind == DB_OP_DELETE || snapshot_action_is(op, "delete"))
        return http_reply_empty(204);
    vm = svc_vms_get(w->a->vms, w->caller, op->vm_id, &error);
    if (!vm)
        return http_problem_from_error(error, NULL);
    if (op->kind == DB_OP_CREATE)
        return created_reply(w->a, vm);
    if (snapshot_action_is(op, "create"))
        return snapshot_created_reply(vm, op);
    {
        g_autoptr(json_object) out = api_render_vm(vm);
        return http_reply_json(op->kind == DB_OP_REBOOT ? 202 : 200, out);
    }
}

static void
op_done(const DbOp *op, gpointer data)
{
    OpWait *w = data;

    http_deferred_finish(w->deferred, op_reply(w, op));
    op_wait_free(w);
}

/* Answers when @op ends: the request holds no thread meanwhile. */
static HttpReply *
wait_for(HttpRequest *req, App *a, const DbUser *caller, const DbOp *op)
{
    OpWait *w = g_new0(OpWait, 1);
    HttpReply *reply = http_reply_deferred(req, &w->deferred);

    w->a = a;
    w->caller = db_user_copy(caller);
    w->vm_id = g_strdup(op->vm_id);
    w->kind = op->kind;
    svc_ops_wait(a->ops, op->id, a->cfg->libvirt_call_timeout_s * 1000, op_done, w);
    return reply;
}

/* Whether the client asked not to wait (RFC 7240). */
static bool
prefers_async(HttpRequest *req)
{
    const char *prefer = http_request_header(req, "Prefer");
    return prefer && strstr(prefer, "respond-async") != NULL;
}

/* 202 {vm, operation} (the VM as it is now). */
static HttpReply *
accepted_reply(const DbVm *vm, const DbOp *op, bool admin_view)
{
    g_autoptr(json_object) out = json_object_new_object();

    if (vm)
        json_object_object_add(out, "vm", api_render_vm(vm));
    json_object_object_add(out, "operation", api_render_op(op, admin_view));
    return http_reply_json(202, out);
}

/* 409 for a VM busy with another operation, carrying it. */
static HttpReply *
busy_reply(HttpRequest *req, const GError *error, const DbOp *active, bool admin_view)
{
    json_object *extra;

    if (!active)
        return api_error(req, error);
    extra = json_object_new_object();
    json_object_object_add(extra, "operation", api_render_op(active, admin_view));
    return http_problem_from_error(error, extra);
}

/* A create, run on app->creates: a take from a warm pool talks to libvirt (a restore for
 * seconds), and a request must not hold an HTTP thread meanwhile. */
typedef struct {
    App *a;
    HttpDeferred *deferred;
    DbUser *caller;
    char *template_name;
    char *iso_id;
    char *name;
    char *owner;
    char *host;        /* (nullable) the host asked for (admins) */
    char *remote_addr;
    char *path;        /* for the log */
    bool async;        /* Prefer: respond-async */
} CreateJob;

static void
create_job_free(CreateJob *j)
{
    db_user_free(j->caller);
    g_free(j->template_name);
    g_free(j->iso_id);
    g_free(j->name);
    g_free(j->owner);
    g_free(j->host);
    g_free(j->remote_addr);
    g_free(j->path);
    g_free(j);
}

/**
 * api_vms_create_run:
 * @data: (transfer full): a CreateJob
 * @pool_data: unused
 *
 * The thread pool function of App.creates: runs the create and answers its request, or
 * hands the request to the wait for the create's operation.
 */
void
api_vms_create_run(gpointer data, gpointer pool_data)
{
    CreateJob *j = data;
    SvcVmRequest r = { .caller = j->caller, .template_name = j->template_name,
                       .iso_id = j->iso_id, .name = j->name, .owner = j->owner,
                       .host = j->host, .remote_addr = j->remote_addr };
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) running = NULL;
    g_autoptr(DbOp) op = NULL;
    g_autoptr(DbVm) vm = svc_vms_create(j->a->vms, &r, &running, &op, &error);
    HttpReply *reply;

    if (!vm) {
        reply = running ? limit_reply(j->a, j->path, error, running)
                        : api_error_at("POST", j->path, error);
    } else if (j->async) {
        g_autofree char *location = g_strdup_printf("/api/v1/vms/%s", vm->id);
        reply = accepted_reply(vm, op, admin_view(j->caller));
        http_reply_add_header(reply, "Location", location);
    } else {
        OpWait *w = g_new0(OpWait, 1);

        w->a = j->a;
        w->deferred = j->deferred;
        w->caller = db_user_copy(j->caller);
        w->vm_id = g_strdup(op->vm_id);
        w->kind = op->kind;
        svc_ops_wait(j->a->ops, op->id, j->a->cfg->libvirt_call_timeout_s * 1000, op_done, w);
        create_job_free(j);
        return;
    }
    http_deferred_finish(j->deferred, reply);
    create_job_free(j);
}

/**
 * api_vms_create:
 * @req: POST /api/v1/vms {template, iso?, name?, owner?, host?}
 * @app: the daemon's state
 *
 * Returns: 201 {vm, console_url, novnc_url} once the VM runs (the request waits without a
 * thread of the HTTP server: the create runs on App.creates); with `Prefer: respond-async`
 * 202 {vm, operation} once the create is queued (or a pool's guest taken); 409 at the
 * running limit (with the running VMs and their console_url); 422, 429, 503 ...
 */
HttpReply *
api_vms_create(HttpRequest *req, void *app)
{
    App *a = app;
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(json_object) body = NULL;
    g_autoptr(GError) error = NULL;
    const char *template_name = NULL, *iso_id = NULL, *name = NULL, *owner = NULL;
    const char *host = NULL;
    HttpReply *reply = api_authenticate(req, a, &caller);
    CreateJob *j;

    if (reply || (reply = api_json_body(req, &body)))
        return reply;
    if (!api_json_string(body, "template", true, &template_name, &error) ||
        !api_json_string(body, "iso", false, &iso_id, &error) ||
        !api_json_string(body, "name", false, &name, &error) ||
        !api_json_string(body, "owner", false, &owner, &error) ||
        !api_json_string(body, "host", false, &host, &error))
        return api_error(req, error);
    j = g_new0(CreateJob, 1);
    j->a = a;
    j->caller = db_user_copy(caller->user);
    j->template_name = g_strdup(template_name);
    j->iso_id = g_strdup(iso_id);
    j->name = g_strdup(name);
    j->owner = g_strdup(owner);
    j->host = g_strdup(host);
    j->remote_addr = g_strdup(http_request_remote_addr(req));
    j->path = g_strdup(http_request_path(req));
    j->async = prefers_async(req);
    reply = http_reply_deferred(req, &j->deferred);
    g_thread_pool_push(a->creates, j, NULL);
    return reply;
}

/* The JSON array of @list, as GET /vms answers it. */
static GBytes *
render_vm_list(GPtrArray *list, void *data)
{
    g_autoptr(json_object) out = json_object_new_array();
    const char *text;

    (void) data;
    for (guint i = 0; i < list->len; i++)
        json_object_array_add(out, api_render_vm(list->pdata[i]));
    /* The same encoding as http_reply_json(). */
    text = json_object_to_json_string_ext(out, JSON_C_TO_STRING_PLAIN |
                                               JSON_C_TO_STRING_NOSLASHESCAPE);
    return g_bytes_new(text, strlen(text));
}

/**
 * api_vms_list:
 * @req: GET /api/v1/vms[?owner=NAME]
 * @app: the daemon's state
 *
 * The rendered list is kept in the read cache, under what it shows (svc_vms_list_rendered).
 *
 * Returns: 200 [vm]: the caller's VMs; every VM for admins and service accounts.
 */
HttpReply *
api_vms_list(HttpRequest *req, void *app)
{
    App *a = app;
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(GError) error = NULL;
    const char *owner = http_request_query(req, "owner");
    HttpReply *reply = api_authenticate(req, a, &caller);
    GBytes *body;

    if (reply)
        return reply;
    body = svc_vms_list_rendered(a->vms, caller->user, owner, render_vm_list, NULL, &error);
    if (!body)
        return api_error(req, error);
    return http_reply_new(200, "application/json", body);
}

HttpReply *
api_vms_get(HttpRequest *req, void *app)
{
    App *a = app;
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(DbVm) vm = NULL;
    g_autoptr(json_object) out = NULL;
    HttpReply *reply = api_authenticate(req, a, &caller);

    if (reply)
        return reply;
    vm = svc_vms_get(a->vms, caller->user, http_request_param(req, "id"), &error);
    if (!vm)
        return api_error(req, error);
    out = api_render_vm(vm);
    return http_reply_json(200, out);
}

/**
 * api_vms_stop:
 * @req: POST /api/v1/vms/{id}/stop
 * @app: the daemon's state
 *
 * Returns: 202 with the VM (`stopping`) and its "operation"; 409 (with the operation) while
 * another works on the VM.
 */
HttpReply *
api_vms_stop(HttpRequest *req, void *app)
{
    App *a = app;
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(DbVm) vm = NULL;
    g_autoptr(DbOp) op = NULL;
    g_autoptr(DbOp) active = NULL;
    g_autoptr(json_object) out = NULL;
    HttpReply *reply = api_authenticate(req, a, &caller);
    bool admin;

    if (reply)
        return reply;
    admin = admin_view(caller->user);
    vm = svc_vms_stop(a->vms, caller->user, http_request_param(req, "id"), NULL,
                      http_request_remote_addr(req), &op, &active, &error);
    if (!vm)
        return busy_reply(req, error, active, admin);
    /* The VM object as before, with the operation added. */
    out = api_render_vm(vm);
    json_object_object_add(out, "operation", api_render_op(op, admin));
    return http_reply_json(202, out);
}

/**
 * api_vms_answer_op:
 * @req: the request that queued @op
 * @a: the daemon's state
 * @caller: who asked
 * @op: (nullable): the queued operation, or NULL with @error (and @active when the VM was
 *   busy with it)
 * @vm: (nullable): the VM as it was when @op was queued
 * @active: (nullable): the VM's operation that refused @op
 * @error: (nullable): why nothing was queued
 *
 * Returns: the answer when it ends, or at once: 202 {vm, operation} when the client prefers
 *   not to wait, 409 with the VM's operation, or the problem of @error.
 */
HttpReply *
api_vms_answer_op(HttpRequest *req, App *a, const DbUser *caller, const DbOp *op,
                  const DbVm *vm, const DbOp *active, const GError *error)
{
    if (!op)
        return busy_reply(req, error, active, admin_view(caller));
    if (prefers_async(req))
        return accepted_reply(vm, op, admin_view(caller));
    return wait_for(req, a, caller, op);
}

/* Start, reboot and delete: queued; the answer waits for the end unless the client
 * prefers not to wait (then 202 {vm, operation}). */
static HttpReply *
queue_action(HttpRequest *req, App *a, DbOpKind kind)
{
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(DbVm) vm = NULL;
    g_autoptr(DbOp) op = NULL;
    g_autoptr(DbOp) active = NULL;
    HttpReply *reply = api_authenticate(req, a, &caller);

    if (reply)
        return reply;
    op = svc_vms_queue(a->vms, caller->user, http_request_param(req, "id"), kind,
                       http_request_remote_addr(req), &vm, &active, &error);
    return api_vms_answer_op(req, a, caller->user, op, vm, active, error);
}

/**
 * api_vms_start:
 * @req: POST /api/v1/vms/{id}/start
 * @app: the daemon's state
 *
 * Returns: 200 with the running VM; 202 {vm, operation} with `Prefer: respond-async`.
 */
HttpReply *
api_vms_start(HttpRequest *req, void *app)
{
    return queue_action(req, app, DB_OP_START);
}

/**
 * api_vms_reboot:
 * @req: POST /api/v1/vms/{id}/reboot
 * @app: the daemon's state
 *
 * Returns: 202 with the VM once the guest was asked to reboot; 202 {vm, operation} with
 * `Prefer: respond-async`.
 */
HttpReply *
api_vms_reboot(HttpRequest *req, void *app)
{
    return queue_action(req, app, DB_OP_REBOOT);
}

/**
 * api_vms_delete:
 * @req: DELETE /api/v1/vms/{id}
 * @app: the daemon's state
 *
 * Returns: 204 once the VM is gone; 202 {vm, operation} with `Prefer: respond-async`.
 */
HttpReply *
api_vms_delete(HttpRequest *req, void *app)
{
    return queue_action(req, app, DB_OP_DELETE);
}

/**
 * api_vms_console_ticket:
 * @req: POST /api/v1/vms/{id}/console
 * @app: the daemon's state
 *
 * Returns: 201 {ticket, expires_at, ws_path, console_url, novnc_url}: three one-time
 * tickets, one per way in; for the VM's owner and admins also vnc_password, which the
 * stock noVNC page of novnc_url asks for.
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
    ticket = svc_console_mint_ticket(a->console, vm, "ws", caller->user->id, caller->credential,
                                     &error);
    if (!ticket || !add_console_urls(a, out, vm, caller->user->id, caller->credential, &error))
        return api_error(req, error);
    expires = g_date_time_add_seconds(now, a->cfg->console_ticket_ttl_s);
    ws_path = g_strdup_printf("/api/v1/vms/%s/console/ws?ticket=%s", vm->id, ticket);
    json_object_object_add(out, "ticket", json_object_new_string(ticket));
    json_object_object_add(out, "expires_at", api_render_time(expires));
    json_object_object_add(out, "ws_path", json_object_new_string(ws_path));
    /* The stock noVNC page asks for the VNC password: its owner (or an admin), signed in,
     * gets it next to the link. A service account does not: what it hands on is console_url. */
    if (caller->user->role == DB_ROLE_ADMIN || strcmp(caller->user->id, vm->owner_id) == 0) {
        g_autofree char *password = svc_vms_vnc_password(a->vms, vm, &error);
        if (!password)
            return api_error(req, error);
        json_object_object_add(out, "vnc_password", json_object_new_string(password));
        explicit_bzero(password, strlen(password));
    }
    reply = http_reply_json(201, out);
    http_reply_add_header(reply, "Cache-Control", "no-store");
    return reply;
}
