// SPDX-License-Identifier: LGPL-2.1-or-later
// Console connections. Every refusal (ticket, user, VM state) happens before a connection
// to QEMU is opened. Connects and disconnects reach PostgreSQL through one worker thread,
// because the relay's callbacks run on its event loop and must not block. A guard thread
// asks PostgreSQL every second whether each open connection's user is still enabled and the
// session or token its ticket was minted through still stands, and shuts down those whose
// access ended. Which credential minted a ticket is known in this process only: a console
// opened through another replica's ticket is watched for its user alone.
#include "svc-console.h"

#include <string.h>
#include <sys/socket.h>

#include "db-audit.h"
#include "db-console-history.h"
#include "db-sessions.h"
#include "db-tickets.h"
#include "dom-lifecycle.h"
#include "svc-vms.h"
#include "vmb-error.h"
#include "vmb-json.h"
#include "vmb-periodic.h"
#include "vmb-secret.h"

/* How long a connect to QEMU's websocket and its handshake may take once its turn came,
 * and how long it may wait for that turn behind other viewers of the same VM (QEMU takes
 * one at a time, each in a few ms, but a loaded host may make that tens of ms). */
#define UPSTREAM_TIMEOUT_MS 10000
#define UPSTREAM_WAIT_MS 30000
/* Ticket credentials kept before expired ones are swept (tickets live a minute at most). */
#define TICKET_CREDS_SWEEP_AT 10000
#define TICKET_CREDS_TTL_US (10 * 60 * G_USEC_PER_SEC)
/* Console sessions one user may hold on one VM (tabs, browsers); the oldest go first. */
#define SESSIONS_PER_USER_VM 16
#define FAILURES_METRIC "vmbroker_console_failures_total"

struct SvcConsole {
    SvcConsoleOptions opts;
    VmbSplice *splice;
    GThreadPool *events; /* ConsoleEvent, one at a time, in order */
    GMutex lock;         /* guards the two tables below */
    GHashTable *ticket_creds; /* ticket digest -> TicketCred */
    GHashTable *open;    /* serial (guint64 *) -> ConsoleConn: connections in the relay */
    guint64 next_serial;
    VmbPeriodic *guard;  /* closes connections whose access ended */
};

/* A connect to QEMU under way, for its caller. */
typedef struct {
    SvcConsole *console;
    char *vm_id;
    bool exclusive;            /* the template's console_exclusive */
    VmbSpliceConnectFunc done;
    void *done_data;
} OpenWait;

typedef struct {
    char *credential;
    gint64 expires_us;   /* monotonic */
} TicketCred;

/* An open connection, from attach until the relay lets it go. */
typedef struct {
    SvcConsole *console;
    guint64 serial;
    char *id;            /* its console_history row */
    int client_sock;     /* valid while in console->open: shut down, never closed, here */
    SvcConsoleBinding bind;
    bool shut;
    VmbSpliceDoneFunc done;
    void *done_data;
} ConsoleConn;

/**
 * svc_console_binding_clear:
 * @bind: a binding; its strings are freed and cleared
 */
void
svc_console_binding_clear(SvcConsoleBinding *bind)
{
    g_clear_pointer(&bind->user_id, g_free);
    g_clear_pointer(&bind->credential, g_free);
    g_clear_pointer(&bind->address, g_free);
}

static void
ticket_cred_free(gpointer data)
{
    TicketCred *tc = data;

    g_free(tc->credential);
    g_free(tc);
}

/* Remembers (in this process) the credential @ticket was minted through; NULL: none. */
static void
note_ticket(SvcConsole *console, const char *ticket, const char *credential)
{
    TicketCred *tc;
    gint64 now = g_get_monotonic_time();

    if (!credential)
        return;
    tc = g_new0(TicketCred, 1);
    tc->credential = g_strdup(credential);
    tc->expires_us = now + TICKET_CREDS_TTL_US;
    g_mutex_lock(&console->lock);
    if (g_hash_table_size(console->ticket_creds) >= TICKET_CREDS_SWEEP_AT) {
        GHashTableIter it;
        gpointer v;
        g_hash_table_iter_init(&it, console->ticket_creds);
        while (g_hash_table_iter_next(&it, NULL, &v))
            if (((TicketCred *) v)->expires_us <= now)
                g_hash_table_iter_remove(&it);
    }
    g_hash_table_insert(console->ticket_creds,
                        vmb_secret_sha256_hex(ticket, strlen(ticket)), tc);
    g_mutex_unlock(&console->lock);
}

