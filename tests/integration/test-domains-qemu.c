// SPDX-License-Identifier: LGPL-2.1-or-later
// domains/ on the real libvirtd and QEMU: boot memtest86+, see metadata, ports and a
// non-blank screen through virsh, stop a guest that ignores ACPI, overlays and their
// removal, format checks, and a name full of XML specials. Everything made here carries
// the prefix vmbtest-dom-<pid>- and is removed, even when a case fails (best effort).
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <zlib.h>

#include "dom-accel.h"
#include "dom-lifecycle.h"
#include "dom-storage.h"
#include "dom-template.h"
#include "dom-virt.h"
#include "dom-xml.h"
#include "test.h"
#include "vmb-error.h"

#define MEMTEST_ISO "/usr/lib/memtest86+/memtest86+x64.iso"
#define SWEEP_PREFIX "vmbtest-dom-"

static const char *uri;
static char *prefix;
static char *storage_dir;
static virConnectPtr conn;

/* Removes every domain and pool whose name starts with @pfx. */
static void
remove_objects(const char *pfx)
{
    virDomainPtr *doms = NULL;
    virStoragePoolPtr *pools = NULL;
    int n;

    if (!conn)
        return;
    n = virConnectListAllDomains(conn, &doms, 0);
    for (int i = 0; i < n; i++) {
        if (g_str_has_prefix(virDomainGetName(doms[i]), pfx)) {
            virDomainDestroy(doms[i]);
            virDomainUndefineFlags(doms[i], VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
                                                VIR_DOMAIN_UNDEFINE_NVRAM);
        }
        virDomainFree(doms[i]);
    }
    free(doms);
    n = virConnectListAllStoragePools(conn, &pools, 0);
    for (int i = 0; i < n; i++) {
        if (g_str_has_prefix(virStoragePoolGetName(pools[i]), pfx)) {
            virStorageVolPtr *vols = NULL;
            int nv = virStoragePoolListAllVolumes(pools[i], &vols, 0);
            for (int j = 0; j < nv; j++) {
                virStorageVolDelete(vols[j], 0);
                virStorageVolFree(vols[j]);
            }
            free(vols);
            virStoragePoolDestroy(pools[i]);
            virStoragePoolDelete(pools[i], 0);
            virStoragePoolUndefine(pools[i]);
        }
        virStoragePoolFree(pools[i]);
    }
    free(pools);
}

static void
cleanup(void)
{
    if (prefix)
        remove_objects(prefix);
    if (storage_dir) {
        static const char *const subs[] = { "isos", "base", "disks", "templates" };
        for (size_t i = 0; i < G_N_ELEMENTS(subs); i++) {
            g_autofree char *d = g_build_filename(storage_dir, subs[i], NULL);
            g_autoptr(GDir) dir = g_dir_open(d, 0, NULL);
            const char *e;
            while (dir && (e = g_dir_read_name(dir))) {
                g_autofree char *f = g_build_filename(d, e, NULL);
                g_unlink(f);
            }
            g_rmdir(d);
        }
        g_rmdir(storage_dir);
    }
}

/* A failed assertion aborts: still remove what we made (best effort). */
static void
on_abort(int sig)
{
    signal(sig, SIG_DFL);
    cleanup();
    raise(sig);
}

/* Leftovers of earlier runs that died: their pid no longer exists. */
static void
sweep_dead_runs(void)
{
    virDomainPtr *doms = NULL;
    int n = virConnectListAllDomains(conn, &doms, 0);

    for (int i = 0; i < n; i++) {
        const char *name = virDomainGetName(doms[i]);
        if (g_str_has_prefix(name, SWEEP_PREFIX)) {
            long pid = strtol(name + strlen(SWEEP_PREFIX), NULL, 10);
            if (pid > 0 && kill((pid_t) pid, 0) < 0 && errno == ESRCH) {
                g_autofree char *pfx = g_strdup_printf(SWEEP_PREFIX "%ld-", pid);
                remove_objects(pfx);
            }
        }
        virDomainFree(doms[i]);
    }
    free(doms);
}

