// SPDX-License-Identifier: LGPL-2.1-or-later
// Reading the audit log: admins only, filters checked here so the query gets only
// well-formed values, pages of bounded size with an opaque cursor (the last row's id).
#include "svc-audit.h"

#include <string.h>

#include "svc-users.h"
#include "vmb-error.h"

#define CURSOR_PREFIX "a"

/**
 * svc_audit_write:
 * @conn: a connection (in the transaction of the change, when there is one)
 * @actor: (nullable): who acted; NULL for the command line (its rows carry their origin)
 *   and the system
 * @action: e.g. "user.disable"
 * @object_kind: e.g. "user"
 * @object_id: (nullable): the object
 * @remote_addr: (nullable): the client's address
 * @detail: (nullable): a JSON object, borrowed
 * @error: return location for an error
 *
 * Returns: true on success.
 */
bool
svc_audit_write(DbConn *conn, const DbUser *actor, const char *action, const char *object_kind,
                const char *object_id, const char *remote_addr, json_object *detail,
                GError **error)
{
    DbAuditEntry e = {
        .actor_id = actor ? actor->id : NULL,
        .action = action,
        .object_kind = object_kind,
        .object_id = object_id,
        .remote_addr = remote_addr,
        .detail_json = detail ? json_object_to_json_string_ext(detail, JSON_C_TO_STRING_PLAIN)
                              : NULL,
    };

    return db_audit_insert(conn, &e, error);
}

/* "90s", "30m", "12h", "7d": microseconds, or -1. */
static gint64
parse_span(const char *text)
{
    char *end = NULL;
    guint64 n;
    gint64 unit;

    if (!g_ascii_isdigit(text[0]))
        return -1;
    n = g_ascii_strtoull(text, &end, 10);
    switch (*end) {
    case 's': unit = G_USEC_PER_SEC; break;
    case 'm': unit = G_GINT64_CONSTANT(60) * G_USEC_PER_SEC; break;
    case 'h': unit = G_GINT64_CONSTANT(3600) * G_USEC_PER_SEC; break;
    case 'd': unit = G_GINT64_CONSTANT(86400) * G_USEC_PER_SEC; break;
    default: return -1;
    }
    /* Ten years back at most: enough for any log, far from overflow. */
    if (end[1] != '\0' || n > 3650 * G_GUINT64_CONSTANT(86400) * G_USEC_PER_SEC / unit)
        return -1;
    return (gint64) n * unit;
}

/**
 * svc_audit_parse_time:
 * @text: "2026-12-06T10:00:00Z", "2026-12-06T10:00:00" (UTC), "2026-12-06" or a span
 * @now_us: the present, in microseconds since the epoch (for spans)
 * @error: return location for an error
 *
 * Returns: (transfer full): the time as ISO 8601 UTC, or NULL with VMB_ERROR_INVALID.
 */
char *
svc_audit_parse_time(const char *text, gint64 now_us, GError **error)
{
    g_autoptr(GTimeZone) utc = g_time_zone_new_utc();
    g_autoptr(GDateTime) t = NULL;
    gint64 span = strlen(text) <= 32 ? parse_span(text) : -1;

    if (span >= 0) {
        g_autoptr(GDateTime) now = g_date_time_new_from_unix_utc(now_us / G_USEC_PER_SEC);
        t = g_date_time_add(now, -span);
    } else if (strlen(text) <= 64) {
        t = g_date_time_new_from_iso8601(text, utc);
        if (!t && strlen(text) == 10) {
            g_autofree char *midnight = g_strconcat(text, "T00:00:00", NULL);
            t = g_date_time_new_from_iso8601(midnight, utc);
        }
    }
    if (!t) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID,
                    "A time is ISO 8601 (2026-12-06T10:00:00Z) or a span back from now "
                    "(90s, 30m, 12h, 7d).");
        return NULL;
    }
    {
        /* In UTC, so the text names one instant whatever zone PostgreSQL's session has. */
        g_autoptr(GDateTime) u = g_date_time_to_utc(t);
        return g_date_time_format_iso8601(u);
    }
}

