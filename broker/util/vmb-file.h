// SPDX-License-Identifier: LGPL-2.1-or-later
// Writing uploads to files.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <glib.h>

/* Writes all @len bytes to @fd (retrying short writes and EINTR); VMB_ERROR_PRIVATE
 * NO_SPACE on ENOSPC or EDQUOT, INTERNAL otherwise, naming @path. */
bool vmb_file_write_all(int fd, const void *data, size_t len, const char *path,
                        GError **error);
