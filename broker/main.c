// SPDX-License-Identifier: LGPL-2.1-or-later
// vmbroker's command line: global options, then a subcommand.
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "build-config.h"
#include "cmd.h"
#include "cmd-template.h"
#include "vmb-log.h"

/* Used when --config is not given and the file exists. */
#define DEFAULT_CONFIG_PATH "/etc/vmbroker/vmbroker.conf"

static const char usage[] =
    "Usage: vmbroker [--config FILE] COMMAND [ARGS...]\n"
    "\n"
    "Commands:\n"
    "  serve                      run the daemon (HTTP API, web UI, console proxy)\n"
    "  migrate                    bring the database schema up to date\n"
    "  user add NAME              create a user (--role, --password-stdin)\n"
    "  token create USER          create an API token and print it\n"
    "  template list|render NAME  show the templates and the domain XML they make\n"
    "  version                    print the version\n"
    "\n"
    "template and version need no database (nor database.url); the others do.\n"
    "Every command takes --help. The config file is INI; every key can also be set as\n"
    "VMBROKER_<SECTION>_<KEY>. Default config: " DEFAULT_CONFIG_PATH " if it exists.\n";

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
    if (strcmp(cfg->log_level, "debug") == 0)
        vmb_log_set_level(VMB_LOG_DEBUG);
    else if (strcmp(cfg->log_level, "warning") == 0)
        vmb_log_set_level(VMB_LOG_WARNING);
    else if (strcmp(cfg->log_level, "error") == 0)
        vmb_log_set_level(VMB_LOG_ERROR);
    return cfg;
}

static int
cmd_template(const char *config_path, int argc, char **argv)
{
    g_autoptr(Config) cfg = NULL;

    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return cmd_template_main(NULL, NULL, NULL, argc, argv); /* usage needs no config */
    /* Templates are files: an admin renders them where there is no PostgreSQL. */
    cfg = cmd_load_config(config_path, CONFIG_NEEDS_NOTHING);
    if (!cfg)
        return CMD_EXIT_FAILURE;
    return cmd_template_main(cfg->templates_dir, cfg->libvirt_name_prefix,
                             cfg->libvirt_domain_type, argc, argv);
}

int
main(int argc, char **argv)
{
    const char *config_path = NULL;
    int i = 1;

    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return CMD_EXIT_OK;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("vmbroker %s\n", VMB_VERSION);
            return CMD_EXIT_OK;
        } else if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) &&
                   i + 1 < argc) {
            config_path = argv[++i];
        } else if (g_str_has_prefix(argv[i], "--config=")) {
            config_path = argv[i] + strlen("--config=");
        } else {
            cmd_fail("unknown option '%s' (see vmbroker --help)", argv[i]);
            return CMD_EXIT_USAGE;
        }
    }
    if (i >= argc) {
        fputs(usage, stderr);
        return CMD_EXIT_USAGE;
    }
    if (!config_path && access(DEFAULT_CONFIG_PATH, F_OK) == 0)
        config_path = DEFAULT_CONFIG_PATH;

    argc -= i;
    argv += i;
    if (strcmp(argv[0], "version") == 0) {
        if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            printf("Usage: vmbroker version\n\nPrints the version of vmbroker.\n");
            return CMD_EXIT_OK;
        }
        printf("vmbroker %s\n", VMB_VERSION);
        return CMD_EXIT_OK;
    }
    if (strcmp(argv[0], "serve") == 0)
        return cmd_serve(config_path, argc, argv);
    if (strcmp(argv[0], "migrate") == 0)
        return cmd_migrate(config_path, argc, argv);
    if (strcmp(argv[0], "user") == 0)
        return cmd_user(config_path, argc, argv);
    if (strcmp(argv[0], "token") == 0)
        return cmd_token(config_path, argc, argv);
    if (strcmp(argv[0], "template") == 0)
        return cmd_template(config_path, argc, argv);
    cmd_fail("unknown command '%s' (see vmbroker --help)", argv[0]);
    return CMD_EXIT_USAGE;
}
