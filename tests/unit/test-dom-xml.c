// SPDX-License-Identifier: LGPL-2.1-or-later
// domains/dom-xml.c: domain names, instance checks, escaping, and metadata read back.
#include <string.h>

#include "dom-template.h"
#include "dom-xml.h"
#include "test.h"
#include "vmb-error.h"

static DomTemplate *
load(const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *path = g_strdup_printf(VMB_SOURCE_ROOT "/templates/%s.json", name);
    DomTemplate *t = dom_template_load_file(path, &error);

    g_assert_no_error(error);
    return t;
}

static DomInstance
memtest_instance(void)
{
    return (DomInstance) {
        .domain_type = "qemu",
        .name = "vmbroker-alice-0b4d6f2a",
        .vm_id = "0b4d6f2a",
        .owner = "alice",
        .created = "2026-11-23T08:00:00Z",
        .vnc_port = 5900,
        .ws_port = 5700,
        .listen = "127.0.0.1",
        .guest_network = "vmbroker-guests",
    };
}

TEST(domain_name)
{
    g_autofree char *a = dom_xml_domain_name("vmbroker-", "alice", "0B4D6F2A-1c3e-4e7a");
    g_autofree char *b = dom_xml_domain_name("p-", "a/b\nc", "12");

    g_assert_cmpstr(a, ==, "vmbroker-alice-0b4d6f2a");
    g_assert_cmpstr(b, ==, "p-a_b_c-12");
}

TEST(domain_names_never_collide_across_owners)
{
    /* The pair, and the default form against a chosen name. */
    g_autofree char *ab_c = dom_xml_domain_name_named("p-", "a-b", "c");
    g_autofree char *a_bc = dom_xml_domain_name_named("p-", "a", "b-c");
    g_autofree char *ab_id = dom_xml_domain_name("p-", "a-b", "0123abcd-ffff");
    g_autofree char *a_named = dom_xml_domain_name_named("p-", "a", "b-0123abcd");
    g_autofree char *trail = dom_xml_domain_name_named("p-", "a-", "b");
    g_autofree char *lead = dom_xml_domain_name_named("p-", "a", "b");

    g_assert_cmpstr(ab_c, ==, "p-a--b-c");
    g_assert_cmpstr(a_bc, ==, "p-a-b-c");
    g_assert_cmpstr(ab_c, !=, a_bc);
    g_assert_cmpstr(ab_id, ==, "p-a--b-0123abcd");
    g_assert_cmpstr(a_named, ==, "p-a-b-0123abcd");
    g_assert_cmpstr(trail, ==, "p-a---b");
    g_assert_cmpstr(trail, !=, lead);
}

TEST(instance_checks)
{
    g_autoptr(DomTemplate) memtest = load("memtest");
    g_autoptr(DomTemplate) blank = load("iso-blank-disk");
    g_autoptr(DomTemplate) overlay = load("debian-overlay");
    g_autoptr(GError) error = NULL;
    DomInstance in = memtest_instance();
    char *xml;

    in.ws_port = in.vnc_port;
    g_assert_null(dom_xml_build_string(memtest, &in, &error));
    g_assert_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_INVALID);
    g_assert_nonnull(strstr(error->message, "two different ports"));
    g_clear_error(&error);

    in = memtest_instance();
    in.owner = "bad\001owner";
    g_assert_null(dom_xml_build_string(memtest, &in, &error));
    g_assert_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_INVALID);
    g_assert_cmpstr(error->message, ==, "instance: owner must not contain control characters");
    g_clear_error(&error);

    in = memtest_instance();
    in.name = "a/b";
    g_assert_null(dom_xml_build_string(memtest, &in, &error));
    g_assert_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_INVALID);
    g_clear_error(&error);

    in = memtest_instance();
    in.owner = "\xff\xfe";
    g_assert_null(dom_xml_build_string(memtest, &in, &error));
    g_assert_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_INVALID);
    g_clear_error(&error);

    /* An uploaded-ISO template without an ISO, or without its disk. */
    in = memtest_instance();
    g_assert_null(dom_xml_build_string(blank, &in, &error));
    g_assert_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_UNPROCESSABLE);
    g_clear_error(&error);
    in.iso_path = "/x.iso";
    g_assert_null(dom_xml_build_string(blank, &in, &error));
    g_assert_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_INVALID);
    g_assert_nonnull(strstr(error->message, "needs a disk volume"));
    g_clear_error(&error);

    /* An overlay whose backing format disagrees with the template. */
    in = memtest_instance();
    in.disk_path = "/d.qcow2";
    in.backing_path = "/b.raw";
    in.backing_format = "raw";
    g_assert_null(dom_xml_build_string(overlay, &in, &error));
    g_assert_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_INVALID);
    g_clear_error(&error);
    in.backing_format = "qcow2";
    xml = dom_xml_build_string(overlay, &in, &error);
    g_assert_no_error(error);
    g_assert_nonnull(strstr(xml, "<format type=\"qcow2\"/>"));
    g_free(xml);
}

TEST(metadata_round_trip_with_special_characters)
{
    g_autoptr(DomTemplate) blank = load("iso-blank-disk");
    g_autoptr(GError) error = NULL;
    g_autoptr(DomMetadata) md = NULL;
    g_autofree char *xml = NULL;
    const char *nasty = "o<&'\"> ]]> &amp; \xc3\xa9";
    DomInstance in = memtest_instance();

    in.owner = nasty;
    in.vm_id = "id-<&'\">";
    in.iso_path = "/isos/<&'\">.iso";
    in.disk_path = "/disks/d<&'\">.qcow2";
    in.disk_ephemeral = true;
    in.vnc_password = "<&'\">";
    xml = dom_xml_build_string(blank, &in, &error);
    g_assert_no_error(error);
    /* No raw special character leaks into markup. */
    g_assert_null(strstr(xml, "o<&"));
    g_assert_nonnull(strstr(xml, "o&lt;&amp;'\"&gt; ]]&gt; &amp;amp;"));

    md = dom_xml_parse_metadata(xml, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(md->owner, ==, nasty);
    g_assert_cmpstr(md->vm_id, ==, "id-<&'\">");
    g_assert_cmpstr(md->template_name, ==, "iso-blank-disk");
    g_assert_cmpstr(md->created, ==, "2026-11-23T08:00:00Z");
    g_assert_cmpuint(g_strv_length(md->ephemeral_volumes), ==, 1);
    g_assert_cmpstr(md->ephemeral_volumes[0], ==, "/disks/d<&'\">.qcow2");
}

TEST(metadata_absent)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DomMetadata) md = dom_xml_parse_metadata("<domain><name>x</name></domain>", &error);

    g_assert_null(md);
    g_assert_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_NOT_FOUND);
}

TEST_MAIN()
