// SPDX-License-Identifier: LGPL-2.1-or-later
// The API's objects as JSON. A field is added here or nowhere; removing one breaks clients.
#include "api-render.h"

/**
 * api_render_time:
 * @t: (nullable): a time
 *
 * Returns: (transfer full) (nullable): "YYYY-MM-DDTHH:MM:SSZ" in UTC, or NULL (JSON null).
 */
json_object *
api_render_time(GDateTime *t)
{
    g_autoptr(GDateTime) utc = NULL;
    g_autofree char *s = NULL;

    if (!t)
        return NULL;
    utc = g_date_time_to_utc(t);
    s = g_date_time_format(utc, "%Y-%m-%dT%H:%M:%SZ");
    return json_object_new_string(s);
}

/**
 * api_render_string:
 * @s: (nullable): a string
 *
 * Returns: (transfer full) (nullable): @s as JSON, or NULL (JSON null).
 */
json_object *
api_render_string(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

/**
 * api_render_vm:
 * @vm: a VM
 *
 * Returns: (transfer full): the vm object (README, HTTP API; contrib/openapi.yaml: Vm).
 */
json_object *
api_render_vm(const DbVm *vm)
{
    json_object *o = json_object_new_object();
    json_object *console = json_object_new_object();

    json_object_object_add(o, "id", json_object_new_string(vm->id));
    json_object_object_add(o, "name", json_object_new_string(vm->name));
    json_object_object_add(o, "owner", json_object_new_string(vm->owner_name));
    json_object_object_add(o, "template", json_object_new_string(vm->template_name));
    json_object_object_add(o, "iso", api_render_string(vm->iso_id));
    json_object_object_add(o, "state", json_object_new_string(db_vm_state_to_string(vm->state)));
    json_object_object_add(o, "state_reason", api_render_string(vm->state_reason));
    json_object_object_add(o, "accelerator", api_render_string(vm->accelerator));
    json_object_object_add(o, "host", api_render_string(vm->host_name));
    json_object_object_add(o, "reachability", json_object_new_string(vm->host_unreachable
                                                                         ? "unknown"
                                                                         : "reachable"));
    json_object_object_add(o, "vnc_port", vm->vnc_port ? json_object_new_int((int) vm->vnc_port)
                                                       : NULL);
    json_object_object_add(o, "ws_port", vm->ws_port ? json_object_new_int((int) vm->ws_port)
                                                     : NULL);
    json_object_object_add(o, "created_at", api_render_time(vm->created_at));
    json_object_object_add(o, "updated_at", api_render_time(vm->updated_at));
    json_object_object_add(o, "started_at", api_render_time(vm->started_at));
    json_object_object_add(o, "stopped_at", api_render_time(vm->stopped_at));
    json_object_object_add(o, "console_ready_at", api_render_time(vm->console_ready_at));
    json_object_object_add(console, "connections",
                           json_object_new_int((int) vm->console_connections));
    json_object_object_add(console, "last_activity_at", api_render_time(vm->console_last_activity_at));
    json_object_object_add(console, "closed_reason", api_render_string(vm->console_closed_reason));
    json_object_object_add(console, "closed_at", api_render_time(vm->console_closed_at));
    json_object_object_add(o, "console", console);
    return o;
}

/**
 * api_render_user:
 * @user: a user
 * @admin_view: add what only admins see
 *
 * Returns: (transfer full): {id, username, role} (and {disabled} for admins).
 */
json_object *
api_render_user(const DbUser *user, bool admin_view)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "id", json_object_new_string(user->id));
    json_object_object_add(o, "username", json_object_new_string(user->username));
    json_object_object_add(o, "role", json_object_new_string(db_role_to_string(user->role)));
    if (admin_view)
        json_object_object_add(o, "disabled", json_object_new_boolean(user->disabled));
    return o;
}

static json_object *
render_range(unsigned first, unsigned last)
{
    g_autofree char *text = g_strdup_printf("%u-%u", first, last);

    return json_object_new_string(text);
}

/**
 * api_render_host:
 * @host: a hypervisor host
 *
 * Returns: (transfer full): {name, uri, console_address, vnc_ports, ws_ports, memory_mib,
 *   enabled, reachable, from_config, vms, created_at}; memory_mib null for no budget.
 */
