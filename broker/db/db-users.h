// SPDX-License-Identifier: LGPL-2.1-or-later
// Queries on the users table.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"

typedef struct {
    char *id;            /* uuid */
    char *username;      /* unique login name */
    char *role;          /* "admin", "user" or "service" */
    char *password_hash; /* argon2id PHC string, NULL when password login is off */
    bool disabled;       /* disabled users cannot log in or use tokens */
} DbUser;

/* The users columns db_users_from_row reads, for queries that join users as "u". */
#define DB_USERS_COLUMNS "u.id, u.username, u.role, u.disabled, u.password_hash"

void db_user_free(DbUser *user);
DbUser *db_user_copy(const DbUser *user);
DbUser *db_users_from_row(const PGresult *res, int row, int col);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DbUser, db_user_free)

/* VMB_ERROR_CONFLICT when the name is taken. */
bool db_users_insert(DbConn *conn, const char *username, const char *role,
                     const char *password_hash, char **ret_id, GError **error);
/* Every user, by name: a GPtrArray of DbUser (no password hashes). */
GPtrArray *db_users_list(DbConn *conn, GError **error);
/* Disables or enables user @id and, when disabling, ends their sessions.
 * VMB_ERROR_NOT_FOUND when there is no such user. */
bool db_users_set_disabled(DbConn *conn, const char *id, bool disabled, GError **error);
/* The user @username, created with @role and no password when missing (the portal flow). */
DbUser *db_users_ensure(DbConn *conn, const char *username, const char *role, GError **error);
/* VMB_ERROR_NOT_FOUND when there is no such user. */
DbUser *db_users_get_by_name(DbConn *conn, const char *username, GError **error);
