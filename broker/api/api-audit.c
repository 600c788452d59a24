// SPDX-License-Identifier: LGPL-2.1-or-later
// /api/v1/audit: the audit log for admins, newest first, filtered and paged by cursor.
#include "api.h"

#include "api-common.h"
#include "api-render.h"
#include "http-problem.h"
#include "svc-audit.h"
#include "vmb-error.h"

/**
 * api_audit_list:
 * @req: GET /api/v1/audit?since=&until=&user=&vm=&action=&cursor=&limit=
 * @app: the daemon's state
 *
 * Returns: 200 {items: [audit row], next_cursor}; 400 for a malformed filter; 403 for
 *   non-admins.
 */
HttpReply *
api_audit_list(HttpRequest *req, void *app)
{
    App *a = app;
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) rows = NULL;
    g_autoptr(json_object) out = json_object_new_object();
    json_object *items = json_object_new_array();
    g_autofree char *next = NULL;
    const char *limit = http_request_query(req, "limit");
    guint64 n = 0;
    SvcAuditQuery q = {
        .since = http_request_query(req, "since"),
        .until = http_request_query(req, "until"),
        .user = http_request_query(req, "user"),
        .vm = http_request_query(req, "vm"),
        .action = http_request_query(req, "action"),
        .cursor = http_request_query(req, "cursor"),
    };
    HttpReply *reply = api_authenticate(req, a, &caller);

    json_object_object_add(out, "items", items);
    if (reply)
        return reply;
    if (limit && (!g_ascii_string_to_unsigned(limit, 10, 1, SVC_AUDIT_PAGE_MAX, &n, NULL)))
        return http_problem_kind(VMB_ERROR_INVALID, "limit is 1 to 500.", NULL);
    q.limit = (gint64) n;
    rows = svc_audit_list(a->db, caller->user, &q, &next, &error);
    if (!rows)
        return api_error(req, error);
    for (guint i = 0; i < rows->len; i++)
        json_object_array_add(items, api_render_audit(rows->pdata[i]));
    json_object_object_add(out, "next_cursor", api_render_string(next));
    return http_reply_json(200, out);
}
