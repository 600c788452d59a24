// SPDX-License-Identifier: LGPL-2.1-or-later
// /api/v1/disks: users' persistent disks (the overlays of persistent templates), listed,
// deleted or reset to their template's base image while no VM runs on them.
#include "api.h"

#include "api-common.h"
#include "svc-vms.h"

/* {id, owner, template, capacity_bytes, allocation_bytes, vm_id, vm_name} */
static json_object *
render_disk(gconstpointer item)
{
    const SvcDisk *d = item;
    json_object *o = json_object_new_object();

    json_object_object_add(o, "id", json_object_new_string(d->id));
    json_object_object_add(o, "owner", json_object_new_string(d->disk->owner));
    json_object_object_add(o, "template", json_object_new_string(d->disk->template_name));
    json_object_object_add(o, "capacity_bytes", json_object_new_uint64(d->disk->capacity));
    json_object_object_add(o, "allocation_bytes", json_object_new_uint64(d->disk->allocation));
    json_object_object_add(o, "vm_id", d->vm_id ? json_object_new_string(d->vm_id) : NULL);
    json_object_object_add(o, "vm_name", d->vm_name ? json_object_new_string(d->vm_name) : NULL);
    return o;
}

static GPtrArray *
list_disks(App *a, const DbUser *caller, HttpRequest *req, GError **error)
{
    return svc_vms_disks(a->vms, caller, error);
}

/**
 * api_disks_list:
 * @req: GET /api/v1/disks
 * @app: the daemon's state
 *
 * Returns: 200 [disk]: the caller's (admins: everyone's; service accounts: users').
 */
HttpReply *
api_disks_list(HttpRequest *req, void *app)
{
    return api_list_reply(req, app, list_disks, render_disk);
}

static HttpReply *
change(HttpRequest *req, App *a, bool reset)
{
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(GError) error = NULL;
    HttpReply *reply = api_authenticate(req, a, &caller);

    if (reply)
        return reply;
    if (!svc_vms_disk_change(a->vms, caller->user, http_request_param(req, "id"), reset,
                             http_request_remote_addr(req), &error))
        return api_error(req, error);
    return http_reply_empty(204);
}

/**
 * api_disks_delete:
 * @req: DELETE /api/v1/disks/{id}
 * @app: the daemon's state
 *
 * Returns: 204; 409 while a VM runs on it.
 */
HttpReply *
api_disks_delete(HttpRequest *req, void *app)
{
    return change(req, app, false);
}

/**
 * api_disks_reset:
 * @req: POST /api/v1/disks/{id}/reset
 * @app: the daemon's state
 *
 * Returns: 204 once it is an empty overlay of its template's base again; 409 while a VM runs
 *   on it or when its template is gone.
 */
HttpReply *
api_disks_reset(HttpRequest *req, void *app)
{
    return change(req, app, true);
}
