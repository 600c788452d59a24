// SPDX-License-Identifier: LGPL-2.1-or-later
// Template loading of domains/dom-template.c: the shipped templates, defaults, and one
// malformed file per way of being wrong, each with its own message.
#include <string.h>

#include <glib/gstdio.h>

#include "dom-template.h"
#include "test.h"
#include "vmb-error.h"

#define BAD_DIR VMB_SOURCE_ROOT "/tests/unit/data/templates-bad"
#define SHIPPED_DIR VMB_SOURCE_ROOT "/templates"

TEST(shipped_templates_load)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DomTemplateSet) set = dom_template_set_load_dir(SHIPPED_DIR, &error);
    const DomTemplate *t;

    g_assert_no_error(error);
    g_assert_cmpuint(dom_template_set_count(set), >=, 3);
    /* Listed in name order. */
    for (guint i = 1; i < dom_template_set_count(set); i++)
        g_assert_cmpstr(dom_template_set_nth(set, i - 1)->name, <, dom_template_set_nth(set, i)->name);

    t = dom_template_set_lookup(set, "memtest");
    g_assert_nonnull(t);
    g_assert_cmpint(t->kind, ==, DOM_TEMPLATE_KIND_ISO);
    g_assert_cmpstr(t->iso_path, ==, "/usr/lib/memtest86+/memtest86+x64.iso");
    g_assert_false(dom_template_needs_iso(t));
    g_assert_false(dom_template_has_disk(t));
    g_assert_cmpint(t->network, ==, DOM_NETWORK_NONE);
    g_assert_cmpuint(t->n_boot, ==, 1);
    g_assert_cmpint(t->boot[0], ==, DOM_BOOT_CDROM);

    t = dom_template_set_lookup(set, "iso-blank-disk");
    g_assert_nonnull(t);
    g_assert_true(dom_template_needs_iso(t));
    g_assert_true(dom_template_has_disk(t));
    g_assert_cmpuint(t->disk_gib, ==, 10);

    t = dom_template_set_lookup(set, "debian-overlay");
    g_assert_nonnull(t);
    g_assert_cmpint(t->kind, ==, DOM_TEMPLATE_KIND_OVERLAY);
    g_assert_cmpstr(t->base_image, ==, "debian-12.qcow2");
    g_assert_cmpint(t->base_format, ==, DOM_IMAGE_FORMAT_QCOW2);
    g_assert_true(t->persistent);
    g_assert_false(dom_template_needs_iso(t));

    g_assert_null(dom_template_set_lookup(set, "nope"));
    g_assert_null(dom_template_set_lookup(set, NULL));
}

TEST(defaults)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("vmbtest-tmpl-XXXXXX", &error);
    g_autofree char *path = g_build_filename(dir, "minimal.json", NULL);
    g_autoptr(DomTemplate) t = NULL;

    g_assert_no_error(error);
    g_assert_true(g_file_set_contents(path, "{\"kind\":\"iso\",\"memory_mib\":64,\"disk_gib\":2}",
                                      -1, NULL));
    t = dom_template_load_file(path, &error);
    g_remove(path);
    g_rmdir(dir);
    g_assert_no_error(error);
    g_assert_cmpstr(t->name, ==, "minimal");
    g_assert_cmpuint(t->vcpus, ==, 1);
    g_assert_cmpint(t->video, ==, DOM_VIDEO_VGA);
    g_assert_cmpint(t->disk_bus, ==, DOM_DISK_BUS_VIRTIO);
    g_assert_cmpint(t->network, ==, DOM_NETWORK_ISOLATED);
    g_assert_cmpstr(t->description, ==, "");
    g_assert_cmpuint(t->idle_timeout_s, ==, 0);
    g_assert_false(t->console_exclusive);
    g_assert_cmpuint(t->n_boot, ==, 2);
    g_assert_cmpint(t->boot[0], ==, DOM_BOOT_CDROM);
    g_assert_cmpint(t->boot[1], ==, DOM_BOOT_HD);
    g_assert_true(dom_template_needs_iso(t));
}

/* One line per malformed file: its name and the message it must produce. */
static const struct {
    const char *file;
    const char *message;
} bad_cases[] = {
    { "truncated.json", "invalid JSON at byte 36: unexpected end of file" },
    { "trailing.json", "invalid JSON at byte 37: unexpected character" },
    { "array.json", "a template is a JSON object" },
    { "unknown-field.json", "field 'memroy_mib': unknown field" },
    { "missing-kind.json", "field 'kind': is required" },
    { "bad-kind.json", "field 'kind': must be one of iso, overlay, not 'floppy'" },
    { "memory-string.json", "field 'memory_mib': must be an integer" },
    { "memory-small.json", "field 'memory_mib': must be between 16 and 1048576, not 8" },
    { "vcpus-zero.json", "field 'vcpus': must be between 1 and 256, not 0" },
    { "bad-video.json", "field 'video': must be one of vga, cirrus, virtio, bochs, qxl, not 'svga'" },
    { "bad-bus.json", "field 'disk_bus': must be one of virtio, sata, scsi, ide, not 'usb'" },
    { "network-no-name.json", "field 'network_name': is required" },
    { "network-name-user.json", "field 'network_name': is only allowed with \"network\": \"libvirt\"" },
    { "boot-twice.json", "field 'boot': names 'cdrom' twice" },
    { "boot-hd-no-disk.json", "field 'boot': 'hd' needs a disk (\"disk_gib\" or an overlay)" },
    { "boot-not-array.json", "field 'boot': must be an array of device names" },
    { "iso-relative.json", "field 'iso_path': must be an absolute path" },
    { "disk-zero.json", "field 'disk_gib': must be between 1 and 65536, not 0" },
    { "iso-with-base.json", "field 'base_image': is only allowed with \"kind\": \"overlay\"" },
    { "overlay-no-base.json", "field 'base_image': is required" },
    { "overlay-base-path.json", "field 'base_image': must be a volume name of letters, digits, '.', '_' and '-'" },
    { "overlay-format.json", "field 'base_format': must be one of raw, qcow2, not 'vmdk'" },
    { "overlay-persistent.json", "field 'persistent': must be true or false" },
    { "console-exclusive-number.json", "field 'console_exclusive': must be true or false" },
    { "overlay-disk.json", "field 'disk_gib': is only allowed with \"kind\": \"iso\"" },
    { "overlay-boot-cdrom.json", "field 'boot': 'cdrom' needs \"kind\": \"iso\"" },
    { "idle-negative.json", "field 'idle_timeout_s': must be between 0 and 2147483647, not -1" },
    { "description-control.json", "field 'description': must not contain control characters" },
    { "Upper.json", "a template name is 1-64 of a-z, 0-9, '_' and '-'" },
    { "memory-image-user-iso.json", "field 'memory_image': needs a template whose guests need nothing per user" },
    { "memory-image-after-long.json", "field 'memory_image_after_s': must be between 0 and 3600, not 4000" },
};

