// SPDX-License-Identifier: LGPL-2.1-or-later
// Config files (broker/config/config.c): any INI text, every key's parser and check.
#include <glib.h>

#include "config.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_scratch_file(data, size, ".ini");
    g_autoptr(GError) error = NULL;
    Config *cfg = config_load(path, CONFIG_NEEDS_NOTHING, &error);

    if (cfg)
        config_free(cfg);
    return 0;
}