/**
 * svc_console_mint_ticket:
 * @console: the service
 * @vm: the VM
 * @purpose: "page" (redeemed by the console page) or "ws" (opens the websocket)
 * @user_id: who may use it: the caller, or the owner a service account acts for
 * @credential: (nullable): ApiCaller.credential of the request that mints it: a console
 *   opened with the ticket closes when that ends
 * @error: return location for an error
 *
 * Returns: (transfer full): a ticket, valid once within ticket_ttl_s.
 */
char *
svc_console_mint_ticket(SvcConsole *console, const DbVm *vm, const char *purpose,
                        const char *user_id, const char *credential, GError **error)
{
    g_autofree char *ticket = vmb_secret_new_token("", error);
    g_autofree char *digest = NULL;
    g_autoptr(DbConn) db = NULL;

    if (!ticket)
        return NULL;
    digest = vmb_secret_sha256_hex(ticket, strlen(ticket));
    db = db_pool_acquire(console->opts.db, error);
    if (!db || !db_tickets_insert(db, digest, purpose, user_id, vm->id,
                                  console->opts.ticket_ttl_s, error))
        return NULL;
    note_ticket(console, ticket, credential);
    return g_steal_pointer(&ticket);
}

/* The credential a ticket (by digest) was minted through, forgotten now; NULL if unknown. */
static char *
take_credential(SvcConsole *console, const char *digest)
{
    TicketCred *tc;
    char *out = NULL;

    g_mutex_lock(&console->lock);
    tc = g_hash_table_lookup(console->ticket_creds, digest);
    if (tc)
        out = g_steal_pointer(&tc->credential);
    g_hash_table_remove(console->ticket_creds, digest);
    g_mutex_unlock(&console->lock);
    return out;
}

typedef struct {
    guint64 serial;
    SvcConsoleBinding bind;
} GuardItem;

static void
guard_item_clear(gpointer data)
{
    svc_console_binding_clear(&((GuardItem *) data)->bind);
}

/* The guard's second: which open connections lost their access, then shut those down
 * (the relay sees the client leave and ends the pair as usual). */
static void
guard_sweep(gpointer data)
{
    SvcConsole *console = data;
    g_autoptr(GArray) items = g_array_new(FALSE, TRUE, sizeof(GuardItem));
    g_autoptr(GArray) dead = g_array_new(FALSE, FALSE, sizeof(guint64));
    g_autoptr(DbConn) db = NULL;
    GHashTableIter it;
    gpointer v;

    g_array_set_clear_func(items, guard_item_clear);
    g_mutex_lock(&console->lock);
    g_hash_table_iter_init(&it, console->open);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        ConsoleConn *c = v;
        GuardItem item = { c->serial, { g_strdup(c->bind.user_id),
                                        g_strdup(c->bind.credential) } };
        if (!c->shut && c->bind.user_id)
            g_array_append_val(items, item);
        else
            svc_console_binding_clear(&item.bind);
    }
    g_mutex_unlock(&console->lock);
    if (items->len == 0 || !(db = db_pool_acquire(console->opts.db, NULL)))
        return; /* a database that is down ends nobody's console */
    for (guint i = 0; i < items->len; i++) {
        GuardItem *item = &g_array_index(items, GuardItem, i);
        bool live = true;
        if (db_sessions_access_live(db, item->bind.user_id, item->bind.credential, &live,
                                    NULL) && !live)
            g_array_append_val(dead, item->serial);
    }
    g_mutex_lock(&console->lock);
    for (guint i = 0; i < dead->len; i++) {
        ConsoleConn *c = g_hash_table_lookup(console->open, &g_array_index(dead, guint64, i));
        if (c && !c->shut) {
            shutdown(c->client_sock, SHUT_RDWR);
            c->shut = true;
        }
    }
    g_mutex_unlock(&console->lock);
}

