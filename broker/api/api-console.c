// SPDX-License-Identifier: LGPL-2.1-or-later
// The console: the page redeems its ticket for the VNC password and a websocket ticket;
// the websocket is checked (ticket, user, Origin, VM state) and then spliced to QEMU.
#include "api.h"

#include <string.h>
#include <unistd.h>

#include "api-common.h"
#include "api-render.h"
#include "http-problem.h"
#include "svc-console.h"
#include "vmb-log.h"

/* The console session's cookie: named apart from the sign-in cookie (which it can never
 * stand in for) and sent by the browser only to this VM's console routes. */
static const char *
console_cookie_name(const App *app)
{
    return app->secure_cookies ? "__Secure-vmb_console" : "vmb_console";
}

static char *
console_cookie(const App *app, const char *vm_id, const char *value, unsigned max_age_s)
{
    return g_strdup_printf("%s=%s; Path=/api/v1/vms/%s/console; Max-Age=%u; HttpOnly; "
                           "SameSite=Strict%s", console_cookie_name(app), value, vm_id,
                           max_age_s, app->secure_cookies ? "; Secure" : "");
}

/* A cookie-borne credential needs a same-origin request, like a signed-in one. */
static HttpReply *
check_same_origin(HttpRequest *req, const App *app)
{
    const char *origin = http_request_header(req, "Origin");
    const char *fetch_site = http_request_header(req, "Sec-Fetch-Site");
    g_autofree char *ours = api_public_origin(app);

    if (origin ? strcmp(origin, ours) == 0 : (fetch_site && strcmp(fetch_site, "same-origin") == 0))
        return NULL;
    return http_problem_kind(VMB_ERROR_FORBIDDEN, "Cross-site request refused: the Origin is not "
                             "this site's.", NULL);
}

static HttpReply *
session_reply(const App *a, const char *vm_id, SvcConsoleGrant *grant)
{
    g_autoptr(json_object) out = json_object_new_object();
    g_autofree char *ws_path = g_strdup_printf("/api/v1/vms/%s/console/ws?ticket=%s",
                                               grant->vm->id, grant->ws_ticket);
    HttpReply *reply;

    json_object_object_add(out, "password", json_object_new_string(grant->password));
    json_object_object_add(out, "ws_path", json_object_new_string(ws_path));
    json_object_object_add(out, "vm", api_render_vm(grant->vm));
    json_object_object_add(out, "session_idle_s",
                           json_object_new_int64(a->cfg->console_session_idle_s));
    reply = http_reply_json(200, out);
    http_reply_add_header(reply, "Cache-Control", "no-store");
    if (grant->new_session_secret) {
        g_autofree char *cookie = console_cookie(a, vm_id, grant->new_session_secret,
                                                 a->cfg->console_session_max_s);
        http_reply_add_header(reply, "Set-Cookie", cookie);
    }
    return reply;
}

/**
 * api_console_session:
 * @req: POST /api/v1/vms/{id}/console/session {ticket?}
 * @app: the daemon's state
 *
 * The ticket is the credential: the portal's student has no account to sign in with. A
 * redeemed ticket starts a console session (an HttpOnly, SameSite=Strict cookie scoped to
 * this VM's console paths); without a ticket that cookie is the credential, so a reload, a
 * second tab or a reconnect needs no new link.
 *
 * Returns: 200 {password, ws_path, vm, session_idle_s}; 401 (cookie cleared) when the
 * session ended; 404 for a deleted VM; 409 when the VM does not run.
 */
HttpReply *
api_console_session(HttpRequest *req, void *app)
{
    App *a = app;
    g_autoptr(json_object) body = NULL;
    g_autoptr(GError) error = NULL;
    g_auto(SvcConsoleGrant) grant = { 0 };
    const char *vm_id = http_request_param(req, "id");
    SvcConsoleCredential cred = { 0 };
    HttpReply *reply = api_json_body(req, &body);

    if (reply)
        return reply;
    if (!api_json_string(body, "ticket", false, &cred.ticket, &error))
        return api_error(req, error);
    if (!cred.ticket) {
        if ((reply = check_same_origin(req, a)))
            return reply;
        cred.session_secret = http_request_cookie(req, console_cookie_name(a));
    }
    if (!svc_console_session(a->console, vm_id, &cred, &grant, &error)) {
        reply = api_error(req, error);
        if (!cred.ticket && vmb_error_kind(error) == VMB_ERROR_UNAUTHORIZED) {
            g_autofree char *gone = console_cookie(a, vm_id, "", 0);
            http_reply_add_header(reply, "Set-Cookie", gone);
        }
        return reply;
    }
    return session_reply(a, vm_id, &grant);
}

