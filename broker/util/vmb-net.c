// SPDX-License-Identifier: LGPL-2.1-or-later
// Port probing by bind(): the only reliable question to ask the kernel, since a listener
// of another user or network namespace does not show in /proc/net/tcp of ours.
#include "vmb-net.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "vmb-error.h"

/**
 * vmb_net_port_is_free:
 * @addr: a numeric IPv4 or IPv6 address (the one QEMU will listen on)
 * @port: 1..65535, or 0 to ask only whether @addr is an address of this host
 * @error: return location for an error (bad address, no socket)
 *
 * Binds a TCP socket with SO_REUSEADDR to @addr:@port and closes it again. SO_REUSEADDR
 * makes a port in TIME_WAIT count as free (QEMU binds with it too), while a live listener
 * or bound socket still makes bind() fail.
 *
 * Returns: true when the port is free.
 */
bool
vmb_net_port_is_free(const char *addr, unsigned port, GError **error)
{
    struct sockaddr_storage ss = { 0 };
    socklen_t len;
    int one = 1, fd, rc, saved;

    if (port > 65535) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID, "port %u out of range", port);
        return false;
    }
    if (inet_pton(AF_INET, addr, &((struct sockaddr_in *) &ss)->sin_addr) == 1) {
        struct sockaddr_in *sin = (struct sockaddr_in *) &ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t) port);
        len = sizeof(*sin);
    } else if (inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *) &ss)->sin6_addr) == 1) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t) port);
        len = sizeof(*sin6);
    } else {
        g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID, "not a numeric address: '%s'", addr);
        return false;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        saved = errno;
        g_set_error(error, VMB_ERROR, VMB_ERROR_INTERNAL, "socket: %s", g_strerror(saved));
        return false;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) {
        saved = errno;
        close(fd);
        g_set_error(error, VMB_ERROR, VMB_ERROR_INTERNAL, "setsockopt: %s", g_strerror(saved));
        return false;
    }
    rc = bind(fd, (struct sockaddr *) &ss, len);
    saved = errno;
    close(fd);
    if (rc == 0)
        return true;
    if (saved == EADDRINUSE || saved == EACCES)
        return false;
    g_set_error(error, VMB_ERROR, VMB_ERROR_INTERNAL, "bind %s:%u: %s", addr, port,
                g_strerror(saved));
    return false;
}