json_object *
api_render_host(const DbHost *host)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "name", json_object_new_string(host->name));
    json_object_object_add(o, "uri", json_object_new_string(host->uri));
    json_object_object_add(o, "console_address", json_object_new_string(host->console_address));
    json_object_object_add(o, "vnc_ports", render_range(host->ranges.vnc_first,
                                                        host->ranges.vnc_last));
    json_object_object_add(o, "ws_ports", render_range(host->ranges.ws_first,
                                                       host->ranges.ws_last));
    json_object_object_add(o, "memory_mib", host->memory_mib
                           ? json_object_new_int64((gint64) host->memory_mib) : NULL);
    json_object_object_add(o, "enabled", json_object_new_boolean(host->enabled));
    json_object_object_add(o, "reachable", json_object_new_boolean(host->reachable));
    json_object_object_add(o, "from_config", json_object_new_boolean(host->from_config));
    json_object_object_add(o, "vms", json_object_new_int((int) host->vms));
    json_object_object_add(o, "created_at", api_render_time(host->created_at));
    return o;
}

/**
 * api_render_pool:
 * @pool: a template's warm pool
 *
 * Returns: (transfer full): {template, size, ready, starting, schedules: [{id, from, until,
 *   size}]}.
 */
json_object *
api_render_pool(const SvcPoolInfo *pool)
{
    json_object *o = json_object_new_object();
    json_object *schedules = json_object_new_array();

    json_object_object_add(o, "template", json_object_new_string(pool->template_name));
    json_object_object_add(o, "size", json_object_new_int((int) pool->size));
    json_object_object_add(o, "ready", json_object_new_int((int) pool->ready));
    json_object_object_add(o, "starting", json_object_new_int((int) pool->starting));
    json_object_object_add(o, "saved", json_object_new_int((int) pool->saved));
    for (guint i = 0; i < pool->schedules->len; i++) {
        const DbPoolSchedule *sch = pool->schedules->pdata[i];
        json_object *so = json_object_new_object();

        json_object_object_add(so, "id", json_object_new_string(sch->id));
        json_object_object_add(so, "from", api_render_time(sch->starts_at));
        json_object_object_add(so, "until", api_render_time(sch->ends_at));
        json_object_object_add(so, "size", json_object_new_int((int) sch->size));
        json_object_array_add(schedules, so);
    }
    json_object_object_add(o, "schedules", schedules);
    return o;
}

/**
 * api_render_token:
 * @token: an API token's record
 *
 * Returns: (transfer full): {id, name, created_at, expires_at, last_used_at, revoked}.
 */
json_object *
api_render_token(const DbToken *token)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "id", json_object_new_string(token->id));
    json_object_object_add(o, "name", json_object_new_string(token->name));
    json_object_object_add(o, "created_at", json_object_new_string(token->created_at));
    json_object_object_add(o, "expires_at", api_render_string(token->expires_at));
    json_object_object_add(o, "last_used_at", api_render_string(token->last_used_at));
    json_object_object_add(o, "revoked", json_object_new_boolean(token->revoked));
    if (token->username)
        json_object_object_add(o, "user", json_object_new_string(token->username));
    return o;
}

/**
 * api_render_audit:
 * @row: an audit log row
 *
 * Returns: (transfer full): {id, at, actor, actor_id, origin, action, object_kind, object_id,
 *   remote_addr, detail}.
 */
json_object *
api_render_audit(const DbAuditRow *row)
{
    json_object *o = json_object_new_object();
    json_object *detail = json_tokener_parse(row->detail_json);

    json_object_object_add(o, "id", json_object_new_int64(row->id));
    json_object_object_add(o, "at", json_object_new_string(row->at));
    json_object_object_add(o, "actor", api_render_string(row->actor));
    json_object_object_add(o, "actor_id", api_render_string(row->actor_id));
    json_object_object_add(o, "origin", api_render_string(row->origin));
    json_object_object_add(o, "action", json_object_new_string(row->action));
    json_object_object_add(o, "object_kind", json_object_new_string(row->object_kind));
    json_object_object_add(o, "object_id", api_render_string(row->object_id));
    json_object_object_add(o, "remote_addr", api_render_string(row->remote_addr));
    json_object_object_add(o, "detail", detail ? detail : json_object_new_object());
    return o;
}

