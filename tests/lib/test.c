// SPDX-License-Identifier: LGPL-2.1-or-later
// The runner behind TEST_MAIN(): a case that returns passed; one that aborts fails the file.
#include "test.h"

#include <string.h>

int
test_main(int argc, char **argv)
{
    unsigned ran = 0;

    for (unsigned i = 0; i < test_ncases; i++) {
        bool wanted = argc < 2;
        for (int a = 1; a < argc; a++)
            wanted |= strcmp(argv[a], test_cases[i].name) == 0;
        if (!wanted)
            continue;
        fprintf(stderr, "=== %s\n", test_cases[i].name);
        test_cases[i].fn();
        fprintf(stderr, "ok  %s\n", test_cases[i].name);
        ran++;
    }
    if (ran == 0) {
        fprintf(stderr, "no test case matched\n");
        return 1;
    }
    return 0;
}
