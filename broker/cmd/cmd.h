// SPDX-License-Identifier: LGPL-2.1-or-later
// Subcommands of the vmbroker command. Each parses its own options, loads the config if it
// needs one, prints one clear line on failure and returns the exit status.
#pragma once

#include "config.h"
#include "db-hosts.h"
#include "db-pool.h"
#include "db-users.h"
#include "svc-users.h"
#include "vmb-json.h"

/* Exit statuses, documented in README's "Command line". */
#define CMD_EXIT_OK 0
#define CMD_EXIT_FAILURE 1     /* anything else: bad input, an internal error */
#define CMD_EXIT_USAGE 2       /* wrong options or arguments */
#define CMD_EXIT_NOT_FOUND 3   /* no such VM, user or token */
#define CMD_EXIT_CONFLICT 4    /* the object's state forbids it (a VM busy or already so) */
#define CMD_EXIT_UNAVAILABLE 5 /* PostgreSQL or libvirt down, or no answer within the bound */

/* Loads @path (NULL: defaults and environment) for a command that uses @needs, printing the
 * error line on failure. */
Config *cmd_load_config(const char *path, ConfigNeeds needs);
/* Prints "vmbroker: MESSAGE" on stderr. */
void cmd_fail(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
/* Prints "vmbroker: VERB: MESSAGE" for @error and returns the exit status of its kind. */
int cmd_fail_error(const char *verb, const GError *error);
/* Parses @argv with @entries; on failure prints the usage error, sets *ret_exit and returns
 * false (--help prints usage and exits 0 inside GLib). */
bool cmd_parse_options(const char *name, const char *params, const char *summary,
                       GOptionEntry *entries, int *argc, char ***argv, int *ret_exit);
/* A small pool on database.url; what this process writes to the audit log from now on is
 * marked as the command line's (origin "cli:<OS user>"). */
DbPool *cmd_open_pool(const Config *cfg);
/* The configured cost of password hashes (auth.argon2_*). */
SvcArgon2Params cmd_argon2(const Config *cfg);
/* The users service over @pool, hashing passwords at that cost. */
SvcUsers *cmd_open_users(const Config *cfg, DbPool *pool);
/* The caller of the user, token and audit verbs: an admin with no users row (id NULL), so
 * the services apply the admin's rules and audit it with no actor; its rows carry the origin
 * cmd_open_pool set. (The vm verbs act as svc_users_cli_account: operations need a row.) */
const DbUser *cmd_cli_caller(void);
/* The host the config describes (DB_HOST_CONFIGURED); its strings belong to @cfg. */
DbHostSpec cmd_configured_host(const Config *cfg);
/* Prints @obj as one line of JSON on stdout. */
void cmd_print_json(json_object *obj);

int cmd_serve(const char *config_path, int argc, char **argv);
int cmd_migrate(const char *config_path, int argc, char **argv);
int cmd_user(const char *config_path, int argc, char **argv);
int cmd_token(const char *config_path, int argc, char **argv);
int cmd_template(const char *config_path, int argc, char **argv);
int cmd_vm(const char *config_path, int argc, char **argv);
int cmd_audit(const char *config_path, int argc, char **argv);
int cmd_image(const char *config_path, int argc, char **argv);
int cmd_host(const char *config_path, int argc, char **argv);
int cmd_version(const char *config_path, int argc, char **argv);
