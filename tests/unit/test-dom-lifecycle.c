// SPDX-License-Identifier: LGPL-2.1-or-later
// Lifecycle and storage of domains/ against libvirt's test:///default driver: define,
// start, stop (graceful and forced), destroy, undefine with ephemeral volumes, state,
// screenshot, metadata, pools and volumes. The same paths run on QEMU in tests/integration.
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "dom-lifecycle.h"
#include "dom-storage.h"
#include "dom-template.h"
#include "dom-virt.h"
#include "dom-xml.h"
#include "test.h"
#include "vmb-error.h"

static virConnectPtr
test_conn(void)
{
    g_autoptr(GError) error = NULL;
    virConnectPtr conn = dom_virt_connect("test:///default", &error);

    g_assert_no_error(error);
    return conn;
}

static DomTemplate *
load(const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *path = g_strdup_printf(VMB_SOURCE_ROOT "/templates/%s.json", name);
    DomTemplate *t = dom_template_load_file(path, &error);

    g_assert_no_error(error);
    return t;
}

/* A memtest domain named @suffix, defined on @conn. */
static virDomainPtr
define_memtest(virConnectPtr conn, const char *owner, const char *vm_id)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DomTemplate) t = load("memtest");
    g_autofree char *type = dom_virt_host_domain_type(conn, &error);
    g_autofree char *name = dom_xml_domain_name("vmbtest-unit-", owner, vm_id);
    g_autofree char *xml = NULL;
    DomInstance in = {
        .domain_type = type,
        .name = name,
        .vm_id = vm_id,
        .owner = owner,
        .created = "2026-11-23T08:00:00Z",
        .vnc_port = 6100,
        .ws_port = 6200,
        .listen = "127.0.0.1",
        .guest_network = "vmbroker-guests",
        .vnc_password = "secret",
    };
    virDomainPtr dom;

    g_assert_no_error(error);
    xml = dom_xml_build_string(t, &in, &error);
    g_assert_no_error(error);
    dom = dom_lifecycle_define(conn, xml, &error);
    g_assert_no_error(error);
    return dom;
}

static DomState
state_of(virDomainPtr dom)
{
    g_autoptr(GError) error = NULL;
    DomState s = DOM_STATE_LAST;

    g_assert_true(dom_lifecycle_state(dom, &s, &error));
    g_assert_no_error(error);
    return s;
}

TEST(host_domain_type)
{
    g_autoptr(virConnect) conn = test_conn();
    g_autoptr(GError) error = NULL;
    g_autofree char *type = dom_virt_host_domain_type(conn, &error);

    g_assert_no_error(error);
    /* The test driver offers neither kvm nor qemu, only its own type. */
    g_assert_cmpstr(type, ==, "test");
}

TEST(connect_failure_is_unavailable)
{
    g_autoptr(GError) error = NULL;
    virConnectPtr conn = dom_virt_connect("test:///nonexistent-file.xml", &error);

    g_assert_null(conn);
    g_assert_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_UNAVAILABLE);
    g_assert_true(g_str_has_prefix(error->message,
                                   "connecting to libvirt at 'test:///nonexistent-file.xml': "));
}

TEST(define_start_stop_undefine)
{
    g_autoptr(virConnect) conn = test_conn();
    g_autoptr(virDomain) dom = define_memtest(conn, "alice", "a1b2c3d4");
    g_autoptr(virDomain) again = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(DomMetadata) md = NULL;
    bool forced = true;

    g_assert_cmpstr(virDomainGetName(dom), ==, "vmbtest-unit-alice-a1b2c3d4");
    g_assert_cmpint(virDomainIsPersistent(dom), ==, 1);
    g_assert_cmpint(state_of(dom), ==, DOM_STATE_SHUTOFF);

    g_assert_true(dom_lifecycle_start(dom, &error));
    g_assert_no_error(error);
    g_assert_cmpint(state_of(dom), ==, DOM_STATE_RUNNING);

    /* Starting twice: a conflict naming the domain and carrying libvirt's words. */
    g_assert_false(dom_lifecycle_start(dom, &error));
    g_assert_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_CONFLICT);
    g_assert_true(g_str_has_prefix(error->message,
                                   "starting domain 'vmbtest-unit-alice-a1b2c3d4': "));
    g_assert_nonnull(strstr(error->message, "already running"));
    g_clear_error(&error);

    md = dom_lifecycle_metadata(dom, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(md->owner, ==, "alice");
    g_assert_cmpstr(md->vm_id, ==, "a1b2c3d4");
    g_assert_cmpstr(md->template_name, ==, "memtest");

    /* Undefining a running domain is refused. */
    g_assert_false(dom_lifecycle_undefine(dom, true, &error));
    g_assert_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_CONFLICT);
    g_clear_error(&error);

    /* The test driver's guests honour ACPI at once. */
    g_assert_true(dom_lifecycle_stop(dom, 5000, &forced, &error));
    g_assert_no_error(error);
    g_assert_false(forced);
    g_assert_cmpint(state_of(dom), ==, DOM_STATE_SHUTOFF);

    /* Stopping or destroying a stopped domain is a no-op. */
    forced = true;
    g_assert_true(dom_lifecycle_stop(dom, 5000, &forced, &error));
    g_assert_false(forced);
    g_assert_true(dom_lifecycle_destroy(dom, &error));
    g_assert_no_error(error);

    g_assert_true(dom_lifecycle_undefine(dom, true, &error));
    g_assert_no_error(error);
    again = dom_lifecycle_lookup(conn, "vmbtest-unit-alice-a1b2c3d4", &error);
    g_assert_null(again);
    g_assert_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_NOT_FOUND);
    g_assert_true(g_str_has_prefix(error->message,
                                   "looking up domain 'vmbtest-unit-alice-a1b2c3d4': "));
}

