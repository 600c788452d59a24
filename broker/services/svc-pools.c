// SPDX-License-Identifier: LGPL-2.1-or-later
// Warm pools: their sizes, what GET /api/v1/pools shows, and the filler that keeps each
// pool at its size through the ordinary create and delete operations.
#include "svc-pools.h"

#include <string.h>

#include "db-pools.h"
#include "svc-audit.h"
#include "vmb-error.h"
#include "vmb-log.h"
#include "vmb-periodic.h"

/* Guests of one template that boot at once: a pool fills without starving the host. */
#define STARTING_MAX 2
/* A schedule's guests are booted from this long before its start, to be ready then. */
#define SCHEDULE_LEAD_S 600
/* How far ahead, and for how long, a schedule may be. */
#define SCHEDULE_AHEAD_MAX_S (366 * 24 * 3600)
#define SCHEDULE_SPAN_MAX_S (7 * 24 * 3600)

struct SvcPools {
    SvcPoolsOptions opts;
    VmbPeriodic *clock;
    char *last_warning;   /* the filler says a failure once, until it changes */
};

void
svc_pool_info_free(SvcPoolInfo *info)
{
    if (!info)
        return;
    g_free(info->template_name);
    g_clear_pointer(&info->schedules, g_ptr_array_unref);
    g_free(info);
}

/* Whether @tmpl's guests may wait in a pool: they need nothing of the user who takes one. */
static bool
poolable(const DomTemplate *tmpl)
{
    return !dom_template_needs_iso(tmpl) && !tmpl->persistent;
}

/* The size @tmpl's pool keeps: the one set through the API, else the template's, or more
 * while a schedule (@scheduled, nullable) asks for more. */
static unsigned
target_size(GHashTable *sizes, GHashTable *scheduled, const DomTemplate *tmpl)
{
    gpointer size;
    unsigned base = tmpl->warm_pool;

    if (!poolable(tmpl))
        return 0;
    if (g_hash_table_lookup_extended(sizes, tmpl->name, NULL, &size))
        base = (unsigned) GPOINTER_TO_INT(size);
    if (scheduled && g_hash_table_lookup_extended(scheduled, tmpl->name, NULL, &size))
        base = MAX(base, (unsigned) GPOINTER_TO_INT(size));
    return base;
}

static void
warn_once(SvcPools *pools, const char *what, const GError *error)
{
    g_autofree char *msg = g_strdup_printf("%s: %s", what, error->message);

    if (g_strcmp0(msg, pools->last_warning) == 0)
        return;
    vmb_warning("warm pools: %s", msg);
    g_free(pools->last_warning);
    pools->last_warning = g_steal_pointer(&msg);
}

static void
delete_guest(SvcPools *pools, const DbUser *account, const DbPoolMember *m, const char *why)
{
    g_autoptr(GError) error = NULL;

    if (m->busy)
        return;
    if (svc_vms_delete_pool_guest(pools->opts.vms, account, m->id, &error))
        vmb_info("warm pools: deleting guest %s of %s (%s)", m->id, m->template_name, why);
    else
        warn_once(pools, "deleting a guest", error);
}

static void
boot_guests(SvcPools *pools, const DbUser *account, const DomTemplate *tmpl, unsigned count)
{
    for (unsigned i = 0; i < count; i++) {
        SvcVmRequest req = { .caller = account, .template_name = tmpl->name };
        g_autoptr(GError) error = NULL;
        g_autoptr(DbOp) op = NULL;
        g_autoptr(DbVm) vm = svc_vms_create(pools->opts.vms, &req, NULL, &op, &error);

        if (!vm) {
            warn_once(pools, tmpl->name, error);
            return;
        }
    }
}

/* Saves the guests among @alive (of memory_image template @tmpl) whose screen has been up
 * for the template's memory_image_after_s: they wait on disk, holding no memory. */
static void
save_guests(SvcPools *pools, const DomTemplate *tmpl, GPtrArray *alive)
{
    for (guint i = 0; i < alive->len; i++) {
        const DbPoolMember *m = alive->pdata[i];
        g_autoptr(GError) error = NULL;

        if (!m->ready || m->busy || m->ready_s < tmpl->memory_image_after_s)
            continue;
        if (!svc_vms_save_pool_guest(pools->opts.vms, m->id, &error))
            warn_once(pools, "saving a guest", error);
    }
}

