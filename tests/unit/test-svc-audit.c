// SPDX-License-Identifier: LGPL-2.1-or-later
// The audit log's time filters (broker/services/svc-audit.c:svc_audit_parse_time): ISO 8601
// with or without a zone, a date alone, spans back from now, and what is refused.
#include <string.h>

#include "svc-audit.h"
#include "test.h"
#include "vmb-error.h"

/* 2026-12-06T12:00:00Z */
#define NOW_US (G_GINT64_CONSTANT(1796558400) * G_USEC_PER_SEC)

static char *
parse(const char *text)
{
    g_autoptr(GError) error = NULL;
    char *out = svc_audit_parse_time(text, NOW_US, &error);

    if (!out)
        g_assert_cmpint(vmb_error_kind(error), ==, VMB_ERROR_INVALID);
    return out;
}

static void
assert_parses(const char *text, const char *want)
{
    g_autofree char *got = parse(text);

    g_assert_cmpstr(got, ==, want);
}

TEST(iso_times)
{
    assert_parses("2026-12-06T10:00:00Z", "2026-12-06T10:00:00Z");
    assert_parses("2026-12-06T10:00:00+02:00", "2026-12-06T08:00:00Z");
    /* No zone: UTC, not the machine's zone. */
    assert_parses("2026-12-06T10:00:00", "2026-12-06T10:00:00Z");
    assert_parses("2026-12-06", "2026-12-06T00:00:00Z");
}

TEST(spans_back_from_now)
{
    assert_parses("90s", "2026-12-06T11:58:30Z");
    assert_parses("30m", "2026-12-06T11:30:00Z");
    assert_parses("12h", "2026-12-06T00:00:00Z");
    assert_parses("7d", "2026-11-29T12:00:00Z");
    assert_parses("0s", "2026-12-06T12:00:00Z");
}

TEST(refused)
{
    const char *bad[] = { "", "yesterday", "12", "h", "-5m", "5w", "5m ago", "1.5h",
                          "2026-13-01", "2026-12-06T25:00:00Z", "99999999999999999999d",
                          "4000d", "2026-12-06'; DROP TABLE audit_log; --", NULL };

    for (const char **b = bad; *b; b++) {
        g_autofree char *got = parse(*b);
        if (got)
            g_error("'%s' parsed as %s", *b, got);
    }
    {
        g_autofree char *longer = g_strnfill(100, '1');
        g_autofree char *got = parse(longer);
        g_assert_null(got);
    }
}

TEST_MAIN()
