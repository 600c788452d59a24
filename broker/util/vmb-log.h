// SPDX-License-Identifier: LGPL-2.1-or-later
// One-line logging to stderr with a UTC timestamp. Only the top of the program
// (handlers, subcommands) logs; lower layers return errors.
#pragma once

#include <stdbool.h>
#include <glib.h>

typedef enum {
    VMB_LOG_DEBUG,
    VMB_LOG_INFO,
    VMB_LOG_WARNING,
    VMB_LOG_ERROR,

    VMB_LOG_LAST
} VmbLogLevel;

/* log.level's spellings, indexed by level, NULL-terminated. */
extern const char *const vmb_log_level_names[VMB_LOG_LAST + 1];

void vmb_log_set_level(VmbLogLevel level);
VmbLogLevel vmb_log_get_level(void);
/* Journal format ("<N>message", no timestamp) when $JOURNAL_STREAM is stderr. */
bool vmb_log_detect_journal(void);
/* Writes one line: control characters in the message are escaped as \xNN. */
void vmb_log(VmbLogLevel level, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
/* A client's value made safe as one space-separated field of a line (caller frees). */
char *vmb_log_field(const char *value);

#define vmb_debug(...) vmb_log(VMB_LOG_DEBUG, __VA_ARGS__)
#define vmb_info(...) vmb_log(VMB_LOG_INFO, __VA_ARGS__)
#define vmb_warning(...) vmb_log(VMB_LOG_WARNING, __VA_ARGS__)
#define vmb_error(...) vmb_log(VMB_LOG_ERROR, __VA_ARGS__)