static void
setup(void)
{
    g_autoptr(GError) error = NULL;

    if (conn)
        return;
    uri = g_getenv("VMB_TEST_LIBVIRT_URI") ? g_getenv("VMB_TEST_LIBVIRT_URI") : "qemu:///system";
    conn = dom_virt_connect(uri, &error);
    if (!conn) {
        fprintf(stderr, "libvirtd does not answer at %s (%s); run contrib/libvirtd-ensure\n",
                uri, error->message);
        g_assert_not_reached();
    }
    prefix = g_strdup_printf(SWEEP_PREFIX "%d-", (int) getpid());
    sweep_dead_runs();
    storage_dir = g_dir_make_tmp("vmbtest-dom-XXXXXX", &error);
    g_assert_no_error(error);
    /* QEMU runs as libvirt-qemu and must traverse every folder above its disks. */
    g_assert_cmpint(g_chmod(storage_dir, 0711), ==, 0);
    signal(SIGABRT, on_abort);
    atexit(cleanup);
    g_assert_true(dom_storage_ensure_pools(conn, prefix, storage_dir, DOM_POOL_OWNER_DEFAULT, &error));
    g_assert_no_error(error);
}

/* The probe's settings for this run; its disk lives in the run's storage folder. */
static DomAccelProbe
probe_settings(DomAccelMode mode, guint timeout_ms, char **ret_name, char **ret_image)
{
    *ret_name = g_strconcat(prefix, "kvm-probe", NULL);
    *ret_image = g_build_filename(storage_dir, "kvm-probe.img", NULL);
    return (DomAccelProbe) { mode, *ret_name, *ret_image, timeout_ms };
}

/* The domain type vmbroker would give guests here ("auto"): the same on a host with a
 * broken KVM as on one without. */
static char *
host_type(void)
{
    g_autofree char *name = NULL, *image = NULL;
    DomAccelProbe probe = probe_settings(DOM_ACCEL_AUTO, 5000, &name, &image);
    g_autoptr(DomAccelChoice) c = dom_accel_choose(conn, &probe);

    g_assert_nonnull(c->domain_type);
    g_assert_true(g_str_equal(c->domain_type, "kvm") || g_str_equal(c->domain_type, "qemu"));
    return g_strdup(c->domain_type);
}

static bool
port_free(guint port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = fd >= 0 && bind(fd, (struct sockaddr *) &a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* A free VNC port in 6100-6199 and websocket port in 6200-6299, spread by pid. */
static void
pick_ports(guint *vnc, guint *ws)
{
    static guint next;

    for (guint i = 0; i < 100; i++) {
        guint off = ((guint) getpid() + next + i) % 100;
        if (port_free(6100 + off) && port_free(6200 + off)) {
            *vnc = 6100 + off;
            *ws = 6200 + off;
            next += i + 1;
            return;
        }
    }
    g_assert_not_reached();
}

static DomTemplate *
load_shipped(const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *path = g_strdup_printf(VMB_SOURCE_ROOT "/templates/%s.json", name);
    DomTemplate *t = dom_template_load_file(path, &error);

    g_assert_no_error(error);
    return t;
}

static DomTemplate *
write_template(const char *name, const char *json)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_build_filename(storage_dir, "templates", NULL);
    g_autofree char *file = g_strconcat(name, ".json", NULL);
    g_autofree char *path = g_build_filename(dir, file, NULL);
    DomTemplate *t;

    g_mkdir_with_parents(dir, 0700);
    g_assert_true(g_file_set_contents(path, json, -1, NULL));
    t = dom_template_load_file(path, &error);
    g_assert_no_error(error);
    return t;
}

static char *
virsh(const char *a1, const char *a2, const char *a3, int *ret_status)
{
    const char *argv[] = { "virsh", "-q", "-c", uri, a1, a2, a3, NULL };
    g_autoptr(GError) error = NULL;
    char *out = NULL;
    int status = -1;

    g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL,
                               G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
                               &out, NULL, &status, &error));
    g_assert_no_error(error);
    *ret_status = g_spawn_check_wait_status(status, NULL) ? 0 : 1;
    return out;
}

