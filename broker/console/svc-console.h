// SPDX-License-Identifier: LGPL-2.1-or-later
// Consoles: redeeming one-time tickets, opening QEMU's websocket, handing the pair to the
// relay engine, and keeping count of connections and activity per VM.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"
#include "db-vms.h"
#include "dom-hypervisor.h"
#include "svc-templates.h"
#include "vmb-metrics.h"
#include "vmb-splice.h"
#include "vmb-wsupstream.h"

typedef struct SvcConsole SvcConsole;
typedef struct SvcVms SvcVms;

typedef struct {
    DbPool *db;                  /* PostgreSQL */
    DomHypervisor *hv;           /* libvirt */
    SvcVms *vms;                 /* VNC passwords, says when VMs stop */
    SvcTemplates *templates;     /* exclusive consoles */
    unsigned ticket_ttl_s;       /* console ticket lifetime, <= 60 */
    size_t buffer_size;          /* relay buffer per direction */
    VmbMetrics *metrics;         /* (nullable) connection counters */
    unsigned session_idle_s;     /* a console session unused this long ends */
    unsigned session_max_s;      /* a console session ends this long after it began */
} SvcConsoleOptions;

/* Whose access a console connection lives on: it is closed within a second of the user
 * being disabled or the credential ending (logout, revocation, expiry). */
typedef struct {
    char *user_id;     /* the ticket's user */
    char *credential;  /* (nullable) "s:"/"t:" digest of the session or token that minted it */
    char *address;     /* (nullable) the client's address, for the connection's history */
} SvcConsoleBinding;

void svc_console_binding_clear(SvcConsoleBinding *bind);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(SvcConsoleBinding, svc_console_binding_clear)

SvcConsole *svc_console_new(const SvcConsoleOptions *opts, GError **error);
void svc_console_free(SvcConsole *console);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SvcConsole, svc_console_free)

/* What opens a console page: the page ticket from console_url (which starts a console
 * session), or the cookie value of such a session. */
typedef struct {
    const char *ticket;         /* (nullable) a "page" ticket */
    const char *session_secret; /* (nullable) used when there is no ticket */
} SvcConsoleCredential;

/* What the page gets. */
typedef struct {
    char *password;           /* the VM's VNC password */
    char *ws_ticket;          /* a "ws" ticket for the same user */
    DbVm *vm;                 /* the VM */
    char *new_session_secret; /* after a ticket: the new console session's cookie value */
} SvcConsoleGrant;

/* VMB_ERROR_UNAUTHORIZED for a bad ticket or an ended session, VMB_ERROR_NOT_FOUND for a
 * deleted VM, VMB_ERROR_CONFLICT when the VM does not run. */
bool svc_console_session(SvcConsole *console, const char *vm_id, const SvcConsoleCredential *cred,
                         SvcConsoleGrant *ret, GError **error);
void svc_console_grant_clear(SvcConsoleGrant *grant);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(SvcConsoleGrant, svc_console_grant_clear)
/* Ends the console sessions on @vm_id (of @user_id only, when given) and closes its consoles. */
bool svc_console_end_sessions(SvcConsole *console, const char *vm_id, const char *user_id,
                              GError **error);
/* A one-time console ticket for @vm, usable by @user_id for @purpose ("page" or "ws"),
 * minted through @credential (nullable). */
char *svc_console_mint_ticket(SvcConsole *console, const DbVm *vm, const char *purpose,
                              const char *user_id, const char *credential, GError **error);
/* Redeems a "ws" ticket (of @caller_id when the request carried credentials), fills
 * @ret_bind (whose access the connection will live on) and queues the opening of QEMU's
 * websocket with the client's key on the relay's event loop; @done runs there later
 * (VmbSpliceConnectFunc: QEMU's side, or the error). False when refused at once (@done will
 * not run). */
bool svc_console_open(SvcConsole *console, const char *vm_id, const char *ticket,
                      const char *caller_id, const char *address, const char *ws_key,
                      const char *ws_protocol,
                      SvcConsoleBinding *ret_bind, VmbSpliceConnectFunc done, void *done_data,
                      GError **error);
/* Hands the pair to the relay; @done runs (on the relay's thread) when it ends. The
 * connection is watched for @bind's access ending (copied). */
bool svc_console_attach(SvcConsole *console, int client_sock, int upstream_fd,
                        GBytes *to_client, GBytes *to_upstream, const char *vm_id,
                        const SvcConsoleBinding *bind, VmbSpliceDoneFunc done,
                        void *done_data, GError **error);
/* Closes every console of a VM (it stopped, or exclusive mode). */
void svc_console_close_vm(SvcConsole *console, const char *vm_id, const char *reason);
/* Open connections and the time of the last client byte (g_get_real_time µs, 0: none). */
void svc_console_vm_activity(SvcConsole *console, const char *vm_id, unsigned *ret_connections,
                             gint64 *ret_last_client_us);
/* Relay totals, for /metrics. */
void svc_console_stats(SvcConsole *console, VmbSpliceStats *ret);
