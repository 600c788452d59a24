// SPDX-License-Identifier: LGPL-2.1-or-later
// vms. The state machine lives in allowed_from[]: every transition is one UPDATE guarded by
// `state = ANY(allowed)`, so two concurrent transitions cannot both win.
#include "db-vms.h"

#include <stdlib.h>
#include <string.h>

#include "db-console-history.h"
#include "db-hosts.h"
#include "vmb-error.h"

static const char *const state_names[] = {
    [DB_VM_CREATING] = "creating",
    [DB_VM_RUNNING] = "running",
    [DB_VM_PAUSED] = "paused",
    [DB_VM_STOPPING] = "stopping",
    [DB_VM_STOPPED] = "stopped",
    [DB_VM_ERROR] = "error",
};
G_STATIC_ASSERT(G_N_ELEMENTS(state_names) == DB_VM_STATE_LAST);

/* The states each state may be entered from (as a PostgreSQL array literal). `creating` is
 * entered only by db_vms_insert and db_vms_start, which lease ports. */
static const char *const allowed_from[] = {
    [DB_VM_CREATING] = "{}",
    [DB_VM_RUNNING] = "{creating,stopping,paused}",
    [DB_VM_PAUSED] = "{running,paused}",
    [DB_VM_STOPPING] = "{creating,running,paused}",
    [DB_VM_STOPPED] = "{creating,running,paused,stopping,error}",
    [DB_VM_ERROR] = "{creating,running,paused,stopping,stopped}",
};
G_STATIC_ASSERT(G_N_ELEMENTS(allowed_from) == DB_VM_STATE_LAST);

/**
 * db_vm_state_to_string:
 * @state: a state
 *
 * Returns: its name as stored and shown by the API; "error" for a value out of range.
 */
const char *
db_vm_state_to_string(DbVmState state)
{
    if ((unsigned) state >= DB_VM_STATE_LAST)
        return state_names[DB_VM_ERROR];
    return state_names[state];
}

/**
 * db_vm_state_counts_as_running:
 * @state: a state
 *
 * Returns: whether a VM in @state counts toward the per-user running limit.
 */
bool
db_vm_state_counts_as_running(DbVmState state)
{
    return state == DB_VM_CREATING || state == DB_VM_RUNNING || state == DB_VM_PAUSED;
}

/**
 * db_vm_state_from_string:
 * @name: a state name
 * @ret_state: (out): the state
 *
 * Returns: true when @name names a state.
 */
bool
db_vm_state_from_string(const char *name, DbVmState *ret_state)
{
    for (unsigned i = 0; i < DB_VM_STATE_LAST; i++) {
        if (strcmp(name, state_names[i]) == 0) {
            *ret_state = (DbVmState) i;
            return true;
        }
    }
    return false;
}

/**
 * db_vm_free:
 * @vm: (nullable): a VM record
 */
void
db_vm_free(DbVm *vm)
{
    if (!vm)
        return;
    g_free(vm->id);
    g_free(vm->name);
    g_free(vm->owner_id);
    g_free(vm->owner_name);
    g_free(vm->template_name);
    g_free(vm->iso_id);
    g_free(vm->host_id);
    g_free(vm->host_name);
    g_free(vm->domain_uuid);
    g_free(vm->accelerator);
    g_free(vm->state_reason);
    g_strfreev(vm->disk_volumes);
    g_clear_pointer(&vm->console_last_activity_at, g_date_time_unref);
    g_free(vm->console_closed_reason);
    g_clear_pointer(&vm->console_closed_at, g_date_time_unref);
    g_clear_pointer(&vm->created_at, g_date_time_unref);
    g_clear_pointer(&vm->updated_at, g_date_time_unref);
    g_clear_pointer(&vm->started_at, g_date_time_unref);
    g_clear_pointer(&vm->stopped_at, g_date_time_unref);
    g_clear_pointer(&vm->console_ready_at, g_date_time_unref);
    g_free(vm);
}

