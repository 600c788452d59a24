// SPDX-License-Identifier: LGPL-2.1-or-later
// What every subcommand shares: the one-line error and loading the config.
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "build-config.h"
#include "cmd.h"
#include "db-audit.h"
#include "vmb-error.h"
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
 * cmd_fail_error:
 * @verb: what failed, e.g. "vm stop"
 * @error: why
 *
 * Returns: the exit status for @error's kind (README: Command line).
 */
int
cmd_fail_error(const char *verb, const GError *error)
{
    cmd_fail("%s: %s", verb, error->message);
    switch (vmb_error_kind(error)) {
    case VMB_ERROR_NOT_FOUND:
        return CMD_EXIT_NOT_FOUND;
    case VMB_ERROR_CONFLICT:
    case VMB_ERROR_EXHAUSTED:
        return CMD_EXIT_CONFLICT;
    case VMB_ERROR_UNAVAILABLE:
    case VMB_ERROR_TIMEOUT:
        return CMD_EXIT_UNAVAILABLE;
    default:
        return CMD_EXIT_FAILURE;
    }
}

/**
 * cmd_parse_options:
 * @name: the verb, for messages ("user")
 * @params: the positional arguments, for --help ("add NAME")
 * @summary: one paragraph for --help
 * @entries: the options
 * @argc: (inout): argument count
 * @argv: (inout): arguments; the options are removed
 * @ret_exit: (out): the exit status when this returns false
 *
 * Returns: true when the options parsed.
 */
bool
cmd_parse_options(const char *name, const char *params, const char *summary,
                  GOptionEntry *entries, int *argc, char ***argv, int *ret_exit)
{
    g_autoptr(GOptionContext) ctx = g_option_context_new(params);
    g_autoptr(GError) error = NULL;
    g_autofree char *prog = g_strdup_printf("vmbroker %s", name);

    g_set_prgname(prog);
    g_option_context_set_summary(ctx, summary);
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, argc, argv, &error)) {
        cmd_fail("%s: %s (see vmbroker %s --help)", name, error->message, name);
        *ret_exit = CMD_EXIT_USAGE;
        return false;
    }
    return true;
}

/**
 * cmd_open_pool:
 * @cfg: the loaded config (database.url set)
 *
 * Returns: (transfer full): a pool of one connection, no statement timeout (migrations).
 */
DbPool *
cmd_open_pool(const Config *cfg)
{
    DbPoolOptions opts = {
        .conninfo = cfg->database_url,
        .size = 1,
        .acquire_timeout_ms = 10000,
        .statement_timeout_ms = 0, /* migrations may take long */
        .max_retries = 3,
        .connect_timeout_s = 10,
    };
    /* Bounded (the column takes 100 characters; a login name has no fixed limit) and valid
     * UTF-8 even when the cut falls inside a character. */
    g_autofree char *cut = g_strdup_printf("cli:%.64s", g_get_user_name());
    g_autofree char *origin = g_utf8_make_valid(cut, -1);

    db_audit_set_origin(origin);
    return db_pool_new(&opts);
}

SvcArgon2Params
cmd_argon2(const Config *cfg)
{
    return (SvcArgon2Params) { cfg->auth_argon2_memory_kib, cfg->auth_argon2_iterations,
                               cfg->auth_argon2_lanes };
}

SvcUsers *
cmd_open_users(const Config *cfg, DbPool *pool)
{
    return svc_users_new(&(SvcUsersOptions) { .db = pool, .argon2 = cmd_argon2(cfg) });
}

DbHostSpec
cmd_configured_host(const Config *cfg)
{
    return (DbHostSpec) {
        .name = DB_HOST_CONFIGURED,
        .uri = cfg->libvirt_uri,
        .console_address = cfg->console_listen,
        .ranges = { cfg->console_vnc_ports.first, cfg->console_vnc_ports.last,
                    cfg->console_ws_ports.first, cfg->console_ws_ports.last },
        .memory_mib = cfg->limits_host_memory_mib,
    };
}

/**
 * cmd_cli_caller:
 *
 * Returns: (transfer none): the command line's admin caller.
 */
const DbUser *
cmd_cli_caller(void)
{
    static DbUser cli = { .id = NULL, .username = (char *) "cli", .role = DB_ROLE_ADMIN };

    return &cli;
}

/**
 * cmd_print_json:
 * @obj: what to print
 */
void
cmd_print_json(json_object *obj)
{
    puts(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
                                             JSON_C_TO_STRING_NOSLASHESCAPE));
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
