// SPDX-License-Identifier: LGPL-2.1-or-later
// `vmbroker audit`: the audit log, newest first, with the filters of GET /api/v1/audit.
#include <stdio.h>
#include <string.h>

#include "api-render.h"
#include "cmd.h"
#include "svc-audit.h"

static void
print_row(const DbAuditRow *r)
{
    g_autofree char *object = g_strdup_printf("%s:%s", r->object_kind,
                                              r->object_id ? r->object_id : "-");
    const char *who = r->actor ? r->actor : r->origin ? r->origin : "system";

    printf("%-27s %-20s %-20s %-45s %s\n", r->at, who, r->action, object, r->detail_json);
}

/**
 * cmd_audit:
 * @config_path: (nullable): config file
 * @argc: argument count, argv[0] is "audit"
 * @argv: arguments: [--since T] [--until T] [--user U] [--vm ID] [--action A] [--limit N]
 *   [--cursor C] [--json]
 *
 * Prints one page, newest first; when more follow, the text form ends with the --cursor to
 * pass for the next page, and the JSON form carries next_cursor.
 *
 * Returns: the exit status.
 */
int
cmd_audit(const char *config_path, int argc, char **argv)
{
    g_autofree char *since = NULL, *until = NULL, *user = NULL, *vm = NULL, *action = NULL;
    g_autofree char *cursor = NULL;
    gint64 limit = 0;
    gboolean json = FALSE;
    GOptionEntry entries[] = {
        { "since", 0, 0, G_OPTION_ARG_STRING, &since,
          "rows at or after T: ISO 8601, or a span back from now (30m, 12h, 7d)", "T" },
        { "until", 0, 0, G_OPTION_ARG_STRING, &until, "rows before T (the same forms)", "T" },
        { "user", 0, 0, G_OPTION_ARG_STRING, &user, "rows by or about user U", "U" },
        { "vm", 0, 0, G_OPTION_ARG_STRING, &vm, "rows about the VM with this id", "ID" },
        { "action", 0, 0, G_OPTION_ARG_STRING, &action,
          "this action (vm.stop), or those under a prefix (vm.)", "A" },
        { "limit", 0, 0, G_OPTION_ARG_INT64, &limit, "rows per page, 1 to 500 (100)", "N" },
        { "cursor", 0, 0, G_OPTION_ARG_STRING, &cursor, "the page after this cursor", "C" },
        { "json", 0, 0, G_OPTION_ARG_NONE, &json,
          "print {items, next_cursor} as GET /api/v1/audit does", NULL },
        G_OPTION_ENTRY_NULL
    };
    g_autoptr(Config) cfg = NULL;
    g_autoptr(DbPool) pool = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) rows = NULL;
    g_autofree char *next = NULL;
    SvcAuditQuery q;
    int ret = CMD_EXIT_OK;

    if (!cmd_parse_options("audit", "", "Prints the audit log, newest first, one page.",
                           entries, &argc, &argv, &ret))
        return ret;
    if (argc != 1) {
        cmd_fail("audit takes options only (see vmbroker audit --help)");
        return CMD_EXIT_USAGE;
    }
    cfg = cmd_load_config(config_path, CONFIG_NEEDS_DATABASE);
    if (!cfg)
        return CMD_EXIT_FAILURE;
    pool = cmd_open_pool(cfg);
    q = (SvcAuditQuery) { since, until, user, vm, action, cursor, limit };
    rows = svc_audit_list(pool, cmd_cli_caller(), &q, &next, &error);
    if (!rows)
        return cmd_fail_error("audit", error);
    if (json) {
        g_autoptr(json_object) out = json_object_new_object();
        json_object *items = json_object_new_array();
        json_object_object_add(out, "items", items);
        for (guint i = 0; i < rows->len; i++)
            json_object_array_add(items, api_render_audit(rows->pdata[i]));
        json_object_object_add(out, "next_cursor", api_render_string(next));
        cmd_print_json(out);
        return CMD_EXIT_OK;
    }
    printf("%-27s %-20s %-20s %-45s %s\n", "AT", "ACTOR", "ACTION", "OBJECT", "DETAIL");
    for (guint i = 0; i < rows->len; i++)
        print_row(rows->pdata[i]);
    if (next)
        printf("# more: --cursor %s\n", next);
    return CMD_EXIT_OK;
}