/* Timestamps travel as microseconds since the epoch; volume names hex-encoded and
 * comma-separated, so no array or quoting syntax needs parsing here. */
#define VM_COLUMNS                                                                     \
    "v.id, v.name, v.owner_id, u.username, u.role = 'user', v.template_name,"           \
    " v.template_version,"                                                              \
    " v.iso_id, v.host_id, v.domain_uuid, v.accelerator, v.state, v.state_reason, v.vnc_port,"         \
    " v.ws_port, (SELECT string_agg(encode(convert_to(d, 'UTF8'), 'hex'), ',')"          \
    " FROM unnest(v.disk_volumes) AS d), v.console_connections, "                       \
    DB_US("v.console_last_activity_at") ", v.console_closed_reason, "                   \
    DB_US("v.console_closed_at") ", " DB_US("v.created_at") ", " DB_US("v.updated_at")   \
    ", " DB_US("v.started_at") ", " DB_US("v.stopped_at") ", " DB_US("v.console_ready_at") \
    ", (SELECT h.name FROM hosts h WHERE h.id = v.host_id)"                             \
    ", (SELECT h.reachable FROM hosts h WHERE h.id = v.host_id)"

static char **
volumes_from_hex(const char *text)
{
    g_auto(GStrv) hex = g_strsplit(text, ",", -1);
    GPtrArray *out = g_ptr_array_new();

    for (char **h = hex; *text && *h; h++) {
        size_t n = strlen(*h) / 2;
        char *s = g_malloc(n + 1);
        for (size_t i = 0; i < n; i++)
            s[i] = (char) ((g_ascii_xdigit_value((*h)[2 * i]) << 4) |
                           g_ascii_xdigit_value((*h)[2 * i + 1]));
        s[n] = '\0';
        g_ptr_array_add(out, s);
    }
    g_ptr_array_add(out, NULL);
    return (char **) g_ptr_array_free(out, FALSE);
}

static DbVm *
vm_from_row(const PGresult *res, int row)
{
    DbVm *vm = g_new0(DbVm, 1);
    int c = 0;

    vm->id = db_value_dup(res, row, c++);
    vm->name = db_value_dup(res, row, c++);
    vm->owner_id = db_value_dup(res, row, c++);
    vm->owner_name = db_value_dup(res, row, c++);
    vm->owner_is_user = PQgetvalue(res, row, c++)[0] == 't';
    vm->template_name = db_value_dup(res, row, c++);
    vm->template_version = (int) strtol(PQgetvalue(res, row, c++), NULL, 10);
    vm->iso_id = db_value_dup(res, row, c++);
    vm->host_id = db_value_dup(res, row, c++);
    vm->domain_uuid = db_value_dup(res, row, c++);
    vm->accelerator = db_value_dup(res, row, c++);
    if (!db_vm_state_from_string(PQgetvalue(res, row, c++), &vm->state))
        vm->state = DB_VM_ERROR; /* the CHECK makes this unreachable */
    vm->state_reason = db_value_dup(res, row, c++);
    vm->vnc_port = (unsigned) strtoul(PQgetvalue(res, row, c++), NULL, 10);
    vm->ws_port = (unsigned) strtoul(PQgetvalue(res, row, c++), NULL, 10);
    vm->disk_volumes = volumes_from_hex(PQgetvalue(res, row, c++));
    vm->console_connections = (unsigned) strtoul(PQgetvalue(res, row, c++), NULL, 10);
    vm->console_last_activity_at = db_value_time(res, row, c++);
    vm->console_closed_reason = db_value_dup(res, row, c++);
    vm->console_closed_at = db_value_time(res, row, c++);
    vm->created_at = db_value_time(res, row, c++);
    vm->updated_at = db_value_time(res, row, c++);
    vm->started_at = db_value_time(res, row, c++);
    vm->stopped_at = db_value_time(res, row, c++);
    vm->console_ready_at = db_value_time(res, row, c++);
    vm->host_name = db_value_dup(res, row, c++);
    vm->host_unreachable = PQgetvalue(res, row, c++)[0] == 'f';
    return vm;
}

