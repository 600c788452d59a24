// SPDX-License-Identifier: LGPL-2.1-or-later
// Every configuration key is documented in README.md's table: adding a key without a line
// there fails here.
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

TEST_MAIN()
