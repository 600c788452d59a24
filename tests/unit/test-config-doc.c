// SPDX-License-Identifier: LGPL-2.1-or-later
// Every configuration key is documented in README.md's table, and the table names no key the
// code lacks; vmbroker.conf(5) and the example config, generated from the table, carry every
// key, and the example loads as a valid config. A key added without a row fails here.
#include <string.h>

#include "config.h"
#include "test.h"

TEST(every_key_is_in_the_readme)
{
    g_autofree char *readme = NULL;
    g_auto(GStrv) names = config_key_names();
    unsigned missing = 0;

    g_assert_true(g_file_get_contents(VMB_SOURCE_ROOT "/README.md", &readme, NULL, NULL));
    g_assert_cmpuint(g_strv_length(names), >, 20);
    for (char **n = names; *n; n++) {
        g_autofree char *row = g_strdup_printf("| `%s` |", *n);
        if (!strstr(readme, row)) {
            g_printerr("README.md has no row for %s\n", *n);
            missing++;
        }
    }
    g_assert_cmpuint(missing, ==, 0);
}

/* The "section.key" names of README.md's configuration table. */
static GStrv
readme_keys(void)
{
    g_autofree char *readme = NULL;
    g_autoptr(GRegex) re = g_regex_new("^\\| `([a-z_]+\\.[a-z0-9_]+)` \\|", G_REGEX_MULTILINE, 0,
                                       NULL);
    g_autoptr(GMatchInfo) m = NULL;
    g_autoptr(GStrvBuilder) b = g_strv_builder_new();
    const char *start, *end;

    g_assert_true(g_file_get_contents(VMB_SOURCE_ROOT "/README.md", &readme, NULL, NULL));
    start = strstr(readme, "\n## Configuration\n");
    g_assert_nonnull(start);
    end = strstr(start + 1, "\n## ");
    g_assert_nonnull(end);
    g_regex_match_full(re, start, end - start, 0, 0, &m, NULL);
    for (; g_match_info_matches(m); g_match_info_next(m, NULL)) {
        g_autofree char *name = g_match_info_fetch(m, 1);
        g_strv_builder_add(b, name);
    }
    return g_strv_builder_end(b);
}

TEST(the_readme_names_no_other_key)
{
    g_auto(GStrv) names = config_key_names();
    g_auto(GStrv) rows = readme_keys();

    g_assert_cmpuint(g_strv_length(rows), ==, g_strv_length(names));
    for (char **r = rows; *r; r++) {
        if (!g_strv_contains((const char *const *) names, *r))
            g_error("README.md documents %s, which the code does not have", *r);
    }
}

TEST(man_page_and_example_carry_every_key)
{
    g_autofree char *man = NULL, *example = NULL;
    g_auto(GStrv) names = config_key_names();
    g_autoptr(GError) error = NULL;
    g_autoptr(Config) cfg = NULL;

    g_assert_true(g_file_get_contents(VMB_BUILD_ROOT "/docs/vmbroker.conf.5", &man, NULL, NULL));
    g_assert_true(g_file_get_contents(VMB_BUILD_ROOT "/docs/vmbroker.conf.example", &example,
                                      NULL, NULL));
    for (char **n = names; *n; n++) {
        g_auto(GStrv) sk = g_strsplit(*n, ".", 2);
        g_autofree char *section = g_strdup_printf("\n[%s]\n", sk[0]);
        g_autofree char *man_section = g_strdup_printf("\n.SH \"[%s]\"\n", sk[0]);
        g_autofree char *man_key = g_strdup_printf("\n.B %s\n", sk[1]);
        g_autofree char *line = g_strdup_printf("\n#%s =", sk[1]);
        const char *in_man = strstr(man, man_section);
        const char *in_example = strstr(example, section);

        g_assert_nonnull(in_man);
        g_assert_nonnull(in_example);
        /* After its own section's heading and before the next one. */
        g_assert_nonnull(strstr(in_man, man_key));
        g_assert_true(!strstr(in_man + 1, "\n.SH ") ||
                      strstr(in_man, man_key) < strstr(in_man + 1, "\n.SH "));
        g_assert_nonnull(strstr(in_example, line));
        g_assert_true(!strstr(in_example + 1, "\n[") ||
                      strstr(in_example, line) < strstr(in_example + 1, "\n["));
    }
    /* As installed (every key commented out) it is a valid config of defaults. */
    cfg = config_load(VMB_BUILD_ROOT "/docs/vmbroker.conf.example", 0, &error);
    g_assert_no_error(error);
    g_assert_nonnull(cfg);
    g_assert_cmpuint(cfg->http_listen_port, ==, 8080);
}

TEST_MAIN()