/**
 * api_render_connection:
 * @c: a console connection's history row
 *
 * Returns: (transfer full): {id, user, user_id, remote_addr, opened_at, closed_at, reason,
 *   bytes_in, bytes_out}; closed_at and reason are null while it is open.
 */
json_object *
api_render_connection(const DbConsoleConn *c)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "id", json_object_new_string(c->id));
    json_object_object_add(o, "user", api_render_string(c->username));
    json_object_object_add(o, "user_id", api_render_string(c->user_id));
    json_object_object_add(o, "remote_addr", api_render_string(c->remote_addr));
    json_object_object_add(o, "opened_at", json_object_new_string(c->opened_at));
    json_object_object_add(o, "closed_at", api_render_string(c->closed_at));
    json_object_object_add(o, "reason", api_render_string(c->reason));
    json_object_object_add(o, "bytes_in", json_object_new_uint64(c->bytes_in));
    json_object_object_add(o, "bytes_out", json_object_new_uint64(c->bytes_out));
    return o;
}

/**
 * api_render_image:
 * @img: a base image
 *
 * Returns: (transfer full): {name, format, capacity_bytes, allocation_bytes, templates}.
 */
json_object *
api_render_image(const SvcImage *img)
{
    json_object *o = json_object_new_object();
    json_object *names = json_object_new_array();

    for (guint i = 0; i < img->templates->len; i++)
        json_object_array_add(names, json_object_new_string(img->templates->pdata[i]));
    json_object_object_add(o, "name", json_object_new_string(img->image->name));
    json_object_object_add(o, "format", api_render_string(img->image->format));
    json_object_object_add(o, "capacity_bytes", json_object_new_uint64(img->image->capacity));
    json_object_object_add(o, "allocation_bytes",
                           json_object_new_uint64(img->image->allocation));
    json_object_object_add(o, "templates", names);
    return o;
}

/**
 * api_render_iso:
 * @iso: an ISO's record
 *
 * Returns: (transfer full): {id, name, size, sha256, public}.
 */
json_object *
api_render_iso(const DbIso *iso)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "id", json_object_new_string(iso->id));
    json_object_object_add(o, "name", json_object_new_string(iso->name));
    json_object_object_add(o, "size", json_object_new_int64(iso->size));
    json_object_object_add(o, "sha256", json_object_new_string(iso->sha256));
    json_object_object_add(o, "public", json_object_new_boolean(iso->is_public));
    return o;
}

/**
 * api_render_template:
 * @tmpl: a loaded template
 *
 * Returns: (transfer full): its public fields (dom_template_to_json: no host paths) and its
 *   source: "file" (templates.dir, read-only here) or "api".
 */
json_object *
api_render_template(const DomTemplate *tmpl)
{
    json_object *o = dom_template_to_json(tmpl);

    json_object_object_add(o, "source", json_object_new_string(tmpl->path ? "file" : "api"));
    return o;
}

json_object *
api_render_op(const DbOp *op, bool admin_view)
{
    json_object *o = json_object_new_object();
    json_object *err = NULL;

    json_object_object_add(o, "id", json_object_new_string(op->id));
    json_object_object_add(o, "vm_id", json_object_new_string(op->vm_id));
    json_object_object_add(o, "kind", json_object_new_string(db_op_kind_to_string(op->kind)));
    json_object_object_add(o, "state",
                           json_object_new_string(db_op_state_to_string(op->state)));
    json_object_object_add(o, "step", json_object_new_string(op->step ? op->step : ""));
    json_object_object_add(o, "progress", json_object_new_int((int) op->progress));
    if (op->error_kind) {
        err = json_object_new_object();
        json_object_object_add(err, "kind", json_object_new_string(op->error_kind));
        json_object_object_add(err, "detail", op->error_detail
                                                  ? json_object_new_string(op->error_detail)
                                                  : NULL);
        if (admin_view && op->error_admin)
            json_object_object_add(err, "admin_detail",
                                   json_object_new_string(op->error_admin));
    }
    json_object_object_add(o, "error", err);
    json_object_object_add(o, "created_at", api_render_time(op->created_at));
    json_object_object_add(o, "started_at", api_render_time(op->started_at));
    json_object_object_add(o, "finished_at", api_render_time(op->finished_at));
    return o;
}