static void
console_conn_free(ConsoleConn *c)
{
    svc_console_binding_clear(&c->bind);
    g_free(c->id);
    g_free(c);
}

/* The relay let the pair go: forget it before the client socket is closed by @done. */
static void
conn_done(void *data)
{
    ConsoleConn *c = data;

    g_mutex_lock(&c->console->lock);
    g_hash_table_remove(c->console->open, &c->serial);
    g_mutex_unlock(&c->console->lock);
    c->done(c->done_data);
    console_conn_free(c);
}

typedef struct {
    char *vm_id;
    int delta;         /* +1 connect, -1 disconnect, 0 vmbroker closed the VM's consoles */
    char *conn_id;     /* the connection's history row, on connect and disconnect */
    char *user_id;     /* (nullable) on connect and disconnect */
    char *address;     /* (nullable) on connect and disconnect */
    guint64 bytes_in;  /* on disconnect */
    guint64 bytes_out;
    char *reason;      /* on disconnect and close */
} ConsoleEvent;

static void
console_event_free(ConsoleEvent *ev)
{
    g_free(ev->vm_id);
    g_free(ev->conn_id);
    g_free(ev->user_id);
    g_free(ev->address);
    g_free(ev->reason);
    g_free(ev);
}

/* The VM's counts and history, then the audit row. */
static bool
record_event(DbConn *db, const ConsoleEvent *ev)
{
    if (ev->delta == 0)
        return db_vms_console_closed(db, ev->vm_id, ev->reason, NULL);
    if (!db_vms_console_adjust(db, ev->vm_id, ev->delta, NULL))
        return false;
    return ev->delta > 0
               ? db_console_history_open(db, ev->conn_id, ev->vm_id, ev->user_id, ev->address,
                                         NULL)
               : db_console_history_close(db, ev->conn_id, ev->reason, ev->bytes_in,
                                          ev->bytes_out, NULL);
}

static void
event_job(gpointer data, gpointer user_data)
{
    SvcConsole *console = user_data;
    ConsoleEvent *ev = data;
    g_autoptr(DbConn) db = db_pool_acquire(console->opts.db, NULL);
    g_autoptr(json_object) detail = json_object_new_object();
    DbAuditEntry entry = {
        .actor_id = ev->user_id,
        .action = ev->delta > 0 ? "console.connect"
                  : ev->delta < 0 ? "console.disconnect" : "console.close",
        .object_kind = "vm",
        .object_id = ev->vm_id,
        .remote_addr = ev->address,
    };

    if (ev->conn_id)
        json_object_object_add(detail, "connection", json_object_new_string(ev->conn_id));
    if (ev->delta < 0) {
        json_object_object_add(detail, "bytes_in", json_object_new_uint64(ev->bytes_in));
        json_object_object_add(detail, "bytes_out", json_object_new_uint64(ev->bytes_out));
    }
    if (ev->reason)
        json_object_object_add(detail, "reason", json_object_new_string(ev->reason));
    if (json_object_object_length(detail) > 0)
        entry.detail_json = json_object_to_json_string_ext(detail, JSON_C_TO_STRING_PLAIN);
    /* Best effort: what a broker could not write is repaired when the VM stops (its count
     * is reset and its open history rows are closed). */
    if (db && record_event(db, ev))
        db_audit_insert(db, &entry, NULL);
    if (console->opts.metrics && ev->delta)
        vmb_metrics_add(console->opts.metrics, ev->delta > 0
                            ? "vmbroker_console_connects_total"
                            : "vmbroker_console_disconnects_total", 1, NULL);
    console_event_free(ev);
}

/* @c: (nullable) the connection that opened or closed, NULL when vmbroker closed the VM's
 * consoles. */
static void
queue_event(SvcConsole *console, const char *vm_id, int delta, const ConsoleConn *c,
            guint64 in, guint64 out, const char *reason)
{
    ConsoleEvent *ev = g_new0(ConsoleEvent, 1);

    ev->vm_id = g_strdup(vm_id);
    ev->delta = delta;
    if (c) {
        ev->conn_id = g_strdup(c->id);
        ev->user_id = g_strdup(c->bind.user_id);
        ev->address = g_strdup(c->bind.address);
    }
    ev->bytes_in = in;
    ev->bytes_out = out;
    ev->reason = g_strdup(reason);
    g_thread_pool_push(console->events, ev, NULL);
}

