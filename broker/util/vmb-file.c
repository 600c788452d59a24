// SPDX-License-Identifier: LGPL-2.1-or-later
#include "vmb-file.h"

#include <errno.h>
#include <unistd.h>

#include "vmb-error.h"

/**
 * vmb_file_write_all:
 * @fd: a file open for writing
 * @data: the bytes
 * @len: how many
 * @path: the file's name, for the error
 * @error: return location for an error
 *
 * Returns: true when all were written.
 */
bool
vmb_file_write_all(int fd, const void *data, size_t len, const char *path, GError **error)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            g_set_error(error, VMB_ERROR_PRIVATE,
                        errno == ENOSPC || errno == EDQUOT ? VMB_ERROR_NO_SPACE
                                                           : VMB_ERROR_INTERNAL,
                        "writing %s: %s", path, g_strerror(errno));
            return false;
        }
        p += n;
        len -= (size_t) n;
    }
    return true;
}