/* The fallback to destroy itself needs a guest that ignores ACPI, which the test driver
 * cannot play: tests/integration covers it with memtest86+ on QEMU. */
TEST(stop_paused_domain)
{
    g_autoptr(virConnect) conn = test_conn();
    g_autoptr(virDomain) dom = define_memtest(conn, "bob", "b0b0b0b0");
    g_autoptr(GError) error = NULL;
    bool forced = false;

    DomRunState st = { 0 };

    g_assert_true(dom_lifecycle_start(dom, &error));
    g_assert_true(dom_lifecycle_run_state(dom, &st, &error));
    g_assert_true(st.running);
    g_assert_false(st.paused);
    g_assert_cmpint(virDomainSuspend(dom), ==, 0);
    g_assert_cmpint(state_of(dom), ==, DOM_STATE_PAUSED);
    /* Paused runs (QEMU holds its memory and ports), with libvirt's reason. */
    g_assert_true(dom_lifecycle_run_state(dom, &st, &error));
    g_assert_true(st.running);
    g_assert_true(st.paused);
    g_assert_cmpint(st.pause, ==, DOM_PAUSE_USER);
    g_assert_cmpstr(dom_lifecycle_pause_cause_to_string(st.pause), ==, "user");
    /* A paused guest cannot see the power button: destroyed at once, not after the wait. */
    g_assert_true(dom_lifecycle_stop(dom, 60000, &forced, &error));
    g_assert_no_error(error);
    g_assert_true(forced);
    g_assert_cmpint(state_of(dom), ==, DOM_STATE_SHUTOFF);
    g_assert_true(dom_lifecycle_run_state(dom, &st, &error));
    g_assert_false(st.running);
    g_assert_cmpint(st.stop, ==, DOM_STOP_DESTROYED);
    g_assert_true(dom_lifecycle_undefine(dom, false, &error));
    g_assert_no_error(error);
}

TEST(destroy_and_screenshot)
{
    g_autoptr(virConnect) conn = test_conn();
    g_autoptr(virDomain) dom = define_memtest(conn, "carol", "c0c0c0c0");
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) shot = NULL;
    g_autofree char *mime = NULL;

    g_assert_true(dom_lifecycle_start(dom, &error));
    shot = dom_lifecycle_screenshot(dom, &mime, &error);
    g_assert_no_error(error);
    g_assert_nonnull(mime);
    g_assert_cmpuint(g_bytes_get_size(shot), >, 0);

    g_assert_true(dom_lifecycle_destroy(dom, &error));
    g_assert_no_error(error);
    g_assert_cmpint(state_of(dom), ==, DOM_STATE_SHUTOFF);
    g_assert_true(dom_lifecycle_undefine(dom, true, &error));
    g_assert_no_error(error);
}

TEST(define_rejects_bad_xml)
{
    g_autoptr(virConnect) conn = test_conn();
    g_autoptr(GError) error = NULL;
    g_autoptr(virDomain) dom =
        dom_lifecycle_define(conn, "<domain type='test'><name>x</name></domain>", &error);

    g_assert_null(dom);
    g_assert_nonnull(error);
    g_assert_true(g_str_has_prefix(error->message, "defining domain: "));
}