/* A binary PPM with more than one colour. */
static bool
ppm_has_content(const guint8 *data, gsize len)
{
    gsize pos = 0;
    int fields = 0;

    /* Header: magic, width, height, maxval, separated by whitespace. */
    while (pos < len && fields < 4) {
        while (pos < len && g_ascii_isspace(data[pos]))
            pos++;
        while (pos < len && !g_ascii_isspace(data[pos]))
            pos++;
        fields++;
    }
    pos++;
    for (gsize i = pos + 3; i + 2 < len; i += 3)
        if (memcmp(data + pos, data + i, 3) != 0)
            return true;
    return false;
}

static guint32
be32(const guint8 *p)
{
    return (guint32) p[0] << 24 | (guint32) p[1] << 16 | (guint32) p[2] << 8 | p[3];
}

static int
paeth(int a, int b, int c)
{
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);

    return (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c);
}

/* An 8-bit RGB or RGBA PNG (what QEMU's screendump gives through libvirt 9) with more than
 * one colour: the IDAT stream is inflated and unfiltered, then pixels compared. */
static bool
png_has_content(const guint8 *data, gsize len)
{
    g_autoptr(GByteArray) z = g_byte_array_new();
    g_autofree guint8 *raw = NULL;
    guint32 width = 0, height = 0;
    guint bpp = 0;
    uLongf raw_len;
    gsize stride;

    for (gsize pos = 8; pos + 12 <= len;) {
        guint32 clen = be32(data + pos);
        const guint8 *type = data + pos + 4;
        const guint8 *body = data + pos + 8;

        g_assert_cmpuint(pos + 12 + clen, <=, len);
        if (memcmp(type, "IHDR", 4) == 0) {
            width = be32(body);
            height = be32(body + 4);
            g_assert_cmpuint(body[8], ==, 8);          /* bit depth */
            g_assert_true(body[9] == 2 || body[9] == 6); /* RGB or RGBA */
            g_assert_cmpuint(body[12], ==, 0);         /* not interlaced */
            bpp = body[9] == 2 ? 3 : 4;
        } else if (memcmp(type, "IDAT", 4) == 0) {
            g_byte_array_append(z, body, clen);
        }
        pos += 12 + clen;
    }
    g_assert_cmpuint(width, >, 0);
    stride = (gsize) width * bpp;
    raw_len = (uLongf) ((stride + 1) * height);
    raw = g_malloc(raw_len);
    g_assert_cmpint(uncompress(raw, &raw_len, z->data, z->len), ==, Z_OK);
    g_assert_cmpuint(raw_len, ==, (stride + 1) * height);

    for (guint32 y = 0; y < height; y++) {
        guint8 *row = raw + y * (stride + 1) + 1;
        const guint8 *up = y ? raw + (y - 1) * (stride + 1) + 1 : NULL;
        guint8 filter = row[-1];
        for (gsize x = 0; x < stride; x++) {
            int a = x >= bpp ? row[x - bpp] : 0;
            int b = up ? up[x] : 0;
            int c = (up && x >= bpp) ? up[x - bpp] : 0;
            int add = filter == 1 ? a : filter == 2 ? b : filter == 3 ? (a + b) / 2
                    : filter == 4 ? paeth(a, b, c) : 0;
            row[x] = (guint8) (row[x] + add);
        }
        /* Unfiltered rows are compacted in place, one byte to the left per row. */
        memmove(raw + y * stride, row, stride);
    }
    for (gsize i = bpp; i < (gsize) height * stride; i += bpp)
        if (memcmp(raw, raw + i, bpp) != 0)
            return true;
    return false;
}