/* Like db_exec, with the constraint failures of vms mapped to kinds a client can act on. */
static PGresult *
exec_vm(DbConn *conn, ExecStatusType expect, const char *sql, int n,
        const char *const *params, GError **error)
{
    g_autoptr(PGresult) res = db_exec_result(conn, sql, n, params);
    g_autoptr(GError) err = NULL;
    const char *state, *constraint;

    if (res && PQresultStatus(res) == expect)
        return g_steal_pointer(&res);
    db_set_error(conn, res, &err);
    state = db_sqlstate(res);
    constraint = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
    if (!constraint)
        constraint = "";
    if (strcmp(constraint, "vms_running_limit") == 0) {
        const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT, "%s", primary ? primary : "limit");
    } else if (strcmp(constraint, "vms_name_key") == 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT, "a VM of that name exists");
    } else if (strcmp(state, "23503") == 0 || strcmp(state, "22P02") == 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNPROCESSABLE, "%s", err->message);
    } else {
        g_propagate_error(error, g_steal_pointer(&err));
    }
    return NULL;
}

static bool
require_transaction(DbConn *conn, const char *what, GError **error)
{
    if (PQtransactionStatus(conn->pg) == PQTRANS_INTRANS)
        return true;
    g_set_error(error, VMB_ERROR, VMB_ERROR_INTERNAL, "%s must run inside a transaction", what);
    return false;
}

/* A PostgreSQL array literal of @items: every element double-quoted, " and \ escaped. */
static char *
text_array_literal(const char *const *items)
{
    GString *s = g_string_new("{");

    for (const char *const *i = items; i && *i; i++) {
        if (i != items)
            g_string_append_c(s, ',');
        g_string_append_c(s, '"');
        for (const char *p = *i; *p; p++) {
            if (*p == '"' || *p == '\\')
                g_string_append_c(s, '\\');
            g_string_append_c(s, *p);
        }
        g_string_append_c(s, '"');
    }
    g_string_append_c(s, '}');
    return g_string_free(s, FALSE);
}

/**
 * db_vms_get:
 * @conn: a connection
 * @id: the VM's id
 * @owner_id: (nullable): the caller when not an admin: other owners' VMs are invisible
 * @error: return location for an error
 *
 * Returns: (transfer full): the VM, or NULL (VMB_ERROR_NOT_FOUND when absent or invisible).
 */
DbVm *
db_vms_get(DbConn *conn, const char *id, const char *owner_id, GError **error)
{
    const char *params[] = { id, owner_id };
    g_autoptr(PGresult) res = exec_vm(conn, PGRES_TUPLES_OK,
        "SELECT " VM_COLUMNS " FROM vms v JOIN users u ON u.id = v.owner_id"
        " WHERE v.id = $1 AND ($2::uuid IS NULL OR v.owner_id = $2)", 2, params, error);

    if (!res)
        return NULL;
    if (PQntuples(res) == 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_NOT_FOUND, "no VM %s", id);
        return NULL;
    }
    return vm_from_row(res, 0);
}

/**
 * db_vms_get_by_name:
 * @conn: a connection
 * @name: a libvirt domain name
 * @error: return location for an error
 *
 * Returns: (transfer full): the VM, or NULL (VMB_ERROR_NOT_FOUND when there is none).
 */
DbVm *
db_vms_get_by_name(DbConn *conn, const char *name, GError **error)
{
    const char *params[] = { name };
    g_autoptr(PGresult) res = exec_vm(conn, PGRES_TUPLES_OK,
        "SELECT " VM_COLUMNS " FROM vms v JOIN users u ON u.id = v.owner_id WHERE v.name = $1",
        1, params, error);

    if (!res)
        return NULL;
    if (PQntuples(res) == 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_NOT_FOUND, "no VM named %s", name);
        return NULL;
    }
    return vm_from_row(res, 0);
}

