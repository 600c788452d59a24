// SPDX-License-Identifier: LGPL-2.1-or-later
// The route table: every path vmbroker serves. contrib/openapi.yaml describes the same set.
#include "api.h"

const HttpRoute api_routes[] = {
    { "GET", "/healthz", api_health_live, 0 },
    { "GET", "/readyz", api_health_ready, 0 },
    { "GET", "/metrics", api_health_metrics, 0 },
    { "GET", "/", api_web_index, 0 },
    { "GET", "/ui/*", api_web_file, 0 },
    { "GET", "/novnc/*", api_web_novnc, 0 },
    { "POST", "/api/v1/auth/login", api_auth_login, 0 },
    { "POST", "/api/v1/auth/logout", api_auth_logout, 0 },
    { "POST", "/api/v1/auth/signup", api_auth_signup, 0 },
    { "GET", "/api/v1/me", api_auth_me, 0 },
    { "GET", "/api/v1/templates", api_templates_list, 0 },
    { "PUT", "/api/v1/isos/{name}", NULL, 0, &api_isos_upload },
    { "GET", "/api/v1/isos", api_isos_list, 0 },
    { "DELETE", "/api/v1/isos/{id}", api_isos_delete, 0 },
    { "POST", "/api/v1/vms", api_vms_create, 0 },
    { "GET", "/api/v1/vms", api_vms_list, 0 },
    { "GET", "/api/v1/vms/{id}", api_vms_get, 0 },
    { "DELETE", "/api/v1/vms/{id}", api_vms_delete, 0 },
    { "POST", "/api/v1/vms/{id}/stop", api_vms_stop, 0 },
    { "POST", "/api/v1/vms/{id}/start", api_vms_start, 0 },
    { "POST", "/api/v1/vms/{id}/reboot", api_vms_reboot, 0 },
    { "GET", "/api/v1/vms/{id}/operations", api_ops_list_vm, 0 },
    { "GET", "/api/v1/operations/{id}", api_ops_get, 0 },
    { "POST", "/api/v1/vms/{id}/console", api_vms_console_ticket, 0 },
    { "POST", "/api/v1/vms/{id}/console/session", api_console_session, 0 },
    { "GET", "/api/v1/vms/{id}/console/ws", api_console_ws, 0 },
    { "GET", "/api/v1/users", api_users_list, 0 },
    { "POST", "/api/v1/users/{id}/disable", api_users_disable, 0 },
    { "POST", "/api/v1/users/{id}/enable", api_users_enable, 0 },
    { "POST", "/api/v1/tokens", api_tokens_create, 0 },
    { "GET", "/api/v1/tokens", api_tokens_list, 0 },
    { "DELETE", "/api/v1/tokens/{id}", api_tokens_delete, 0 },
};
const size_t api_routes_count = G_N_ELEMENTS(api_routes);
