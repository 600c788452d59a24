// SPDX-License-Identifier: LGPL-2.1-or-later
// `vmbroker template list|render` through cmd_template_main(), with stdout and stderr
// captured into files.
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "cmd-template.h"
#include "dom-xml.h"
#include "test.h"

#define SHIPPED_DIR VMB_SOURCE_ROOT "/templates"

typedef struct {
    int status;
    char *out;
    char *err;
} Run;

static void
run_clear(Run *r)
{
    g_free(r->out);
    g_free(r->err);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Run, run_clear)

static char *
swap_fd(int fd, int *saved)
{
    g_autofree char *path = g_strdup_printf("%s/vmbtest-cmd-%d-%d", g_get_tmp_dir(), (int) getpid(), fd);
    int tmp = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

    g_assert_cmpint(tmp, >=, 0);
    *saved = dup(fd);
    g_assert_cmpint(dup2(tmp, fd), ==, fd);
    close(tmp);
    return g_steal_pointer(&path);
}

static char *
restore_fd(int fd, int saved, const char *path)
{
    char *text = NULL;

    g_assert_cmpint(dup2(saved, fd), ==, fd);
    close(saved);
    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    g_unlink(path);
    return text;
}

/* Runs `template ARGS` as configured with templates.dir @dir and libvirt.domain_type
 * @domain_type. */
static Run
run_with(const char *dir, const char *domain_type, const char *const *args)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    int saved_out, saved_err;
    g_autofree char *out_path = NULL, *err_path = NULL;
    Run r = { 0 };

    g_ptr_array_add(argv, (gpointer) "template");
    for (const char *const *a = args; *a; a++)
        g_ptr_array_add(argv, (gpointer) *a);
    g_ptr_array_add(argv, NULL);
    fflush(stdout);
    fflush(stderr);
    out_path = swap_fd(STDOUT_FILENO, &saved_out);
    err_path = swap_fd(STDERR_FILENO, &saved_err);
    r.status = cmd_template_main(dir, "vmbroker-", domain_type, (int) argv->len - 1,
                                 (char **) argv->pdata);
    fflush(stdout);
    fflush(stderr);
    r.out = restore_fd(STDOUT_FILENO, saved_out, out_path);
    r.err = restore_fd(STDERR_FILENO, saved_err, err_path);
    return r;
}

static Run
run(const char *dir, const char *const *args)
{
    return run_with(dir, "auto", args);
}

TEST(list)
{
    g_auto(Run) r = run(SHIPPED_DIR, (const char *const[]) { "list", NULL });

    g_assert_cmpint(r.status, ==, 0);
    g_assert_cmpstr(r.err, ==, "");
    g_assert_true(g_str_has_prefix(r.out, "NAME "));
    g_assert_nonnull(strstr(r.out, "\nmemtest "));
    g_assert_nonnull(strstr(r.out, "\niso-blank-disk "));
    g_assert_nonnull(strstr(r.out, "\ndebian-overlay "));
}

TEST(render_round_trips_special_characters)
{
    const char *owner = "o<&'\">x";
    g_auto(Run) r = run(SHIPPED_DIR, (const char *const[]) {
        "render", "memtest", "--owner", owner, "--vm-id", "1234abcd-0000", "--vnc-port", "6105",
        "--ws-port", "6205", "--domain-type", "qemu", NULL });
    g_autoptr(GError) error = NULL;
    g_autoptr(DomMetadata) md = NULL;
    g_autofree char *path = g_strdup_printf("%s/vmbtest-render-%d.xml", g_get_tmp_dir(), (int) getpid());
    const char *argv[] = { VIRT_XML_VALIDATE, path, "domain", NULL };
    int status = -1;

    g_assert_cmpint(r.status, ==, 0);
    g_assert_cmpstr(r.err, ==, "");
    g_assert_nonnull(strstr(r.out, "<domain type=\"qemu\">"));
    g_assert_nonnull(strstr(r.out, "port=\"6105\""));
    g_assert_nonnull(strstr(r.out, "websocket=\"6205\""));
    g_assert_nonnull(strstr(r.out, "<name>vmbroker-o&lt;&amp;'\"&gt;x-1234abcd</name>"));
    md = dom_xml_parse_metadata(r.out, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(md->owner, ==, owner);
    g_assert_cmpstr(md->template_name, ==, "memtest");

    /* What render prints is what `virsh define` takes. */
    g_assert_true(VIRT_XML_VALIDATE[0]);
    g_assert_true(g_file_set_contents(path, r.out, -1, NULL));
    g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL,
                               NULL, NULL, NULL, &status, &error));
    g_unlink(path);
    g_assert_no_error(error);
    g_assert_true(g_spawn_check_wait_status(status, NULL));
}

