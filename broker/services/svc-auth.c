// SPDX-License-Identifier: LGPL-2.1-or-later
// Logins and credential checks. argon2id costs ~19 MiB and tens of milliseconds per hash,
// so hashing runs under a counting semaphore, and failed logins are counted per (user,
// address) and per address in fixed windows (in this process: each replica throttles on its
// own). Nothing is counted per user alone: a burst of wrong passwords for a victim throttles
// the addresses it comes from, and the victim signs in from any other address.
#include "svc-auth.h"

#include <string.h>

#include "db-sessions.h"
#include "db-tokens.h"
#include "svc-audit.h"
#include "vmb-error.h"
#include "vmb-secret.h"

/* How long a login waits for a hashing slot before answering 429. */
#define HASH_WAIT_US (5 * G_USEC_PER_SEC)
/* Entries kept in the failure table before expired ones are swept. */
#define THROTTLE_SWEEP_AT 10000

typedef struct {
    unsigned failures; /* in the current window */
    gint64 window_end; /* monotonic seconds */
} Throttle;

struct SvcAuth {
    SvcAuthOptions opts;
    GMutex lock;          /* guards hashing and throttles */
    GCond slot_freed;
    unsigned hashing;     /* argon2 computations running */
    GHashTable *throttles; /* "ua:addr\nname" / "a:addr" / "s:addr" -> Throttle */
    char *dummy_hash;     /* verified against for unknown users, so timing reveals nothing */
};

/**
 * svc_login_free:
 * @login: (nullable): a login result
 */
void
svc_login_free(SvcLogin *login)
{
    if (!login)
        return;
    g_free(login->session_secret);
    g_free(login->csrf_token);
    db_user_free(login->user);
    g_free(login);
}

/**
 * svc_auth_new:
 * @opts: settings; copied
 *
 * Returns: (transfer full): the authentication service.
 */
SvcAuth *
svc_auth_new(const SvcAuthOptions *opts)
{
    SvcAuth *auth = g_new0(SvcAuth, 1);

    auth->opts = *opts;
    auth->opts.max_hashing = MAX(auth->opts.max_hashing, 1u);
    g_mutex_init(&auth->lock);
    g_cond_init(&auth->slot_freed);
    auth->throttles = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    auth->dummy_hash = svc_users_hash_password("vmbroker-dummy-password", &opts->argon2, NULL);
    return auth;
}

/**
 * svc_auth_free:
 * @auth: (nullable): the service
 */
void
svc_auth_free(SvcAuth *auth)
{
    if (!auth)
        return;
    g_hash_table_unref(auth->throttles);
    g_mutex_clear(&auth->lock);
    g_cond_clear(&auth->slot_freed);
    g_free(auth->dummy_hash);
    g_free(auth);
}

static gint64
now_s(void)
{
    return g_get_monotonic_time() / G_USEC_PER_SEC;
}

/* Seconds until @key may try again, 0 when it may now. Called with the lock held. */
static unsigned
throttle_wait(SvcAuth *auth, const char *key, unsigned limit)
{
    Throttle *t = g_hash_table_lookup(auth->throttles, key);
    gint64 now = now_s();

    if (!t || t->window_end <= now || t->failures < limit)
        return 0;
    return (unsigned) (t->window_end - now);
}

static void
throttle_fail(SvcAuth *auth, const char *key)
{
    Throttle *t = g_hash_table_lookup(auth->throttles, key);
    gint64 now = now_s();

    if (!t && g_hash_table_size(auth->throttles) >= THROTTLE_SWEEP_AT) {
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, auth->throttles);
        while (g_hash_table_iter_next(&it, &k, &v))
            if (((Throttle *) v)->window_end <= now)
                g_hash_table_iter_remove(&it);
    }
    if (!t) {
        t = g_new0(Throttle, 1);
        g_hash_table_insert(auth->throttles, g_strdup(key), t);
    }
    if (t->window_end <= now) {
        t->failures = 0;
        t->window_end = now + auth->opts.window_s;
    }
    t->failures++;
}

static bool
hash_slot_take(SvcAuth *auth, unsigned *ret_retry_after_s, GError **error)
{
    gint64 deadline = g_get_monotonic_time() + HASH_WAIT_US;

    g_mutex_lock(&auth->lock);
    while (auth->hashing >= auth->opts.max_hashing) {
        if (!g_cond_wait_until(&auth->slot_freed, &auth->lock, deadline)) {
            g_mutex_unlock(&auth->lock);
            *ret_retry_after_s = 1;
            g_set_error(error, VMB_ERROR, VMB_ERROR_TOO_MANY,
                        "Too many sign-ins at once; try again in a second.");
            return false;
        }
    }
    auth->hashing++;
    g_mutex_unlock(&auth->lock);
    return true;
}

