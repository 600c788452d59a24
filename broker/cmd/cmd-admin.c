// SPDX-License-Identifier: LGPL-2.1-or-later
// Administrative subcommands on the database: migrate, and the user and token verbs, which act
// through the same services as the API as the command line's admin caller (cmd_cli_caller).
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "db-migrate.h"
#include "db-pool.h"
#include "api-render.h"
#include "svc-users.h"
#include "vmb-error.h"
#include "vmb-secret.h"

/* The longest password --password-stdin accepts (svc-users refuses longer ones too). */
#define PASSWORD_LINE_MAX 1024
#define GENERATED_PASSWORD_LEN 24

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

    if (!cmd_parse_options("migrate", "", "Brings the database schema up to date.", entries,
                       &argc, &argv, &ret))
        return ret;
    if (argc != 1) {
        cmd_fail("migrate takes no arguments");
        return CMD_EXIT_USAGE;
    }
    cfg = cmd_load_config(config_path, CONFIG_NEEDS_DATABASE);
    if (!cfg)
        return CMD_EXIT_FAILURE;
    pool = cmd_open_pool(cfg);
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

/* What a user or token subcommand gets from its dispatcher. */
typedef struct {
    SvcUsers *users;
    const char *const *args; /* the positional arguments after the sub-verb */
    int nargs;
    bool json;               /* --json */
    bool password_stdin;     /* --password-stdin */
    const char *role;        /* --role */
    const char *name;        /* --name */
    gint64 expires_in;       /* --expires-in */
} AdminArgs;

static int
user_add(const AdminArgs *a)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *password = NULL;
    g_autofree char *id = NULL;
    const char *role = a->role ? a->role : "user";

    password = a->password_stdin ? read_password_line(&error)
                                 : vmb_secret_new_password(GENERATED_PASSWORD_LEN, &error);
    if (!password || !svc_users_add(a->users, NULL, a->args[0], role, password, &id, &error)) {
        /* user add and token create keep the status they always had: 1 for any failure. */
        cmd_fail_error("user add", error);
        return CMD_EXIT_FAILURE;
    }
    if (a->json) {
        g_autoptr(json_object) out = json_object_new_object();
        json_object_object_add(out, "id", json_object_new_string(id));
        json_object_object_add(out, "username", json_object_new_string(a->args[0]));
        json_object_object_add(out, "role", json_object_new_string(role));
        if (!a->password_stdin)
            json_object_object_add(out, "password", json_object_new_string(password));
        cmd_print_json(out);
    } else {
        printf("created user %s (role %s)\n", a->args[0], role);
        if (!a->password_stdin)
            printf("password: %s\n", password);
    }
    explicit_bzero(password, strlen(password));
    return CMD_EXIT_OK;
}

static int
user_list(const AdminArgs *a)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) users = svc_users_list(a->users, cmd_cli_caller(), &error);
    g_autoptr(json_object) out = json_object_new_array();

    if (!users)
        return cmd_fail_error("user list", error);
    if (!a->json)
        printf("%-32s %-8s %s\n", "NAME", "ROLE", "STATUS");
    for (guint i = 0; i < users->len; i++) {
        const DbUser *u = users->pdata[i];
        if (a->json)
            json_object_array_add(out, api_render_user(u, true));
        else
            printf("%-32s %-8s %s\n", u->username, db_role_to_string(u->role),
                   u->disabled ? "disabled" : "enabled");
    }
    if (a->json)
        cmd_print_json(out);
    return CMD_EXIT_OK;
}

/* disable, enable and passwd: the user by name, then the change through svc-users. */
static int
user_change(const AdminArgs *a, const char *verb)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DbUser) user = svc_users_get(a->users, cmd_cli_caller(), a->args[0], &error);
    g_autofree char *password = NULL;
    g_autofree char *what = g_strdup_printf("user %s", verb);
    bool ok;

    if (!user)
        return cmd_fail_error(what, error);
    if (strcmp(verb, "passwd") == 0) {
        password = a->password_stdin ? read_password_line(&error)
                                     : vmb_secret_new_password(GENERATED_PASSWORD_LEN, &error);
        ok = password && svc_users_set_password(a->users, cmd_cli_caller(), user->id, password,
                                                NULL, &error);
    } else {
        user->disabled = strcmp(verb, "disable") == 0;
        ok = svc_users_set_disabled(a->users, cmd_cli_caller(), user->id, user->disabled, NULL,
                                    &error);
    }
    if (!ok)
        return cmd_fail_error(what, error);
    if (a->json) {
        g_autoptr(json_object) out = api_render_user(user, true);
        if (password && !a->password_stdin)
            json_object_object_add(out, "password", json_object_new_string(password));
        cmd_print_json(out);
    } else if (password) {
        printf("new password for %s%s%s\n", user->username, a->password_stdin ? "" : ": ",
               a->password_stdin ? "" : password);
    } else {
        printf("user %s %s\n", user->username, user->disabled ? "disabled" : "enabled");
    }
    if (password)
        explicit_bzero(password, strlen(password));
    return CMD_EXIT_OK;
}