/* The screen shows something: more than one colour, in whichever format QEMU wrote. */
static bool
image_has_content(const guint8 *data, gsize len)
{
    if (len > 8 && memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0)
        return png_has_content(data, len);
    if (len > 2 && data[0] == 'P' && data[1] == '6')
        return ppm_has_content(data, len);
    fprintf(stderr, "screenshot in an unknown format\n");
    g_assert_not_reached();
}

static char *
created_now(void)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();

    return g_date_time_format_iso8601(now);
}

/* The probe guest itself, under TCG: it must reach 64-bit mode and be seen doing so, or
 * "auto" would never pick KVM anywhere. Its disk is removed and the domain is gone after. */
TEST(accel_probe_reaches_long_mode_under_tcg)
{
    g_autofree char *name = NULL, *image = NULL;
    DomAccelProbe probe;
    DomAccelChoice result = { 0 };
    virDomainPtr left;

    setup();
    probe = probe_settings(DOM_ACCEL_AUTO, 20000, &name, &image);
    if (!dom_accel_run_probe(conn, "qemu", &probe, &result))
        g_error("the probe did not pass under TCG: %s (%s)", result.finding,
                result.detail ? result.detail : "-");
    g_assert_cmpstr(result.domain_type, ==, "qemu");
    g_assert_cmpuint(result.probe_ms, >, 0);
    g_assert_false(g_file_test(image, G_FILE_TEST_EXISTS));
    left = virDomainLookupByName(conn, name);
    g_assert_null(left);
    g_free(result.domain_type);
}

/* A probe that cannot signal in time is a failure with a finding, and leaves nothing. */
TEST(accel_probe_times_out)
{
    g_autofree char *name = NULL, *image = NULL;
    DomAccelProbe probe;
    DomAccelChoice result = { 0 };

    setup();
    probe = probe_settings(DOM_ACCEL_AUTO, 1, &name, &image);
    g_assert_false(dom_accel_run_probe(conn, "qemu", &probe, &result));
    g_assert_null(result.domain_type);
    g_assert_nonnull(strstr(result.finding, "did not reach 64-bit mode"));
    g_assert_null(virDomainLookupByName(conn, name));
    g_free(result.finding);
    g_free(result.fix);
    g_free(result.detail);
}

/* The choice follows the host: KVM only where libvirt offers it and the probe passes;
 * "qemu" mode never probes; "kvm" mode without KVM chooses nothing, saying why. */
TEST(accel_choice_follows_the_host)
{
    g_autofree char *name = NULL, *image = NULL;
    g_autofree char *caps = NULL;
    g_autoptr(DomAccelChoice) qemu = NULL, kvm = NULL, autom = NULL;
    DomAccelProbe probe;
    bool offered;

    setup();
    caps = virConnectGetCapabilities(conn);
    g_assert_nonnull(caps);
    offered = strstr(caps, "<domain type='kvm'") != NULL;
    probe = probe_settings(DOM_ACCEL_QEMU, 5000, &name, &image);
    qemu = dom_accel_choose(conn, &probe);
    g_assert_cmpstr(qemu->domain_type, ==, "qemu");
    g_assert_cmpuint(qemu->probe_ms, ==, 0);

    probe.mode = DOM_ACCEL_AUTO;
    autom = dom_accel_choose(conn, &probe);
    probe.mode = DOM_ACCEL_KVM;
    kvm = dom_accel_choose(conn, &probe);
    g_test_message("auto: %s (%s)", autom->domain_type, autom->finding);
    if (!offered) {
        g_assert_cmpstr(autom->domain_type, ==, "qemu");
        g_assert_nonnull(strstr(autom->finding, "no KVM"));
        g_assert_null(kvm->domain_type);
        g_assert_nonnull(kvm->fix);
    } else if (g_str_equal(autom->domain_type, "kvm")) {
        g_assert_cmpuint(autom->probe_ms, >, 0);
        g_assert_cmpstr(kvm->domain_type, ==, "kvm");
    } else {
        /* Offered but unusable (permissions, a nested KVM that fails in 64-bit mode). */
        g_assert_cmpstr(autom->domain_type, ==, "qemu");
        g_assert_null(kvm->domain_type);
        g_assert_cmpstr(kvm->finding, ==, autom->finding);
    }
    g_assert_null(virDomainLookupByName(conn, name));
}

