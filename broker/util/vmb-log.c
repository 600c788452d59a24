// SPDX-License-Identifier: LGPL-2.1-or-later
// stderr logger: one line per call, written with a single write so threads do not interleave.
// Under systemd with stderr connected to the journal, a line is "<N>message": the journal
// reads the priority from the prefix and stamps the time itself.
#include "vmb-log.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Written by a reload (SIGHUP) while other threads log: read and written atomically. */
static gint min_level = VMB_LOG_INFO;
static bool journal;

/* syslog priorities of the levels (sd-daemon(3)'s <N> prefixes). */
static const char *const journal_prefix[VMB_LOG_LAST] = {
    [VMB_LOG_DEBUG] = "<7>",
    [VMB_LOG_INFO] = "<6>",
    [VMB_LOG_WARNING] = "<4>",
    [VMB_LOG_ERROR] = "<3>",
};

/**
 * vmb_log_detect_journal:
 *
 * Switches to the journal's line format when $JOURNAL_STREAM names the device and inode of
 * stderr (systemd sets it; a stderr redirected since then keeps the plain format).
 *
 * Returns: whether lines now go to the journal.
 */
bool
vmb_log_detect_journal(void)
{
    const char *js = g_getenv("JOURNAL_STREAM");
    struct stat st;
    unsigned long long dev, ino;
    char tail;

    journal = js && sscanf(js, "%llu:%llu%c", &dev, &ino, &tail) == 2 &&
              fstat(STDERR_FILENO, &st) == 0 && (unsigned long long) st.st_dev == dev &&
              (unsigned long long) st.st_ino == ino;
    return journal;
}

/**
 * vmb_log_get_level:
 *
 * Returns: the lowest level that is written.
 */
VmbLogLevel
vmb_log_get_level(void)
{
    return (VmbLogLevel) g_atomic_int_get(&min_level);
}

/* The levels as log.level spells them (and as each line shows them, upper-cased). */
const char *const vmb_log_level_names[VMB_LOG_LAST + 1] = {
    [VMB_LOG_DEBUG] = "debug",
    [VMB_LOG_INFO] = "info",
    [VMB_LOG_WARNING] = "warning",
    [VMB_LOG_ERROR] = "error",
    [VMB_LOG_LAST] = NULL,
};

/**
 * vmb_log_set_level:
 * @level: the lowest level that is written
 */
void
vmb_log_set_level(VmbLogLevel level)
{
    g_atomic_int_set(&min_level, (gint) level);
}

/* Whether @c must not reach a log line as it is: a control character (a newline would start a
 * forged line, an escape sequence would rewrite a terminal) or DEL. */
static inline bool
needs_escape(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

/* Appends @s to @out with every byte that needs_escape() (and, with @field, also space,
 * backslash and double quote, so a value cannot pose as the next field) as \xNN. */
static void
escape_into(GString *out, const char *s, bool field)
{
    for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
        if (needs_escape(*p) || (field && (*p == ' ' || *p == '\\' || *p == '"')))
            g_string_append_printf(out, "\\x%02x", *p);
        else
            g_string_append_c(out, (char) *p);
    }
}

/**
 * vmb_log_field:
 * @value: (nullable): a value from a client (a path, a user name, a header)
 *
 * For a value that sits among the space-separated fields of a log line: control characters,
 * space, backslash and double quote become \xNN; NULL and "" become "-".
 *
 * Returns: (transfer full): the escaped value.
 */
char *
vmb_log_field(const char *value)
{
    GString *out;

    if (!value || !*value)
        return g_strdup("-");
    out = g_string_sized_new(strlen(value));
    escape_into(out, value, true);
    return g_string_free(out, FALSE);
}

/* Whether a formatted message holds a byte that needs_escape(). */
static bool
message_needs_escape(const char *msg, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (needs_escape((unsigned char) msg[i]))
            return true;
    return false;
}

/**
 * vmb_log:
 * @level: severity
 * @fmt: printf format of the message, without a trailing newline
 */
void
vmb_log(VmbLogLevel level, const char *fmt, ...)
{
    /* Every request logs a line: a line that fits is built on the stack. */
    char buf[512];
    g_autofree char *heap = NULL;
    const char *line = buf;
    size_t len, room;
    struct timespec now;
    struct tm tm;
    int head, n;
    va_list ap;

    if ((gint) level < g_atomic_int_get(&min_level) || level >= VMB_LOG_LAST)
        return;
    if (journal) {
        head = snprintf(buf, sizeof(buf), "%s", journal_prefix[level]);
    } else {
        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        head = snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
                        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                        tm.tm_sec, now.tv_nsec / 1000000, vmb_log_level_names[level]);
    }
    room = sizeof(buf) - (size_t) head - 1; /* and the newline */
    va_start(ap, fmt);
    n = vsnprintf(buf + head, room + 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t) n <= room && !message_needs_escape(buf + head, (size_t) n)) {
        len = (size_t) head + (size_t) n;
        buf[len++] = '\n';
    } else {
        /* Long, or holding a byte that could forge a line: every line is one line, whatever
         * a message carries from a client. */
        g_autofree char *msg = NULL;
        GString *out = g_string_new_len(buf, head);
        va_start(ap, fmt);
        msg = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        escape_into(out, msg, false);
        g_string_append_c(out, '\n');
        len = out->len;
        line = heap = g_string_free(out, FALSE);
    }
    if (write(STDERR_FILENO, line, len) < 0) {
        /* Nowhere left to report it. */
    }
}