TEST(each_malformed_file_has_its_own_error)
{
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GDir) d = g_dir_open(BAD_DIR, 0, NULL);
    const char *entry;
    guint files = 0;

    for (size_t i = 0; i < G_N_ELEMENTS(bad_cases); i++) {
        g_autofree char *path = g_build_filename(BAD_DIR, bad_cases[i].file, NULL);
        g_autofree char *want = g_strdup_printf("%s: %s", path, bad_cases[i].message);
        g_autoptr(GError) error = NULL;
        g_autoptr(DomTemplate) t = dom_template_load_file(path, &error);

        g_test_message("%s", bad_cases[i].file);
        g_assert_null(t);
        g_assert_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_CONFIG);
        if (!g_str_has_prefix(error->message, want)) {
            fprintf(stderr, "%s:\n  got  %s\n  want %s\n", bad_cases[i].file, error->message, want);
            g_assert_not_reached();
        }
        /* Distinct files, distinct messages. */
        g_assert_false(g_hash_table_contains(seen, bad_cases[i].message));
        g_hash_table_add(seen, (gpointer) bad_cases[i].message);
    }
    /* Every fixture in the folder has its line above. */
    g_assert_nonnull(d);
    while ((entry = g_dir_read_name(d))) {
        bool listed = false;
        for (size_t i = 0; i < G_N_ELEMENTS(bad_cases); i++)
            listed |= strcmp(entry, bad_cases[i].file) == 0;
        if (!listed)
            fprintf(stderr, "fixture %s has no expected message\n", entry);
        g_assert_true(listed);
        files++;
    }
    g_assert_cmpuint(files, ==, G_N_ELEMENTS(bad_cases));
}

TEST(bad_folder_fails_whole_load)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DomTemplateSet) set = dom_template_set_load_dir(BAD_DIR, &error);

    g_assert_null(set);
    g_assert_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_CONFIG);
    g_assert_true(g_str_has_prefix(error->message, BAD_DIR "/"));

    g_clear_error(&error);
    set = dom_template_set_load_dir("/nonexistent-vmbroker-templates", &error);
    g_assert_null(set);
    g_assert_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_CONFIG);
}

TEST(enum_strings_round_trip)
{
    for (int i = 0; i < DOM_VIDEO_LAST; i++)
        g_assert_cmpint(dom_template_video_from_string(dom_template_video_to_string(i)), ==, i);
    for (int i = 0; i < DOM_DISK_BUS_LAST; i++)
        g_assert_cmpint(dom_template_disk_bus_from_string(dom_template_disk_bus_to_string(i)), ==, i);
    for (int i = 0; i < DOM_BOOT_LAST; i++)
        g_assert_cmpint(dom_template_boot_from_string(dom_template_boot_to_string(i)), ==, i);
    for (int i = 0; i < DOM_NETWORK_LAST; i++)
        g_assert_cmpint(dom_template_network_from_string(dom_template_network_to_string(i)), ==, i);
    for (int i = 0; i < DOM_TEMPLATE_KIND_LAST; i++)
        g_assert_cmpint(dom_template_kind_from_string(dom_template_kind_to_string(i)), ==, i);
    for (int i = 0; i < DOM_IMAGE_FORMAT_LAST; i++)
        g_assert_cmpint(dom_template_image_format_from_string(dom_template_image_format_to_string(i)), ==, i);
    g_assert_null(dom_template_video_to_string(DOM_VIDEO_LAST));
    g_assert_cmpint(dom_template_video_from_string("nope"), ==, -1);
    g_assert_cmpint(dom_template_video_from_string(NULL), ==, -1);
}

TEST(to_json)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DomTemplate) t = dom_template_load_file(SHIPPED_DIR "/memtest.json", &error);
    json_object *o;
    json_object *v;

    g_assert_no_error(error);
    o = dom_template_to_json(t);
    g_assert_true(json_object_object_get_ex(o, "memory_mib", &v));
    g_assert_cmpint(json_object_get_int(v), ==, 256);
    g_assert_true(json_object_object_get_ex(o, "needs_iso", &v));
    g_assert_false(json_object_get_boolean(v));
    /* Host paths stay private. */
    g_assert_false(json_object_object_get_ex(o, "iso_path", NULL));
    json_object_put(o);
}

TEST_MAIN()
