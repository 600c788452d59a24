// SPDX-License-Identifier: LGPL-2.1-or-later
// Queries on the users table.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"

/* What a user may do (README: Authentication). */
typedef enum {
    DB_ROLE_ADMIN,   /* everything */
    DB_ROLE_USER,    /* own objects */
    DB_ROLE_SERVICE, /* acts for users (the portal); administers nothing */

    DB_ROLE_LAST
} DbRole;

/* The roles as stored and shown, indexed by role, NULL-terminated. */
extern const char *const db_role_names[DB_ROLE_LAST + 1];
const char *db_role_to_string(DbRole role);
bool db_role_from_string(const char *name, DbRole *ret_role);

typedef struct {
    char *id;            /* uuid */
    char *username;      /* unique login name */
    DbRole role;         /* what the user may do */
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
bool db_users_insert(DbConn *conn, const char *username, DbRole role,
                     const char *password_hash, char **ret_id, GError **error);
/* Every user, by name: a GPtrArray of DbUser (no password hashes). */
GPtrArray *db_users_list(DbConn *conn, GError **error);
/* Disables or enables user @id and, when disabling, ends their sessions.
 * VMB_ERROR_NOT_FOUND when there is no such user. */
bool db_users_set_disabled(DbConn *conn, const char *id, bool disabled, GError **error);
/* Replaces user @id's password hash and ends their sessions. VMB_ERROR_NOT_FOUND when there
 * is no such user. */
bool db_users_set_password(DbConn *conn, const char *id, const char *password_hash,
                           GError **error);
/* The user @username, created with @role and no password when missing (the portal flow). */
DbUser *db_users_ensure(DbConn *conn, const char *username, DbRole role, GError **error);
/* VMB_ERROR_NOT_FOUND when there is no such user. */
DbUser *db_users_get_by_name(DbConn *conn, const char *username, GError **error);
/* VMB_ERROR_NOT_FOUND when there is no such user. */
DbUser *db_users_get_by_id(DbConn *conn, const char *id, GError **error);
