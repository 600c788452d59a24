// SPDX-License-Identifier: LGPL-2.1-or-later
// `vmbroker host`: the hypervisor hosts, through the same service as /api/v1/hosts, as the
// command line's admin caller.
#include <stdio.h>
#include <string.h>

#include "api-render.h"
#include "cmd.h"
#include "svc-hosts.h"

static const char host_usage[] =
    "vmbroker host add NAME --uri URI --console-address ADDR [--vnc-ports A-B] "
    "[--ws-ports C-D] [--memory-mib N] | list | disable NAME | enable NAME | remove NAME "
    "[--json]";

static void
print_host(const DbHost *h, bool json)
{
    if (json) {
        g_autoptr(json_object) out = api_render_host(h);
        cmd_print_json(out);
        return;
    }
    printf("host %s %s\n", h->name, h->enabled ? "enabled" : "disabled");
}

static int
host_list(SvcHosts *hosts, bool json)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) list = svc_hosts_list(hosts, cmd_cli_caller(), &error);
    g_autoptr(json_object) out = json_object_new_array();

    if (!list)
        return cmd_fail_error("host list", error);
    if (!json)
        printf("%-20s %-36s %-15s %-11s %-11s %-8s %-4s %s\n", "NAME", "URI", "CONSOLE",
               "VNC", "WS", "MEMORY", "VMS", "STATUS");
    for (guint i = 0; i < list->len; i++) {
        const DbHost *h = list->pdata[i];
        g_autofree char *vnc = g_strdup_printf("%u-%u", h->ranges.vnc_first, h->ranges.vnc_last);
        g_autofree char *ws = g_strdup_printf("%u-%u", h->ranges.ws_first, h->ranges.ws_last);
        g_autofree char *mem = h->memory_mib ? g_strdup_printf("%" G_GUINT64_FORMAT,
                                                               h->memory_mib) : g_strdup("-");

        if (json)
            json_object_array_add(out, api_render_host(h));
        else
            printf("%-20s %-36s %-15s %-11s %-11s %-8s %-4u %s%s\n", h->name, h->uri,
                   h->console_address, vnc, ws, mem, h->vms,
                   h->enabled ? "enabled" : "disabled", h->from_config ? " (config)" : "");
    }
    if (json)
        cmd_print_json(out);
    return CMD_EXIT_OK;
}

/* add, disable, enable and remove of host @name. */
static int
host_verb(SvcHosts *hosts, const char *verb, const char *name, SvcHostFields *fields,
          bool json)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DbHost) host = NULL;
    g_autofree char *what = g_strdup_printf("host %s", verb);

    if (strcmp(verb, "remove") == 0) {
        if (!svc_hosts_remove(hosts, cmd_cli_caller(), name, NULL, &error))
            return cmd_fail_error(what, error);
        if (!json)
            printf("host %s removed\n", name);
        return CMD_EXIT_OK;
    }
    if (strcmp(verb, "add") == 0)
        host = svc_hosts_add(hosts, cmd_cli_caller(), name, fields, NULL, &error);
    else {
        SvcHostFields toggle = SVC_HOST_FIELDS_INIT;

        toggle.enabled = strcmp(verb, "enable") == 0;
        host = svc_hosts_change(hosts, cmd_cli_caller(), name, &toggle, NULL, &error);
    }
    if (!host)
        return cmd_fail_error(what, error);
    print_host(host, json);
    return CMD_EXIT_OK;
}

/* Whether @argv (after the options) is a verb of `host` with its one NAME, or list alone. */
static bool
verb_valid(int argc, char **argv)
{
    static const char *const named[] = { "add", "disable", "enable", "remove", NULL };

    if (argc == 2 && strcmp(argv[1], "list") == 0)
        return true;
    return argc == 3 && g_strv_contains(named, argv[1]);
}

/**
 * cmd_host:
 * @config_path: (nullable): config file
 * @argc: argument count, argv[0] is "host"
 * @argv: arguments: add NAME --uri URI --console-address ADDR [--vnc-ports A-B]
 *   [--ws-ports C-D] [--memory-mib N] | list | disable NAME | enable NAME | remove NAME;
 *   each with --json
 *
 * Returns: the exit status.
 */
int
cmd_host(const char *config_path, int argc, char **argv)
{
    g_autofree char *uri = NULL, *console = NULL, *vnc = NULL, *ws = NULL;
    gint64 memory_mib = -1;
    gboolean json = FALSE;
    GOptionEntry entries[] = {
        { "uri", 0, 0, G_OPTION_ARG_STRING, &uri, "add: the host's libvirt URI", "URI" },
        { "console-address", 0, 0, G_OPTION_ARG_STRING, &console,
          "add: the host's IP address QEMU's consoles listen on", "ADDR" },
        { "vnc-ports", 0, 0, G_OPTION_ARG_STRING, &vnc, "add: VNC ports (5900-5999)", "A-B" },
        { "ws-ports", 0, 0, G_OPTION_ARG_STRING, &ws, "add: websocket ports (5700-5799)",
          "C-D" },
        { "memory-mib", 0, 0, G_OPTION_ARG_INT64, &memory_mib,
          "add: guests' memory there at most (default: no budget)", "N" },
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print JSON (the API's shapes)" },
        G_OPTION_ENTRY_NULL
    };
    g_autoptr(Config) cfg = NULL;
    g_autoptr(DbPool) pool = NULL;
    g_autoptr(SvcHosts) hosts = NULL;
    int ret = CMD_EXIT_OK;

    if (!cmd_parse_options("host", "add|list|disable|enable|remove [NAME]",
                           "Manages the hypervisor hosts. A disabled host takes no new VMs; "
                           "a host is removed only without VMs. The config file's host "
                           "(local) follows the config.", entries, &argc, &argv, &ret))
        return ret;
    if (!verb_valid(argc, argv) || memory_mib < -1) {
        cmd_fail("usage: %s", host_usage);
        return CMD_EXIT_USAGE;
    }
    cfg = cmd_load_config(config_path, CONFIG_NEEDS_DATABASE);
    if (!cfg)
        return CMD_EXIT_FAILURE;
    pool = cmd_open_pool(cfg);
    hosts = svc_hosts_new(&(SvcHostsOptions) { .db = pool });
    if (strcmp(argv[1], "list") == 0)
        return host_list(hosts, json);
    return host_verb(hosts, argv[1], argv[2], &(SvcHostFields) {
        .uri = uri, .console_address = console, .vnc_ports = vnc, .ws_ports = ws,
        .memory_mib = memory_mib, .enabled = -1 }, json);
}
