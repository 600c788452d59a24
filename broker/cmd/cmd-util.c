// SPDX-License-Identifier: LGPL-2.1-or-later
// What every subcommand shares: the one-line error and loading the config.
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "build-config.h"
#include "cmd.h"
#include "vmb-log.h"

/**
 * cmd_fail:
 * @fmt: printf format of the message
 *
 * Prints "vmbroker: MESSAGE" on stderr, on one line.
 */
void
cmd_fail(const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    /* One line, always: libpq and libvirt messages may carry newlines and tabs. */
    g_strdelimit(g_strstrip(msg), "\n\r\t", ' ');
    fprintf(stderr, "vmbroker: %s\n", msg);
}

/**
 * cmd_load_config:
 * @path: (nullable): the config file; NULL for defaults and environment only
 * @needs: what the command uses; only a command that talks to PostgreSQL passes
 *   CONFIG_NEEDS_DATABASE, so the others run without database.url
 *
 * Loads and checks the config and applies log.level, or prints the one error line.
 *
 * Returns: (transfer full): the configuration, or NULL.
 */
Config *
cmd_load_config(const char *path, ConfigNeeds needs)
{
    g_autoptr(GError) error = NULL;
    Config *cfg = config_load(path, needs, &error);

    if (!cfg) {
        cmd_fail("%s", error->message);
        return NULL;
    }
    vmb_log_set_level(cfg->log_level);
    return cfg;
}

/**
 * cmd_version:
 * @config_path: unused: the version needs no config
 * @argc: argument count, argv[0] is "version"
 * @argv: arguments
 *
 * Returns: the exit status.
 */
int
cmd_version(const char *config_path, int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("Usage: vmbroker version\n\nPrints the version of vmbroker.\n");
        return CMD_EXIT_OK;
    }
    printf("vmbroker %s\n", VMB_VERSION);
    return CMD_EXIT_OK;
}
