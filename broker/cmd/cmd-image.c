// SPDX-License-Identifier: LGPL-2.1-or-later
// `vmbroker image list`: the base images of overlay templates, from libvirt's base pool,
// with the templates that name each: what GET /api/v1/images answers, through the same
// service.
#include <stdio.h>
#include <string.h>

#include "api-render.h"
#include "cmd.h"
#include "svc-images.h"

/* The images service reads libvirt on one worker, within libvirt.call_timeout_s. */
#define CLI_LIBVIRT_WORKERS 1

static void
print_image(const SvcImage *img)
{
    g_autofree char *names = NULL;
    GString *s = g_string_new(NULL);

    for (guint i = 0; i < img->templates->len; i++)
        g_string_append_printf(s, "%s%s", i ? "," : "", (const char *) img->templates->pdata[i]);
    names = g_string_free(s, FALSE);
    printf("%-40s %-6s %14" G_GUINT64_FORMAT " %14" G_GUINT64_FORMAT " %s\n", img->image->name,
           img->image->format ? img->image->format : "?", img->image->capacity,
           img->image->allocation, names[0] ? names : "-");
}

/**
 * cmd_image:
 * @config_path: (nullable): config file
 * @argc: argument count, argv[0] is "image"
 * @argv: arguments: list [--json]
 *
 * Returns: the exit status.
 */
int
cmd_image(const char *config_path, int argc, char **argv)
{
    gboolean json = FALSE;
    GOptionEntry entries[] = {
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print JSON (the API's image objects)", NULL },
        G_OPTION_ENTRY_NULL
    };
    g_autoptr(Config) cfg = NULL;
    g_autoptr(DbPool) pool = NULL;
    g_autoptr(DomHypervisor) hv = NULL;
    g_autoptr(VmbBounded) bounded = NULL;
    g_autoptr(SvcTemplates) templates = NULL;
    g_autoptr(SvcImages) images = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) list = NULL;
    DomTemplateSet *set;
    int ret = CMD_EXIT_OK;

    if (!cmd_parse_options("image", "list", "Lists the base images of overlay templates "
                           "(upload them with PUT /api/v1/images/NAME).",
                           entries, &argc, &argv, &ret))
        return ret;
    if (argc != 2 || strcmp(argv[1], "list") != 0) {
        cmd_fail("usage: vmbroker image list [--json]");
        return CMD_EXIT_USAGE;
    }
    cfg = cmd_load_config(config_path, CONFIG_NEEDS_DATABASE);
    if (!cfg)
        return CMD_EXIT_FAILURE;
    pool = cmd_open_pool(cfg);
    if (!(set = svc_templates_load(pool, cfg->templates_dir, &error)))
        return cmd_fail_error("image list", error);
    templates = svc_templates_new(&(SvcTemplatesOptions) { pool, cfg->templates_dir }, set);
    hv = dom_hypervisor_new(cfg->libvirt_uri);
    bounded = vmb_bounded_new(CLI_LIBVIRT_WORKERS);
    images = svc_images_new(&(SvcImagesOptions) {
        .db = pool,
        .hv = hv,
        .templates = templates,
        .bounded = bounded,
        .call_timeout_s = cfg->libvirt_call_timeout_s,
        .name_prefix = cfg->libvirt_name_prefix,
        .storage_dir = cfg->storage_dir,
        .max_bytes = cfg->storage_max_image_bytes,
    });
    list = svc_images_list(images, cmd_cli_caller(), &error);
    if (!list)
        return cmd_fail_error("image list", error);
    if (json) {
        g_autoptr(json_object) out = json_object_new_array();
        for (guint i = 0; i < list->len; i++)
            json_object_array_add(out, api_render_image(list->pdata[i]));
        cmd_print_json(out);
        return CMD_EXIT_OK;
    }
    printf("%-40s %-6s %14s %14s %s\n", "NAME", "FORMAT", "SIZE", "ON DISK", "TEMPLATES");
    for (guint i = 0; i < list->len; i++)
        print_image(list->pdata[i]);
    return CMD_EXIT_OK;
}
