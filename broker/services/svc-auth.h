// SPDX-License-Identifier: LGPL-2.1-or-later
// Authentication: password logins (argon2id under a bounded semaphore, throttled per
// (user, address) and per address), login sessions, and API tokens.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-cache.h"
#include "db-pool.h"
#include "db-users.h"
#include "svc-users.h"

typedef struct SvcAuth SvcAuth;

typedef struct {
    DbPool *db;                  /* PostgreSQL */
    DbCache *cache;              /* token checks answered without a query */
    SvcArgon2Params argon2;      /* cost of new hashes */
    unsigned max_hashing;        /* argon2 computations at once */
    unsigned session_idle_s;     /* a session unused this long ends */
    unsigned session_max_s;      /* a session ends this long after login */
    unsigned max_failures_user;  /* failed logins per (user, address) per window before 429 */
    unsigned max_failures_addr;  /* failed logins per address per window before 429 */
    unsigned max_signups_addr;   /* sign-up attempts per address per window before 429 */
    unsigned window_s;           /* the throttling window */
} SvcAuthOptions;

/* What a successful login hands back to the client (once). */
typedef struct {
    char *session_secret; /* the cookie value */
    char *csrf_token;     /* the X-CSRF-Token value */
    DbUser *user;         /* who logged in */
} SvcLogin;

void svc_login_free(SvcLogin *login);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SvcLogin, svc_login_free)

SvcAuth *svc_auth_new(const SvcAuthOptions *opts);
void svc_auth_free(SvcAuth *auth);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SvcAuth, svc_auth_free)

/* VMB_ERROR_UNAUTHORIZED for bad credentials, VMB_ERROR_TOO_MANY (with
 * *ret_retry_after_s set) when throttled or when too many hashes are running. */
SvcLogin *svc_auth_login(SvcAuth *auth, const char *username,
                         const char *password, const char *remote_addr,
                         unsigned *ret_retry_after_s, GError **error);
bool svc_auth_signup(SvcAuth *auth, const char *username,
                     const char *password, const char *remote_addr,
                     unsigned *ret_retry_after_s, GError **error);
bool svc_auth_logout(SvcAuth *auth, const char *session_secret, GError **error);
/* The CSRF token of the session whose cookie value is @session_secret. */
char *svc_auth_csrf_token(const char *session_secret);

/* @ret_expires_at (optional): the session's absolute end, or the token's expiry (0 for
 * never), in Unix seconds: what a token minted through it may not outlive. */
DbUser *svc_auth_session(SvcAuth *auth, const char *session_secret,
                         char **ret_csrf_hash, gint64 *ret_expires_at, GError **error);
DbUser *svc_auth_token(SvcAuth *auth, const char *token, gint64 *ret_expires_at,
                       GError **error);
