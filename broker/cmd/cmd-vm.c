// SPDX-License-Identifier: LGPL-2.1-or-later
// `vmbroker vm`: list, show, start, stop, reboot and delete VMs from the host's shell, through
// the same VM service as the API (its rules, operations and audit rows), as the command line's
// admin account. A start, stop, reboot or delete is an operation queued like the API's; a
// running `vmbroker serve` (woken by the queue's NOTIFY) carries it out, and the command waits
// for its end. It touches no libvirt itself.
#include <stdio.h>
#include <string.h>

#include "api-render.h"
#include "cmd.h"
#include "db-hosts.h"
#include "svc-users.h"
#include "svc-vms.h"

/* What the service's VNC password reads would use; the command line reads none. */
#define CLI_LIBVIRT_WORKERS 1
/* How often the command looks at the operation it waits for. */
#define CLI_POLL_MS 200

/* What a vm verb runs on, freed in the reverse of the order it is made in. */
typedef struct {
    Config *cfg;
    DbPool *pool;
    SvcUsers *users;
    SvcTemplates *templates;
    char *host_id;
    DomHypervisor *hv;
    SvcAccel *accel;
    VmbBounded *bounded;
    SvcOps *ops;      /* never started: this process queues, a broker runs */
    SvcVms *vms;
    DbUser *account;  /* the command line's admin account, fetched for an operation */
    const DbUser *cli; /* who asks: cmd_cli_caller() to read, the account to queue */
    bool json;        /* --json */
    bool wait;        /* wait for the operation's end (not --no-wait) */
    unsigned timeout_s; /* for so long at most (--timeout) */
} VmCtx;