/* virsh sees who owns domain @name and the ports we gave; QEMU listens on @ws. */
static void
check_owner_and_ports(const char *name, guint vnc, guint ws)
{
    g_autofree char *dump = NULL, *port_attr = NULL, *ws_attr = NULL;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t) ws) };
    int status, fd;

    dump = virsh("dumpxml", name, NULL, &status);
    g_assert_cmpint(status, ==, 0);
    g_assert_nonnull(strstr(dump, "xmlns:vmbroker=\"" DOM_XML_NS_URI "\""));
    g_assert_nonnull(strstr(dump, "<vmbroker:owner>alice</vmbroker:owner>"));
    g_assert_nonnull(strstr(dump, "<vmbroker:vm-id>5eed0001-aaaa</vmbroker:vm-id>"));
    g_assert_nonnull(strstr(dump, "<vmbroker:template>memtest</vmbroker:template>"));
    g_assert_nonnull(strstr(dump, "<title>alice: memtest</title>"));
    port_attr = g_strdup_printf("port='%u'", vnc);
    ws_attr = g_strdup_printf("websocket='%u'", ws);
    g_assert_nonnull(strstr(dump, port_attr));
    g_assert_nonnull(strstr(dump, ws_attr));
    g_assert_nonnull(strstr(dump, "<driver name='qemu' type='raw'/>"));

    /* QEMU itself listens on the websocket port. */
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g_assert_cmpint(connect(fd, (struct sockaddr *) &a, sizeof(a)), ==, 0);
    close(fd);
}

/* memtest draws its screen within seconds; give TCG on a busy host a minute. Both virsh's
 * screenshot and dom_lifecycle_screenshot() show it. */
static void
check_screen_drawn(virDomainPtr dom, const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *shot_path = g_build_filename(storage_dir, "screen.img", NULL);
    g_autofree char *shot = NULL, *mime = NULL;
    g_autoptr(GBytes) bytes = NULL;
    gsize shot_len = 0, len = 0;
    const guint8 *data;
    bool drawn = false;
    int polls = 1, status;

    for (int i = 0; i < 120 && !drawn; i++, polls++) {
        g_autofree char *o = virsh("screenshot", name, shot_path, &status);
        g_assert_cmpint(status, ==, 0);
        g_clear_pointer(&shot, g_free);
        g_assert_true(g_file_get_contents(shot_path, &shot, &shot_len, NULL));
        drawn = image_has_content((const guint8 *) shot, shot_len);
        if (!drawn)
            g_usleep(500 * 1000);
    }
    g_unlink(shot_path);
    fprintf(stderr, "  screen %s after %d screenshot(s)\n", drawn ? "drawn" : "blank", polls);
    g_assert_true(drawn);
    bytes = dom_lifecycle_screenshot(dom, &mime, &error);
    g_assert_no_error(error);
    data = g_bytes_get_data(bytes, &len);
    g_assert_true(image_has_content(data, len));
}