TEST(state_names)
{
    for (int i = 0; i < DOM_STATE_LAST; i++)
        g_assert_cmpint(dom_lifecycle_state_from_string(dom_lifecycle_state_to_string(i)), ==, i);
    g_assert_null(dom_lifecycle_state_to_string(DOM_STATE_LAST));
    for (int i = 0; i < DOM_POOL_LAST; i++)
        g_assert_cmpint(dom_storage_pool_kind_from_string(dom_storage_pool_kind_to_string(i)), ==, i);
}

static void
create_base(virConnectPtr conn, const char *prefix, const char *name, const char *format)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(virStoragePool) pool = dom_storage_pool(conn, prefix, DOM_POOL_BASE, &error);
    g_autofree char *xml = g_strdup_printf(
        "<volume><name>%s</name><capacity unit='MiB'>64</capacity>"
        "<target><format type='%s'/></target></volume>", name, format);
    g_autoptr(virStorageVol) vol = NULL;

    g_assert_no_error(error);
    vol = virStorageVolCreateXML(pool, xml, 0);
    g_assert_nonnull(vol);
}

TEST(pools_get_their_owner)
{
    g_autoptr(virConnect) conn = test_conn();
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("vmbtest-unit-XXXXXX", &error);
    g_autofree char *prefix = g_strdup_printf("vmbtest-own-%d-", (int) getpid());
    DomPoolOwner owner = { 4321, 8765 };

    g_assert_no_error(error);
    g_assert_true(dom_storage_ensure_pools(conn, prefix, dir, owner, &error));
    g_assert_no_error(error);
    for (int k = 0; k < DOM_POOL_LAST; k++) {
        g_autoptr(virStoragePool) p = dom_storage_pool(conn, prefix, (DomPoolKind) k, &error);
        g_autofree char *xml = virStoragePoolGetXMLDesc(p, 0);
        g_assert_nonnull(strstr(xml, "<mode>0711</mode>"));
        g_assert_nonnull(strstr(xml, "<owner>4321</owner>"));
        g_assert_nonnull(strstr(xml, "<group>8765</group>"));
    }
}

/* Makes the pools (twice: it is idempotent) and refuses them at another folder. */
static void
check_pools(virConnectPtr conn, const char *prefix, const char *dir, const char *other)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *disks_name = NULL;

    g_assert_true(dom_storage_ensure_pools(conn, prefix, dir, DOM_POOL_OWNER_DEFAULT, &error));
    g_assert_no_error(error);
    /* Idempotent. */
    g_assert_true(dom_storage_ensure_pools(conn, prefix, dir, DOM_POOL_OWNER_DEFAULT, &error));
    g_assert_no_error(error);
    for (int k = 0; k < DOM_POOL_LAST; k++) {
        g_autoptr(virStoragePool) p = dom_storage_pool(conn, prefix, (DomPoolKind) k, &error);
        g_assert_no_error(error);
        g_assert_cmpint(virStoragePoolIsActive(p), ==, 1);
        g_assert_cmpint(virStoragePoolIsPersistent(p), ==, 1);
    }
    disks_name = dom_storage_pool_name(prefix, DOM_POOL_DISKS);
    g_assert_cmpstr(disks_name + strlen(prefix), ==, "disks");

    /* Our pool names at another folder: someone else's pools. */
    g_assert_false(dom_storage_ensure_pools(conn, prefix, other, DOM_POOL_OWNER_DEFAULT, &error));
    g_assert_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_CONFIG);
    g_assert_nonnull(strstr(error->message, "another vmbroker"));
}

/* A base image whose format disagrees with the template is refused; then it is deleted. */
static void
check_base_format_refused(virConnectPtr conn, const char *prefix, DomTemplate *overlay_t)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *p = NULL;

    create_base(conn, prefix, "debian-12.qcow2", "raw");
    g_assert_null(dom_storage_create_overlay(conn, prefix, "x.qcow2", overlay_t, NULL, &error));
    g_assert_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_UNPROCESSABLE);
    g_assert_cmpstr(error->message, ==, "base image 'debian-12.qcow2' of template "
                                        "'debian-overlay' is raw, but the template says qcow2");
    g_clear_error(&error);
    p = dom_storage_volume_path(conn, prefix, DOM_POOL_BASE, "debian-12.qcow2", &error);
    g_assert_no_error(error);
    g_assert_true(dom_storage_delete_path(conn, p, &error));
    g_assert_no_error(error);
    g_assert_null(dom_storage_volume_path(conn, prefix, DOM_POOL_BASE, "debian-12.qcow2", &error));
    g_assert_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_NOT_FOUND);
}

