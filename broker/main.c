// SPDX-License-Identifier: LGPL-2.1-or-later
// vmbroker's command line: global options, then a subcommand from the verb table.
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "build-config.h"
#include "cmd.h"
#include "vmb-log.h"

/* Used when --config is not given and the file exists. */
#define DEFAULT_CONFIG_PATH "/etc/vmbroker/vmbroker.conf"

static const char usage[] =
    "Usage: vmbroker [--config FILE] COMMAND [ARGS...]\n"
    "\n"
    "Commands:\n"
    "  serve                      run the daemon (HTTP API, web UI, console proxy)\n"
    "  migrate                    bring the database schema up to date\n"
    "  user add|list|disable|enable|passwd   manage users (--json)\n"
    "  token create|list|revoke   manage API tokens (--json)\n"
    "  vm list|show|start|stop|reboot|delete  manage VMs as an admin (--json)\n"
    "  audit                      read the audit log (--since, --user, --vm, --json)\n"
    "  image list                 list the base images of overlay templates (--json)\n"
    "  host add|list|disable|enable|remove  manage the hypervisor hosts (--json)\n"
    "  template list|render NAME  show the templates and the domain XML they make\n"
    "  version                    print the version\n"
    "\n"
    "template and version need no database (nor database.url); the others do.\n"
    "Every command takes --help. The config file is INI; every key can also be set as\n"
    "VMBROKER_<SECTION>_<KEY>. Default config: " DEFAULT_CONFIG_PATH " if it exists.\n";

/* The subcommands, each in broker/cmd/. */
static const struct {
    const char *name;
    int (*run)(const char *config_path, int argc, char **argv);
} verbs[] = {
    { "serve", cmd_serve },
    { "migrate", cmd_migrate },
    { "user", cmd_user },
    { "token", cmd_token },
    { "template", cmd_template },
    { "vm", cmd_vm },
    { "audit", cmd_audit },
    { "image", cmd_image },
    { "host", cmd_host },
    { "version", cmd_version },
};

int
main(int argc, char **argv)
{
    const char *config_path = NULL;
    int i = 1;

    vmb_log_detect_journal();
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
    for (size_t v = 0; v < G_N_ELEMENTS(verbs); v++)
        if (strcmp(argv[0], verbs[v].name) == 0)
            return verbs[v].run(config_path, argc, argv);
    cmd_fail("unknown command '%s' (see vmbroker --help)", argv[0]);
    return CMD_EXIT_USAGE;
}