/**
 * db_vms_list:
 * @conn: a connection
 * @owner_id: (nullable): only this owner's VMs; NULL for all
 * @error: return location for an error
 *
 * Returns: (transfer full) (element-type DbVm): the VMs, oldest first; NULL on error.
 */
GPtrArray *
db_vms_list(DbConn *conn, const char *owner_id, GError **error)
{
    const char *params[] = { owner_id };
    g_autoptr(PGresult) res = db_exec_prepared(conn, PGRES_TUPLES_OK, "vms_list",
        "SELECT " VM_COLUMNS " FROM vms v JOIN users u ON u.id = v.owner_id"
        " WHERE $1::uuid IS NULL OR v.owner_id = $1 ORDER BY v.created_at, v.id",
        1, params, error);
    GPtrArray *vms;

    if (!res)
        return NULL;
    vms = g_ptr_array_new_with_free_func((GDestroyNotify) db_vm_free);
    for (int i = 0; i < PQntuples(res); i++)
        g_ptr_array_add(vms, vm_from_row(res, i));
    return vms;
}

/**
 * db_vms_list_unready:
 * @conn: a connection
 * @host_id: the host whose VMs to list
 * @within_s: how recent a start may be
 * @ret_requested: (out) (element-type GDateTime): for each VM, when its start was asked for
 *   (its latest create or start operation before it started; the start itself when none)
 * @error: return location for an error
 *
 * The VMs running on @host_id since at most @within_s whose console is not ready yet: the
 * watches a broker that stopped left unfinished.
 *
 * Returns: (transfer full) (element-type DbVm): the VMs, or NULL on error.
 */
GPtrArray *
db_vms_list_unready(DbConn *conn, const char *host_id, unsigned within_s,
                    GPtrArray **ret_requested, GError **error)
{
    g_autofree char *within = g_strdup_printf("%u", within_s);
    const char *params[] = { host_id, within };
    g_autoptr(PGresult) res = exec_vm(conn, PGRES_TUPLES_OK,
        "SELECT " VM_COLUMNS ", " DB_US("COALESCE((SELECT max(o.created_at) FROM operations o"
        "  WHERE o.vm_id = v.id AND o.kind IN ('create', 'start')"
        "  AND o.created_at <= v.started_at), v.started_at)")
        " FROM vms v JOIN users u ON u.id = v.owner_id"
        " WHERE v.host_id = $1 AND v.state = 'running' AND v.console_ready_at IS NULL"
        " AND v.started_at > now() - make_interval(secs => $2::int)", 2, params, error);
    GPtrArray *vms;

    if (!res)
        return NULL;
    vms = g_ptr_array_new_with_free_func((GDestroyNotify) db_vm_free);
    *ret_requested = g_ptr_array_new_with_free_func((GDestroyNotify) g_date_time_unref);
    for (int i = 0; i < PQntuples(res); i++) {
        g_ptr_array_add(vms, vm_from_row(res, i));
        g_ptr_array_add(*ret_requested, db_value_time(res, i, PQnfields(res) - 1));
    }
    return vms;
}

/* The row an INSERT ... SELECT FROM templates returned; none means no such template. */
static DbVm *
inserted_vm(const PGresult *res, const char *template_name, GError **error)
{
    if (!res)
        return NULL;
    if (PQntuples(res) == 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNPROCESSABLE, "no template '%s'",
                    template_name);
        return NULL;
    }
    return vm_from_row(res, 0);
}

/**
 * db_vms_insert:
 * @conn: a connection inside a transaction
 * @spec: what to create
 * @lease: (nullable): port probing; NULL for none
 * @error: return location for an error
 *
 * Leases a port pair on the spec's host, then inserts the VM in `creating` with them and
 * the template's current version. Nothing is left behind when the caller rolls back.
 *
 * Returns: (transfer full): the new VM, or NULL: VMB_ERROR_EXHAUSTED, VMB_ERROR_CONFLICT
 * (name taken, running limit), VMB_ERROR_UNPROCESSABLE (unknown template, ISO, owner, host).
 */
