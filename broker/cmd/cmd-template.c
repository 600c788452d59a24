// SPDX-License-Identifier: LGPL-2.1-or-later
// The `vmbroker template` subcommand: list the templates of the configured folder, or
// render one as domain XML. Talks to no libvirt and no database.
#include "cmd-template.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "dom-storage.h"
#include "dom-template.h"
#include "dom-xml.h"
#include "vmb-error.h"

#define USAGE                                                                            \
    "usage: vmbroker template list\n"                                                    \
    "       vmbroker template render NAME [--owner USER] [--vm-id ID] [--vnc-port P]\n"  \
    "                [--ws-port P] [--listen ADDR] [--vnc-password PW] [--iso PATH]\n"   \
    "                [--storage-dir DIR] [--domain-type kvm|qemu] [--uuid UUID]\n"       \
    "                [--guest-network NET]\n"                                            \
    "\n"                                                                                 \
    "--domain-type defaults to libvirt.domain_type; when that is auto, to kvm if this\n" \
    "user may open /dev/kvm, else qemu (serve's auto may still pick qemu: it also boots\n" \
    "a probe guest under KVM first).\n"

static int
cmd_list(const DomTemplateSet *set)
{
    printf("%-24s %-8s %7s %5s %5s  %s\n", "NAME", "KIND", "MEMORY", "VCPUS", "ISO", "DESCRIPTION");
    for (guint i = 0; i < dom_template_set_count(set); i++) {
        const DomTemplate *t = dom_template_set_nth(set, i);
        printf("%-24s %-8s %4uMiB %5u %5s  %s\n", t->name, dom_template_kind_to_string(t->kind),
               t->memory_mib, t->vcpus, dom_template_needs_iso(t) ? "user" : "-",
               t->description);
    }
    return CMD_EXIT_OK;
}

/* The daemon's `auto` asks libvirt and boots a probe guest under KVM; render talks to neither,
 * so it guesses from whether /dev/kvm is there for this user. */
static const char *
default_domain_type(const char *configured)
{
    if (configured && strcmp(configured, "auto") != 0)
        return configured;
    return access("/dev/kvm", R_OK | W_OK) == 0 ? "kvm" : "qemu";
}

/* The options of `template render`: instance values, placeholders where not given. */
typedef struct {
    char *owner, *vm_id, *uuid, *listen, *password, *iso, *storage_dir, *domain_type;
    char *guest_network;
    int vnc_port, ws_port;
} RenderArgs;

