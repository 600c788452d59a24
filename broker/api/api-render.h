// SPDX-License-Identifier: LGPL-2.1-or-later
// Every object the API shows, rendered in one place: the shapes of README's "HTTP API" and
// contrib/openapi.yaml. tests/unit/test-api-render.c holds each against a golden file.
#pragma once

#include <json-c/json.h>

#include "db-audit.h"
#include "db-console-history.h"
#include "db-hosts.h"
#include "db-isos.h"
#include "db-ops.h"
#include "db-tokens.h"
#include "db-users.h"
#include "db-vms.h"
#include "dom-template.h"
#include "svc-images.h"
#include "svc-pools.h"

/* An RFC 3339 UTC time, or JSON null for NULL. */
json_object *api_render_time(GDateTime *t);
/* A JSON string, or null for NULL. */
json_object *api_render_string(const char *s);

/* vm: {id, name, owner, template, iso, state, state_reason, accelerator, vnc_port, ...} */
json_object *api_render_vm(const DbVm *vm);
/* operation: {id, vm_id, kind, state, step, progress, error, created_at, started_at,
 * finished_at}; error is null or {kind, detail} (with @admin_view also admin_detail). */
json_object *api_render_op(const DbOp *op, bool admin_view);
/* user: {id, username, role}; with @admin_view also {disabled}. */
json_object *api_render_user(const DbUser *user, bool admin_view);
/* host: {name, uri, console_address, vnc_ports, ws_ports, memory_mib, enabled, from_config,
 * vms, created_at} */
json_object *api_render_host(const DbHost *host);
/* pool: {template, size, ready, starting, saved, schedules} */
json_object *api_render_pool(const SvcPoolInfo *pool);
/* token: {id, name, created_at, expires_at, last_used_at, revoked} (never the secret), and
 * {user} in an admin's listing of every user's tokens. */
json_object *api_render_token(const DbToken *token);
/* audit row: {id, at, actor, actor_id, origin, action, object_kind, object_id, remote_addr,
 * detail} */
json_object *api_render_audit(const DbAuditRow *row);
json_object *api_render_connection(const DbConsoleConn *c);
json_object *api_render_image(const SvcImage *img);
/* iso: {id, name, size, sha256, public} */
json_object *api_render_iso(const DbIso *iso);
/* template: {name, kind, memory_mib, vcpus, ...} */
json_object *api_render_template(const DomTemplate *tmpl);
