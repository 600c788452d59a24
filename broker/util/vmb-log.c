// SPDX-License-Identifier: LGPL-2.1-or-later
// stderr logger: one line per call, written with a single write so threads do not interleave.
#include "vmb-log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static VmbLogLevel min_level = VMB_LOG_INFO;

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
    min_level = level;
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

    if (level < min_level || level >= VMB_LOG_LAST)
        return;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    head = snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
                    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                    tm.tm_sec, now.tv_nsec / 1000000, vmb_log_level_names[level]);
    room = sizeof(buf) - (size_t) head - 1; /* and the newline */
    va_start(ap, fmt);
    n = vsnprintf(buf + head, room + 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t) n <= room) {
        len = (size_t) head + (size_t) n;
        buf[len++] = '\n';
    } else {
        g_autofree char *msg = NULL;
        va_start(ap, fmt);
        msg = g_strdup_vprintf(fmt, ap);
        va_end(ap);
        line = heap = g_strdup_printf("%.*s%s\n", head, buf, msg);
        len = strlen(line);
    }
    if (write(STDERR_FILENO, line, len) < 0) {
        /* Nowhere left to report it. */
    }
}