TEST(render_placeholders_for_disks)
{
    g_auto(Run) iso = run(SHIPPED_DIR, (const char *const[]) {
        "render", "iso-blank-disk", "--storage-dir", "/srv/vmb", NULL });
    g_auto(Run) overlay = run(SHIPPED_DIR, (const char *const[]) { "render", "debian-overlay", NULL });

    g_assert_cmpint(iso.status, ==, 0);
    g_assert_nonnull(strstr(iso.out, "<source file=\"/srv/vmb/isos/ISO.iso\"/>"));
    g_assert_nonnull(strstr(iso.out, "<source file=\"/srv/vmb/disks/vmbroker-owner-00000000-disk0.qcow2\"/>"));
    g_assert_nonnull(strstr(iso.out, "<vmbroker:ephemeral-volume>"));
    g_assert_cmpint(overlay.status, ==, 0);
    g_assert_nonnull(strstr(overlay.out, "<source file=\"/var/lib/vmbroker/base/debian-12.qcow2\"/>"));
    g_assert_nonnull(strstr(overlay.out, "<source file=\"/var/lib/vmbroker/disks/vmbroker-persist-debian-overlay@owner.qcow2\"/>"));
    /* A persistent overlay outlives the VM. */
    g_assert_null(strstr(overlay.out, "ephemeral-volume"));
}

TEST(render_domain_type_defaults_to_the_config)
{
    const char *const memtest[] = { "render", "memtest", NULL };
    /* auto asks no libvirt here: it is kvm exactly where this process may open /dev/kvm. */
    const char *guess = access("/dev/kvm", R_OK | W_OK) == 0 ? "<domain type=\"kvm\">"
                                                              : "<domain type=\"qemu\">";
    g_auto(Run) qemu = run_with(SHIPPED_DIR, "qemu", memtest);
    g_auto(Run) kvm = run_with(SHIPPED_DIR, "kvm", memtest);
    g_auto(Run) autotype = run_with(SHIPPED_DIR, "auto", memtest);
    g_auto(Run) unset = run_with(SHIPPED_DIR, NULL, memtest);
    g_auto(Run) option = run_with(SHIPPED_DIR, "kvm", (const char *const[]) {
        "render", "memtest", "--domain-type", "qemu", NULL });
    g_auto(Run) bad = run_with(SHIPPED_DIR, "qemu", (const char *const[]) {
        "render", "memtest", "--domain-type", "xen", NULL });

    g_assert_cmpint(qemu.status, ==, 0);
    g_assert_true(g_str_has_prefix(qemu.out, "<domain type=\"qemu\">"));
    g_assert_cmpint(kvm.status, ==, 0);
    g_assert_true(g_str_has_prefix(kvm.out, "<domain type=\"kvm\">"));
    g_assert_cmpint(autotype.status, ==, 0);
    g_assert_true(g_str_has_prefix(autotype.out, guess));
    g_assert_cmpint(unset.status, ==, 0);
    g_assert_true(g_str_has_prefix(unset.out, guess));
    /* The option wins over the config. */
    g_assert_cmpint(option.status, ==, 0);
    g_assert_true(g_str_has_prefix(option.out, "<domain type=\"qemu\">"));
    g_assert_cmpint(bad.status, ==, 2);
    g_assert_cmpstr(bad.err, ==, "vmbroker: template render: --domain-type is kvm or qemu\n");
    g_assert_cmpstr(bad.out, ==, "");
}

TEST(errors_are_one_line)
{
    g_auto(Run) unknown = run(SHIPPED_DIR, (const char *const[]) { "render", "nope", NULL });
    g_auto(Run) badopt = run(SHIPPED_DIR, (const char *const[]) { "render", "memtest", "--bogus", NULL });
    g_auto(Run) badcmd = run(SHIPPED_DIR, (const char *const[]) { "frobnicate", NULL });
    g_auto(Run) baddir = run(VMB_SOURCE_ROOT "/tests/unit/data/templates-bad",
                             (const char *const[]) { "list", NULL });
    g_auto(Run) help = run(SHIPPED_DIR, (const char *const[]) { "--help", NULL });
    /* Usage after a name too, with no templates folder to load (as cmd_template passes). */
    g_auto(Run) late_help = run(NULL, (const char *const[]) { "render", "memtest", "--help", NULL });

    g_assert_cmpint(unknown.status, ==, 1);
    g_assert_cmpstr(unknown.err, ==,
                    "vmbroker: template render: no template 'nope' (see 'vmbroker template list')\n");
    g_assert_cmpstr(unknown.out, ==, "");
    g_assert_cmpint(badopt.status, ==, 2);
    g_assert_true(g_str_has_prefix(badopt.err, "vmbroker: template render: Unknown option --bogus\n"));
    g_assert_cmpint(badcmd.status, ==, 2);
    g_assert_true(g_str_has_prefix(badcmd.err, "vmbroker: template: unknown command 'frobnicate' (see --help)\n"));
    g_assert_cmpint(baddir.status, ==, 1);
    g_assert_true(g_str_has_prefix(baddir.err, "vmbroker: template: " VMB_SOURCE_ROOT "/tests/unit/data/templates-bad/"));
    g_assert_cmpuint(strlen(baddir.err), ==, strcspn(baddir.err, "\n") + 1);
    g_assert_cmpint(help.status, ==, 0);
    g_assert_true(g_str_has_prefix(help.out, "usage: vmbroker template list\n"));
    g_assert_nonnull(strstr(help.out, "--domain-type defaults to libvirt.domain_type;"));
    g_assert_cmpint(late_help.status, ==, 0);
    g_assert_cmpstr(late_help.out, ==, help.out);
    g_assert_cmpstr(late_help.err, ==, "");
}

TEST_MAIN()
