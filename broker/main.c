// SPDX-License-Identifier: LGPL-2.1-or-later
// vmbroker: the command line.
#include "config.h"

#include <stdio.h>
#include <string.h>

int
main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "version") == 0) {
        printf("vmbroker %s\n", VMB_VERSION);
        return 0;
    }
    fprintf(stderr, "usage: vmbroker version\n");
    return 2;
}