/* The sub-verbs of `user` and `token`: name, positional arguments, what runs them. */
typedef struct {
    const char *name;
    int min_args, max_args;
    int (*run)(const AdminArgs *a);
} SubVerb;

static int
user_disable(const AdminArgs *a)
{
    return user_change(a, "disable");
}

static int
user_enable(const AdminArgs *a)
{
    return user_change(a, "enable");
}

static int
user_passwd(const AdminArgs *a)
{
    return user_change(a, "passwd");
}

/* Finds @argv[1] in @subs and checks the count of what follows; NULL after a usage error. */
static const SubVerb *
pick_sub(const SubVerb *subs, size_t n, int argc, char **argv, const char *usage)
{
    for (size_t i = 0; argc >= 2 && i < n; i++)
        if (strcmp(argv[1], subs[i].name) == 0 && argc - 2 >= subs[i].min_args &&
            argc - 2 <= subs[i].max_args)
            return &subs[i];
    cmd_fail("usage: %s", usage);
    return NULL;
}

/* Runs @sub on the database of @config_path with @args, its positional arguments taken from
 * @argv after the sub-verb. */
static int
run_sub(const char *config_path, const SubVerb *sub, int argc, char **argv, AdminArgs *args)
{
    g_autoptr(Config) cfg = cmd_load_config(config_path, CONFIG_NEEDS_DATABASE);
    g_autoptr(DbPool) pool = NULL;
    g_autoptr(SvcUsers) users = NULL;

    if (!cfg)
        return CMD_EXIT_FAILURE;
    pool = cmd_open_pool(cfg);
    users = cmd_open_users(cfg, pool);
    args->users = users;
    args->args = (const char *const *) argv + 2;
    args->nargs = argc - 2;
    return sub->run(args);
}

/**
 * cmd_user:
 * @config_path: (nullable): config file
 * @argc: argument count, argv[0] is "user"
 * @argv: arguments: add NAME [--role R] [--password-stdin] | list | disable NAME |
 *   enable NAME | passwd NAME [--password-stdin]; each with --json
 *
 * Returns: the exit status.
 */
int
cmd_user(const char *config_path, int argc, char **argv)
{
    static const SubVerb subs[] = {
        { "add", 1, 1, user_add },
        { "list", 0, 0, user_list },
        { "disable", 1, 1, user_disable },
        { "enable", 1, 1, user_enable },
        { "passwd", 1, 1, user_passwd },
    };
    g_autofree char *role = NULL;
    gboolean password_stdin = FALSE, json = FALSE;
    GOptionEntry entries[] = {
        { "role", 0, 0, G_OPTION_ARG_STRING, &role, "add: admin, user (default) or service",
          "ROLE" },
        { "password-stdin", 0, 0, G_OPTION_ARG_NONE, &password_stdin,
          "add, passwd: read the password from the first line of standard input" },
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print JSON (the API's shapes)" },
        G_OPTION_ENTRY_NULL
    };
    const SubVerb *sub;
    int ret = CMD_EXIT_OK;

    if (!cmd_parse_options("user", "add|list|disable|enable|passwd [NAME]",
                           "Manages users. add and passwd without --password-stdin generate a "
                           "password and print it. disable ends the user's sessions and "
                           "stops their tokens; passwd ends their sessions.",
                           entries, &argc, &argv, &ret))
        return ret;
    sub = pick_sub(subs, G_N_ELEMENTS(subs), argc, argv,
                   "vmbroker user add NAME [--role admin|user|service] [--password-stdin] | "
                   "list | disable NAME | enable NAME | passwd NAME [--password-stdin] [--json]");
    if (!sub)
        return CMD_EXIT_USAGE;
    return run_sub(config_path, sub, argc, argv, &(AdminArgs) {
        .json = json, .password_stdin = password_stdin, .role = role });
}

static int
token_create(const AdminArgs *a)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *id = NULL;
    g_autofree char *token = svc_users_create_token(a->users, NULL, a->args[0],
                                                    a->name ? a->name : "cli", a->expires_in,
                                                    NULL, &id, &error);

    if (!token) {
        cmd_fail_error("token create", error);
        return CMD_EXIT_FAILURE;
    }
    if (a->json) {
        g_autoptr(json_object) out = json_object_new_object();
        json_object_object_add(out, "id", json_object_new_string(id));
        json_object_object_add(out, "token", json_object_new_string(token));
        json_object_object_add(out, "user", json_object_new_string(a->args[0]));
        cmd_print_json(out);
    } else {
        printf("%s\n", token);
    }
    return CMD_EXIT_OK;
}

