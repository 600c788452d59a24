// SPDX-License-Identifier: LGPL-2.1-or-later
// Static files. The path is checked segment by segment (no "..", no hidden files, no NUL
// or backslash) before it is joined to the root, so no request can name a file outside it.
#include "http-static.h"

#include <string.h>

#include "http-problem.h"

/* Larger files are not served from memory (nothing vmbroker serves comes close). */
#define STATIC_MAX_BYTES (16 * 1024 * 1024)

static const struct {
    const char *ext;
    const char *type;
} mime_types[] = {
    { ".html", "text/html; charset=utf-8" },
    { ".js", "text/javascript; charset=utf-8" },
    { ".mjs", "text/javascript; charset=utf-8" },
    { ".css", "text/css; charset=utf-8" },
    { ".json", "application/json" },
    { ".svg", "image/svg+xml" },
    { ".png", "image/png" },
    { ".ico", "image/x-icon" },
    { ".woff", "font/woff" },
    { ".woff2", "font/woff2" },
    { ".ttf", "font/ttf" },
    { ".mp3", "audio/mpeg" },
    { ".oga", "audio/ogg" },
    { ".txt", "text/plain; charset=utf-8" },
};

/**
 * http_static_mime_type:
 * @name: a file name
 *
 * Returns: its MIME type; application/octet-stream for unknown extensions.
 */
const char *
http_static_mime_type(const char *name)
{
    const char *dot = strrchr(name, '.');

    for (size_t i = 0; dot && i < G_N_ELEMENTS(mime_types); i++)
        if (g_ascii_strcasecmp(dot, mime_types[i].ext) == 0)
            return mime_types[i].type;
    return "application/octet-stream";
}

static bool
relpath_safe(const char *relpath)
{
    g_auto(GStrv) parts = NULL;

    if (strchr(relpath, '\\') || strlen(relpath) > 1024)
        return false;
    parts = g_strsplit(relpath, "/", -1);
    for (char **p = parts; *p; p++)
        if ((*p)[0] == '.') /* "..", ".", and hidden files */
            return false;
    return true;
}

/**
 * http_static_reply:
 * @root: the folder served
 * @relpath: the requested path below it, "" or ending in "/" for a folder
 *
 * Returns: (transfer full): the file, or a 404 problem.
 */
HttpReply *
http_static_reply(const char *root, const char *relpath)
{
    g_autofree char *path = NULL;
    g_autofree char *data = NULL;
    gsize len = 0;
    HttpReply *reply;

    if (!relpath_safe(relpath))
        return http_problem_kind(VMB_ERROR_NOT_FOUND, "No such file.", NULL);
    path = g_build_filename(root, relpath, NULL);
    if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
        char *index = g_build_filename(path, "index.html", NULL);
        g_free(path);
        path = index;
    }
    if (!g_file_test(path, G_FILE_TEST_IS_REGULAR) ||
        !g_file_get_contents(path, &data, &len, NULL) || len > STATIC_MAX_BYTES)
        return http_problem_kind(VMB_ERROR_NOT_FOUND, "No such file.", NULL);
    reply = http_reply_new(200, http_static_mime_type(path),
                           g_bytes_new_take(g_steal_pointer(&data), len));
    http_reply_add_header(reply, "Cache-Control", "no-cache");
    return reply;
}