static void
on_close(const char *tag, guint64 bytes_in, guint64 bytes_out, const char *reason,
         void *done_data, void *data)
{
    queue_event(data, tag, -1, done_data, bytes_in, bytes_out, reason);
}

static void
close_vm_cb(const char *vm_id, const char *reason, gpointer data)
{
    svc_console_close_vm(data, vm_id, reason);
}

/**
 * svc_console_new:
 * @opts: settings; copied
 * @error: return location for an error
 *
 * Returns: (transfer full): the console service with its relay thread, or NULL.
 */
SvcConsole *
svc_console_new(const SvcConsoleOptions *opts, GError **error)
{
    g_autoptr(SvcConsole) console = g_new0(SvcConsole, 1);

    console->opts = *opts;
    console->events = g_thread_pool_new(event_job, console, 1, TRUE, NULL);
    g_mutex_init(&console->lock);
    console->ticket_creds = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                                  ticket_cred_free);
    console->open = g_hash_table_new(g_int64_hash, g_int64_equal);
    console->splice = vmb_splice_new(&(VmbSpliceOptions) {
        .buffer_size = opts->buffer_size,
        .on_close = on_close,
        .on_close_data = console,
    }, error);
    if (!console->splice)
        return NULL;
    svc_vms_on_console_end(opts->vms, close_vm_cb, console);
    console->guard = vmb_periodic_start("console-guard", 1, guard_sweep, console);
    if (opts->metrics) {
        vmb_metrics_declare(opts->metrics, "vmbroker_console_connects_total",
                            VMB_METRIC_COUNTER, "Console websocket connections made.", NULL, 0);
        vmb_metrics_declare(opts->metrics, "vmbroker_console_disconnects_total",
                            VMB_METRIC_COUNTER, "Console websocket connections ended.", NULL, 0);
        vmb_metrics_declare(opts->metrics, FAILURES_METRIC, VMB_METRIC_COUNTER,
                            "Console connections whose guest did not answer (a ticket that "
                            "passed, then no websocket from QEMU).", NULL, 0);
        vmb_metrics_add(opts->metrics, "vmbroker_console_connects_total", 0, NULL);
        vmb_metrics_add(opts->metrics, "vmbroker_console_disconnects_total", 0, NULL);
        vmb_metrics_add(opts->metrics, FAILURES_METRIC, 0, NULL);
    }
    return g_steal_pointer(&console);
}

/**
 * svc_console_free:
 * @console: (nullable): the service
 *
 * Closes every console (the relay thread ends) and records the disconnects.
 */
void
svc_console_free(SvcConsole *console)
{
    if (!console)
        return;
    g_clear_pointer(&console->guard, vmb_periodic_stop);
    if (console->splice)
        svc_vms_on_console_end(console->opts.vms, NULL, NULL);
    g_clear_pointer(&console->splice, vmb_splice_free);
    if (console->events)
        g_thread_pool_free(console->events, FALSE, TRUE);
    if (console->ticket_creds)
        g_hash_table_unref(console->ticket_creds);
    if (console->open)
        g_hash_table_unref(console->open);
    if (console->ticket_creds)
        g_mutex_clear(&console->lock);
    g_free(console);
}

static DbVm *
running_vm(SvcConsole *console, DbConn *db, const char *vm_id, GError **error)
{
    g_autoptr(DbVm) vm = db_vms_get(db, vm_id, NULL, error);

    if (!vm)
        return NULL;
    if (vm->state != DB_VM_RUNNING || !vm->ws_port) {
        if (vm->state_reason)
            g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT, "The VM is %s (%s); start it first.",
                        db_vm_state_to_string(vm->state), vm->state_reason);
        else
            g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT, "The VM is %s; start it first.",
                        db_vm_state_to_string(vm->state));
        return NULL;
    }
    return g_steal_pointer(&vm);
}

