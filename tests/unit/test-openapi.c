// SPDX-License-Identifier: LGPL-2.1-or-later
// contrib/openapi.yaml and the route table describe the same set of (method, path): a
// route missing from the file, or a documented one the code does not serve, fails. The vm
// object's state enum is the broker's list of VM states.
#include <string.h>

#include "api.h"
#include "db-vms.h"
#include "test.h"

static void
replace_str(char **slot, char *value)
{
    g_free(*slot);
    *slot = value;
}

/* "get /healthz" for every operation under paths: in the YAML (2-space indentation). */
static GHashTable *
documented_operations(const char *path)
{
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    g_autofree char *current = NULL;
    GHashTable *ops = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    bool in_paths = false;

    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
        const char *line = *l;
        if (line[0] != ' ' && line[0] != '#' && line[0])
            in_paths = strcmp(line, "paths:") == 0;
        else if (in_paths && g_str_has_prefix(line, "  /") && g_str_has_suffix(line, ":")) {
            g_free(current);
            current = g_strndup(line + 2, strlen(line) - 3);
        } else if (in_paths && current && g_str_has_prefix(line, "    ") && line[4] != ' ') {
            const char *methods[] = { "get:", "post:", "put:", "delete:", "patch:", NULL };
            for (const char **m = methods; *m; m++)
                if (g_str_has_prefix(line + 4, *m))
                    g_hash_table_add(ops, g_strdup_printf("%.*s %s", (int) strlen(*m) - 1, *m,
                                                          current));
        }
    }
    return ops;
}

TEST(routes_and_openapi_agree)
{
    g_autoptr(GHashTable) doc = documented_operations(VMB_SOURCE_ROOT "/contrib/openapi.yaml");
    unsigned missing = 0;

    g_assert_cmpuint(g_hash_table_size(doc), >, 0);
    for (size_t i = 0; i < api_routes_count; i++) {
        g_autofree char *method = g_ascii_strdown(api_routes[i].method, -1);
        g_autofree char *pattern = g_strdup(api_routes[i].pattern);
        g_autofree char *key = NULL;
        /* A "rest of the path" route is documented as a {path} parameter. */
        if (g_str_has_suffix(pattern, "/*")) {
            pattern[strlen(pattern) - 1] = '\0';
            replace_str(&pattern, g_strconcat(pattern, "{path}", NULL));
        }
        key = g_strdup_printf("%s %s", method, pattern);
        if (!g_hash_table_remove(doc, key)) {
            g_printerr("served but not in contrib/openapi.yaml: %s\n", key);
            missing++;
        }
    }
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, doc);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        g_printerr("documented but not served: %s\n", (char *) key);
        missing++;
    }
    g_assert_cmpuint(missing, ==, 0);
}

/* The names in the `enum: [...]` of the Vm schema's `state` property. */
static GStrv
documented_vm_states(const char *path)
{
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    bool in_vm = false, in_state = false;

    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
        const char *line = *l, *open, *close;
        if (g_str_has_prefix(line, "    ") && line[4] != ' ')
            in_vm = strcmp(line, "    Vm:") == 0;
        if (in_vm && g_str_has_prefix(line, "        ") && line[8] != ' ')
            in_state = g_str_has_prefix(line + 8, "state:");
        if (!in_state || !(open = strstr(line, "enum: [")) || !(close = strchr(open, ']')))
            continue;
        open += strlen("enum: [");
        {
            g_autofree char *list = g_strndup(open, (gsize) (close - open));
            GStrv names = g_strsplit(list, ",", -1);
            for (char **n = names; *n; n++)
                g_strstrip(*n);
            return names;
        }
    }
    return NULL;
}

TEST(vm_states_and_openapi_agree)
{
    g_auto(GStrv) doc = documented_vm_states(VMB_SOURCE_ROOT "/contrib/openapi.yaml");

    g_assert_nonnull(doc);
    g_assert_cmpuint(g_strv_length(doc), ==, DB_VM_STATE_LAST);
    for (unsigned i = 0; i < DB_VM_STATE_LAST; i++)
        g_assert_true(g_strv_contains((const char *const *) doc,
                                      db_vm_state_to_string((DbVmState) i)));
}

TEST_MAIN()