DbVm *
db_vms_insert(DbConn *conn, const DbVmSpec *spec, const DbPortLeaseOptions *lease,
              GError **error)
{
    /* The caller may choose the id, to name the domain after it before the row exists. */
    g_autofree char *id = spec->id ? g_strdup(spec->id) : g_uuid_string_random();
    g_autofree char *volumes = text_array_literal(spec->disk_volumes);
    g_autofree char *vnc = NULL, *ws = NULL;
    g_autoptr(PGresult) res = NULL;
    DbPortPair pair = { 0 };

    if (!require_transaction(conn, "db_vms_insert", error))
        return NULL;
    if (!db_hosts_check_open(conn, spec->host_id, error) ||
        !db_ports_lease_pair(conn, spec->host_id, id, lease, &pair, error))
        return NULL;
    vnc = g_strdup_printf("%u", pair.vnc);
    ws = g_strdup_printf("%u", pair.ws);
    {
        const char *params[] = { id, spec->name, spec->owner_id, spec->template_name,
                                 spec->iso_id, spec->host_id, volumes, vnc, ws };
        res = exec_vm(conn, PGRES_TUPLES_OK,
            "WITH v AS (INSERT INTO vms (id, name, owner_id, template_name, template_version,"
            "  iso_id, host_id, disk_volumes, vnc_port, ws_port)"
            " SELECT $1, $2, $3, t.name, t.version, $5, $6, $7::text[], $8::int, $9::int"
            " FROM templates t WHERE t.name = $4 RETURNING *)"
            " SELECT " VM_COLUMNS " FROM v JOIN users u ON u.id = v.owner_id",
            9, params, error);
    }
    return inserted_vm(res, spec->template_name, error);
}

/**
 * db_vms_adopt:
 * @conn: a connection
 * @spec: the domain's name, vm id (required), owner, template, host and ephemeral volumes
 * @domain_uuid: (nullable): libvirt's uuid of the domain
 * @reason: why it is in `error`, for the admin who decides
 * @error: return location for an error
 *
 * Inserts a row for a domain that has none, in `error` without ports: the domain's ports
 * were never leased here, so none are claimed; an admin stops or deletes it.
 *
 * Returns: (transfer full): the VM, or NULL (VMB_ERROR_UNPROCESSABLE, VMB_ERROR_CONFLICT).
 */
DbVm *
db_vms_adopt(DbConn *conn, const DbVmSpec *spec, const char *domain_uuid, const char *reason,
             GError **error)
{
    g_autofree char *volumes = text_array_literal(spec->disk_volumes);
    const char *params[] = { spec->id, spec->name, spec->owner_id, spec->template_name,
                             spec->host_id, volumes, domain_uuid, reason };
    g_autoptr(PGresult) res = exec_vm(conn, PGRES_TUPLES_OK,
        "WITH v AS (INSERT INTO vms (id, name, owner_id, template_name, template_version,"
        "  host_id, disk_volumes, domain_uuid, state, state_reason)"
        " SELECT $1, $2, $3, t.name, t.version, $5, $6::text[], $7, 'error', $8"
        " FROM templates t WHERE t.name = $4 RETURNING *)"
        " SELECT " VM_COLUMNS " FROM v JOIN users u ON u.id = v.owner_id",
        8, params, error);

    return inserted_vm(res, spec->template_name, error);
}

static void
set_transition_error(DbConn *conn, const char *id, DbVmState to, GError **error)
{
    const char *params[] = { id };
    g_autoptr(PGresult) res = exec_vm(conn, PGRES_TUPLES_OK,
        "SELECT state FROM vms WHERE id = $1", 1, params, error);

    if (!res)
        return;
    if (PQntuples(res) == 0)
        g_set_error(error, VMB_ERROR, VMB_ERROR_NOT_FOUND, "no VM %s", id);
    else
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT, "the VM is %s: it cannot become %s",
                    PQgetvalue(res, 0, 0), db_vm_state_to_string(to));
}

