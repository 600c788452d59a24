// SPDX-License-Identifier: LGPL-2.1-or-later
// Hypervisor hosts as admins manage them (`vmbroker host ...`, /api/v1/hosts): add, list,
// change, enable or disable (a disabled host takes no new VMs), remove one without VMs.
// The config file's host (`local`) follows the config; only enabling it is kept here.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-hosts.h"
#include "db-pool.h"
#include "db-users.h"

typedef struct SvcHosts SvcHosts;

typedef struct {
    DbPool *db;
} SvcHostsOptions;

/* What an add sets or a change changes: NULL strings and negative numbers leave a field as
 * it is (an add requires uri and console_address; its ranges default to 5900-5999 and
 * 5700-5799, as the config's do). */
typedef struct {
    const char *uri;
    const char *console_address;   /* an IP address */
    const char *vnc_ports;         /* FIRST-LAST */
    const char *ws_ports;
    gint64 memory_mib;             /* 0: no budget */
    int enabled;                   /* 0 or 1 */
} SvcHostFields;

#define SVC_HOST_FIELDS_INIT { .memory_mib = -1, .enabled = -1 }

SvcHosts *svc_hosts_new(const SvcHostsOptions *opts);
void svc_hosts_free(SvcHosts *hosts);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SvcHosts, svc_hosts_free)

/* Admins only (VMB_ERROR_FORBIDDEN); @caller's id NULL for the command line. */
GPtrArray *svc_hosts_list(SvcHosts *hosts, const DbUser *caller, GError **error);
DbHost *svc_hosts_add(SvcHosts *hosts, const DbUser *caller, const char *name,
                      const SvcHostFields *fields, const char *remote_addr, GError **error);
DbHost *svc_hosts_change(SvcHosts *hosts, const DbUser *caller, const char *name,
                         const SvcHostFields *fields, const char *remote_addr,
                         GError **error);
bool svc_hosts_remove(SvcHosts *hosts, const DbUser *caller, const char *name,
                      const char *remote_addr, GError **error);
