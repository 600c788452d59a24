// SPDX-License-Identifier: LGPL-2.1-or-later
// Subcommands of the vmbroker command. Each parses its own options, loads the config if it
// needs one, prints one clear line on failure and returns the exit status.
#pragma once

#include "config.h"

#define CMD_EXIT_OK 0
#define CMD_EXIT_FAILURE 1
#define CMD_EXIT_USAGE 2

/* Loads @path (NULL: defaults and environment) for a command that uses @needs, printing the
 * error line on failure. */
Config *cmd_load_config(const char *path, ConfigNeeds needs);
/* Prints "vmbroker: MESSAGE" on stderr. */
void cmd_fail(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

int cmd_serve(const char *config_path, int argc, char **argv);
int cmd_migrate(const char *config_path, int argc, char **argv);
int cmd_user(const char *config_path, int argc, char **argv);
int cmd_token(const char *config_path, int argc, char **argv);
int cmd_template(const char *config_path, int argc, char **argv);
int cmd_version(const char *config_path, int argc, char **argv);
