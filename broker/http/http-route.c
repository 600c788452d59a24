// SPDX-License-Identifier: LGPL-2.1-or-later
// The router: a route's pattern is matched a path segment at a time; {name} takes one
// segment, a last "*" the rest.
#include "http-route.h"

#include <string.h>

static void
param_add(GHashTable **params, char *name, char *value)
{
    if (!*params)
        *params = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_hash_table_insert(*params, name, value);
}

/* Walks the pattern and the path a segment at a time, without copying either. */
static bool
route_match(const char *pattern, const char *path, GHashTable **ret_params)
{
    g_autoptr(GHashTable) params = NULL;
    const char *p = pattern, *q = path;

    for (;;) {
        size_t plen = strcspn(p, "/"), qlen = strcspn(q, "/");

        if (plen == 1 && *p == '*' && !p[1]) {
            param_add(&params, g_strdup("*"), g_strdup(q));
            break;
        }
        if (plen > 2 && p[0] == '{' && p[plen - 1] == '}') {
            if (!qlen)
                return false;
            param_add(&params, g_strndup(p + 1, plen - 2), g_strndup(q, qlen));
        } else if (plen != qlen || memcmp(p, q, plen) != 0) {
            return false;
        }
        p += plen;
        q += qlen;
        if (!*p || !*q) {
            if (*p || *q)
                return false; /* one has more segments */
            break;
        }
        p++;
        q++;
    }
    *ret_params = g_steal_pointer(&params);
    return true;
}

/**
 * http_route_find:
 * @routes: the route table
 * @nroutes: its length
 * @method: the request's method (HEAD matches GET routes)
 * @path: the request's path
 * @ret_params: (out): the {name} segments of the route found
 * @ret_status: (out): 404 (no route has the path) or 405 (none has it with @method), set
 *     when NULL is returned
 *
 * Returns: (nullable): the first route that matches.
 */
const HttpRoute *
http_route_find(const HttpRoute *routes, size_t nroutes, const char *method, const char *path,
                GHashTable **ret_params, unsigned *ret_status)
{
    bool path_known = false;

    for (size_t i = 0; i < nroutes; i++) {
        const HttpRoute *r = &routes[i];
        g_autoptr(GHashTable) params = NULL;
        if (!route_match(r->pattern, path, &params))
            continue;
        path_known = true;
        if (strcmp(r->method, method) == 0 ||
            (strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0)) {
            *ret_params = g_steal_pointer(&params);
            return r;
        }
    }
    *ret_status = path_known ? 405 : 404;
    return NULL;
}