static void
vm_ctx_clear(VmCtx *c)
{
    g_clear_pointer(&c->account, db_user_free);
    g_clear_pointer(&c->vms, svc_vms_free);
    g_clear_pointer(&c->ops, svc_ops_free);
    g_clear_pointer(&c->bounded, vmb_bounded_free);
    g_clear_pointer(&c->accel, svc_accel_free);
    g_clear_pointer(&c->hv, dom_hypervisor_free);
    g_clear_pointer(&c->host_id, g_free);
    g_clear_pointer(&c->templates, svc_templates_free);
    g_clear_pointer(&c->users, svc_users_free);
    g_clear_pointer(&c->pool, db_pool_free);
    g_clear_pointer(&c->cfg, config_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(VmCtx, vm_ctx_clear)

/* The database, the templates, this host's row, an operation queue that is never started and
 * the VM service over them. */
static bool
vm_ctx_open(VmCtx *c, GError **error)
{
    const Config *cfg = c->cfg;
    g_autoptr(DbConn) conn = NULL;
    DomTemplateSet *set;
    DbHostSpec host = cmd_configured_host(cfg);

    c->pool = cmd_open_pool(cfg);
    c->users = cmd_open_users(cfg, c->pool);
    set = svc_templates_load(c->pool, cfg->templates_dir, error);
    if (!set)
        return false;
    c->templates = svc_templates_new(&(SvcTemplatesOptions) { c->pool, cfg->templates_dir },
                                     set);
    if (!(conn = db_pool_acquire(c->pool, error)) ||
        !db_hosts_ensure_configured(conn, &host, &c->host_id, error))
        return false;
    g_clear_pointer(&conn, db_conn_release);
    c->hv = dom_hypervisor_new(cfg->libvirt_uri); /* connects only when used: never here */
    c->accel = svc_accel_new(&(SvcAccelOptions) {
        .hv = c->hv,
        .mode = cfg->libvirt_domain_type,
        .name_prefix = cfg->libvirt_name_prefix,
        .storage_dir = cfg->storage_dir,
        .timeout_ms = cfg->libvirt_probe_timeout_ms,
    });
    c->bounded = vmb_bounded_new(CLI_LIBVIRT_WORKERS);
    c->ops = svc_ops_new(&(SvcOpsOptions) {
        .db = c->pool,
        .conninfo = cfg->database_url,
        .instance = "cli",
        .max_active_per_user = cfg->operations_max_per_user,
    });
    c->vms = svc_vms_new(&(SvcVmsOptions) {
        .db = c->pool,
        .hv = c->hv,
        .accel = c->accel,
        .templates = c->templates,
        .host_id = c->host_id,
        .name_prefix = cfg->libvirt_name_prefix,
        .console_listen = cfg->console_listen,
        .port_cooldown_s = cfg->console_port_cooldown_s,
        .port_quarantine_s = cfg->console_port_quarantine_s,
        .stop_timeout_s = cfg->libvirt_stop_timeout_s,
        .ops = c->ops,
        .bounded = c->bounded,
        .call_timeout_s = cfg->libvirt_call_timeout_s,
        .max_running_per_user = cfg->limits_max_running_per_user,
        .snapshots_per_vm = cfg->limits_snapshots_per_vm,
        .snapshots_per_user = cfg->limits_snapshots_per_user,
        .snapshot_disk_gib = cfg->limits_snapshot_disk_gib,
        .snapshot_gib_per_user = cfg->limits_snapshot_gib_per_user,
        .disk_gib_per_user = cfg->limits_disk_gib_per_user,
    });
    c->cli = cmd_cli_caller();
    return true;
}

/* The VM @ref names: its id, its domain name, or that name without libvirt.name_prefix. */
static DbVm *
vm_resolve(VmCtx *c, const char *ref, GError **error)
{
    g_autoptr(DbConn) conn = NULL;
    g_autoptr(DbVm) found = NULL;
    g_autofree char *full = NULL;

    if (g_uuid_string_is_valid(ref))
        return svc_vms_get(c->vms, c->cli, ref, error);
    if (!(conn = db_pool_acquire(c->pool, error)))
        return NULL;
    found = db_vms_get_by_name(conn, ref, NULL);
    if (!found) {
        full = g_strconcat(c->cfg->libvirt_name_prefix, ref, NULL);
        found = db_vms_get_by_name(conn, full, error);
    }
    /* The pool has one connection: give it back before the service takes it. */
    g_clear_pointer(&conn, db_conn_release);
    return found ? svc_vms_get(c->vms, c->cli, found->id, error) : NULL;
}

static void
print_vm(const VmCtx *c, const DbVm *vm)
{
    g_autoptr(json_object) o = api_render_vm(vm);

    if (c->json) {
        cmd_print_json(o);
        return;
    }
    json_object_object_foreach(o, key, val) {
        if (!json_object_is_type(val, json_type_object)) {
            printf("%s: %s\n", key, val ? json_object_get_string(val) : "-");
            continue;
        }
        json_object_object_foreach(val, k2, v2) {
            printf("%s.%s: %s\n", key, k2, v2 ? json_object_get_string(v2) : "-");
        }
    }
}

static int
vm_list(VmCtx *c, const char *owner, const char *state)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) vms = svc_vms_list(c->vms, c->cli, owner, &error);
    g_autoptr(json_object) out = json_object_new_array();

    if (!vms)
        return cmd_fail_error("vm list", error);
    if (!c->json)
        printf("%-36s %-40s %-16s %-9s %s\n", "ID", "NAME", "OWNER", "STATE", "TEMPLATE");
    for (guint i = 0; i < vms->len; i++) {
        const DbVm *vm = vms->pdata[i];
        if (state && strcmp(db_vm_state_to_string(vm->state), state) != 0)
            continue;
        if (c->json)
            json_object_array_add(out, api_render_vm(vm));
        else
            printf("%-36s %-40s %-16s %-9s %s\n", vm->id, vm->name, vm->owner_name,
                   db_vm_state_to_string(vm->state), vm->template_name);
    }
    if (c->json)
        cmd_print_json(out);
    return CMD_EXIT_OK;
}

/* Waits for operation @op_id's end (polling its row), at most c->timeout_s. Returns the
 * ended operation, or NULL with the exit status in *ret_exit. */
