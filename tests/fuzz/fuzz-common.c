// SPDX-License-Identifier: LGPL-2.1-or-later
// Helpers of the fuzz targets (fuzz.h).
#include "fuzz.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>

static char *scratch_dir;
static char *scratch_path;

static void
scratch_remove(void)
{
    unlink(scratch_path);
    rmdir(scratch_dir);
}

const char *
fuzz_scratch_file(const uint8_t *data, size_t size, const char *suffix)
{
    const char *path = scratch_path;
    int fd;

    if (!path) {
        scratch_dir = g_strdup_printf("/dev/shm/vmb-fuzz-%d", (int) getpid());
        g_mkdir_with_parents(scratch_dir, 0700);
        path = scratch_path = g_strdup_printf("%s/input%s", scratch_dir, suffix);
        atexit(scratch_remove);
    }
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    g_assert(fd >= 0);
    for (size_t off = 0; off < size;) {
        ssize_t n = write(fd, data + off, size - off);
        g_assert(n > 0);
        off += (size_t) n;
    }
    close(fd);
    return path;
}

char *
fuzz_cstring(const uint8_t *data, size_t size)
{
    char *s = g_malloc(size + 1);

    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}
