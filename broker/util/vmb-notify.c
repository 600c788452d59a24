// SPDX-License-Identifier: LGPL-2.1-or-later
// The notify socket is a unix datagram socket named by $NOTIFY_SOCKET: a path, or an
// abstract name written with a leading '@'. Each message is one datagram of KEY=VALUE lines.
#include "vmb-notify.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/**
 * vmb_notify:
 * @state: newline-separated assignments
 *
 * Returns: whether a service manager got the message.
 */
bool
vmb_notify(const char *state)
{
    const char *path = g_getenv("NOTIFY_SOCKET");
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    size_t len;
    socklen_t salen;
    ssize_t sent;
    int fd;

    if (!path || (path[0] != '/' && path[0] != '@'))
        return false;
    len = strlen(path);
    if (len >= sizeof(sun.sun_path))
        return false;
    memcpy(sun.sun_path, path, len);
    if (path[0] == '@')
        sun.sun_path[0] = '\0'; /* abstract namespace */
    salen = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    do {
        sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *) &sun, salen);
    } while (sent < 0 && errno == EINTR);
    close(fd);
    return sent == (ssize_t) strlen(state);
}

/**
 * vmb_notify_watchdog_usec:
 *
 * Returns: the watchdog interval in microseconds, or 0.
 */
guint64
vmb_notify_watchdog_usec(void)
{
    const char *usec = g_getenv("WATCHDOG_USEC");
    const char *pid = g_getenv("WATCHDOG_PID");
    guint64 v = 0, p = 0;

    if (!usec || !g_ascii_string_to_unsigned(usec, 10, 1, G_MAXUINT64, &v, NULL))
        return 0;
    /* Meant for another process (a child that inherited the environment). */
    if (pid && (!g_ascii_string_to_unsigned(pid, 10, 1, G_MAXINT, &p, NULL) ||
                p != (guint64) getpid()))
        return 0;
    return v;
}