TEST(memtest_boots_shows_metadata_ports_screen_and_needs_destroy)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DomTemplate) t = NULL;
    g_autoptr(virDomain) dom = NULL;
    g_autofree char *type = NULL, *name = NULL, *xml = NULL, *created = NULL;
    bool forced = false;
    guint vnc = 0, ws = 0;
    DomState state;
    DomInstance in;
    int status;

    setup();
    t = load_shipped("memtest");
    type = host_type();
    g_assert_true(dom_storage_check_iso(t->iso_path, &error));
    g_assert_no_error(error);
    name = dom_xml_domain_name(prefix, "alice", "5eed0001");
    created = created_now();
    pick_ports(&vnc, &ws);
    in = (DomInstance) {
        .domain_type = type, .name = name, .vm_id = "5eed0001-aaaa", .owner = "alice",
        .created = created, .vnc_port = vnc, .ws_port = ws, .listen = "127.0.0.1",
        .vnc_password = "s3cret",
    };
    xml = dom_xml_build_string(t, &in, &error);
    g_assert_no_error(error);
    dom = dom_lifecycle_define(conn, xml, &error);
    g_assert_no_error(error);
    g_assert_true(dom_lifecycle_start(dom, &error));
    g_assert_no_error(error);
    g_assert_true(dom_lifecycle_state(dom, &state, &error));
    g_assert_cmpint(state, ==, DOM_STATE_RUNNING);

    check_owner_and_ports(name, vnc, ws);
    check_screen_drawn(dom, name);

    /* memtest86+ ignores the ACPI power button: the stop has to destroy it. */
    g_assert_true(dom_lifecycle_stop(dom, 2000, &forced, &error));
    g_assert_no_error(error);
    g_assert_true(forced);
    g_assert_true(dom_lifecycle_state(dom, &state, &error));
    g_assert_cmpint(state, ==, DOM_STATE_SHUTOFF);

    g_assert_true(dom_lifecycle_undefine(dom, true, &error));
    g_assert_no_error(error);
    g_free(virsh("dominfo", name, NULL, &status));
    g_assert_cmpint(status, !=, 0);
}

static void
make_base(const char *file, const char *format)
{
    g_autofree char *path = g_build_filename(storage_dir, "base", file, NULL);
    const char *argv[] = { "qemu-img", "create", "-q", "-f", format, path, "64M", NULL };
    g_autoptr(GError) error = NULL;
    int status = -1;

    g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                               NULL, NULL, &status, &error));
    g_assert_no_error(error);
    g_assert_true(g_spawn_check_wait_status(status, NULL));
}

/* Base images whose format is not what their template says, and an "ISO" that is really
 * qcow2, are refused. */
static void
check_lying_bases(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DomTemplate) sneaky = NULL, liar = NULL;
    g_autofree char *p = g_build_filename(storage_dir, "base", "sneaky.raw", NULL);

    sneaky = write_template("sneaky", "{\"kind\":\"overlay\",\"memory_mib\":64,"
                                      "\"base_image\":\"sneaky.raw\",\"base_format\":\"raw\"}");
    g_assert_null(dom_storage_create_overlay(conn, prefix, "x.qcow2", sneaky, NULL, &error));
    g_assert_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_UNPROCESSABLE);
    g_assert_nonnull(strstr(error->message, "is qcow2, but the template says raw"));
    g_clear_error(&error);
    liar = write_template("liar", "{\"kind\":\"overlay\",\"memory_mib\":64,"
                                  "\"base_image\":\"liar.qcow2\",\"base_format\":\"qcow2\"}");
    g_assert_null(dom_storage_create_overlay(conn, prefix, "y.qcow2", liar, NULL, &error));
    g_assert_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_UNPROCESSABLE);
    g_clear_error(&error);
    /* An "ISO" that is really qcow2 is refused too. */
    g_assert_false(dom_storage_check_iso(p, &error));
    g_assert_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_UNPROCESSABLE);
}

/* virsh vol-list shows the overlay @vol, and vol-dumpxml its qcow2 backing chain.
 * Returns the vol-list text; *@ret_pool the disks pool's name. */