static void
render_args_clear(RenderArgs *a)
{
    g_free(a->owner);
    g_free(a->vm_id);
    g_free(a->uuid);
    g_free(a->listen);
    g_free(a->password);
    g_free(a->iso);
    g_free(a->storage_dir);
    g_free(a->domain_type);
    g_free(a->guest_network);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(RenderArgs, render_args_clear)

/* Parses the options; leaves the template name alone in argv[1].
 * Returns: CMD_EXIT_OK, or the exit status of a usage error (said already). */
static int
parse_render_args(int *argc, char ***argv, RenderArgs *a)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GOptionContext) ctx = g_option_context_new("NAME");
    const GOptionEntry entries[] = {
        { "owner", 0, 0, G_OPTION_ARG_STRING, &a->owner, "owner's user name", "USER" },
        { "vm-id", 0, 0, G_OPTION_ARG_STRING, &a->vm_id, "the VM's id", "ID" },
        { "uuid", 0, 0, G_OPTION_ARG_STRING, &a->uuid, "the domain's UUID (default: libvirt picks)", "UUID" },
        { "vnc-port", 0, 0, G_OPTION_ARG_INT, &a->vnc_port, "QEMU's VNC port", "P" },
        { "ws-port", 0, 0, G_OPTION_ARG_INT, &a->ws_port, "QEMU's websocket port", "P" },
        { "listen", 0, 0, G_OPTION_ARG_STRING, &a->listen, "address both bind", "ADDR" },
        { "vnc-password", 0, 0, G_OPTION_ARG_STRING, &a->password, "VNC password (default: none)", "PW" },
        { "iso", 0, 0, G_OPTION_ARG_FILENAME, &a->iso, "ISO for templates that boot the user's ISO", "PATH" },
        { "storage-dir", 0, 0, G_OPTION_ARG_FILENAME, &a->storage_dir, "storage.dir for disk paths", "DIR" },
        { "domain-type", 0, 0, G_OPTION_ARG_STRING, &a->domain_type, "kvm or qemu (default: libvirt.domain_type, see usage)", "TYPE" },
        { "guest-network", 0, 0, G_OPTION_ARG_STRING, &a->guest_network, "guests.network for \"isolated\" (default vmbroker-guests)", "NET" },
        { NULL },
    };

    a->vnc_port = 5900;
    a->ws_port = 5700;
    g_option_context_set_help_enabled(ctx, FALSE);
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, argc, argv, &error)) {
        cmd_fail("template render: %s", error->message);
        return CMD_EXIT_USAGE;
    }
    if (*argc != 2) {
        cmd_fail("template render: expected one template name (see --help)");
        return CMD_EXIT_USAGE;
    }
    if (a->vnc_port < 1 || a->vnc_port > 65535 || a->ws_port < 1 || a->ws_port > 65535) {
        cmd_fail("template render: ports are 1-65535");
        return CMD_EXIT_USAGE;
    }
    if (a->domain_type && strcmp(a->domain_type, "kvm") != 0 &&
        strcmp(a->domain_type, "qemu") != 0) {
        cmd_fail("template render: --domain-type is kvm or qemu");
        return CMD_EXIT_USAGE;
    }
    return CMD_EXIT_OK;
}

/* The domain XML of @t with @a's values, placeholders (plausible values that show where each
 * instance value goes) for the rest. */
static char *
render_xml(const DomTemplate *t, const char *name_prefix, const char *config_domain_type,
           RenderArgs *a, GError **error)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autofree char *created = g_date_time_format_iso8601(now);
    g_autofree char *dom_name = NULL, *disk = NULL, *backing = NULL;
    const char *owner = a->owner ? a->owner : "owner";
    const char *vm_id = a->vm_id ? a->vm_id : "00000000-0000-4000-8000-000000000000";
    const char *storage_dir = a->storage_dir ? a->storage_dir : "/var/lib/vmbroker";

    dom_name = dom_xml_domain_name(name_prefix, owner, vm_id);
    if (dom_template_needs_iso(t) && !a->iso)
        a->iso = g_build_filename(storage_dir, "isos", "ISO.iso", NULL);
    if (dom_template_has_disk(t)) {
        g_autofree char *vol = (t->kind == DOM_TEMPLATE_KIND_OVERLAY && t->persistent)
                                   ? dom_storage_persistent_volume_name(name_prefix, owner, t)
                                   : g_strconcat(dom_name, "-disk0.qcow2", NULL);
        disk = g_build_filename(storage_dir, "disks", vol, NULL);
    }
    if (t->kind == DOM_TEMPLATE_KIND_OVERLAY)
        backing = g_build_filename(storage_dir, "base", t->base_image, NULL);
    return dom_xml_build_string(t, &(DomInstance) {
        .domain_type = a->domain_type ? a->domain_type : default_domain_type(config_domain_type),
        .name = dom_name,
        .uuid = a->uuid,
        .vm_id = vm_id,
        .owner = owner,
        .created = created,
        .iso_path = a->iso,
        .disk_path = disk,
        .backing_path = backing,
        .backing_format = t->kind == DOM_TEMPLATE_KIND_OVERLAY
                              ? dom_template_image_format_to_string(t->base_format)
                              : NULL,
        .disk_ephemeral = t->kind == DOM_TEMPLATE_KIND_ISO || !t->persistent,
        .vnc_port = (guint) a->vnc_port,
        .ws_port = (guint) a->ws_port,
        .listen = a->listen ? a->listen : "127.0.0.1",
        .vnc_password = a->password,
        .guest_network = a->guest_network ? a->guest_network : "vmbroker-guests",
    }, error);
}

