// SPDX-License-Identifier: LGPL-2.1-or-later
// The router (broker/http/http-route.c:http_route_find): the input is "METHOD PATH", routed
// through the real route table, and, when it has a second line, a one-route table of the
// first line's pattern, to reach odd patterns too.
#include <string.h>
#include <glib.h>

#include "app.h"
#include "fuzz.h"
#include "http-route.h"

static void
check(const HttpRoute *routes, size_t n, const char *method, const char *path)
{
    g_autoptr(GHashTable) params = NULL;
    unsigned status = 0;
    const HttpRoute *r = http_route_find(routes, n, method, path, &params, &status);

    if (!r) {
        g_assert(status == 404 || status == 405);
        return;
    }
    g_assert(r >= routes && r < routes + n);
    if (params) {
        GHashTableIter it;
        gpointer k, v;

        /* A captured {name} is one whole segment: never empty, never a '/'. */
        g_hash_table_iter_init(&it, params);
        while (g_hash_table_iter_next(&it, &k, &v))
            if (strcmp(k, "*") != 0)
                g_assert(((char *) v)[0] && !strchr(v, '/'));
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *text = fuzz_cstring(data, size);
    char *nl = strchr(text, '\n');
    char *space;

    if (nl) {
        HttpRoute one = { .method = "GET" };

        *nl = '\0';
        one.pattern = text;
        check(&one, 1, "GET", nl + 1);
        return 0;
    }
    space = strchr(text, ' ');
    if (!space)
        check(api_routes, api_routes_count, "GET", text);
    else {
        *space = '\0';
        check(api_routes, api_routes_count, text, space + 1);
    }
    return 0;
}