static char *
check_overlay_listed(const char *vol, const char *overlay, char **ret_pool)
{
    g_autofree char *info = NULL;
    char *list;
    int status;

    *ret_pool = dom_storage_pool_name(prefix, DOM_POOL_DISKS);
    list = virsh("vol-list", *ret_pool, NULL, &status);
    g_assert_cmpint(status, ==, 0);
    g_assert_nonnull(strstr(list, vol));
    info = virsh("vol-dumpxml", overlay, NULL, &status);
    g_assert_cmpint(status, ==, 0);
    g_assert_nonnull(strstr(info, "<backingStore>"));
    g_assert_nonnull(strstr(info, "<format type='qcow2'/>"));
    return list;
}

TEST(overlay_lives_and_dies_with_its_domain)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DomTemplate) t = NULL;
    g_autoptr(virDomain) dom = NULL;
    g_autofree char *type = NULL, *name = NULL, *xml = NULL, *created = NULL, *vol = NULL;
    g_autofree char *overlay = NULL, *backing = NULL, *fmt = NULL, *list = NULL, *pool = NULL;
    g_autofree char *blank = NULL, *dump = NULL;
    guint vnc = 0, ws = 0;
    DomInstance in;
    int status;

    setup();
    make_base("tiny.qcow2", "qcow2");
    /* A qcow2 file posing as raw, and a raw file posing as qcow2. */
    make_base("sneaky.raw", "qcow2");
    make_base("liar.qcow2", "raw");
    g_assert_true(dom_storage_ensure_pools(conn, prefix, storage_dir, DOM_POOL_OWNER_DEFAULT, &error)); /* refresh */
    g_assert_no_error(error);

    check_lying_bases();

    t = write_template("tiny", "{\"kind\":\"overlay\",\"memory_mib\":64,\"network\":\"none\","
                               "\"base_image\":\"tiny.qcow2\",\"base_format\":\"qcow2\"}");
    name = dom_xml_domain_name(prefix, "bob", "0e0e0e0e");
    vol = g_strconcat(name, "-disk0.qcow2", NULL);
    overlay = dom_storage_create_overlay(conn, prefix, vol, t, &backing, &error);
    g_assert_no_error(error);
    g_assert_true(g_file_test(overlay, G_FILE_TEST_EXISTS));
    fmt = dom_storage_file_format(overlay, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(fmt, ==, "qcow2");
    list = check_overlay_listed(vol, overlay, &pool);
    blank = dom_storage_create_blank(conn, prefix, "spare.qcow2", 1, &error);
    g_assert_no_error(error);

    type = host_type();
    created = created_now();
    pick_ports(&vnc, &ws);
    in = (DomInstance) {
        .domain_type = type, .name = name, .vm_id = "0e0e0e0e", .owner = "bob",
        .created = created, .disk_path = overlay, .backing_path = backing,
        .backing_format = "qcow2", .disk_ephemeral = true, .vnc_port = vnc, .ws_port = ws,
        .listen = "127.0.0.1",
    };
    xml = dom_xml_build_string(t, &in, &error);
    g_assert_no_error(error);
    dom = dom_lifecycle_define(conn, xml, &error);
    g_assert_no_error(error);
    /* QEMU opens the overlay and its backing chain. */
    g_assert_true(dom_lifecycle_start(dom, &error));
    g_assert_no_error(error);
    dump = virsh("dumpxml", name, NULL, &status);
    g_assert_nonnull(strstr(dump, "<vmbroker:ephemeral-volume>"));
    g_assert_true(dom_lifecycle_destroy(dom, &error));
    g_assert_no_error(error);

    g_assert_true(dom_lifecycle_undefine(dom, true, &error));
    g_assert_no_error(error);
    g_free(virsh("dominfo", name, NULL, &status));
    g_assert_cmpint(status, !=, 0);
    g_assert_false(g_file_test(overlay, G_FILE_TEST_EXISTS));
    g_free(list);
    list = virsh("vol-list", pool, NULL, &status);
    g_assert_null(strstr(list, vol));
    /* The base image and the unrelated volume stay. */
    g_assert_true(g_file_test(backing, G_FILE_TEST_EXISTS));
    g_assert_true(g_file_test(blank, G_FILE_TEST_EXISTS));
    g_assert_true(dom_storage_delete_path(conn, blank, &error));
    g_assert_no_error(error);
}

