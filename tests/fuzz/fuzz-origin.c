// SPDX-License-Identifier: LGPL-2.1-or-later
// Origin and URL normalisation: the input is http.public_url as the config parses it
// (KEY_URL), then the origin browsers are compared with (api_public_origin).
#include <string.h>
#include <glib.h>

#include "api-common.h"
#include "app.h"
#include "config.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *value = fuzz_cstring(data, size);
    g_autofree char *ini = NULL;
    g_autofree char *origin = NULL;
    g_autoptr(GError) error = NULL;
    const char *path;
    Config *cfg;

    /* One line: a newline would make it other keys, which fuzz-config covers. */
    if (strpbrk(value, "\r\n"))
        return 0;
    ini = g_strdup_printf("[http]\npublic_url = %s\n", value);
    path = fuzz_scratch_file((const uint8_t *) ini, strlen(ini), ".ini");
    cfg = config_load(path, CONFIG_NEEDS_NOTHING, &error);
    if (!cfg)
        return 0;
    origin = api_public_origin(&(App) { .cfg = cfg });
    /* The origin is a prefix of the URL and has no path. */
    g_assert(g_str_has_prefix(cfg->http_public_url, origin));
    g_assert(!strchr(strstr(origin, "://") ? strstr(origin, "://") + 3 : origin, '/'));
    /* Nor a space or a control character, which would make it two header tokens. */
    for (const char *p = origin; *p; p++)
        g_assert((unsigned char) *p > ' ' && *p != 0x7f);
    config_free(cfg);
    return 0;
}