static int
token_list(const AdminArgs *a)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) tokens = svc_users_all_tokens(a->users, cmd_cli_caller(),
                                                       a->nargs ? a->args[0] : NULL, &error);
    g_autoptr(json_object) out = json_object_new_array();

    if (!tokens)
        return cmd_fail_error("token list", error);
    if (!a->json)
        printf("%-36s %-20s %-20s %-20s %s\n", "ID", "USER", "NAME", "CREATED", "STATUS");
    for (guint i = 0; i < tokens->len; i++) {
        const DbToken *t = tokens->pdata[i];
        if (a->json)
            json_object_array_add(out, api_render_token(t));
        else
            printf("%-36s %-20s %-20s %-20s %s\n", t->id, t->username ? t->username : "-",
                   t->name, t->created_at, t->revoked ? "revoked" : "active");
    }
    if (a->json)
        cmd_print_json(out);
    return CMD_EXIT_OK;
}

static int
token_revoke(const AdminArgs *a)
{
    g_autoptr(GError) error = NULL;

    if (!svc_users_revoke_token(a->users, cmd_cli_caller(), a->args[0], true, NULL, &error))
        return cmd_fail_error("token revoke", error);
    if (a->json) {
        g_autoptr(json_object) out = json_object_new_object();
        json_object_object_add(out, "id", json_object_new_string(a->args[0]));
        json_object_object_add(out, "revoked", json_object_new_boolean(true));
        cmd_print_json(out);
    } else {
        printf("revoked token %s\n", a->args[0]);
    }
    return CMD_EXIT_OK;
}

/**
 * cmd_token:
 * @config_path: (nullable): config file
 * @argc: argument count, argv[0] is "token"
 * @argv: arguments: create USER [--name LABEL] [--expires-in SECONDS] | list [USER] |
 *   revoke ID; each with --json
 *
 * create prints the new token alone on stdout (without --json).
 *
 * Returns: the exit status.
 */
int
cmd_token(const char *config_path, int argc, char **argv)
{
    static const SubVerb subs[] = {
        { "create", 1, 1, token_create },
        { "list", 0, 1, token_list },
        { "revoke", 1, 1, token_revoke },
    };
    g_autofree char *name = NULL;
    gint64 expires_in = 0;
    gboolean json = FALSE;
    GOptionEntry entries[] = {
        { "name", 0, 0, G_OPTION_ARG_STRING, &name, "create: a label for the token", "LABEL" },
        { "expires-in", 0, 0, G_OPTION_ARG_INT64, &expires_in,
          "create: lifetime in seconds (default: never expires)", "SECONDS" },
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print JSON (the API's shapes)" },
        G_OPTION_ENTRY_NULL
    };
    const SubVerb *sub;
    int ret = CMD_EXIT_OK;

    if (!cmd_parse_options("token", "create USER | list [USER] | revoke ID",
                           "Manages API tokens. create prints the token once; list shows "
                           "every user's tokens, or USER's; revoke stops one at once.",
                           entries, &argc, &argv, &ret))
        return ret;
    sub = pick_sub(subs, G_N_ELEMENTS(subs), argc, argv,
                   "vmbroker token create USER [--name LABEL] [--expires-in SECONDS] | "
                   "list [USER] | revoke ID [--json]");
    if (!sub)
        return CMD_EXIT_USAGE;
    return run_sub(config_path, sub, argc, argv, &(AdminArgs) {
        .json = json, .name = name, .expires_in = expires_in });
}
