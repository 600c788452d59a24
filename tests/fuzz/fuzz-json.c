// SPDX-License-Identifier: LGPL-2.1-or-later
// Request bodies (broker/api/api-common.c): the decoding every JSON handler starts with, then
// the members the handlers read, read as they read them (login, tokens, VMs, consoles).
#include <glib.h>
#include <json-c/json.h>

#include "api-common.h"
#include "fuzz.h"
#include "http-server.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const strings[] = { "username", "password", "name", "template", "iso",
                                           "owner", "ticket" };
    g_autofree char *body = fuzz_cstring(data, size);
    json_object *obj = NULL;
    HttpReply *reply = api_json_decode("application/json; charset=utf-8", body, size, &obj);

    if (reply) {
        http_reply_free(reply);
        return 0;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(strings); i++) {
        g_autoptr(GError) error = NULL;
        const char *s = NULL;

        if (api_json_string(obj, strings[i], false, &s, &error) && s)
            g_assert(g_utf8_validate(s, -1, NULL));
    }
    {
        g_autoptr(GError) error = NULL;
        gint64 n = -1;

        if (api_json_uint(obj, "expires_in", 31536000, &n, &error))
            g_assert(n == -1 || (n >= 0 && n <= 31536000));
    }
    json_object_put(obj);
    return 0;
}