/* The user a page ticket or a console session names; a redeemed ticket starts a session,
 * whose cookie value goes to @ret_new_secret, and gives up the credential it was minted
 * through (@ret_credential; a console session's reconnects carry none). */
static char *
session_user(SvcConsole *console, DbConn *db, const char *vm_id, const SvcConsoleCredential *cred,
             char **ret_new_secret, char **ret_credential, GError **error)
{
    g_autofree char *user_id = NULL;
    g_autofree char *secret = NULL;
    g_autofree char *digest = NULL;

    if (cred->ticket) {
        digest = vmb_secret_sha256_hex(cred->ticket, strlen(cred->ticket));
        if (!db_tickets_consume(db, digest, "page", vm_id, &user_id, error))
            return NULL;
        *ret_credential = take_credential(console, digest);
        g_free(digest);
        secret = vmb_secret_new_token("", error);
        if (!secret)
            return NULL;
        digest = vmb_secret_sha256_hex(secret, strlen(secret));
        if (!db_console_sessions_insert(db, digest, user_id, vm_id, console->opts.session_max_s,
                                        SESSIONS_PER_USER_VM, error))
            return NULL;
        *ret_new_secret = g_steal_pointer(&secret);
        return g_steal_pointer(&user_id);
    }
    if (!cred->session_secret || !*cred->session_secret) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAUTHORIZED,
                    "This page needs a console link: open the console from your desktops or "
                    "your course portal.");
        return NULL;
    }
    digest = vmb_secret_sha256_hex(cred->session_secret, strlen(cred->session_secret));
    if (!db_console_sessions_use(db, digest, vm_id, console->opts.session_idle_s, &user_id,
                                 error))
        return NULL;
    return g_steal_pointer(&user_id);
}

/**
 * svc_console_session:
 * @console: the service
 * @vm_id: the VM the page is for
 * @cred: the page ticket from console_url, or the console session's cookie value
 * @ret: (out): the password, a websocket ticket, the VM and (after a ticket) the new
 *   session's cookie value; filled only on success
 * @error: return location for an error
 *
 * Returns: true when the credential was good and the VM runs.
 */
bool
svc_console_session(SvcConsole *console, const char *vm_id, const SvcConsoleCredential *cred,
                    SvcConsoleGrant *ret, GError **error)
{
    g_autofree char *user_id = NULL;
    g_autofree char *password = NULL;
    g_autofree char *ws_ticket = NULL;
    g_autofree char *credential = NULL;
    g_autofree char *new_secret = NULL;
    g_autoptr(DbConn) db = db_pool_acquire(console->opts.db, error);
    g_autoptr(DbVm) vm = NULL;

    if (!db)
        return false;
    user_id = session_user(console, db, vm_id, cred, &new_secret, &credential, error);
    if (!user_id)
        return false;
    vm = running_vm(console, db, vm_id, error);
    if (!vm)
        return false;
    g_clear_pointer(&db, db_conn_release);
    password = svc_vms_vnc_password(console->opts.vms, vm, error);
    if (!password)
        return false;
    ws_ticket = svc_console_mint_ticket(console, vm, "ws", user_id, credential, error);
    if (!ws_ticket)
        return false;
    ret->password = g_steal_pointer(&password);
    ret->ws_ticket = g_steal_pointer(&ws_ticket);
    ret->vm = g_steal_pointer(&vm);
    ret->new_session_secret = g_steal_pointer(&new_secret);
    return true;
}

/**
 * svc_console_grant_clear:
 * @grant: what svc_console_session gave
 *
 * Wipes the password and frees the rest.
 */
void
svc_console_grant_clear(SvcConsoleGrant *grant)
{
    if (grant->password)
        explicit_bzero(grant->password, strlen(grant->password));
    g_clear_pointer(&grant->password, g_free);
    g_clear_pointer(&grant->ws_ticket, g_free);
    g_clear_pointer(&grant->new_session_secret, g_free);
    g_clear_pointer(&grant->vm, db_vm_free);
}

