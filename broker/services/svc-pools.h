// SPDX-License-Identifier: LGPL-2.1-or-later
// Warm pools: for each template with a pool, guests kept booted by the account
// `vmbroker-pool` for creates to take (svc-vms-take.c). A filler looks every few seconds:
// it boots what is missing (two at a time per template), deletes what is too many, stopped,
// failed or made from an older version of the template.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"
#include "db-users.h"
#include "svc-templates.h"
#include "db-pools.h"
#include "svc-vms.h"

typedef struct SvcPools SvcPools;

typedef struct {
    DbPool *db;
    SvcVms *vms;
    SvcTemplates *templates;
    unsigned interval_s;        /* how often the filler looks; 0 for no filler */
} SvcPoolsOptions;

/* One template's pool, as GET /api/v1/pools shows it. */
typedef struct {
    char *template_name;
    unsigned size;       /* guests it keeps */
    unsigned ready;      /* running with the screen up: a create takes one now */
    unsigned starting;   /* being made or booting */
    unsigned saved;      /* of the ready ones: saved with their memory, restored when taken */
    GPtrArray *schedules; /* DbPoolSchedule, not ended yet, by start */
} SvcPoolInfo;

void svc_pool_info_free(SvcPoolInfo *info);

SvcPools *svc_pools_start(const SvcPoolsOptions *opts);
void svc_pools_stop(SvcPools *pools);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SvcPools, svc_pools_stop)

/* Admins only (VMB_ERROR_FORBIDDEN). Every template with a pool or whose size was set. */
GPtrArray *svc_pools_list(SvcPools *pools, const DbUser *caller, GError **error);
/* Sets a template's pool size (over its `warm_pool`); VMB_ERROR_NOT_FOUND, INVALID for a
 * template whose guests need something per user or a size over 64. */
/* Adds a schedule: from @from (RFC 3339; its guests are booted from 10 minutes before) to
 * @until the pool keeps at least @size (1 to 64) guests. */
SvcPoolInfo *svc_pools_add_schedule(SvcPools *pools, const DbUser *caller,
                                    const char *template_name, const char *from,
                                    const char *until, gint64 size, const char *remote_addr,
                                    GError **error);
SvcPoolInfo *svc_pools_set_size(SvcPools *pools, const DbUser *caller,
                                const char *template_name, gint64 size,
                                const char *remote_addr, GError **error);