static void
hash_slot_give(SvcAuth *auth)
{
    g_mutex_lock(&auth->lock);
    auth->hashing--;
    g_cond_signal(&auth->slot_freed);
    g_mutex_unlock(&auth->lock);
}

static bool
throttle_check(SvcAuth *auth, const char *ukey, const char *akey, unsigned *ret_retry_after_s,
               GError **error)
{
    unsigned wait;

    g_mutex_lock(&auth->lock);
    wait = MAX(throttle_wait(auth, ukey, auth->opts.max_failures_user),
               throttle_wait(auth, akey, auth->opts.max_failures_addr));
    g_mutex_unlock(&auth->lock);
    if (wait == 0)
        return true;
    *ret_retry_after_s = wait;
    g_set_error(error, VMB_ERROR, VMB_ERROR_TOO_MANY,
                "Too many failed sign-ins; try again in %u seconds.", wait);
    return false;
}

/**
 * svc_auth_csrf_token:
 * @session_secret: a session's cookie value
 *
 * The session's CSRF token is a digest of its secret, so that any authenticated call of the
 * session (GET /api/v1/me) can hand it to a tab that did not sign in itself, and a tab that
 * still holds an older session's token learns the current one the same way. Only a page of
 * this origin can read it; a cross-site form never can.
 *
 * Returns: (transfer full): the token.
 */
char *
svc_auth_csrf_token(const char *session_secret)
{
    g_autofree char *input = g_strconcat("vmbroker csrf\n", session_secret, NULL);

    return vmb_secret_sha256_hex(input, strlen(input));
}

static SvcLogin *
session_create(SvcAuth *auth, DbConn *conn, DbUser *user, const char *remote_addr,
               GError **error)
{
    g_autoptr(SvcLogin) login = g_new0(SvcLogin, 1);
    g_autofree char *secret_hash = NULL;
    g_autofree char *csrf_hash = NULL;

    /* A fresh id at every login: a session id planted before login is worth nothing. */
    login->session_secret = vmb_secret_new_token("", error);
    if (!login->session_secret)
        return NULL;
    login->csrf_token = svc_auth_csrf_token(login->session_secret);
    secret_hash = vmb_secret_sha256_hex(login->session_secret, strlen(login->session_secret));
    csrf_hash = vmb_secret_sha256_hex(login->csrf_token, strlen(login->csrf_token));
    if (!db_sessions_insert(conn, user->id, secret_hash, csrf_hash, auth->opts.session_max_s,
                            remote_addr, error))
        return NULL;
    login->user = user;
    return g_steal_pointer(&login);
}

/* Records a refused login; a login refused by throttling is not recorded (the throttle is
 * what bounds these rows). The name is kept only when it is a valid user name, so the row
 * holds no client bytes of any other shape. Best effort: the client is refused anyway. */
static void
audit_failed_login(DbConn *conn, const char *username, const DbUser *user,
                   const char *remote_addr)
{
    g_autoptr(json_object) detail = json_object_new_object();
    const char *reason = !user ? "unknown user" : !user->password_hash ? "no password login"
                       : user->disabled ? "disabled" : "wrong password";

    json_object_object_add(detail, "username", svc_users_name_valid(username)
                                                   ? json_object_new_string(username) : NULL);
    json_object_object_add(detail, "reason", json_object_new_string(reason));
    svc_audit_write(conn, NULL, "auth.login_failed", "user", user ? user->id : NULL,
                    remote_addr, detail, NULL);
}

/**
 * svc_auth_login:
 * @auth: the service
 * @username: the name given
 * @password: the password given
 * @remote_addr: (nullable): the client's address, for throttling and the session row
 *
 * Failures are counted for (@username, @remote_addr) and for @remote_addr; either over its
 * bound refuses further attempts from that address (for that user, or for all) until the
 * window ends. An address without failures is never refused.
 * @ret_retry_after_s: (out): seconds to wait, set with VMB_ERROR_TOO_MANY
 * @error: return location for an error
 *
 * Returns: (transfer full): the new session, or NULL.
 */
