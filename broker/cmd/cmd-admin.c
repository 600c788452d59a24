// SPDX-License-Identifier: LGPL-2.1-or-later
// Administrative subcommands that work on the database directly: migrate, user, token.
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "db-migrate.h"
#include "db-pool.h"
#include "svc-users.h"
#include "vmb-error.h"
#include "vmb-secret.h"

/* The longest password --password-stdin accepts (svc-users refuses longer ones too). */
#define PASSWORD_LINE_MAX 1024
#define GENERATED_PASSWORD_LEN 24

static DbPool *
open_pool(const Config *cfg)
{
    DbPoolOptions opts = {
        .conninfo = cfg->database_url,
        .size = 1,
        .acquire_timeout_ms = 10000,
        .statement_timeout_ms = 0, /* migrations may take long */
        .max_retries = 3,
        .connect_timeout_s = 10,
    };
    return db_pool_new(&opts);
}

/* Parses @argv with @entries; on --help prints usage and sets *ret_exit to 0. */
static bool
parse_options(const char *name, const char *params, const char *summary,
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
 * cmd_migrate:
 * @config_path: (nullable): config file
 * @argc: argument count, argv[0] is "migrate"
 * @argv: arguments
 *
 * Applies missing migrations and prints the schema version.
 *
 * Returns: the exit status.
 */
int
cmd_migrate(const char *config_path, int argc, char **argv)
{
    GOptionEntry entries[] = { G_OPTION_ENTRY_NULL };
    g_autoptr(Config) cfg = NULL;
    g_autoptr(DbPool) pool = NULL;
    g_autoptr(GError) error = NULL;
    int ret = CMD_EXIT_OK, applied = 0;

    if (!parse_options("migrate", "", "Brings the database schema up to date.", entries,
                       &argc, &argv, &ret))
        return ret;
    if (argc != 1) {
        cmd_fail("migrate takes no arguments");
        return CMD_EXIT_USAGE;
    }
    cfg = cmd_load_config(config_path, CONFIG_NEEDS_DATABASE);
    if (!cfg)
        return CMD_EXIT_FAILURE;
    pool = open_pool(cfg);
    {
        g_autoptr(DbConn) conn = db_pool_acquire(pool, &error);
        if (!conn || !db_migrate_apply(conn, &applied, &error)) {
            cmd_fail("%s", error->message);
            return CMD_EXIT_FAILURE;
        }
    }
    printf("schema at version %d (applied %d)\n", db_migrate_known_version(), applied);
    return CMD_EXIT_OK;
}

static char *
read_password_line(GError **error)
{
    g_autofree char *line = g_malloc(PASSWORD_LINE_MAX + 3);
    size_t len;

    if (!fgets(line, PASSWORD_LINE_MAX + 3, stdin)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID, "no password on standard input");
        return NULL;
    }
    len = strcspn(line, "\r\n");
    if (len == strlen(line) && !feof(stdin)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID,
                    "the password is longer than %d bytes", PASSWORD_LINE_MAX);
        return NULL;
    }
    line[len] = '\0';
    if (len == 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID, "the password is empty");
        return NULL;
    }
    return g_steal_pointer(&line);
}

/**
 * cmd_user:
 * @config_path: (nullable): config file
 * @argc: argument count, argv[0] is "user"
 * @argv: arguments: add NAME [--role R] [--password-stdin]
 *
 * Returns: the exit status.
 */
int
cmd_user(const char *config_path, int argc, char **argv)
{
    g_autofree char *role = NULL;
    gboolean password_stdin = FALSE;
    GOptionEntry entries[] = {
        { "role", 0, 0, G_OPTION_ARG_STRING, &role, "admin, user (default) or service",
          "ROLE" },
        { "password-stdin", 0, 0, G_OPTION_ARG_NONE, &password_stdin,
          "read the password from the first line of standard input", NULL },
        G_OPTION_ENTRY_NULL
    };
    g_autoptr(Config) cfg = NULL;
    g_autoptr(DbPool) pool = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *password = NULL;
    int ret = CMD_EXIT_OK;

    if (!parse_options("user", "add NAME",
                       "Creates a user. Without --password-stdin a password is generated "
                       "and printed.", entries, &argc, &argv, &ret))
        return ret;
    if (argc != 3 || strcmp(argv[1], "add") != 0) {
        cmd_fail("usage: vmbroker user add NAME [--role admin|user|service] [--password-stdin]");
        return CMD_EXIT_USAGE;
    }
    if (!role)
        role = g_strdup("user");
    cfg = cmd_load_config(config_path, CONFIG_NEEDS_DATABASE);
    if (!cfg)
        return CMD_EXIT_FAILURE;
    password = password_stdin ? read_password_line(&error)
                              : vmb_secret_new_password(GENERATED_PASSWORD_LEN, &error);
    if (!password) {
        cmd_fail("user add: %s", error->message);
        return CMD_EXIT_FAILURE;
    }
    pool = open_pool(cfg);
    if (!svc_users_add(pool, NULL, argv[2], role, password, NULL, &error)) {
        cmd_fail("user add: %s", error->message);
        return CMD_EXIT_FAILURE;
    }
    printf("created user %s (role %s)\n", argv[2], role);
    if (!password_stdin)
        printf("password: %s\n", password);
    explicit_bzero(password, strlen(password));
    return CMD_EXIT_OK;
}

/**
 * cmd_token:
 * @config_path: (nullable): config file
 * @argc: argument count, argv[0] is "token"
 * @argv: arguments: create USER [--name LABEL] [--expires-in SECONDS]
 *
 * Prints the new token alone on stdout.
 *
 * Returns: the exit status.
 */
int
cmd_token(const char *config_path, int argc, char **argv)
{
    g_autofree char *name = NULL;
    gint64 expires_in = 0;
    GOptionEntry entries[] = {
        { "name", 0, 0, G_OPTION_ARG_STRING, &name, "a label for the token", "LABEL" },
        { "expires-in", 0, 0, G_OPTION_ARG_INT64, &expires_in,
          "lifetime in seconds (default: never expires)", "SECONDS" },
        G_OPTION_ENTRY_NULL
    };
    g_autoptr(Config) cfg = NULL;
    g_autoptr(DbPool) pool = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *token = NULL;
    int ret = CMD_EXIT_OK;

    if (!parse_options("token", "create USER", "Creates an API token and prints it once.",
                       entries, &argc, &argv, &ret))
        return ret;
    if (argc != 3 || strcmp(argv[1], "create") != 0) {
        cmd_fail("usage: vmbroker token create USER [--name LABEL] [--expires-in SECONDS]");
        return CMD_EXIT_USAGE;
    }
    cfg = cmd_load_config(config_path, CONFIG_NEEDS_DATABASE);
    if (!cfg)
        return CMD_EXIT_FAILURE;
    pool = open_pool(cfg);
    token = svc_users_create_token(pool, NULL, argv[2], name ? name : "cli", expires_in, NULL,
                                   &error);
    if (!token) {
        cmd_fail("token create: %s", error->message);
        return CMD_EXIT_FAILURE;
    }
    printf("%s\n", token);
    return CMD_EXIT_OK;
}