/* Defines a domain on @overlay, undefines it, and checks the overlay went with it. */
static void
check_overlay_goes_with_domain(virConnectPtr conn, DomTemplate *overlay_t, const char *name,
                               const char *overlay, const char *backing)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *type = dom_virt_host_domain_type(conn, &error);
    g_autofree char *xml = NULL;
    g_autoptr(virDomain) dom = NULL;
    g_autoptr(virStorageVol) gone = NULL;
    DomInstance in = {
        .domain_type = type,
        .name = name,
        .vm_id = "d0d0d0d0",
        .owner = "dave",
        .created = "2026-11-23T08:00:00Z",
        .disk_path = overlay,
        .backing_path = backing,
        .backing_format = "qcow2",
        .disk_ephemeral = true,
        .vnc_port = 6101,
        .ws_port = 6201,
        .listen = "127.0.0.1",
        .guest_network = "vmbroker-guests",
    };

    xml = dom_xml_build_string(overlay_t, &in, &error);
    g_assert_no_error(error);
    dom = dom_lifecycle_define(conn, xml, &error);
    g_assert_no_error(error);
    g_assert_true(dom_lifecycle_undefine(dom, true, &error));
    g_assert_no_error(error);
    /* The overlay went with the domain; the other volume and the base stayed. */
    gone = virStorageVolLookupByPath(conn, overlay);
    g_assert_null(gone);
}

static void
drop_pools(virConnectPtr conn, const char *prefix, const char *dir, const char *other)
{
    for (int k = 0; k < DOM_POOL_LAST; k++) {
        g_autoptr(virStoragePool) p = dom_storage_pool(conn, prefix, (DomPoolKind) k, NULL);
        virStoragePoolDestroy(p);
        virStoragePoolUndefine(p);
    }
    for (int k = 0; k < DOM_POOL_LAST; k++) {
        g_autofree char *sub = g_build_filename(dir, dom_storage_pool_kind_to_string(k), NULL);
        g_rmdir(sub);
    }
    g_rmdir(other);
    g_rmdir(dir);
    g_assert_false(g_file_test(dir, G_FILE_TEST_EXISTS));
}

TEST(pools_overlays_and_ephemeral_volumes)
{
    g_autoptr(virConnect) conn = test_conn();
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("vmbtest-unit-XXXXXX", &error);
    g_autofree char *prefix = g_strdup_printf("vmbtest-unit-%d-", (int) getpid());
    g_autofree char *other = g_build_filename(dir, "elsewhere", NULL);
    g_autofree char *backing = NULL, *overlay = NULL, *blank = NULL, *fmt = NULL;
    g_autofree char *name = NULL, *vol = NULL;
    g_autoptr(DomTemplate) overlay_t = load("debian-overlay");

    g_assert_no_error(error);
    check_pools(conn, prefix, dir, other);
    check_base_format_refused(conn, prefix, overlay_t);

    create_base(conn, prefix, "debian-12.qcow2", "qcow2");
    name = dom_xml_domain_name(prefix, "dave", "d0d0d0d0");
    vol = g_strconcat(name, "-disk0.qcow2", NULL);
    overlay = dom_storage_create_overlay(conn, prefix, vol, overlay_t, &backing, &error);
    g_assert_no_error(error);
    g_assert_true(g_str_has_suffix(backing, "/base/debian-12.qcow2"));
    g_assert_nonnull(strstr(overlay, "/disks/"));
    g_assert_true(g_str_has_suffix(overlay, "-dave-d0d0d0d0-disk0.qcow2"));
    fmt = dom_storage_volume_format(conn, overlay, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(fmt, ==, "qcow2");

    blank = dom_storage_create_blank(conn, prefix, "spare.qcow2", 1, &error);
    g_assert_no_error(error);
    g_assert_null(dom_storage_create_blank(conn, prefix, "../evil", 1, &error));
    g_assert_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_INVALID);
    g_clear_error(&error);

    check_overlay_goes_with_domain(conn, overlay_t, name, overlay, backing);
    g_free(fmt);
    fmt = dom_storage_volume_format(conn, blank, &error);
    g_assert_no_error(error);
    g_assert_true(dom_storage_delete_path(conn, blank, &error));
    /* Deleting again is fine. */
    g_assert_true(dom_storage_delete_path(conn, blank, &error));
    g_assert_no_error(error);

    drop_pools(conn, prefix, dir, other);
}

TEST_MAIN()