/**
 * db_vms_set_state:
 * @conn: a connection; inside a transaction when @to is DB_VM_STOPPED
 * @id: the VM
 * @to: the new state (not DB_VM_CREATING: see db_vms_start)
 * @reason: (nullable): why (reaper, admin, libvirt event ...), kept in state_reason
 * @cooldown_s: for DB_VM_STOPPED: seconds before the released ports are leasable again
 * @error: return location for an error
 *
 * Allowed: running from creating, stopping or paused; paused from running (or paused, to
 * say a new reason); stopping from creating, running or paused; stopped from anything but
 * stopped (its ports are released); error from anything but error (its ports are kept
 * until it is stopped or deleted, as QEMU may still hold them).
 *
 * Returns: (transfer full): the VM as now stored, or NULL (VMB_ERROR_CONFLICT when its
 * state forbids the move, VMB_ERROR_NOT_FOUND when there is no such VM).
 */
DbVm *
db_vms_set_state(DbConn *conn, const char *id, DbVmState to, const char *reason,
                 unsigned cooldown_s, GError **error)
{
    const char *params[] = { id, db_vm_state_to_string(to), reason, NULL };
    g_autoptr(PGresult) res = NULL;

    if ((unsigned) to >= DB_VM_STATE_LAST) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INTERNAL, "bad VM state %d", (int) to);
        return NULL;
    }
    params[3] = allowed_from[to];
    if (to == DB_VM_STOPPED && !require_transaction(conn, "db_vms_set_state(stopped)", error))
        return NULL;
    res = exec_vm(conn, PGRES_TUPLES_OK,
        "WITH v AS (UPDATE vms SET state = $2, state_reason = $3, updated_at = now(),"
        /* A resume is not a start: the lifetime counts from the start. */
        "  started_at = CASE WHEN $2 = 'running' AND state <> 'paused' THEN now()"
        "                    ELSE started_at END,"
        "  stopped_at = CASE WHEN $2 = 'stopped' THEN now() ELSE stopped_at END,"
        "  console_ready_at = CASE WHEN $2 = 'running' AND state <> 'paused' OR $2 = 'stopped'"
        "                          THEN NULL ELSE console_ready_at END,"
        "  vnc_port = CASE WHEN $2 = 'stopped' THEN NULL ELSE vnc_port END,"
        "  ws_port = CASE WHEN $2 = 'stopped' THEN NULL ELSE ws_port END,"
        /* Counts a dead broker could not take back end with the guest. */
        "  console_connections = CASE WHEN $2 = 'stopped' THEN 0"
        "                             ELSE console_connections END"
        " WHERE id = $1 AND state = ANY($4::text[]) RETURNING *)"
        " SELECT " VM_COLUMNS " FROM v JOIN users u ON u.id = v.owner_id", 4, params, error);
    if (!res)
        return NULL;
    if (PQntuples(res) == 0) {
        set_transition_error(conn, id, to, error);
        return NULL;
    }
    if (to == DB_VM_STOPPED && (!db_ports_release_vm(conn, id, cooldown_s, NULL, error) ||
                                !db_console_history_close_vm(conn, id, reason ? reason : "the VM stopped",
                                                            error)))
        return NULL;
    return vm_from_row(res, 0);
}

/**
 * db_vms_start:
 * @conn: a connection inside a transaction
 * @id: a stopped VM (or one in `error` that holds no ports)
 * @lease: (nullable): port probing; NULL for none
 * @error: return location for an error
 *
 * Moves the VM back to `creating` with a freshly leased port pair on its host; the caller
 * starts the domain and then sets `running`. The running limit applies.
 *
 * Returns: (transfer full): the VM, or NULL (VMB_ERROR_CONFLICT, VMB_ERROR_NOT_FOUND,
 * VMB_ERROR_EXHAUSTED).
 */
