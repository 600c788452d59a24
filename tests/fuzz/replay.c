// SPDX-License-Identifier: LGPL-2.1-or-later
// main() of a fuzz target outside libFuzzer: runs every file given (or every file of every
// folder given) through LLVMFuzzerTestOneInput once. The unit suite replays each target's
// corpus with it, so a crash once found stays a regression test in every build.
#include <stdio.h>
#include <glib.h>

#include "fuzz.h"

static int
replay_file(const char *path)
{
    g_autofree char *data = NULL;
    gsize len = 0;
    g_autoptr(GError) error = NULL;

    if (!g_file_get_contents(path, &data, &len, &error)) {
        fprintf(stderr, "%s\n", error->message);
        return 1;
    }
    LLVMFuzzerTestOneInput((const uint8_t *) data, len);
    return 0;
}

int
main(int argc, char **argv)
{
    unsigned files = 0;

    /* A GLib critical is a bug the fuzzer found (a NULL where a string was due): fatal here,
     * so an input kept in the corpus for one stays a failing test until it is fixed. */
    g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);

    for (int i = 1; i < argc; i++) {
        g_autoptr(GDir) dir = g_dir_open(argv[i], 0, NULL);
        const char *name;

        if (!dir) {
            if (replay_file(argv[i]) != 0)
                return 1;
            files++;
            continue;
        }
        while ((name = g_dir_read_name(dir))) {
            g_autofree char *path = g_build_filename(argv[i], name, NULL);
            if (replay_file(path) != 0)
                return 1;
            files++;
        }
    }
    printf("replayed %u inputs\n", files);
    return files ? 0 : 1;
}
