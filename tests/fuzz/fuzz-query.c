// SPDX-License-Identifier: LGPL-2.1-or-later
// Query handling: the input is a request's query string ("since=7d&limit=50&cursor=a12"),
// split and percent-decoded as libmicrohttpd hands its values to us, then checked by what
// reads them: the audit log's filter (times, names, ids, action, cursor, limit) and the
// user names of ?owner= and ?user=. A time that is accepted comes back in a form that is
// accepted again unchanged; an accepted filter is within its bounds.
#include <string.h>
#include <glib.h>

#include "fuzz.h"
#include "svc-audit.h"
#include "svc-users.h"
#include "vmb-error.h"

/* 2026-12-06T10:00:00Z, so spans give the same answer on every run. */
#define NOW_US (G_GINT64_CONSTANT(1796551200) * G_USEC_PER_SEC)

/* The value as libmicrohttpd decodes it: '+' is a space, %XX a byte, a bad escape as is. */
static char *
decode(const char *raw)
{
    g_autofree char *spaced = g_strdelimit(g_strdup(raw), "+", ' ');
    char *out = g_uri_unescape_string(spaced, NULL);

    return out ? out : g_steal_pointer(&spaced);
}

static void
check_time(const char *text)
{
    g_autofree char *t = svc_audit_parse_time(text, NOW_US, NULL);
    g_autofree char *again = NULL;

    if (!t)
        return;
    again = svc_audit_parse_time(t, NOW_US, NULL);
    g_assert(again && strcmp(again, t) == 0);
}

static void
check_filter(const SvcAuditQuery *q)
{
    g_autofree char *since = NULL;
    g_autofree char *until = NULL;
    g_autoptr(GError) error = NULL;
    DbAuditFilter f = { 0 };

    if (!svc_audit_filter(q, NOW_US, &f, &since, &until, &error)) {
        g_assert(error && error->domain == VMB_ERROR && error->code == VMB_ERROR_INVALID);
        return;
    }
    g_assert(f.limit >= 1 && f.limit <= SVC_AUDIT_PAGE_MAX);
    g_assert(!q->cursor || f.before_id > 0);
    g_assert(!f.username || svc_users_name_valid(f.username));
    g_assert(!f.vm_id || g_uuid_string_is_valid(f.vm_id));
    g_assert(!q->since == !f.since && !q->until == !f.until);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *text = fuzz_cstring(data, size);
    g_auto(GStrv) pairs = g_strsplit(text, "&", 64);
    g_autoptr(GPtrArray) values = g_ptr_array_new_with_free_func(g_free);
    SvcAuditQuery q = { 0 };
    const char **slots[] = { &q.since, &q.until, &q.user, &q.vm, &q.action, &q.cursor };
    static const char *const keys[] = { "since", "until", "user", "vm", "action", "cursor" };

    for (char **p = pairs; *p; p++) {
        char *eq = strchr(*p, '=');
        char *value;

        if (!eq)
            continue;
        *eq = '\0';
        value = decode(eq + 1);
        g_ptr_array_add(values, value);
        if (strcmp(*p, "since") == 0 || strcmp(*p, "until") == 0)
            check_time(value);
        if (strcmp(*p, "owner") == 0 || strcmp(*p, "user") == 0)
            (void) svc_users_name_valid(value);
        if (strcmp(*p, "limit") == 0)
            q.limit = g_ascii_strtoll(value, NULL, 10);
        for (size_t i = 0; i < G_N_ELEMENTS(keys); i++)
            if (strcmp(*p, keys[i]) == 0)
                *slots[i] = value;
    }
    check_filter(&q);
    return 0;
}
