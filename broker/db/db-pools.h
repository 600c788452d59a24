// SPDX-License-Identifier: LGPL-2.1-or-later
// Warm pools: the sizes admins set (pools), and the guests of the pool account that wait
// to be taken (vms owned by DB_POOL_ACCOUNT).
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"
#include "db-ports.h"
#include "db-vms.h"

/* The account that owns the guests of every warm pool: an admin without a password. */
#define DB_POOL_ACCOUNT "vmbroker-pool"

typedef struct {
    char *id;
    char *template_name;
    bool current;       /* made from the template's current version */
    DbVmState state;
    bool ready;         /* running with its console ready: can be taken */
    bool busy;          /* has an active operation */
    bool saved;         /* stopped with its memory saved (memory_image): can be taken */
    double ready_s;     /* how long its console has been ready, when it is */
} DbPoolMember;

void db_pool_member_free(DbPoolMember *m);

typedef struct {
    char *id;
    char *template_name;
    GDateTime *starts_at;
    GDateTime *ends_at;
    unsigned size;
} DbPoolSchedule;

void db_pool_schedule_free(DbPoolSchedule *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DbPoolSchedule, db_pool_schedule_free)

/* Schedules a template may hold at once. */
#define DB_POOL_SCHEDULES_MAX 100

/* Template name -> size (GINT_TO_POINTER) of every size an admin set. */
GHashTable *db_pools_sizes(DbConn *conn, GError **error);
/* VMB_ERROR_NOT_FOUND for a template the database does not know. */
bool db_pools_set_size(DbConn *conn, const char *template_name, unsigned size, GError **error);
/* Adds a schedule; VMB_ERROR_TOO_MANY past DB_POOL_SCHEDULES_MAX for the template. */
DbPoolSchedule *db_pools_add_schedule(DbConn *conn, const char *template_name,
                                      GDateTime *starts_at, GDateTime *ends_at, unsigned size,
                                      GError **error);
/* The schedules not ended yet, by template and start. */
GPtrArray *db_pools_schedules(DbConn *conn, GError **error);
/* Template name -> the largest size (GINT_TO_POINTER) of its schedules that hold now or
 * start within @lead_s; schedules that ended are deleted first. */
GHashTable *db_pools_scheduled(DbConn *conn, unsigned lead_s, GError **error);
/* The pool account's VMs, oldest first. */
GPtrArray *db_pools_members(DbConn *conn, GError **error);

/* --- inside a transaction --- */
/* Locks a ready guest of @template_name on an enabled host that no operation holds (a
 * running one before a saved one, the longest ready first; only a saved one when
 * @saved_only) and returns its id, and in @ret_saved whether it is saved; NULL without an
 * error when there is none. */
char *db_pools_claim(DbConn *conn, const char *template_name,
                     bool saved_only, bool *ret_saved, GError **error);
/* Records that the guest @id, stopped now, waits with its memory saved. */
bool db_pools_mark_saved(DbConn *conn, const char *id, GError **error);
/* Whether VM @id still belongs to the pool account; its row is then locked. */
bool db_pools_lock_member(DbConn *conn, const char *id, bool *ret_member, GError **error);
/* Gives the claimed guest @id to @owner_id, running: its clocks (started, console ready,
 * last activity) start now; a guest @restored from its memory image gets its new ports. VMB_ERROR_CONFLICT at the owner's running limit. */
bool db_pools_hand_over(DbConn *conn, const char *id, const char *owner_id,
                        const DbPortPair *restored, GError **error);