/**
 * svc_console_end_sessions:
 * @console: the service
 * @vm_id: the VM
 * @user_id: (nullable): only this user's sessions
 * @error: return location for an error
 *
 * Ends the console sessions on @vm_id and closes its open consoles, so that a portal can
 * withdraw access it gave.
 *
 * Returns: true on success.
 */
bool
svc_console_end_sessions(SvcConsole *console, const char *vm_id, const char *user_id,
                         GError **error)
{
    g_autoptr(DbConn) db = db_pool_acquire(console->opts.db, error);

    if (!db || !db_console_sessions_end(db, user_id, vm_id, NULL, error))
        return false;
    svc_console_close_vm(console, vm_id, "console access was withdrawn");
    return true;
}

/* Relay thread: QEMU answered (or not); the older viewers of an exclusive console go
 * before this one joins (the relay runs its commands in order). */
static void
open_done(VmbWsUpstream *upstream, const GError *error, void *data)
{
    OpenWait *w = data;

    if (upstream && w->exclusive)
        svc_console_close_vm(w->console, w->vm_id, "another viewer opened this console");
    if (!upstream && w->console->opts.metrics)
        vmb_metrics_add(w->console->opts.metrics, FAILURES_METRIC, 1, NULL);
    w->done(upstream, error, w->done_data);
    g_free(w->vm_id);
    g_free(w);
}

/**
 * svc_console_open:
 * @console: the service
 * @vm_id: the VM
 * @ticket: the "ws" ticket
 * @caller_id: (nullable): the user the request's credentials name, if it had any
 * @address: (nullable): the client's address, kept in the connection's history
 * @ws_key: the client's Sec-WebSocket-Key
 * @ws_protocol: (nullable): the client's Sec-WebSocket-Protocol
 * @ret_bind: (out): the ticket's user and credential, for svc_console_attach(); set
 *   before the connect is queued
 * @done: runs once on the relay's thread with QEMU's side (handshake done) or the error
 * @done_data: passed to @done
 * @error: return location for an error
 *
 * The ticket, user and VM are checked here; the connect and handshake to QEMU happen on the
 * relay's event loop, queued behind other connects to the same VM, so no caller's thread
 * waits for QEMU.
 *
 * Returns: true when the connect was queued (@done will run).
 */
bool
svc_console_open(SvcConsole *console, const char *vm_id, const char *ticket,
                 const char *caller_id, const char *address, const char *ws_key,
                 const char *ws_protocol,
                 SvcConsoleBinding *ret_bind, VmbSpliceConnectFunc done, void *done_data,
                 GError **error)
{
    g_autofree char *digest = vmb_secret_sha256_hex(ticket, strlen(ticket));
    g_autofree char *user_id = NULL;
    g_autoptr(DbConn) db = NULL;
    g_autoptr(DbVm) vm = NULL;
    g_autoptr(DomTemplateSet) set = NULL;
    g_autofree char *upstream = NULL;
    const DomTemplate *tmpl;
    OpenWait *w;

    if (!vmb_wsupstream_key_valid(ws_key)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID, "Sec-WebSocket-Key is malformed.");
        return false;
    }
    db = db_pool_acquire(console->opts.db, error);
    if (!db || !db_tickets_consume(db, digest, "ws", vm_id, &user_id, error))
        return false;
    svc_console_binding_clear(ret_bind);
    ret_bind->user_id = g_strdup(user_id);
    ret_bind->credential = take_credential(console, digest);
    ret_bind->address = g_strdup(address);
    if (caller_id && strcmp(caller_id, user_id) != 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_FORBIDDEN,
                    "This console ticket was issued to another user.");
        return false;
    }
    vm = running_vm(console, db, vm_id, error);
    if (!vm)
        return false;
    g_clear_pointer(&db, db_conn_release);
    upstream = svc_vms_console_address(console->opts.vms, vm);
    if (!upstream) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNAVAILABLE,
                    "This broker cannot reach the VM's host yet; try again shortly.");
        return false;
    }
    set = svc_templates_get(console->opts.templates);
    tmpl = dom_template_set_lookup(set, vm->template_name);
    w = g_new0(OpenWait, 1);
    w->console = console;
    w->vm_id = g_strdup(vm_id);
    w->exclusive = tmpl && tmpl->console_exclusive;
    w->done = done;
    w->done_data = done_data;
    if (!vmb_splice_connect(console->splice, upstream, vm->ws_port, ws_key,
                            ws_protocol, UPSTREAM_TIMEOUT_MS, UPSTREAM_WAIT_MS, open_done, w,
                            error)) {
        g_free(w->vm_id);
        g_free(w);
        return false;
    }
    return true;
}