DbVm *
db_vms_start(DbConn *conn, const char *id, const DbPortLeaseOptions *lease, GError **error)
{
    const char *params[] = { id, NULL, NULL };
    g_autoptr(PGresult) cur = NULL, res = NULL;
    g_autofree char *host_id = NULL, *vnc = NULL, *ws = NULL;
    DbPortPair pair = { 0 };

    if (!require_transaction(conn, "db_vms_start", error))
        return NULL;
    cur = exec_vm(conn, PGRES_TUPLES_OK,
        "SELECT host_id, state, vnc_port IS NULL FROM vms WHERE id = $1 FOR UPDATE",
        1, params, error);
    if (!cur)
        return NULL;
    if (PQntuples(cur) == 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_NOT_FOUND, "no VM %s", id);
        return NULL;
    }
    if (!(strcmp(PQgetvalue(cur, 0, 1), "stopped") == 0 ||
          (strcmp(PQgetvalue(cur, 0, 1), "error") == 0 &&
           strcmp(PQgetvalue(cur, 0, 2), "t") == 0))) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT, "the VM is %s: it cannot start",
                    PQgetvalue(cur, 0, 1));
        return NULL;
    }
    host_id = g_strdup(PQgetvalue(cur, 0, 0));
    if (!db_ports_lease_pair(conn, host_id, id, lease, &pair, error))
        return NULL;
    vnc = g_strdup_printf("%u", pair.vnc);
    ws = g_strdup_printf("%u", pair.ws);
    params[1] = vnc;
    params[2] = ws;
    res = exec_vm(conn, PGRES_TUPLES_OK,
        "WITH v AS (UPDATE vms SET state = 'creating', state_reason = NULL,"
        "  updated_at = now(), vnc_port = $2::int, ws_port = $3::int, saved_at = NULL"
        " WHERE id = $1 RETURNING *)"
        " SELECT " VM_COLUMNS " FROM v JOIN users u ON u.id = v.owner_id", 3, params, error);
    if (!res)
        return NULL;
    return vm_from_row(res, 0);
}

/**
 * db_vms_set_domain:
 * @conn: a connection
 * @id: the VM
 * @domain_uuid: the uuid libvirt gave the defined domain
 * @accelerator: the domain type it was defined with ("kvm", "qemu")
 * @error: return location for an error
 *
 * Returns: true on success; VMB_ERROR_NOT_FOUND when there is no such VM.
 */
bool
db_vms_set_domain(DbConn *conn, const char *id, const char *domain_uuid,
                  const char *accelerator, GError **error)
{
    const char *params[] = { id, domain_uuid, accelerator };
    g_autoptr(PGresult) res = exec_vm(conn, PGRES_COMMAND_OK,
        "UPDATE vms SET domain_uuid = $2, accelerator = $3, updated_at = now() WHERE id = $1",
        3, params, error);

    if (!res)
        return false;
    if (strcmp(PQcmdTuples(res), "1") != 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_NOT_FOUND, "no VM %s", id);
        return false;
    }
    return true;
}

/**
 * db_vms_console_adjust:
 * @conn: a connection
 * @id: the VM
 * @delta: +1 when a console connects, -1 when one goes away
 * @error: return location for an error
 *
 * Returns: true on success (also when the VM is gone by now).
 */
bool
db_vms_console_adjust(DbConn *conn, const char *id, int delta, GError **error)
{
    g_autofree char *d = g_strdup_printf("%d", delta);
    const char *params[] = { id, d };
    g_autoptr(PGresult) res = exec_vm(conn, PGRES_COMMAND_OK,
        "UPDATE vms SET console_connections = greatest(console_connections + $2::int, 0),"
        " console_last_activity_at = now() WHERE id = $1", 2, params, error);

    return res != NULL;
}

/**
 * db_vms_console_touch:
 * @conn: a connection
 * @id: the VM
 * @at: when a console client last sent bytes
 * @error: return location for an error
 *
 * Returns: true on success (also when the VM is gone by now).
 */