/* Brings one template's pool to its size with @members (the pool account's VMs). */
static void
fill_one(SvcPools *pools, const DbUser *account, const DomTemplate *tmpl, unsigned size,
         GPtrArray *members)
{
    g_autoptr(GPtrArray) alive = g_ptr_array_new();
    unsigned starting = 0;

    for (guint i = 0; i < members->len; i++) {
        const DbPoolMember *m = members->pdata[i];

        if (strcmp(m->template_name, tmpl->name) != 0)
            continue;
        if (!m->current)
            delete_guest(pools, account, m, "its template changed");
        else if (m->state != DB_VM_CREATING && m->state != DB_VM_RUNNING && !m->saved)
            delete_guest(pools, account, m, db_vm_state_to_string(m->state));
        else {
            g_ptr_array_add(alive, (gpointer) m);
            /* A memory_image guest holds its memory until it is saved. */
            starting += !m->saved && (!m->ready || tmpl->memory_image);
        }
    }
    /* Too many: the newest go first (the list is oldest first). */
    for (guint i = alive->len; i > size; i--)
        delete_guest(pools, account, g_ptr_array_steal_index(alive, i - 1),
                     "the pool is smaller now");
    if (alive->len < size && starting < STARTING_MAX)
        boot_guests(pools, account, tmpl, MIN(size - alive->len, STARTING_MAX - starting));
    if (tmpl->memory_image)
        save_guests(pools, tmpl, alive);
}

/* The pool account: an admin without a password (nobody signs in as it). */
static DbUser *
pool_account(DbConn *conn, GError **error)
{
    g_autoptr(DbUser) user = db_users_ensure(conn, DB_POOL_ACCOUNT, DB_ROLE_ADMIN, error);

    if (user && (user->role != DB_ROLE_ADMIN || user->password_hash || user->disabled)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT,
                    "user %s exists but is not the pools' account (an enabled admin without "
                    "a password)", DB_POOL_ACCOUNT);
        return NULL;
    }
    return g_steal_pointer(&user);
}

static void
fill(gpointer data)
{
    SvcPools *pools = data;
    g_autoptr(GError) error = NULL;
    g_autoptr(DomTemplateSet) set = svc_templates_get(pools->opts.templates);
    g_autoptr(DbConn) conn = db_pool_acquire(pools->opts.db, &error);
    g_autoptr(GHashTable) sizes = conn ? db_pools_sizes(conn, &error) : NULL;
    g_autoptr(GHashTable) scheduled = sizes ? db_pools_scheduled(conn, SCHEDULE_LEAD_S, &error)
                                            : NULL;
    g_autoptr(GPtrArray) members = scheduled ? db_pools_members(conn, &error) : NULL;
    g_autoptr(DbUser) account = NULL;
    bool any = false;

    for (guint i = 0; members && i < dom_template_set_count(set); i++)
        any = any || target_size(sizes, scheduled, dom_template_set_nth(set, i)) > 0;
    if (!members || (!any && members->len == 0)) {
        if (error)
            warn_once(pools, "reading the pools", error);
        return;
    }
    account = pool_account(conn, &error);
    g_clear_pointer(&conn, db_conn_release);
    if (!account) {
        warn_once(pools, "the pools' account", error);
        return;
    }
    for (guint i = 0; i < dom_template_set_count(set); i++) {
        const DomTemplate *tmpl = dom_template_set_nth(set, i);
        fill_one(pools, account, tmpl, target_size(sizes, scheduled, tmpl), members);
    }
    /* Guests of a template no longer offered. */
    for (guint i = 0; i < members->len; i++) {
        const DbPoolMember *m = members->pdata[i];
        if (!dom_template_set_lookup(set, m->template_name))
            delete_guest(pools, account, m, "its template is gone");
    }
}

SvcPools *
svc_pools_start(const SvcPoolsOptions *opts)
{
    SvcPools *pools = g_new0(SvcPools, 1);

    pools->opts = *opts;
    if (opts->interval_s)
        pools->clock = vmb_periodic_start("vmb-pools", opts->interval_s, fill, pools);
    return pools;
}

void
svc_pools_stop(SvcPools *pools)
{
    if (!pools)
        return;
    g_clear_pointer(&pools->clock, vmb_periodic_stop);
    g_free(pools->last_warning);
    g_free(pools);
}

static bool
require_admin(const DbUser *caller, GError **error)
{
    if (caller->role == DB_ROLE_ADMIN)
        return true;
    g_set_error(error, VMB_ERROR, VMB_ERROR_FORBIDDEN, "Only admins manage warm pools.");
    return false;
}

