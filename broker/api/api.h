// SPDX-License-Identifier: LGPL-2.1-or-later
// HTTP handlers of `vmbroker serve`, one file per resource family (api-<family>.c), and
// the route table that maps paths to them.
#pragma once

#include "app.h"

HttpReply *api_health_live(HttpRequest *req, void *app);
HttpReply *api_health_ready(HttpRequest *req, void *app);
HttpReply *api_health_metrics(HttpRequest *req, void *app);

HttpReply *api_web_index(HttpRequest *req, void *app);
HttpReply *api_web_file(HttpRequest *req, void *app);
HttpReply *api_web_novnc(HttpRequest *req, void *app);

HttpReply *api_auth_login(HttpRequest *req, void *app);
HttpReply *api_auth_logout(HttpRequest *req, void *app);
HttpReply *api_auth_signup(HttpRequest *req, void *app);
HttpReply *api_auth_me(HttpRequest *req, void *app);

HttpReply *api_templates_list(HttpRequest *req, void *app);

HttpReply *api_vms_create(HttpRequest *req, void *app);
void api_vms_create_run(gpointer data, gpointer pool_data);
HttpReply *api_vms_list(HttpRequest *req, void *app);
HttpReply *api_vms_get(HttpRequest *req, void *app);
HttpReply *api_vms_stop(HttpRequest *req, void *app);
HttpReply *api_vms_start(HttpRequest *req, void *app);
HttpReply *api_vms_reboot(HttpRequest *req, void *app);
HttpReply *api_vms_delete(HttpRequest *req, void *app);
HttpReply *api_ops_get(HttpRequest *req, void *app);
HttpReply *api_ops_list_vm(HttpRequest *req, void *app);
HttpReply *api_events(HttpRequest *req, void *app);
HttpReply *api_vms_console_ticket(HttpRequest *req, void *app);

extern const HttpStream api_isos_upload;
extern const HttpStream api_images_upload;
HttpReply *api_isos_list(HttpRequest *req, void *app);
HttpReply *api_isos_delete(HttpRequest *req, void *app);

HttpReply *api_console_session(HttpRequest *req, void *app);
HttpReply *api_console_sessions_end(HttpRequest *req, void *app);
HttpReply *api_console_ws(HttpRequest *req, void *app);
HttpReply *api_vms_connections(HttpRequest *req, void *app);
HttpReply *api_snapshots_list(HttpRequest *req, void *app);
HttpReply *api_snapshots_create(HttpRequest *req, void *app);
HttpReply *api_snapshots_revert(HttpRequest *req, void *app);
HttpReply *api_snapshots_delete(HttpRequest *req, void *app);
HttpReply *api_disks_list(HttpRequest *req, void *app);
HttpReply *api_disks_delete(HttpRequest *req, void *app);
HttpReply *api_disks_reset(HttpRequest *req, void *app);
HttpReply *api_images_list(HttpRequest *req, void *app);
HttpReply *api_images_delete(HttpRequest *req, void *app);
HttpReply *api_templates_create(HttpRequest *req, void *app);
HttpReply *api_templates_update(HttpRequest *req, void *app);
HttpReply *api_templates_delete(HttpRequest *req, void *app);

HttpReply *api_users_list(HttpRequest *req, void *app);
HttpReply *api_users_disable(HttpRequest *req, void *app);
HttpReply *api_users_enable(HttpRequest *req, void *app);
HttpReply *api_pools_list(HttpRequest *req, void *app);
HttpReply *api_pools_set(HttpRequest *req, void *app);
HttpReply *api_pools_schedule(HttpRequest *req, void *app);
HttpReply *api_hosts_list(HttpRequest *req, void *app);
HttpReply *api_hosts_add(HttpRequest *req, void *app);
HttpReply *api_hosts_change(HttpRequest *req, void *app);
HttpReply *api_hosts_remove(HttpRequest *req, void *app);

HttpReply *api_tokens_create(HttpRequest *req, void *app);
HttpReply *api_tokens_list(HttpRequest *req, void *app);
HttpReply *api_tokens_delete(HttpRequest *req, void *app);
HttpReply *api_audit_list(HttpRequest *req, void *app);
