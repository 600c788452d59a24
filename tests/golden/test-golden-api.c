// SPDX-License-Identifier: LGPL-2.1-or-later
// Golden files for the API's objects: each shape broker/api/api-render.c produces, from
// fixed records, against tests/golden/api/NAME.json. VMB_REGENERATE_GOLDEN=1 rewrites them;
// read the diff line by line: a field that goes away breaks every client that reads it.
#include <string.h>

#include "api-render.h"
#include "test.h"

/* The records hold char *: these literals are never written through. */
#define S(s) ((char *) (s))
#define GOLDEN_DIR VMB_SOURCE_ROOT "/tests/golden/api/"

static GDateTime *
at(const char *iso8601)
{
    return g_date_time_new_from_iso8601(iso8601, NULL);
}

/* Compares @obj (taken) with GOLDEN_DIR/@name.json. */
static void
check_golden(const char *name, json_object *obj)
{
    g_autofree char *path = g_strconcat(GOLDEN_DIR, name, ".json", NULL);
    g_autofree char *got = g_strconcat(
        json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                JSON_C_TO_STRING_NOSLASHESCAPE), "\n", NULL);
    g_autofree char *expected = NULL;
    g_autoptr(GError) error = NULL;

    json_object_put(obj);
    if (g_strcmp0(g_getenv("VMB_REGENERATE_GOLDEN"), "1") == 0)
        g_assert_true(g_file_set_contents(path, got, -1, NULL));
    if (!g_file_get_contents(path, &expected, NULL, &error))
        g_error("%s: %s (VMB_REGENERATE_GOLDEN=1 creates it)", path, error->message);
    if (strcmp(expected, got) != 0)
        g_error("%s differs; got:\n%s(VMB_REGENERATE_GOLDEN=1 rewrites it)", path, got);
}

static DbVm
running_vm(void)
{
    static char *no_volumes[] = { NULL };

    return (DbVm) {
        .id = S("5eed0001-0000-4000-8000-00000000a11c"),
        .name = S("vmbroker-alice-5eed0001"),
        .owner_id = S("0a11ce00-0000-4000-8000-000000000001"),
        .owner_name = S("alice"),
        .template_name = S("memtest"),
        .template_version = 1,
        .host_id = S("40570000-0000-4000-8000-000000000001"),
        .host_name = S("local"),
        .domain_uuid = S("d0d0d0d0-0000-4000-8000-000000000001"),
        .accelerator = S("qemu"),
        .state = DB_VM_RUNNING,
        .vnc_port = 5901,
        .ws_port = 5701,
        .disk_volumes = no_volumes,
        .console_connections = 1,
    };
}

TEST(vm_running)
{
    DbVm vm = running_vm();

    vm.created_at = at("2026-12-06T09:00:00Z");
    vm.updated_at = at("2026-12-06T09:00:01Z");
    vm.started_at = at("2026-12-06T09:00:01Z");
    vm.console_ready_at = at("2026-12-06T09:00:02Z");
    vm.console_last_activity_at = at("2026-12-06T09:05:00Z");
    check_golden("vm-running", api_render_vm(&vm));
    g_date_time_unref(vm.created_at);
    g_date_time_unref(vm.updated_at);
    g_date_time_unref(vm.started_at);
    g_date_time_unref(vm.console_ready_at);
    g_date_time_unref(vm.console_last_activity_at);
}

TEST(vm_stopped_with_reason_and_iso)
{
    DbVm vm = running_vm();

    vm.iso_id = S("150150150-0000-4000-8000-000000000001");
    vm.state = DB_VM_STOPPED;
    vm.state_reason = S("idle for 900 s without a console");
    vm.vnc_port = vm.ws_port = 0;
    vm.console_connections = 0;
    vm.console_closed_reason = S("the VM stopped");
    vm.created_at = at("2026-12-06T09:00:00Z");
    vm.updated_at = at("2026-12-06T09:20:00Z");
    vm.stopped_at = at("2026-12-06T09:20:00Z");
    vm.console_closed_at = at("2026-12-06T09:20:00Z");
    check_golden("vm-stopped", api_render_vm(&vm));
    g_date_time_unref(vm.created_at);
    g_date_time_unref(vm.updated_at);
    g_date_time_unref(vm.stopped_at);
    g_date_time_unref(vm.console_closed_at);
}

TEST(user_as_seen_by_itself_and_by_admins)
{
    DbUser u = { .id = S("0a11ce00-0000-4000-8000-000000000001"), .username = S("alice"),
                 .role = DB_ROLE_USER, .password_hash = S("$argon2id$not-shown"),
                 .disabled = true };

    check_golden("user", api_render_user(&u, false));
    check_golden("user-admin-view", api_render_user(&u, true));
}

TEST(token_never_shows_its_secret)
{
    DbToken t = { .id = S("70c3e000-0000-4000-8000-000000000001"), .name = S("portal"),
                  .created_at = S("2026-12-06T09:00:00Z"), .expires_at = NULL,
                  .last_used_at = S("2026-12-06T09:10:00Z"), .revoked = false };

    check_golden("token", api_render_token(&t));
}

TEST(iso)
{
    DbIso iso = { .id = S("150150150-0000-4000-8000-000000000001"),
                  .owner_id = S("0a11ce00-0000-4000-8000-000000000001"), .name = S("course.iso"),
                  .sha256 = S("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
                  .size = 6291456, .volume = S("9f86d081884c7d65.iso"), .is_public = true };

    check_golden("iso", api_render_iso(&iso));
}

TEST(hosts_configured_and_added)
{
    DbHost local = { .id = S("40570000-0000-4000-8000-000000000001"), .name = S("local"),
                     .uri = S("qemu:///system"), .console_address = S("127.0.0.1"),
                     .ranges = { 5900, 5999, 5700, 5799 }, .enabled = true,
                     .from_config = true, .reachable = true, .vms = 3 };
    DbHost added = { .id = S("40570000-0000-4000-8000-000000000002"), .name = S("hv2"),
                     .uri = S("qemu+ssh://hv2.example/system"), .console_address = S("10.0.0.2"),
                     .ranges = { 6000, 6099, 6100, 6199 }, .memory_mib = 65536 };

    local.created_at = at("2026-12-06T09:00:00Z");
    added.created_at = at("2026-12-06T10:00:00Z");
    check_golden("host-local", api_render_host(&local));
    check_golden("host-added", api_render_host(&added));
    g_date_time_unref(local.created_at);
    g_date_time_unref(added.created_at);
}

TEST(template_shows_no_host_paths)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DomTemplate) t = dom_template_load_file(VMB_SOURCE_ROOT "/templates/memtest.json",
                                                      &error);

    g_assert_no_error(error);
    check_golden("template-memtest", api_render_template(t));
}

TEST_MAIN()
