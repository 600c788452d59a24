// SPDX-License-Identifier: LGPL-2.1-or-later
// vmb-log: a message carrying control characters stays one line, and vmb_log_field keeps a
// client's value to one field.
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "test.h"
#include "vmb-log.h"

/* Runs vmb_info("%s", @msg) with stderr sent to a file; returns what was written. */
static char *
logged(const char *msg)
{
    char path[] = "/tmp/vmbt-log-XXXXXX";
    int fd = mkstemp(path), saved = dup(STDERR_FILENO);
    char *text = NULL;

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(dup2(fd, STDERR_FILENO), ==, STDERR_FILENO);
    vmb_info("%s", msg);
    g_assert_cmpint(dup2(saved, STDERR_FILENO), ==, STDERR_FILENO);
    close(saved);
    close(fd);
    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    unlink(path);
    return text;
}

/* The number of newlines in @s. */
static unsigned
lines(const char *s)
{
    unsigned n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

TEST(newline_in_a_short_message_stays_one_line)
{
    g_autofree char *out = logged("GET /x\n2026-01-01T00:00:00.000Z info forged");

    g_assert_cmpuint(lines(out), ==, 1);
    g_assert_nonnull(strstr(out, "GET /x\\x0a2026-01-01"));
    g_assert_true(g_str_has_suffix(out, "forged\n"));
}

TEST(control_characters_in_a_long_message_are_escaped)
{
    g_autofree char *big = g_strnfill(2000, 'a');
    g_autofree char *msg = g_strconcat(big, "\r\n\x1b[2J\x7f", big, NULL);
    g_autofree char *out = logged(msg);

    g_assert_cmpuint(lines(out), ==, 1);
    g_assert_nonnull(strstr(out, "a\\x0d\\x0a\\x1b[2J\\x7fa"));
    g_assert_null(strchr(out, '\r'));
    g_assert_null(strchr(out, '\x1b'));
}

TEST(plain_messages_are_unchanged)
{
    g_autofree char *out = logged("http GET /api/v1/me 200 user=alice \\ \"q\"");

    g_assert_true(g_str_has_suffix(out, " info http GET /api/v1/me 200 user=alice \\ \"q\"\n"));
}

TEST(field_escapes_separators)
{
    g_autofree char *a = vmb_log_field("/x 200 1ms user=admin");
    g_autofree char *b = vmb_log_field("a\\b\"c\td");
    g_autofree char *c = vmb_log_field(NULL);
    g_autofree char *d = vmb_log_field("");
    g_autofree char *e = vmb_log_field("/api/v1/vms/\xc3\xa9");

    g_assert_cmpstr(a, ==, "/x\\x20200\\x201ms\\x20user=admin");
    g_assert_cmpstr(b, ==, "a\\x5cb\\x22c\\x09d");
    g_assert_cmpstr(c, ==, "-");
    g_assert_cmpstr(d, ==, "-");
    g_assert_cmpstr(e, ==, "/api/v1/vms/\xc3\xa9"); /* UTF-8 stays readable */
}

TEST_MAIN()