SvcLogin *
svc_auth_login(SvcAuth *auth, const char *username, const char *password,
               const char *remote_addr, unsigned *ret_retry_after_s, GError **error)
{
    const char *addr = remote_addr ? remote_addr : "-";
    /* An address holds no newline, so "ua:" keys of different pairs never meet. */
    g_autofree char *ukey = g_strconcat("ua:", addr, "\n", username, NULL);
    g_autofree char *akey = g_strconcat("a:", addr, NULL);
    g_autoptr(DbConn) conn = NULL;
    g_autoptr(DbUser) user = NULL;
    g_autoptr(GError) lookup_err = NULL;
    SvcLogin *login;
    bool ok;

    if (!throttle_check(auth, ukey, akey, ret_retry_after_s, error))
        return NULL;
    conn = db_pool_acquire(auth->opts.db, error);
    if (!conn)
        return NULL;
    user = db_users_get_by_name(conn, username, &lookup_err);
    if (!user && vmb_error_kind(lookup_err) != VMB_ERROR_NOT_FOUND) {
        g_propagate_error(error, g_steal_pointer(&lookup_err));
        return NULL;
    }
    /* No connection is held while waiting for a hashing slot and hashing: a burst of
     * logins must not take the pool from every other request. */
    g_clear_pointer(&conn, db_conn_release);
    if (!hash_slot_take(auth, ret_retry_after_s, error))
        return NULL;
    /* Unknown users, users without a password and disabled users cost a verify too. */
    ok = svc_users_verify_password(user && user->password_hash ? user->password_hash
                                                               : auth->dummy_hash, password) &&
         user && user->password_hash && !user->disabled;
    hash_slot_give(auth);

    g_mutex_lock(&auth->lock);
    if (ok) {
        g_hash_table_remove(auth->throttles, ukey);
    } else {
        throttle_fail(auth, ukey);
        throttle_fail(auth, akey);
    }
    g_mutex_unlock(&auth->lock);
    /* The outcome is recorded with a connection taken again. */
    conn = db_pool_acquire(auth->opts.db, ok ? error : NULL);
    if (!conn && ok)
        return NULL;
    if (!ok) {
        if (conn) /* best effort: the client is refused anyway */
            audit_failed_login(conn, username, user, remote_addr);
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAUTHORIZED,
                    "Wrong user name or password.");
        return NULL;
    }
    if (!svc_audit_write(conn, user, "auth.login", "user", user->id, remote_addr, NULL, error))
        return NULL;
    login = session_create(auth, conn, user, remote_addr, error);
    if (login)
        user = NULL; /* moved into the login */
    return login;
}

typedef struct {
    const char *username;
    const char *hash;
    const char *remote_addr;
} SignupTx;

static bool
signup_tx(DbConn *conn, void *data, GError **error)
{
    SignupTx *tx = data;
    g_autofree char *id = NULL;
    g_autoptr(json_object) detail = json_object_new_object();

    if (!db_users_insert(conn, tx->username, DB_ROLE_USER, tx->hash, &id, error))
        return false;
    json_object_object_add(detail, "username", json_object_new_string(tx->username));
    return svc_audit_write(conn, NULL, "user.signup", "user", id, tx->remote_addr, detail,
                           error);
}

/**
 * svc_auth_signup:
 * @auth: the service
 * @username: the wanted name
 * @password: the password
 * @remote_addr: (nullable): the client's address: attempts are counted per address, and
 *     the audit log names it
 * @ret_retry_after_s: (out): seconds to wait, set with VMB_ERROR_TOO_MANY
 * @error: return location for an error
 *
 * Creates a user of role "user". The caller checks that signup is open.
 *
 * Returns: true on success; VMB_ERROR_CONFLICT when the name is taken.
 */
bool
svc_auth_signup(SvcAuth *auth, const char *username, const char *password,
                const char *remote_addr, unsigned *ret_retry_after_s, GError **error)
{
    g_autofree char *skey = g_strconcat("s:", remote_addr ? remote_addr : "-", NULL);
    g_autofree char *hash = NULL;
    unsigned wait;
    g_autoptr(DbConn) conn = NULL;

    if (!svc_users_name_valid(username)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID,
                    "A user name has 1 to 64 of a-z, 0-9, '.', '_' and '-', starting with a "
                    "letter or digit.");
        return false;
    }
    if (strlen(password) < 8) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID,
                    "A password has at least 8 characters.");
        return false;
    }
    /* Every well-formed attempt counts, made or refused: each costs a hash and may make a
     * user. */
    g_mutex_lock(&auth->lock);
    wait = throttle_wait(auth, skey, auth->opts.max_signups_addr);
    if (!wait)
        throttle_fail(auth, skey);
    g_mutex_unlock(&auth->lock);
    if (wait) {
        *ret_retry_after_s = wait;
        g_set_error(error, VMB_ERROR, VMB_ERROR_TOO_MANY,
                    "Too many sign-ups from this address; try again in %u seconds.", wait);
        return false;
    }
    if (!hash_slot_take(auth, ret_retry_after_s, error))
        return false;
    hash = svc_users_hash_password(password, &auth->opts.argon2, error);
    hash_slot_give(auth);
    if (!hash)
        return false;
    conn = db_pool_acquire(auth->opts.db, error);
    if (!conn)
        return false;
    return db_pool_transaction(auth->opts.db, signup_tx, &(SignupTx) { username, hash, remote_addr },
                               error);
}

