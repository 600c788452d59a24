// SPDX-License-Identifier: LGPL-2.1-or-later
// Golden files for template -> domain XML: domxml-in/NAME.instance (a key file naming a
// template and the instance values) -> domxml-out/NAME.xml. VMB_REGENERATE_GOLDEN=1
// rewrites the outputs; every output must also pass `virt-xml-validate FILE domain`. The
// guest network and its filter (dom-network.c) are golden files too: domxml-out/guest-*.xml.
#include <string.h>

#include "dom-network.h"
#include "dom-template.h"
#include "dom-xml.h"
#include "test.h"
#include "vmb-error.h"

#define GOLDEN_DIR VMB_SOURCE_ROOT "/tests/golden"

static DomTemplateSet *shipped;
static DomTemplateSet *extra;

static const DomTemplate *
find_template(const char *name)
{
    g_autoptr(GError) error = NULL;

    if (!shipped) {
        shipped = dom_template_set_load_dir(VMB_SOURCE_ROOT "/templates", &error);
        g_assert_no_error(error);
        extra = dom_template_set_load_dir(GOLDEN_DIR "/domxml-in/templates", &error);
        g_assert_no_error(error);
    }
    if (dom_template_set_lookup(extra, name))
        return dom_template_set_lookup(extra, name);
    return dom_template_set_lookup(shipped, name);
}

static void
validate(const char *path, const char *schema)
{
    const char *argv[] = { VIRT_XML_VALIDATE, path, schema, NULL };
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    g_autoptr(GError) error = NULL;
    int status = 0;

    if (!VIRT_XML_VALIDATE[0]) {
        fprintf(stderr, "virt-xml-validate was not found at configure time "
                        "(Debian package libvirt-clients)\n");
        g_assert_not_reached();
    }
    g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out,
                               &err, &status, &error));
    g_assert_no_error(error);
    if (!g_spawn_check_wait_status(status, NULL)) {
        fprintf(stderr, "virt-xml-validate %s %s failed:\n%s%s", path, schema, out, err);
        g_assert_not_reached();
    }
}

static char *
opt(GKeyFile *kf, const char *key)
{
    return g_key_file_get_string(kf, "instance", key, NULL);
}

/* Compares @xml with domxml-out/@name.xml (or rewrites it) and validates it as @schema. */
static void
check_golden(const char *name, const char *xml, const char *schema)
{
    g_autofree char *out_path = g_strdup_printf(GOLDEN_DIR "/domxml-out/%s.xml", name);
    g_autofree char *expected = NULL;
    g_autoptr(GError) error = NULL;

    if (g_strcmp0(g_getenv("VMB_REGENERATE_GOLDEN"), "1") == 0) {
        g_assert_true(g_file_set_contents(out_path, xml, -1, &error));
        g_assert_no_error(error);
    }
    if (!g_file_get_contents(out_path, &expected, NULL, &error)) {
        fprintf(stderr, "%s: %s (run with VMB_REGENERATE_GOLDEN=1 to create it)\n", out_path,
                error->message);
        g_assert_not_reached();
    }
    if (strcmp(expected, xml) != 0) {
        fprintf(stderr, "%s differs; got:\n%s\n(VMB_REGENERATE_GOLDEN=1 rewrites it; read the "
                        "diff line by line)\n",
                out_path, xml);
        g_assert_not_reached();
    }
    validate(out_path, schema);
}

static void
do_test(const char *name)
{
    g_autofree char *in_path = g_strdup_printf(GOLDEN_DIR "/domxml-in/%s.instance", name);
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) error = NULL;
    g_autofree char *tmpl_name = NULL, *prefix = NULL, *domain_type = NULL, *uuid = NULL;
    g_autofree char *vm_id = NULL, *owner = NULL, *created = NULL, *iso = NULL, *disk = NULL;
    g_autofree char *backing = NULL, *backing_format = NULL, *listen = NULL, *pw = NULL;
    g_autofree char *dom_name = NULL, *xml = NULL, *net = NULL;
    const DomTemplate *t;
    DomInstance inst = { 0 };

    fprintf(stderr, "  case %s\n", name);
    g_assert_true(g_key_file_load_from_file(kf, in_path, G_KEY_FILE_NONE, &error));
    g_assert_no_error(error);
    tmpl_name = opt(kf, "template");
    t = find_template(tmpl_name);
    g_assert_nonnull(t);
    prefix = opt(kf, "prefix");
    owner = opt(kf, "owner");
    vm_id = opt(kf, "vm_id");
    dom_name = dom_xml_domain_name(prefix, owner, vm_id);
    inst = (DomInstance) {
        .domain_type = domain_type = opt(kf, "domain_type"),
        .name = dom_name,
        .uuid = uuid = opt(kf, "uuid"),
        .vm_id = vm_id,
        .owner = owner,
        .created = created = opt(kf, "created"),
        .iso_path = iso = opt(kf, "iso_path"),
        .disk_path = disk = opt(kf, "disk_path"),
        .backing_path = backing = opt(kf, "backing_path"),
        .backing_format = backing_format = opt(kf, "backing_format"),
        .disk_ephemeral = g_key_file_get_boolean(kf, "instance", "disk_ephemeral", NULL),
        .vnc_port = (guint) g_key_file_get_integer(kf, "instance", "vnc_port", NULL),
        .ws_port = (guint) g_key_file_get_integer(kf, "instance", "ws_port", NULL),
        .listen = listen = opt(kf, "listen"),
        .vnc_password = pw = opt(kf, "vnc_password"),
        .guest_network = net = opt(kf, "guest_network"),
    };
    xml = dom_xml_build_string(t, &inst, &error);
    g_assert_no_error(error);
    check_golden(name, xml, "domain");
}

#define DO_TEST(name) do_test(name)

TEST(domxml)
{
    DO_TEST("memtest");
    DO_TEST("iso-blank-disk");
    DO_TEST("debian-overlay");
    DO_TEST("overlay-raw-ephemeral-kvm");
    DO_TEST("libvirt-network-sata");
    DO_TEST("escaping");
    dom_template_set_unref(shipped);
    dom_template_set_unref(extra);
}

TEST(guest_network)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *net = dom_network_xml("vmbroker-guests", "10.213.0.0/24", &error);
    g_autofree char *filter = NULL;

    g_assert_no_error(error);
    check_golden("guest-network", net, "network");
    filter = dom_network_filter_xml("vmbroker-guests", "10.213.0.0/24", &error);
    g_assert_no_error(error);
    check_golden("guest-filter", filter, "nwfilter");
    /* A subnet with host bits, a prefix out of range, a name with a slash: refused. */
    g_assert_null(dom_network_xml("n", "10.213.0.1/24", &error));
    g_assert_error(error, VMB_ERROR, VMB_ERROR_CONFIG);
    g_clear_error(&error);
    g_assert_null(dom_network_xml("n", "10.0.0.0/8", &error));
    g_clear_error(&error);
    g_assert_null(dom_network_filter_xml("a/b", "10.213.0.0/24", &error));
    g_assert_error(error, VMB_ERROR, VMB_ERROR_CONFIG);
}

TEST_MAIN()