static int
cmd_render(const DomTemplateSet *set, const char *name_prefix, const char *config_domain_type,
           int argc, char **argv)
{
    g_auto(RenderArgs) a = { 0 };
    g_autoptr(GError) error = NULL;
    g_autofree char *xml = NULL;
    const DomTemplate *t;
    int status = parse_render_args(&argc, &argv, &a);

    if (status != CMD_EXIT_OK)
        return status;
    t = dom_template_set_lookup(set, argv[1]);
    if (!t) {
        cmd_fail("template render: no template '%s' (see 'vmbroker template list')",
                 argv[1]);
        return CMD_EXIT_FAILURE;
    }
    xml = render_xml(t, name_prefix, config_domain_type, &a, &error);
    if (!xml) {
        cmd_fail("template render: %s", error->message);
        return CMD_EXIT_FAILURE;
    }
    fputs(xml, stdout);
    return CMD_EXIT_OK;
}

/**
 * cmd_template_main:
 * @templates_dir: the configured templates folder
 * @name_prefix: the configured libvirt.name_prefix
 * @domain_type: (nullable): the configured libvirt.domain_type ("auto", "kvm" or "qemu"),
 *   render's default for --domain-type; NULL is taken as "auto"
 * @argc: number of arguments
 * @argv: the arguments, argv[0] being "template"
 *
 * Runs `vmbroker template list`, `vmbroker template render NAME ...` or `--help`.
 * Errors are one line on stderr.
 *
 * Returns: the exit status: 0 success, 1 failure, 2 bad usage.
 */
int
cmd_template_main(const char *templates_dir, const char *name_prefix, const char *domain_type,
                  int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DomTemplateSet) set = NULL;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? CMD_EXIT_USAGE : CMD_EXIT_OK;
    }
    if (strcmp(argv[1], "list") != 0 && strcmp(argv[1], "render") != 0) {
        cmd_fail("template: unknown command '%s' (see --help)", argv[1]);
        return CMD_EXIT_USAGE;
    }
    /* Anywhere after the command ("render memtest --help"): the usage, nothing loaded. */
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(USAGE, stdout);
            return CMD_EXIT_OK;
        }
    }
    set = dom_template_set_load_dir(templates_dir, &error);
    if (!set) {
        cmd_fail("template: %s", error->message);
        return CMD_EXIT_FAILURE;
    }
    if (strcmp(argv[1], "list") == 0) {
        if (argc != 2) {
            cmd_fail("template list: takes no arguments");
            return CMD_EXIT_USAGE;
        }
        return cmd_list(set);
    }
    return cmd_render(set, name_prefix, domain_type, argc - 1, argv + 1);
}

/**
 * cmd_template:
 * @config_path: (nullable): config file
 * @argc: argument count, argv[0] is "template"
 * @argv: arguments
 *
 * `vmbroker template list|render`: needs no database, nor database.url.
 *
 * Returns: the exit status.
 */
int
cmd_template(const char *config_path, int argc, char **argv)
{
    g_autoptr(Config) cfg = NULL;

    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return cmd_template_main(NULL, NULL, NULL, argc, argv); /* usage needs no config */
    /* Templates are files: an admin renders them where there is no PostgreSQL. */
    cfg = cmd_load_config(config_path, CONFIG_NEEDS_NOTHING);
    if (!cfg)
        return CMD_EXIT_FAILURE;
    return cmd_template_main(cfg->templates_dir, cfg->libvirt_name_prefix,
                             dom_accel_mode_to_string(cfg->libvirt_domain_type), argc, argv);
}