/**
 * api_console_sessions_end:
 * @req: DELETE /api/v1/vms/{id}/console/sessions
 * @app: the daemon's state
 *
 * Whoever may manage the VM (its owner, an admin, a service account) ends the console
 * sessions on it and closes its open consoles: a portal withdraws the access it gave.
 *
 * Returns: 204.
 */
HttpReply *
api_console_sessions_end(HttpRequest *req, void *app)
{
    App *a = app;
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(DbVm) vm = NULL;
    HttpReply *reply = api_authenticate(req, a, &caller);

    if (reply)
        return reply;
    vm = svc_vms_get(a->vms, caller->user, http_request_param(req, "id"), &error);
    if (!vm || !svc_console_end_sessions(a->console, vm->id, NULL, &error))
        return api_error(req, error);
    return http_reply_empty(204);
}

typedef struct {
    SvcConsole *console;
    char *vm_id;
    SvcConsoleBinding bind; /* whose access the connection lives on */
    int upstream_fd;   /* owned until handed to the relay */
    GBytes *to_client; /* QEMU's bytes past its handshake */
} ConsoleHandover;

static void
handover_free(void *data)
{
    ConsoleHandover *h = data;

    if (h->upstream_fd >= 0)
        close(h->upstream_fd);
    if (h->to_client)
        g_bytes_unref(h->to_client);
    svc_console_binding_clear(&h->bind);
    g_free(h->vm_id);
    g_free(h);
}

static void
console_done(void *handle)
{
    http_upgrade_close(handle);
}

/* Runs in libmicrohttpd's thread right after the 101: must not block. */
static void
console_upgraded(void *data, int sock, const void *extra, size_t extra_len, void *handle)
{
    ConsoleHandover *h = data;
    g_autoptr(GBytes) to_upstream = extra_len ? g_bytes_new(extra, extra_len) : NULL;
    g_autoptr(GError) error = NULL;
    int fd = h->upstream_fd;

    h->upstream_fd = -1; /* the relay owns it now, even if it refuses the pair */
    if (!svc_console_attach(h->console, sock, fd, h->to_client, to_upstream, h->vm_id,
                            &h->bind, console_done, handle, &error)) {
        vmb_warning("console of VM %s: %s", h->vm_id, error->message);
        http_upgrade_close(handle);
    }
    handover_free(h);
}

/* A websocket request waiting for the relay's connect to QEMU. */
typedef struct {
    SvcConsole *console;
    char *vm_id;
    HttpDeferred *deferred;
    SvcConsoleBinding bind;      /* set by svc_console_open() before the connect is queued */
    char *fallback_credential;   /* the request's own, if any */
} ConsoleWait;

static void
console_wait_free(ConsoleWait *w)
{
    svc_console_binding_clear(&w->bind);
    g_free(w->fallback_credential);
    g_free(w->vm_id);
    g_free(w);
}

/* The 101 that hands the client over, with QEMU's handshake answer relayed. */
static HttpReply *
upgrade_reply(ConsoleWait *w, VmbWsUpstream *up)
{
    ConsoleHandover *h = g_new0(ConsoleHandover, 1);
    HttpReply *reply;

    h->console = w->console;
    h->vm_id = g_strdup(w->vm_id);
    if (!w->bind.credential)
        w->bind.credential = g_steal_pointer(&w->fallback_credential);
    h->bind = w->bind;
    w->bind = (SvcConsoleBinding) { 0 };
    h->upstream_fd = up->fd;
    up->fd = -1;
    h->to_client = up->leftover ? g_bytes_ref(up->leftover) : NULL;
    reply = http_reply_upgrade(console_upgraded, h, handover_free);
    http_reply_add_header(reply, "Upgrade", "websocket");
    http_reply_add_header(reply, "Sec-WebSocket-Accept", up->accept);
    if (up->protocol)
        http_reply_add_header(reply, "Sec-WebSocket-Protocol", up->protocol);
    return reply;
}

/* Runs on the relay's thread once QEMU answered or failed: the suspended request resumes. */
static void
console_opened(VmbWsUpstream *up, const GError *error, void *data)
{
    ConsoleWait *w = data;
    HttpReply *reply;

    if (up) {
        reply = upgrade_reply(w, up);
        vmb_wsupstream_clear(up);
    } else {
        if (http_problem_status(vmb_error_kind(error)) >= 500)
            vmb_warning("console of VM %s: %s", w->vm_id, error->message);
        reply = http_problem_from_error(error, NULL);
    }
    http_deferred_finish(w->deferred, reply);
    console_wait_free(w);
}

static bool
header_has_token(const char *value, const char *token)
{
    g_auto(GStrv) parts = value ? g_strsplit(value, ",", -1) : NULL;

    for (char **p = parts; p && *p; p++)
        if (g_ascii_strcasecmp(g_strstrip(*p), token) == 0)
            return true;
    return false;
}