static DbOp *
wait_op(VmCtx *c, const char *what, const char *op_id, int *ret_exit)
{
    gint64 deadline = g_get_monotonic_time() + (gint64) c->timeout_s * G_USEC_PER_SEC;

    for (;;) {
        g_autoptr(GError) error = NULL;
        g_autoptr(DbOp) op = svc_vms_operation(c->vms, c->cli, op_id, &error);
        if (!op) {
            *ret_exit = cmd_fail_error(what, error);
            return NULL;
        }
        if (op->state == DB_OP_SUCCEEDED || op->state == DB_OP_FAILED ||
            op->state == DB_OP_CANCELLED)
            return g_steal_pointer(&op);
        if (g_get_monotonic_time() > deadline) {
            cmd_fail("%s: operation %s is still %s after %u s: a running `vmbroker serve` "
                     "carries it out (see GET /api/v1/operations/%s)", what, op_id,
                     db_op_state_to_string(op->state), c->timeout_s, op_id);
            *ret_exit = CMD_EXIT_UNAVAILABLE;
            return NULL;
        }
        g_usleep(CLI_POLL_MS * 1000);
    }
}

/* Queues @verb's operation on @vm through the service, as the API does. */
static DbOp *
queue_op(VmCtx *c, const char *verb, const DbVm *vm, DbOp **ret_active, GError **error)
{
    DbOp *op = NULL;

    if (strcmp(verb, "stop") == 0) {
        g_autoptr(DbVm) stopping = svc_vms_stop(c->vms, c->cli, vm->id,
                                                "stopped from the command line", NULL, &op,
                                                ret_active, error);
        return stopping ? op : NULL;
    }
    return svc_vms_queue(c->vms, c->cli, vm->id,
                         strcmp(verb, "start") == 0    ? DB_OP_START
                         : strcmp(verb, "reboot") == 0 ? DB_OP_REBOOT
                                                       : DB_OP_DELETE,
                         NULL, NULL, ret_active, error);
}

/* What a verb prints at its end: the VM as it is now, or {id, name, deleted} after a
 * delete, or the queued operation with --no-wait. */
static int
print_result(VmCtx *c, const char *what, const DbVm *vm, const DbOp *op, bool deleted)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DbVm) now = NULL;

    if (!c->wait || deleted) {
        g_autoptr(json_object) out = json_object_new_object();
        json_object_object_add(out, "id", json_object_new_string(vm->id));
        json_object_object_add(out, "name", json_object_new_string(vm->name));
        if (deleted)
            json_object_object_add(out, "deleted", json_object_new_boolean(true));
        json_object_object_add(out, "operation", api_render_op(op, true));
        if (c->json)
            cmd_print_json(out);
        else if (deleted)
            printf("deleted vm %s\n", vm->name);
        else
            printf("vm %s: operation %s %s\n", vm->name, op->id,
                   db_op_state_to_string(op->state));
        return CMD_EXIT_OK;
    }
    now = svc_vms_get(c->vms, c->cli, vm->id, &error);
    if (!now)
        return cmd_fail_error(what, error);
    if (c->json)
        print_vm(c, now);
    else
        printf("vm %s: %s\n", now->name, db_vm_state_to_string(now->state));
    return CMD_EXIT_OK;
}

/* show, or start, stop, reboot, delete on one VM: the operation is queued, then (unless
 * --no-wait) waited for, so what is printed is the end state. */
static int
vm_act(VmCtx *c, const char *verb, const char *ref)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DbVm) vm = vm_resolve(c, ref, &error);
    g_autoptr(DbOp) op = NULL;
    g_autoptr(DbOp) active = NULL;
    g_autoptr(DbOp) ended = NULL;
    g_autofree char *what = g_strdup_printf("vm %s", verb);
    int ret = CMD_EXIT_OK;

    if (!vm)
        return cmd_fail_error(what, error);
    if (strcmp(verb, "show") == 0) {
        print_vm(c, vm);
        return CMD_EXIT_OK;
    }
    /* An operation needs a requester with a users row: the broker that runs it acts as it. */
    if (!(c->account = svc_users_cli_account(c->users, &error)))
        return cmd_fail_error(what, error);
    c->cli = c->account;
    op = queue_op(c, verb, vm, &active, &error);
    if (!op) {
        if (active)
            g_prefix_error(&error, "operation %s (%s, %s): ", active->id,
                           db_op_kind_to_string(active->kind),
                           db_op_state_to_string(active->state));
        return cmd_fail_error(what, error);
    }
    if (!c->wait)
        return print_result(c, what, vm, op, false);
    ended = wait_op(c, what, op->id, &ret);
    if (!ended)
        return ret;
    if (ended->state != DB_OP_SUCCEEDED) {
        g_autoptr(GError) failed = svc_ops_error(ended);
        return cmd_fail_error(what, failed);
    }
    return print_result(c, what, vm, ended, strcmp(verb, "delete") == 0);
}