/* @tmpl's pool: its size now, its guests among @members, its @schedules (all templates'). */
static SvcPoolInfo *
pool_info(const DomTemplate *tmpl, unsigned size, GPtrArray *members, GPtrArray *schedules)
{
    SvcPoolInfo *info = g_new0(SvcPoolInfo, 1);

    info->template_name = g_strdup(tmpl->name);
    info->size = size;
    info->schedules = g_ptr_array_new_with_free_func((GDestroyNotify) db_pool_schedule_free);
    for (guint i = 0; i < schedules->len;) {
        const DbPoolSchedule *sch = schedules->pdata[i];
        if (strcmp(sch->template_name, tmpl->name) == 0)
            g_ptr_array_add(info->schedules, g_ptr_array_steal_index(schedules, i));
        else
            i++;
    }
    for (guint i = 0; i < members->len; i++) {
        const DbPoolMember *m = members->pdata[i];
        if (strcmp(m->template_name, tmpl->name) != 0 || !m->current)
            continue;
        /* A memory_image template's guests are ready once saved (db_pools_claim). */
        if ((m->saved || (m->ready && !tmpl->memory_image)) && !m->busy) {
            info->ready++;
            info->saved += m->saved;
        } else if (m->state == DB_VM_CREATING || m->state == DB_VM_RUNNING)
            info->starting++;
    }
    return info;
}

/**
 * svc_pools_list:
 * @pools: the service
 * @caller: an admin
 * @error: return location for an error
 *
 * Returns: (transfer full) (element-type SvcPoolInfo): the pools of the templates offered
 *   (those whose size is not 0, or was set), or NULL.
 */
GPtrArray *
svc_pools_list(SvcPools *pools, const DbUser *caller, GError **error)
{
    g_autoptr(DomTemplateSet) set = svc_templates_get(pools->opts.templates);
    g_autoptr(DbConn) conn = NULL;
    g_autoptr(GHashTable) sizes = NULL;
    g_autoptr(GHashTable) scheduled = NULL;
    g_autoptr(GPtrArray) members = NULL;
    g_autoptr(GPtrArray) schedules = NULL;
    GPtrArray *out;

    if (!require_admin(caller, error) || !(conn = db_pool_acquire(pools->opts.db, error)) ||
        !(sizes = db_pools_sizes(conn, error)) ||
        !(scheduled = db_pools_scheduled(conn, SCHEDULE_LEAD_S, error)) ||
        !(members = db_pools_members(conn, error)) ||
        !(schedules = db_pools_schedules(conn, error)))
        return NULL;
    out = g_ptr_array_new_with_free_func((GDestroyNotify) svc_pool_info_free);
    for (guint i = 0; i < dom_template_set_count(set); i++) {
        const DomTemplate *tmpl = dom_template_set_nth(set, i);
        unsigned size = target_size(sizes, scheduled, tmpl);
        SvcPoolInfo *info = pool_info(tmpl, size, members, schedules);

        if (size || g_hash_table_contains(sizes, tmpl->name) || info->schedules->len)
            g_ptr_array_add(out, info);
        else
            svc_pool_info_free(info);
    }
    return out;
}

/* Pool @template_name as svc_pools_list() shows it. */
static SvcPoolInfo *
find_pool(SvcPools *pools, const DbUser *caller, const char *template_name, GError **error)
{
    g_autoptr(GPtrArray) all = svc_pools_list(pools, caller, error);

    for (guint i = 0; all && i < all->len; i++) {
        const SvcPoolInfo *info = all->pdata[i];
        if (strcmp(info->template_name, template_name) == 0)
            return g_ptr_array_steal_index(all, i);
    }
    if (all)
        g_set_error(error, VMB_ERROR, VMB_ERROR_INTERNAL, "pool %s not listed", template_name);
    return NULL;
}

/* An admin asks for @size (@min_size to 64) guests of @template_name, which may have a pool. */
static bool
check_request(SvcPools *pools, const DbUser *caller, const char *template_name, gint64 size,
              gint64 min_size, GError **error)
{
    g_autoptr(DomTemplateSet) set = svc_templates_get(pools->opts.templates);
    const DomTemplate *tmpl = dom_template_set_lookup(set, template_name);

    if (!require_admin(caller, error))
        return false;
    if (!tmpl) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_NOT_FOUND, "No template '%s'.", template_name);
        return false;
    }
    if (size && !poolable(tmpl)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID,
                    "Template '%s' cannot have a pool: its guests need an ISO or a disk of "
                    "the user's own.", template_name);
        return false;
    }
    if (size < min_size || size > DOM_TEMPLATE_WARM_POOL_MAX) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID,
                    "'size' must be %" G_GINT64_FORMAT " to %d.", min_size,
                    DOM_TEMPLATE_WARM_POOL_MAX);
        return false;
    }
    return true;
}

