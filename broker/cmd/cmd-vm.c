// SPDX-License-Identifier: LGPL-2.1-or-later
// `vmbroker vm`: list, show, start, stop, reboot and delete VMs from the host's shell, through
// the same VM service as the API (its rules, claims and audit rows), as the command line's
// admin caller. It opens its own libvirt connection, as `serve` does.
#include <stdio.h>
#include <string.h>

#include "api-render.h"
#include "cmd.h"
#include "db-hosts.h"
#include "svc-vms.h"

/* libvirt work of one command at once: it runs one verb on one VM. */
#define CLI_LIBVIRT_WORKERS 2

/* What a vm verb runs on, freed in the reverse of the order it is made in. */
typedef struct {
    Config *cfg;
    DbPool *pool;
    DomTemplateSet *templates;
    char *host_id;
    DomHypervisor *hv;
    SvcAccel *accel;
    VmbBounded *bounded;
    SvcVms *vms;      /* freed first: it waits for a stop under way */
    bool json;        /* --json */
} VmCtx;

static void
vm_ctx_clear(VmCtx *c)
{
    g_clear_pointer(&c->vms, svc_vms_free);
    g_clear_pointer(&c->bounded, vmb_bounded_free);
    g_clear_pointer(&c->accel, svc_accel_free);
    g_clear_pointer(&c->hv, dom_hypervisor_free);
    g_clear_pointer(&c->host_id, g_free);
    g_clear_pointer(&c->templates, dom_template_set_free);
    g_clear_pointer(&c->pool, db_pool_free);
    g_clear_pointer(&c->cfg, config_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(VmCtx, vm_ctx_clear)

/* The database, the templates, this host's row and the VM service (which connects to libvirt
 * when it needs to); with @accel also the accelerator decided now, as a start needs. */
static bool
vm_ctx_open(VmCtx *c, bool accel, GError **error)
{
    const Config *cfg = c->cfg;
    g_autoptr(DbConn) conn = NULL;

    c->pool = cmd_open_pool(cfg);
    c->templates = dom_template_set_load_dir(cfg->templates_dir, error);
    if (!c->templates || !(conn = db_pool_acquire(c->pool, error)) ||
        !db_hosts_ensure(conn, "local", cfg->libvirt_uri, &c->host_id, error))
        return false;
    g_clear_pointer(&conn, db_conn_release);
    c->hv = dom_hypervisor_new(cfg->libvirt_uri);
    c->accel = svc_accel_new(&(SvcAccelOptions) {
        .hv = c->hv,
        .mode = cfg->libvirt_domain_type,
        .name_prefix = cfg->libvirt_name_prefix,
        .storage_dir = cfg->storage_dir,
        .timeout_ms = cfg->libvirt_probe_timeout_ms,
    });
    c->bounded = vmb_bounded_new(CLI_LIBVIRT_WORKERS);
    if (accel) {
        g_autoptr(virConnect) vc = dom_hypervisor_get(c->hv, error);
        if (!vc)
            return false;
        svc_accel_refresh(c->accel, vc, true);
    }
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
        .bounded = c->bounded,
        .call_timeout_s = cfg->libvirt_call_timeout_s,
        .max_running_per_user = cfg->limits_max_running_per_user,
        .host_memory_mib = cfg->limits_host_memory_mib,
        .ticket_ttl_s = cfg->console_ticket_ttl_s,
    });
    return true;
}

static bool
uuid_like(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++)
        if ((i == 8 || i == 13 || i == 18 || i == 23) ? s[i] != '-' : !g_ascii_isxdigit(s[i]))
            return false;
    return true;
}