/**
 * svc_auth_logout:
 * @auth: the service
 * @session_secret: the cookie value
 * @error: return location for an error
 *
 * Returns: true when the session is gone.
 */
bool
svc_auth_logout(SvcAuth *auth, const char *session_secret, GError **error)
{
    g_autofree char *hash = vmb_secret_sha256_hex(session_secret, strlen(session_secret));
    g_autoptr(DbConn) conn = db_pool_acquire(auth->opts.db, error);

    return conn && db_sessions_delete(conn, hash, error);
}

/**
 * svc_auth_session:
 * @auth: the service
 * @session_secret: the cookie value
 * @ret_csrf_hash: (out): the session's CSRF digest
 * @ret_expires_at: (out) (optional): the session's absolute end, Unix seconds
 * @error: return location for an error
 *
 * Returns: (transfer full): the session's user, or NULL (VMB_ERROR_UNAUTHORIZED).
 */
DbUser *
svc_auth_session(SvcAuth *auth, const char *session_secret,
                 char **ret_csrf_hash, gint64 *ret_expires_at, GError **error)
{
    g_autofree char *hash = vmb_secret_sha256_hex(session_secret, strlen(session_secret));
    g_autoptr(DbConn) conn = db_pool_acquire(auth->opts.db, error);

    if (!conn)
        return NULL;
    return db_sessions_authenticate(conn, hash, auth->opts.session_idle_s, ret_csrf_hash,
                                    ret_expires_at, error);
}

/* What a token check found, kept in the cache. */
typedef struct {
    DbUser *user;
    gint64 expires_at;  /* Unix seconds, 0 for never */
    gint64 stamp_due;   /* monotonic µs: from then on, last_used_at needs a new stamp */
} TokenHit;

static void
token_hit_free(TokenHit *hit)
{
    db_user_free(hit->user);
    g_free(hit);
}

static gpointer
token_hit_copy(gconstpointer data)
{
    const TokenHit *hit = data;
    TokenHit *copy = g_memdup2(hit, sizeof(*hit));

    copy->user = db_user_copy(hit->user);
    return copy;
}

/**
 * svc_auth_token:
 * @auth: the service
 * @token: the bearer token presented
 * @ret_expires_at: (out) (optional): when the token expires (Unix seconds), 0 for never
 * @error: return location for an error
 *
 * A token seen before is answered from the read cache until it expires or its last_used_at
 * is due a new stamp (once a minute); revocations, expiries and users disabled anywhere drop
 * it from the cache.
 *
 * Returns: (transfer full): the token's user, or NULL (VMB_ERROR_UNAUTHORIZED).
 */
DbUser *
svc_auth_token(SvcAuth *auth, const char *token, gint64 *ret_expires_at,
               GError **error)
{
    g_autofree char *hash = vmb_secret_sha256_hex(token, strlen(token));
    g_autofree char *key = g_strconcat("token:", hash, NULL);
    g_autoptr(DbConn) conn = NULL;
    TokenHit *hit;
    DbUser *user;
    guint64 gen;
    unsigned due_s = 0;

    hit = db_cache_lookup(auth->opts.cache, key, token_hit_copy, &gen);
    if (hit) {
        bool live = (!hit->expires_at || g_get_real_time() / G_USEC_PER_SEC < hit->expires_at)
                    && g_get_monotonic_time() < hit->stamp_due;
        user = live ? g_steal_pointer(&hit->user) : NULL;
        if (user && ret_expires_at)
            *ret_expires_at = hit->expires_at;
        token_hit_free(hit);
        if (user)
            return user;
    }
    conn = db_pool_acquire(auth->opts.db, error);
    if (!conn)
        return NULL;
    hit = g_new0(TokenHit, 1);
    hit->user = db_tokens_authenticate(conn, hash, &hit->expires_at, &due_s, error);
    if (!hit->user) {
        token_hit_free(hit);
        return NULL;
    }
    hit->stamp_due = g_get_monotonic_time() + (gint64) due_s * G_USEC_PER_SEC;
    if (ret_expires_at)
        *ret_expires_at = hit->expires_at;
    user = db_user_copy(hit->user);
    db_cache_store(auth->opts.cache, key, gen, hit, (GDestroyNotify) token_hit_free);
    return user;
}