bool
db_vms_console_touch(DbConn *conn, const char *id, GDateTime *at, GError **error)
{
    g_autofree char *t = g_date_time_format_iso8601(at);
    const char *params[] = { id, t };
    g_autoptr(PGresult) res = exec_vm(conn, PGRES_COMMAND_OK,
        "UPDATE vms SET console_last_activity_at = $2::timestamptz WHERE id = $1"
        " AND (console_last_activity_at IS NULL OR console_last_activity_at < $2::timestamptz)",
        2, params, error);

    return res != NULL;
}

/**
 * db_vms_console_ready:
 * @conn: a connection
 * @id: the VM
 * @started_at: the start the watch was for (DbVm.started_at)
 * @at: when its screen first showed something
 * @error: return location for an error
 *
 * Records @at once per start: not for a VM that stopped, or started again, since.
 *
 * Returns: true on success; *@ret_recorded says whether the row took it.
 */
bool
db_vms_console_ready(DbConn *conn, const char *id, GDateTime *started_at, GDateTime *at,
                     bool *ret_recorded, GError **error)
{
    g_autofree char *started = g_strdup_printf(
        "%" G_GINT64_FORMAT, g_date_time_to_unix(started_at) * G_USEC_PER_SEC +
                                 g_date_time_get_microsecond(started_at));
    g_autofree char *t = g_date_time_format_iso8601(at);
    const char *params[] = { id, started, t };
    g_autoptr(PGresult) res = exec_vm(conn, PGRES_COMMAND_OK,
        "UPDATE vms SET console_ready_at = $3::timestamptz WHERE id = $1 AND state = 'running'"
        " AND console_ready_at IS NULL AND " DB_US("started_at") " = $2::bigint",
        3, params, error);

    if (res)
        *ret_recorded = strcmp(PQcmdTuples(res), "1") == 0;
    return res != NULL;
}

/**
 * db_vms_console_closed:
 * @conn: a connection
 * @id: the VM
 * @reason: why vmbroker closed the VM's console connections (at most 200 characters kept)
 * @error: return location for an error
 *
 * Returns: true on success (also when the VM is gone by now).
 */
bool
db_vms_console_closed(DbConn *conn, const char *id, const char *reason, GError **error)
{
    const char *params[] = { id, reason };
    g_autoptr(PGresult) res = exec_vm(conn, PGRES_COMMAND_OK,
        "UPDATE vms SET console_closed_reason = left($2, 200), console_closed_at = now()"
        " WHERE id = $1", 2, params, error);

    return res != NULL;
}

/**
 * db_vms_delete:
 * @conn: a connection inside a transaction
 * @id: the VM
 * @owner_id: (nullable): when set, only a VM of this owner is deleted
 * @cooldown_s: seconds before the released ports are leasable again
 * @error: return location for an error
 *
 * Releases the VM's leases and deletes its row (console tickets go with it).
 *
 * Returns: true on success; VMB_ERROR_NOT_FOUND when absent or not visible.
 */
bool
db_vms_delete(DbConn *conn, const char *id, const char *owner_id, unsigned cooldown_s,
              GError **error)
{
    const char *params[] = { id, owner_id };
    g_autoptr(PGresult) lock = NULL, del = NULL;

    if (!require_transaction(conn, "db_vms_delete", error))
        return false;
    lock = exec_vm(conn, PGRES_TUPLES_OK,
        "SELECT 1 FROM vms WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2) FOR UPDATE",
        2, params, error);
    if (!lock)
        return false;
    if (PQntuples(lock) == 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_NOT_FOUND, "no VM %s", id);
        return false;
    }
    if (!db_ports_release_vm(conn, id, cooldown_s, NULL, error))
        return false;
    del = exec_vm(conn, PGRES_COMMAND_OK, "DELETE FROM vms WHERE id = $1", 1, params, error);
    return del != NULL;
}
