// SPDX-License-Identifier: LGPL-2.1-or-later
// vmb_net_port_is_free against sockets this test holds itself.
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "test.h"
#include "vmb-error.h"
#include "vmb-net.h"

/* A TCP socket bound to 127.0.0.1 on a kernel-chosen port; listening if @listen_too. */
static int
bound_socket(bool listen_too, unsigned *ret_port)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    g_assert_cmpint(fd, >=, 0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g_assert_cmpint(bind(fd, (struct sockaddr *) &sin, sizeof(sin)), ==, 0);
    if (listen_too)
        g_assert_cmpint(listen(fd, 1), ==, 0);
    g_assert_cmpint(getsockname(fd, (struct sockaddr *) &sin, &len), ==, 0);
    *ret_port = ntohs(sin.sin_port);
    return fd;
}

TEST(listener_makes_port_busy)
{
    unsigned port;
    int fd = bound_socket(true, &port);
    g_autoptr(GError) err = NULL;

    g_assert_false(vmb_net_port_is_free("127.0.0.1", port, &err));
    g_assert_no_error(err);
    close(fd);
    g_assert_true(vmb_net_port_is_free("127.0.0.1", port, &err));
    g_assert_no_error(err);
}

TEST(bound_socket_makes_port_busy)
{
    unsigned port;
    int fd = bound_socket(false, &port);

    g_assert_false(vmb_net_port_is_free("127.0.0.1", port, NULL));
    close(fd);
}

TEST(wildcard_listener_blocks_loopback)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    sin.sin_addr.s_addr = htonl(INADDR_ANY);
    g_assert_cmpint(bind(fd, (struct sockaddr *) &sin, sizeof(sin)), ==, 0);
    g_assert_cmpint(listen(fd, 1), ==, 0);
    g_assert_cmpint(getsockname(fd, (struct sockaddr *) &sin, &len), ==, 0);
    g_assert_false(vmb_net_port_is_free("127.0.0.1", ntohs(sin.sin_port), NULL));
    close(fd);
}

TEST(bad_input)
{
    g_autoptr(GError) e1 = NULL;
    g_autoptr(GError) e2 = NULL;

    g_assert_false(vmb_net_port_is_free("localhost", 5900, &e1));
    g_assert_error(e1, VMB_ERROR, VMB_ERROR_INVALID);
    g_assert_false(vmb_net_port_is_free("127.0.0.1", 70000, &e2));
    g_assert_error(e2, VMB_ERROR, VMB_ERROR_INVALID);
}

TEST(ipv6_listener_makes_port_busy)
{
    struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    socklen_t len = sizeof(sin6);
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(bind(fd, (struct sockaddr *) &sin6, sizeof(sin6)), ==, 0);
    g_assert_cmpint(listen(fd, 1), ==, 0);
    g_assert_cmpint(getsockname(fd, (struct sockaddr *) &sin6, &len), ==, 0);
    g_assert_false(vmb_net_port_is_free("::1", ntohs(sin6.sin6_port), NULL));
    close(fd);
    g_assert_true(vmb_net_port_is_free("::1", ntohs(sin6.sin6_port), NULL));
}

TEST_MAIN()