/**
 * svc_pools_set_size:
 * @pools: the service
 * @caller: an admin
 * @template_name: a template offered
 * @size: 0 to 64
 * @remote_addr: (nullable): for the audit log
 * @error: return location for an error
 *
 * The filler brings the pool to @size within its next looks.
 *
 * Returns: (transfer full): the pool as it is now, or NULL.
 */
SvcPoolInfo *
svc_pools_set_size(SvcPools *pools, const DbUser *caller, const char *template_name,
                   gint64 size, const char *remote_addr, GError **error)
{
    g_autoptr(DbConn) conn = NULL;
    g_autoptr(json_object) detail = json_object_new_object();

    if (!check_request(pools, caller, template_name, size, 0, error))
        return NULL;
    json_object_object_add(detail, "size", json_object_new_int64(size));
    if (!(conn = db_pool_acquire(pools->opts.db, error)) ||
        !db_pools_set_size(conn, template_name, (unsigned) size, error) ||
        !svc_audit_write(conn, caller->id ? caller : NULL, "pool.size", "template",
                         template_name, remote_addr, detail, error))
        return NULL;
    g_clear_pointer(&conn, db_conn_release);
    return find_pool(pools, caller, template_name, error);
}

/* @text as an RFC 3339 time, for schedule member @what. */
static GDateTime *
parse_time(const char *text, const char *what, GError **error)
{
    GDateTime *t = text ? g_date_time_new_from_iso8601(text, NULL) : NULL;

    if (!t)
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID,
                    "'%s' must be a time such as 2026-12-07T09:00:00Z.", what);
    return t;
}

/**
 * svc_pools_add_schedule:
 * @pools: the service
 * @caller: an admin
 * @template_name: a template that may have a pool
 * @from: RFC 3339: when the guests must be ready (booted from SCHEDULE_LEAD_S before)
 * @until: RFC 3339: when they go away; after @from and now, at most 7 days after @from
 * @size: 1 to 64 guests
 * @remote_addr: (nullable): for the audit log
 * @error: return location for an error
 *
 * Returns: (transfer full): the pool with its schedules, or NULL.
 */
SvcPoolInfo *
svc_pools_add_schedule(SvcPools *pools, const DbUser *caller, const char *template_name,
                       const char *from, const char *until, gint64 size,
                       const char *remote_addr, GError **error)
{
    g_autoptr(GDateTime) starts = NULL, ends = NULL, now = g_date_time_new_now_utc();
    g_autoptr(DbConn) conn = NULL;
    g_autoptr(DbPoolSchedule) sch = NULL;
    g_autoptr(json_object) detail = json_object_new_object();

    if (!check_request(pools, caller, template_name, size, 1, error) ||
        !(starts = parse_time(from, "from", error)) || !(ends = parse_time(until, "until", error)))
        return NULL;
    if (g_date_time_compare(ends, starts) <= 0 || g_date_time_compare(ends, now) <= 0 ||
        g_date_time_difference(ends, starts) > SCHEDULE_SPAN_MAX_S * G_TIME_SPAN_SECOND ||
        g_date_time_difference(starts, now) > SCHEDULE_AHEAD_MAX_S * G_TIME_SPAN_SECOND) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID,
                    "'until' must be after 'from' and in the future, at most 7 days after "
                    "'from', which is at most a year ahead.");
        return NULL;
    }
    if (!(conn = db_pool_acquire(pools->opts.db, error)) ||
        !(sch = db_pools_add_schedule(conn, template_name, starts, ends, (unsigned) size,
                                      error)))
        return NULL;
    json_object_object_add(detail, "schedule", json_object_new_string(sch->id));
    json_object_object_add(detail, "from", json_object_new_string(from));
    json_object_object_add(detail, "until", json_object_new_string(until));
    json_object_object_add(detail, "size", json_object_new_int64(size));
    if (!svc_audit_write(conn, caller->id ? caller : NULL, "pool.schedule", "template",
                         template_name, remote_addr, detail, error))
        return NULL;
    g_clear_pointer(&conn, db_conn_release);
    return find_pool(pools, caller, template_name, error);
}