/* The caller named by the request's credentials, if any; a bad bearer token is refused. */
static HttpReply *
optional_caller(HttpRequest *req, App *a, ApiCaller **ret_caller)
{
    if (http_request_header(req, "Authorization") ||
        (http_request_cookie(req, api_session_cookie(a)) &&
         http_request_header(req, "Authorization") == NULL)) {
        HttpReply *reply = api_authenticate(req, a, ret_caller);
        /* A stale session cookie is no reason to refuse: the ticket is the credential. */
        if (reply && !http_request_header(req, "Authorization")) {
            http_reply_free(reply);
            *ret_caller = NULL;
            return NULL;
        }
        return reply;
    }
    return NULL;
}

/**
 * api_console_ws:
 * @req: GET /api/v1/vms/{id}/console/ws?ticket=T (a websocket upgrade)
 * @app: the daemon's state
 *
 * Every refusal happens before QEMU is contacted: not a websocket (400/426), a foreign
 * Origin (403; no Origin only for bearer-token clients), a bad, used or expired ticket or
 * another user's (401/403), a VM that does not run (409).
 *
 * The request is then suspended (it holds no thread) while the relay connects to QEMU.
 *
 * Returns: 101 with QEMU's Sec-WebSocket-Accept, then the bytes flow through the relay; 502
 * or 503 when QEMU fails or is late, 429 when too many viewers of the VM connect at once.
 */
HttpReply *
api_console_ws(HttpRequest *req, void *app)
{
    App *a = app;
    g_autoptr(ApiCaller) caller = NULL;
    g_autoptr(GError) error = NULL;
    const char *ticket = http_request_query(req, "ticket");
    const char *origin = http_request_header(req, "Origin");
    const char *key = http_request_header(req, "Sec-WebSocket-Key");
    const char *version = http_request_header(req, "Sec-WebSocket-Version");
    g_autofree char *ours = NULL;
    ConsoleWait *w;
    HttpReply *reply;

    if (!header_has_token(http_request_header(req, "Upgrade"), "websocket") ||
        !header_has_token(http_request_header(req, "Connection"), "upgrade") || !key)
        return http_problem_kind(VMB_ERROR_INVALID, "This is a websocket endpoint.", NULL);
    if (!version || strcmp(version, "13") != 0) {
        reply = http_problem_kind(VMB_ERROR_UPGRADE_REQUIRED, "Only websocket version 13 is spoken here.", NULL);
        http_reply_add_header(reply, "Sec-WebSocket-Version", "13");
        return reply;
    }
    if ((reply = optional_caller(req, a, &caller)))
        return reply;
    ours = api_public_origin(a);
    if (origin ? strcmp(origin, ours) != 0 : !(caller && caller->kind == API_AUTH_TOKEN))
        return http_problem_kind(VMB_ERROR_FORBIDDEN, "Cross-site console connections are refused.", NULL);
    if (!ticket)
        return http_problem_kind(VMB_ERROR_UNAUTHORIZED, "A console ticket is required.", NULL);
    /* Suspended until the relay has QEMU's answer: no thread waits for it. A ticket minted
     * on another replica comes without its credential here: the one this request carries
     * (the page's session cookie) is the next best thing to watch. */
    w = g_new0(ConsoleWait, 1);
    w->console = a->console;
    w->vm_id = g_strdup(http_request_param(req, "id"));
    w->fallback_credential = caller ? g_strdup(caller->credential) : NULL;
    reply = http_reply_deferred(req, &w->deferred);
    if (!svc_console_open(a->console, w->vm_id, ticket, caller ? caller->user->id : NULL,
                          http_request_remote_addr(req), key,
                          http_request_header(req, "Sec-WebSocket-Protocol"), &w->bind,
                          console_opened, w, &error)) {
        http_deferred_finish(w->deferred, api_error(req, error));
        console_wait_free(w);
    }
    return reply;
}

static GPtrArray *
list_connections(App *a, const DbUser *caller, HttpRequest *req, GError **error)
{
    return svc_vms_connections(a->vms, caller, http_request_param(req, "id"), error);
}

static json_object *
render_connection(gconstpointer item)
{
    return api_render_connection(item);
}

/**
 * api_vms_connections:
 * @req: GET /api/v1/vms/{id}/connections
 * @app: the daemon's state
 *
 * Returns: 200 [connection], newest first (the VM's last 100 console connections: who,
 *   from where, opened, closed, why, bytes each way).
 */
HttpReply *
api_vms_connections(HttpRequest *req, void *app)
{
    return api_list_reply(req, app, list_connections, render_connection);
}
