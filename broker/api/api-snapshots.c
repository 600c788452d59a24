// SPDX-License-Identifier: LGPL-2.1-or-later
// /api/v1/vms/{id}/snapshots: list, take, revert to and delete a VM's snapshots. Taking,
// reverting and deleting are operations of the VM (svc-vms-snapshots): the request waits
// for the end without a thread, or answers 202 at once with `Prefer: respond-async`.
#include "api.h"

#include "api-common.h"
#include "dom-snapshot.h"
#include "http-problem.h"
#include "svc-vms.h"
#include "vmb-error.h"

/* {name, description, created_at, state} */
static json_object *
render_snapshot(gconstpointer item)
{
    const DomSnapshot *s = item;
    json_object *o = json_object_new_object();
    g_autoptr(GDateTime) at = g_date_time_new_from_unix_utc(s->created);
    g_autofree char *iso = at ? g_date_time_format_iso8601(at) : NULL;

    json_object_object_add(o, "name", json_object_new_string(s->name));
    json_object_object_add(o, "description",
                           s->description ? json_object_new_string(s->description) : NULL);
    json_object_object_add(o, "created_at", iso ? json_object_new_string(iso) : NULL);
    json_object_object_add(o, "state", s->state ? json_object_new_string(s->state) : NULL);
    return o;
}

static GPtrArray *
list_snapshots(App *a, const DbUser *caller, HttpRequest *req, GError **error)
{
    return svc_vms_snapshots(a->vms, caller, http_request_param(req, "id"), error);
}

/**
 * api_snapshots_list:
 * @req: GET /api/v1/vms/{id}/snapshots
 * @app: the daemon's state
 *
 * Returns: 200 [snapshot], newest first.
 */
HttpReply *
api_snapshots_list(HttpRequest *req, void *app)
{
    return api_list_reply(req, app, list_snapshots, render_snapshot);
}

static HttpReply *
queue(HttpRequest *req, App *a, const ApiCaller *caller, SvcSnapshotAction action,
      const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DbVm) vm = NULL;
    g_autoptr(DbOp) active = NULL;
    g_autoptr(DbOp) op = svc_vms_snapshot_queue(a->vms, caller->user,
                                                http_request_param(req, "id"), action, name,
                                                http_request_remote_addr(req), &vm, &active,
                                                &error);

    return api_vms_answer_op(req, a, caller->user, op, vm, active, error);
}

/**
 * api_snapshots_create:
 * @req: POST /api/v1/vms/{id}/snapshots {name?} (no body: a name from the time)
 * @app: the daemon's state
 *
 * Returns: 201 {name, vm} once taken; 409 unless the VM runs and has a disk; 429 over
 *   limits.snapshots_per_vm or _per_user; 507 over limits.snapshot_disk_gib.
 */
HttpReply *
api_snapshots_create(HttpRequest *req, void *app)
{
    App *a = app;
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(json_object) body = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autofree char *stamp = g_date_time_format(now, "snap-%Y%m%d-%H%M%S");
    const char *name = NULL;
    size_t len = 0;
    HttpReply *reply = api_authenticate(req, a, &caller);

    if (reply)
        return reply;
    http_request_body(req, &len);
    if (len > 0 && ((reply = api_json_body(req, &body)) ||
                    !api_json_string(body, "name", false, &name, &error)))
        return reply ? reply : api_error(req, error);
    return queue(req, a, caller, SVC_SNAPSHOT_CREATE, name ? name : stamp);
}

static HttpReply *
act(HttpRequest *req, App *a, SvcSnapshotAction action)
{
    g_autoptr(ApiCaller) caller = NULL;
    HttpReply *reply = api_authenticate(req, a, &caller);

    return reply ? reply : queue(req, a, caller, action, http_request_param(req, "sid"));
}

/**
 * api_snapshots_revert:
 * @req: POST /api/v1/vms/{id}/snapshots/{sid}/revert
 * @app: the daemon's state
 *
 * Returns: 200 with the VM once the guest is back at the snapshot (disks and memory).
 */
HttpReply *
api_snapshots_revert(HttpRequest *req, void *app)
{
    return act(req, app, SVC_SNAPSHOT_REVERT);
}

/**
 * api_snapshots_delete:
 * @req: DELETE /api/v1/vms/{id}/snapshots/{sid}
 * @app: the daemon's state
 *
 * Returns: 204 once it is gone.
 */
HttpReply *
api_snapshots_delete(HttpRequest *req, void *app)
{
    return act(req, app, SVC_SNAPSHOT_DELETE);
}
