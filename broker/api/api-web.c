// SPDX-License-Identifier: LGPL-2.1-or-later
// The browser side: vmbroker's own pages (web/) at / and /ui/, Debian's noVNC at /novnc/.
#include "api.h"

#include <string.h>

#include "api-common.h"
#include "http-static.h"

/* Our pages load only our own scripts and styles and talk only to this origin. */
#define WEB_CSP "default-src 'self'; connect-src 'self'; img-src 'self' data:; " \
                "style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'"

static HttpReply *
web_reply(const App *app, const char *relpath)
{
    HttpReply *reply = http_static_reply(app->cfg->http_web_dir, relpath);

    http_reply_add_header(reply, "Content-Security-Policy", WEB_CSP);
    http_reply_add_header(reply, "Referrer-Policy", "no-referrer");
    return reply;
}

/**
 * api_web_index:
 * @req: GET /
 * @app: the daemon's state
 *
 * Returns: the web UI's index.html.
 */
HttpReply *
api_web_index(HttpRequest *req, void *app)
{
    return web_reply(app, "index.html");
}

/**
 * api_web_file:
 * @req: GET /ui/{path...}
 * @app: the daemon's state
 *
 * Returns: a file of the web UI, or 404.
 */
HttpReply *
api_web_file(HttpRequest *req, void *app)
{
    return web_reply(app, http_request_param(req, "*"));
}

/**
 * api_web_novnc:
 * @req: GET /novnc/{path...}
 * @app: the daemon's state
 *
 * Stock noVNC takes its server from the page's URL (vnc.html#host=...&port=...): on our
 * origin, a crafted link would have it talk to someone else's server with our page's look.
 * Every answer under /novnc/ (404s included) carries a CSP whose connect-src is our origin
 * and its websocket twin, so the browser refuses any other. The rest of the policy leaves
 * noVNC's own scripts and styles alone.
 *
 * Returns: a file of Debian's noVNC (vnc.html and its ES modules), or 404.
 */
HttpReply *
api_web_novnc(HttpRequest *req, void *app)
{
    App *a = app;
    HttpReply *reply = http_static_reply(a->cfg->console_novnc_dir, http_request_param(req, "*"));
    g_autofree char *origin = api_public_origin(a);
    /* http://h:p -> ws://h:p, https://h:p -> wss://h:p */
    g_autofree char *ws = g_strconcat(g_str_has_prefix(origin, "https:") ? "wss" : "ws",
                                      strchr(origin, ':'), NULL);
    g_autofree char *csp = g_strdup_printf(
        "connect-src 'self' %s %s; base-uri 'none'; form-action 'none'; object-src 'none'; "
        "frame-ancestors 'none'", origin, ws);

    http_reply_add_header(reply, "Content-Security-Policy", csp);
    http_reply_add_header(reply, "Referrer-Policy", "no-referrer");
    http_reply_add_header(reply, "X-Frame-Options", "DENY");
    return reply;
}
