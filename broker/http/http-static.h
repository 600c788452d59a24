// SPDX-License-Identifier: LGPL-2.1-or-later
// Static files (the web UI, Debian's noVNC) served from a folder, with MIME types by
// extension and no way out of the folder.
#pragma once

#include "http-server.h"

/* The reply for file @relpath (a path inside @root, as the URL gave it, decoded) of @root:
 * 200 with its MIME type, 404 when it does not exist or leaves @root, or a folder's
 * index.html. */
HttpReply *http_static_reply(const char *root, const char *relpath);
/* The MIME type of a file name, from its extension. */
const char *http_static_mime_type(const char *name);