/**
 * svc_console_attach:
 * @console: the service
 * @client_sock: the upgraded client socket (not owned)
 * @upstream_fd: QEMU's side (owned from now on, even on failure)
 * @to_client: (nullable): bytes QEMU sent past its handshake
 * @to_upstream: (nullable): bytes the client sent past its request
 * @vm_id: the VM
 * @bind: (nullable): whose access the connection lives on (svc_console_open()); copied
 * @done: runs when the pair ends, to close the client socket
 * @done_data: passed to @done
 * @error: return location for an error
 *
 * Returns: true when the relay took the pair.
 */
bool
svc_console_attach(SvcConsole *console, int client_sock, int upstream_fd, GBytes *to_client,
                   GBytes *to_upstream, const char *vm_id, const SvcConsoleBinding *bind,
                   VmbSpliceDoneFunc done, void *done_data, GError **error)
{
    ConsoleConn *c = g_new0(ConsoleConn, 1);

    c->console = console;
    c->id = g_uuid_string_random();
    c->client_sock = client_sock;
    c->bind.user_id = bind ? g_strdup(bind->user_id) : NULL;
    c->bind.credential = bind ? g_strdup(bind->credential) : NULL;
    c->bind.address = bind ? g_strdup(bind->address) : NULL;
    c->done = done;
    c->done_data = done_data;
    g_mutex_lock(&console->lock);
    c->serial = ++console->next_serial;
    g_hash_table_insert(console->open, &c->serial, c);
    g_mutex_unlock(&console->lock);
    /* Queued first: the events run in order, and the pair may end (and queue its close)
     * as soon as the relay has it. */
    queue_event(console, vm_id, +1, c, 0, 0, NULL);
    if (!vmb_splice_add(console->splice, client_sock, upstream_fd, to_client, to_upstream,
                        vm_id, conn_done, c, error)) {
        queue_event(console, vm_id, -1, c, 0, 0, "the relay refused the connection");
        g_mutex_lock(&console->lock);
        g_hash_table_remove(console->open, &c->serial);
        g_mutex_unlock(&console->lock);
        console_conn_free(c);
        return false;
    }
    return true;
}

/**
 * svc_console_close_vm:
 * @console: the service
 * @vm_id: the VM
 * @reason: why, for the disconnect records and the VM's `console.closed_reason`
 *
 * Closes the VM's console connections, if it has any.
 */
void
svc_console_close_vm(SvcConsole *console, const char *vm_id, const char *reason)
{
    unsigned n = 0;

    if (!vmb_splice_tag_stats(console->splice, vm_id, &n, NULL, NULL, NULL) || n == 0)
        return;
    vmb_splice_close_tag(console->splice, vm_id, reason);
    queue_event(console, vm_id, 0, NULL, 0, 0, reason);
}

/**
 * svc_console_vm_activity:
 * @console: the service
 * @vm_id: the VM
 * @ret_connections: (out): open connections
 * @ret_last_client_us: (out): wall-clock µs of the last client byte, 0 when none open
 */
void
svc_console_vm_activity(SvcConsole *console, const char *vm_id, unsigned *ret_connections,
                        gint64 *ret_last_client_us)
{
    unsigned n = 0;
    gint64 last = 0;

    if (!vmb_splice_tag_stats(console->splice, vm_id, &n, &last, NULL, NULL)) {
        n = 0;
        last = 0;
    }
    *ret_connections = n;
    *ret_last_client_us = last;
}

/**
 * svc_console_stats:
 * @console: the service
 * @ret: (out): the relay's totals
 */
void
svc_console_stats(SvcConsole *console, VmbSpliceStats *ret)
{
    vmb_splice_stats(console->splice, ret);
}