/* The VM @ref names: its id, its domain name, or that name without libvirt.name_prefix. */
static DbVm *
vm_resolve(VmCtx *c, const char *ref, GError **error)
{
    g_autoptr(DbConn) conn = NULL;
    g_autoptr(DbVm) found = NULL;
    g_autofree char *full = NULL;

    if (uuid_like(ref))
        return svc_vms_get(c->vms, cmd_cli_caller(), ref, error);
    if (!(conn = db_pool_acquire(c->pool, error)))
        return NULL;
    found = db_vms_get_by_name(conn, ref, NULL);
    if (!found) {
        full = g_strconcat(c->cfg->libvirt_name_prefix, ref, NULL);
        found = db_vms_get_by_name(conn, full, error);
    }
    /* The pool has one connection: give it back before the service takes it. */
    g_clear_pointer(&conn, db_conn_release);
    return found ? svc_vms_get(c->vms, cmd_cli_caller(), found->id, error) : NULL;
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
    g_autoptr(GPtrArray) vms = svc_vms_list(c->vms, cmd_cli_caller(), owner, &error);
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

/* show, start, stop, reboot, delete on one VM. A stop waits for the guest to be off (at
 * most libvirt.stop_timeout_s, then it is destroyed), so what is printed is the end state. */
static int
vm_act(VmCtx *c, const char *verb, const char *ref)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DbVm) vm = vm_resolve(c, ref, &error);
    g_autoptr(DbVm) after = NULL;
    g_autofree char *what = g_strdup_printf("vm %s", verb);
    const DbUser *cli = cmd_cli_caller();

    if (!vm)
        return cmd_fail_error(what, error);
    if (strcmp(verb, "show") == 0) {
        print_vm(c, vm);
        return CMD_EXIT_OK;
    }
    if (strcmp(verb, "delete") == 0) {
        if (!svc_vms_delete(c->vms, cli, vm->id, NULL, &error))
            return cmd_fail_error(what, error);
        if (c->json) {
            g_autoptr(json_object) out = json_object_new_object();
            json_object_object_add(out, "id", json_object_new_string(vm->id));
            json_object_object_add(out, "name", json_object_new_string(vm->name));
            json_object_object_add(out, "deleted", json_object_new_boolean(true));
            cmd_print_json(out);
        } else {
            printf("deleted vm %s\n", vm->name);
        }
        return CMD_EXIT_OK;
    }
    if (strcmp(verb, "start") == 0)
        after = svc_vms_start(c->vms, cli, vm->id, NULL, &error);
    else if (strcmp(verb, "stop") == 0)
        after = svc_vms_stop(c->vms, cli, vm->id, "stopped from the command line", NULL,
                             &error);
    else
        after = svc_vms_reboot(c->vms, cli, vm->id, NULL, &error);
    if (!after)
        return cmd_fail_error(what, error);
    /* svc_vms_free waits for the background stop; then read the end state. */
    g_clear_pointer(&c->vms, svc_vms_free);
    if (strcmp(verb, "stop") == 0) {
        g_autoptr(DbConn) conn = db_pool_acquire(c->pool, &error);
        g_autoptr(DbVm) end = conn ? db_vms_get(conn, vm->id, NULL, &error) : NULL;
        if (!end)
            return cmd_fail_error(what, error);
        g_clear_pointer(&after, db_vm_free);
        after = g_steal_pointer(&end);
    }
    if (c->json)
        print_vm(c, after);
    else
        printf("vm %s: %s\n", after->name, db_vm_state_to_string(after->state));
    return CMD_EXIT_OK;
}

static const char vm_usage[] =
    "usage: vmbroker vm list [--owner USER] [--state STATE] | "
    "vm show|start|stop|reboot|delete ID-or-NAME [--json]";

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
    gboolean json = FALSE;
    GOptionEntry entries[] = {
        { "owner", 0, 0, G_OPTION_ARG_STRING, &owner, "list: only USER's VMs", "USER" },
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
                           "Lists VMs and acts on one, as an admin, through the same rules "
                           "and audit log as the API. A VM is named by its id, its libvirt "
                           "name, or that name without libvirt.name_prefix.",
                           entries, &argc, &argv, &ret))
        return ret;
    list = argc == 2 && strcmp(argv[1], "list") == 0;
    if (!list && !(argc == 3 && g_strv_contains(one_vm, argv[1]))) {
        cmd_fail("%s", vm_usage);
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
    /* Only a start (or the restart of a paused guest by reboot) defines a domain anew and
     * needs the accelerator decided. */
    if (!vm_ctx_open(&c, !list && (strcmp(argv[1], "start") == 0 ||
                                   strcmp(argv[1], "reboot") == 0), &error))
        return cmd_fail_error(list ? "vm list" : argv[1], error);
    return list ? vm_list(&c, owner, state) : vm_act(&c, argv[1], argv[2]);
}