TEST(persistent_overlay_is_reattached)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DomTemplate) t = NULL;
    g_autofree char *vol = NULL, *first = NULL, *second = NULL, *backing = NULL;
    g_autofree char *b2 = NULL, *blank = NULL, *clash = NULL;
    bool created = false;

    setup();
    make_base("keep.qcow2", "qcow2");
    g_assert_true(dom_storage_ensure_pools(conn, prefix, storage_dir, DOM_POOL_OWNER_DEFAULT, &error));
    t = write_template("keep", "{\"kind\":\"overlay\",\"memory_mib\":64,\"persistent\":true,"
                               "\"base_image\":\"keep.qcow2\"}");
    vol = dom_storage_persistent_volume_name(prefix, "erin", t);
    g_assert_true(g_str_has_suffix(vol, "persist-keep@erin.qcow2"));
    first = dom_storage_reuse_overlay(conn, prefix, vol, t, &backing, &created, &error);
    g_assert_no_error(error);
    g_assert_true(created);
    second = dom_storage_reuse_overlay(conn, prefix, vol, t, &b2, &created, &error);
    g_assert_no_error(error);
    g_assert_false(created);
    g_assert_cmpstr(first, ==, second);
    g_assert_cmpstr(backing, ==, b2);

    /* A volume of that name that is not our overlay holds someone's data: refused. */
    clash = dom_storage_persistent_volume_name(prefix, "frank", t);
    blank = dom_storage_create_blank(conn, prefix, clash, 1, &error);
    g_assert_no_error(error);
    g_assert_null(dom_storage_reuse_overlay(conn, prefix, clash, t, NULL, NULL, &error));
    g_assert_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_CONFLICT);
    g_clear_error(&error);
    g_assert_true(dom_storage_delete_path(conn, blank, &error));
    g_assert_true(dom_storage_delete_path(conn, first, &error));
    g_assert_no_error(error);
}

TEST(special_characters_round_trip)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DomTemplate) t = NULL;
    g_autoptr(virDomain) dom = NULL, found = NULL;
    g_autoptr(DomMetadata) md = NULL;
    g_autofree char *type = NULL, *name = NULL, *xml = NULL, *created = NULL, *desc = NULL;
    g_autofree char *title = NULL;
    const char *owner = "<&'\">";
    guint vnc = 0, ws = 0;
    DomInstance in;

    setup();
    t = load_shipped("memtest");
    type = host_type();
    name = dom_xml_domain_name(prefix, owner, "c4a2c4a2");
    created = created_now();
    pick_ports(&vnc, &ws);
    in = (DomInstance) {
        .domain_type = type, .name = name, .vm_id = "c4a2c4a2", .owner = owner,
        .created = created, .vnc_port = vnc, .ws_port = ws, .listen = "127.0.0.1",
        .vnc_password = "<&'\">",
    };
    xml = dom_xml_build_string(t, &in, &error);
    g_assert_no_error(error);
    dom = dom_lifecycle_define(conn, xml, &error);
    g_assert_no_error(error);

    found = dom_lifecycle_lookup(conn, name, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(virDomainGetName(found), ==, name);
    g_assert_true(g_str_has_suffix(name, "<&'\">-c4a2c4a2"));
    md = dom_lifecycle_metadata(found, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(md->owner, ==, owner);
    title = virDomainGetMetadata(found, VIR_DOMAIN_METADATA_TITLE, NULL, 0);
    g_assert_cmpstr(title, ==, "<&'\">: memtest");
    desc = virDomainGetMetadata(found, VIR_DOMAIN_METADATA_DESCRIPTION, NULL, 0);
    g_assert_nonnull(strstr(desc, " of <&'\">, template memtest"));

    g_assert_true(dom_lifecycle_undefine(dom, true, &error));
    g_assert_no_error(error);
}

TEST_MAIN()
