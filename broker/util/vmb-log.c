// SPDX-License-Identifier: LGPL-2.1-or-later
// stderr logger: one line per call, written with a single write so threads do not interleave.
#include "vmb-log.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static VmbLogLevel min_level = VMB_LOG_INFO;

static const char *const level_names[] = {
    [VMB_LOG_DEBUG] = "debug",
    [VMB_LOG_INFO] = "info",
    [VMB_LOG_WARNING] = "warning",
    [VMB_LOG_ERROR] = "error",
};
G_STATIC_ASSERT(G_N_ELEMENTS(level_names) == VMB_LOG_LAST);

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
    g_autoptr(GDateTime) now = NULL;
    g_autofree char *stamp = NULL;
    g_autofree char *msg = NULL;
    g_autofree char *line = NULL;
    va_list ap;

    if (level < min_level || level >= VMB_LOG_LAST)
        return;
    now = g_date_time_new_now_utc();
    stamp = g_date_time_format(now, "%FT%T.%fZ");
    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    line = g_strdup_printf("%.23sZ %s %s\n", stamp, level_names[level], msg);
    if (write(STDERR_FILENO, line, strlen(line)) < 0) {
        /* Nowhere left to report it. */
    }
}