static const char vm_usage[] =
    "usage: vmbroker vm list [--owner USER] [--state STATE] | vm show ID-or-NAME | "
    "vm start|stop|reboot|delete ID-or-NAME [--no-wait] [--timeout SECONDS] [--json]";

/**
 * cmd_vm:
 * @config_path: (nullable): config file
 * @argc: argument count, argv[0] is "vm"
 * @argv: arguments: list [--owner U] [--state S] | show|start|stop|reboot|delete ID-or-NAME;
 *   each with --json
 *
 * Returns: the exit status (README: Command line).
 */
int
cmd_vm(const char *config_path, int argc, char **argv)
{
    static const char *const one_vm[] = { "show", "start", "stop", "reboot", "delete", NULL };
    g_autofree char *owner = NULL;
    g_autofree char *state = NULL;
    gboolean json = FALSE, no_wait = FALSE;
    gint timeout_s = 300;
    GOptionEntry entries[] = {
        { "owner", 0, 0, G_OPTION_ARG_STRING, &owner, "list: only USER's VMs", "USER" },
        { "no-wait", 0, 0, G_OPTION_ARG_NONE, &no_wait,
          "start, stop, reboot, delete: print the queued operation and return", NULL },
        { "timeout", 0, 0, G_OPTION_ARG_INT, &timeout_s,
          "wait at most SECONDS for the operation's end (default 300)", "SECONDS" },
        { "state", 0, 0, G_OPTION_ARG_STRING, &state,
          "list: only VMs in STATE (creating, running, paused, stopping, stopped, error)",
          "STATE" },
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print JSON (the API's vm objects)", NULL },
        G_OPTION_ENTRY_NULL
    };
    g_auto(VmCtx) c = { 0 };
    g_autoptr(GError) error = NULL;
    DbVmState st;
    bool list;
    int ret = CMD_EXIT_OK;

    if (!cmd_parse_options("vm", "list | show|start|stop|reboot|delete ID-or-NAME",
                           "Lists VMs and acts on one, as an admin, through the same rules, "
                           "operations and audit log as the API: a running vmbroker serve "
                           "carries out what this queues. A VM is named by its id, its "
                           "libvirt name, or that name without libvirt.name_prefix.",
                           entries, &argc, &argv, &ret))
        return ret;
    list = argc == 2 && strcmp(argv[1], "list") == 0;
    if (!list && !(argc == 3 && g_strv_contains(one_vm, argv[1]))) {
        cmd_fail("%s", vm_usage);
        return CMD_EXIT_USAGE;
    }
    if (timeout_s < 1 || timeout_s > 86400) {
        cmd_fail("vm: --timeout takes 1 to 86400 seconds");
        return CMD_EXIT_USAGE;
    }
    if (state && !db_vm_state_from_string(state, &st)) {
        cmd_fail("vm list: unknown state '%s' (see vmbroker vm --help)", state);
        return CMD_EXIT_USAGE;
    }
    c.cfg = cmd_load_config(config_path, CONFIG_NEEDS_DATABASE);
    if (!c.cfg)
        return CMD_EXIT_FAILURE;
    c.json = json;
    c.wait = !no_wait;
    c.timeout_s = (unsigned) timeout_s;
    if (!vm_ctx_open(&c, &error))
        return cmd_fail_error(list ? "vm list" : argv[1], error);
    return list ? vm_list(&c, owner, state) : vm_act(&c, argv[1], argv[2]);
}