static bool
action_valid(const char *action)
{
    size_t len = strlen(action);

    if (len < 1 || len > 64 || !g_ascii_islower(action[0]))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!(g_ascii_islower(action[i]) || g_ascii_isdigit(action[i]) ||
              strchr("_.-", action[i])))
            return false;
    return true;
}

/**
 * svc_audit_filter:
 * @q: the query as the client gave it
 * @now_us: the present, in microseconds since the epoch (for spans)
 * @f: (out): the filter for db_audit_list(), borrowing from @q, @since and @until
 * @since: (out) (transfer full): @q's since, normalised (NULL when none)
 * @until: (out) (transfer full): @q's until, normalised (NULL when none)
 * @error: return location for an error (VMB_ERROR_INVALID)
 *
 * Times normalised, names and ids checked, the cursor decoded.
 */
bool
svc_audit_filter(const SvcAuditQuery *q, gint64 now_us, DbAuditFilter *f, char **since,
                 char **until, GError **error)
{
    if ((q->since && !(*since = svc_audit_parse_time(q->since, now_us, error))) ||
        (q->until && !(*until = svc_audit_parse_time(q->until, now_us, error))))
        return false;
    if (q->user && !svc_users_name_valid(q->user)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID, "user is not a valid user name.");
        return false;
    }
    if (q->vm && !g_uuid_string_is_valid(q->vm)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID, "vm is a VM id (a UUID).");
        return false;
    }
    if (q->action && !action_valid(q->action)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID,
                    "action is an action name such as vm.stop, or a prefix such as vm.");
        return false;
    }
    if (q->limit < 0 || q->limit > SVC_AUDIT_PAGE_MAX) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID, "limit is 1 to %d.",
                    SVC_AUDIT_PAGE_MAX);
        return false;
    }
    if (q->cursor) {
        char *end = NULL;
        gint64 id = g_str_has_prefix(q->cursor, CURSOR_PREFIX) && strlen(q->cursor) <= 24
            ? g_ascii_strtoll(q->cursor + 1, &end, 10) : 0;
        if (id <= 0 || !end || *end) {
            g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID, "cursor is not one this API gave.");
            return false;
        }
        f->before_id = id;
    }
    f->since = *since;
    f->until = *until;
    f->username = q->user;
    f->vm_id = q->vm;
    f->action = q->action;
    f->limit = q->limit ? (unsigned) q->limit : SVC_AUDIT_PAGE_DEFAULT;
    return true;
}

/**
 * svc_audit_list:
 * @pool: the database
 * @caller: who asks: an admin
 * @query: filters, cursor and page size as the client gave them
 * @ret_next_cursor: (out) (transfer full): the next page's cursor, NULL after the last page
 * @error: return location for an error (FORBIDDEN, INVALID)
 *
 * Reads one row more than the page holds to know whether another page follows.
 *
 * Returns: (transfer full) (element-type DbAuditRow): the page, newest first, or NULL.
 */
GPtrArray *
svc_audit_list(DbPool *pool, const DbUser *caller, const SvcAuditQuery *query,
               char **ret_next_cursor, GError **error)
{
    g_autofree char *since = NULL;
    g_autofree char *until = NULL;
    g_autoptr(DbConn) conn = NULL;
    DbAuditFilter f = { 0 };
    GPtrArray *rows;
    unsigned page;

    if (caller->role != DB_ROLE_ADMIN) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_FORBIDDEN, "Only admins read the audit log.");
        return NULL;
    }
    if (!svc_audit_filter(query, g_get_real_time(), &f, &since, &until, error))
        return NULL;
    page = f.limit;
    f.limit = page + 1;
    conn = db_pool_acquire(pool, error);
    if (!conn || !(rows = db_audit_list(conn, &f, error)))
        return NULL;
    *ret_next_cursor = NULL;
    if (rows->len > page) {
        g_ptr_array_set_size(rows, page);
        *ret_next_cursor = g_strdup_printf(CURSOR_PREFIX "%" G_GINT64_FORMAT,
                                           ((DbAuditRow *) rows->pdata[page - 1])->id);
    }
    return rows;
}
