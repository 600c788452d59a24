// SPDX-License-Identifier: LGPL-2.1-or-later
// http.trusted_proxies: parsing address blocks, matching both families, and picking the
// client's address out of an X-Forwarded-For chain only trusted proxies may extend.
#include <string.h>

#include "test.h"
#include "vmb-cidr.h"
#include "vmb-error.h"

static VmbCidrList *
parse_ok(const char *text)
{
    g_autoptr(GError) err = NULL;
    VmbCidrList *l = vmb_cidr_list_parse(text, &err);

    g_assert_no_error(err);
    g_assert_nonnull(l);
    return l;
}

TEST(parse_lists)
{
    g_autoptr(VmbCidrList) empty = parse_ok("");
    g_autoptr(VmbCidrList) some = parse_ok("127.0.0.1, 10.0.0.0/8 ::1,fd00::/8");
    const char *bad[] = { "10.0.0.0/33", "::1/129", "nginx", "10.0.0.1/", "10.0.0.1/x",
                          "1.2.3", NULL };

    g_assert_cmpuint(vmb_cidr_list_len(empty), ==, 0);
    g_assert_cmpuint(vmb_cidr_list_len(some), ==, 4);
    for (const char **b = bad; *b; b++) {
        g_autoptr(GError) err = NULL;
        g_autoptr(VmbCidrList) l = vmb_cidr_list_parse(*b, &err);
        g_assert_null(l);
        g_assert_error(err, VMB_ERROR, VMB_ERROR_CONFIG);
        g_assert_nonnull(strstr(err->message, *b));
    }
}

TEST(contains_both_families)
{
    g_autoptr(VmbCidrList) l = parse_ok("10.1.0.0/16 192.168.7.9 fd00:ab::/32 172.16.0.0/12");
    g_autoptr(VmbCidrList) empty = parse_ok("");
    g_autoptr(VmbCidrList) all4 = parse_ok("0.0.0.0/0");

    g_assert_true(vmb_cidr_list_contains(l, "10.1.255.3"));
    g_assert_false(vmb_cidr_list_contains(l, "10.2.0.1"));
    g_assert_true(vmb_cidr_list_contains(l, "192.168.7.9"));
    g_assert_false(vmb_cidr_list_contains(l, "192.168.7.10"));
    g_assert_true(vmb_cidr_list_contains(l, "::ffff:10.1.2.3")); /* mapped counts as IPv4 */
    g_assert_true(vmb_cidr_list_contains(l, "fd00:ab:1::5"));
    g_assert_false(vmb_cidr_list_contains(l, "fd00:ac::5"));
    g_assert_true(vmb_cidr_list_contains(l, "172.31.255.255"));
    g_assert_false(vmb_cidr_list_contains(l, "172.32.0.0"));
    g_assert_false(vmb_cidr_list_contains(l, "not-an-address"));
    g_assert_false(vmb_cidr_list_contains(l, NULL));
    g_assert_false(vmb_cidr_list_contains(empty, "10.1.0.1"));
    g_assert_true(vmb_cidr_list_contains(all4, "8.8.8.8"));
    g_assert_false(vmb_cidr_list_contains(all4, "2001:db8::1"));
}

static void
check_client(const VmbCidrList *trusted, const char *peer, const char *xff,
             const char *want, bool want_trusted)
{
    bool trusted_peer = !want_trusted;
    g_autofree char *got = vmb_cidr_client_addr(trusted, peer, xff, &trusted_peer);

    g_assert_cmpstr(got, ==, want);
    g_assert_cmpint(trusted_peer, ==, want_trusted);
}

TEST(client_addr)
{
    g_autoptr(VmbCidrList) t = parse_ok("127.0.0.1 10.0.0.0/8");
    g_autoptr(VmbCidrList) none = parse_ok("");
    g_autofree char *many = NULL;
    g_autoptr(GString) chain = g_string_new("203.0.113.1");

    /* An untrusted peer's header is ignored, whatever it says. */
    check_client(t, "198.51.100.7", "127.0.0.1", "198.51.100.7", false);
    check_client(none, "127.0.0.1", "203.0.113.5", "127.0.0.1", false);
    /* A trusted peer: the right-most hop that is not a trusted proxy. */
    check_client(t, "127.0.0.1", "203.0.113.5", "203.0.113.5", true);
    check_client(t, "127.0.0.1", "6.6.6.6, 203.0.113.5, 10.2.3.4", "203.0.113.5", true);
    check_client(t, "127.0.0.1", " 203.0.113.5 ,", "203.0.113.5", true);
    check_client(t, "127.0.0.1", "2001:db8::0:1", "2001:db8::1", true);
    /* No header, or only proxies: the left-most address believed. */
    check_client(t, "127.0.0.1", NULL, "127.0.0.1", true);
    check_client(t, "127.0.0.1", "10.0.0.9, 10.0.0.8", "10.0.0.9", true);
    /* Garbage stops the walk at the last address believed. */
    check_client(t, "127.0.0.1", "203.0.113.5, unknown", "127.0.0.1", true);
    check_client(t, "127.0.0.1", "203.0.113.5, 10.0.0.3, x", "127.0.0.1", true);
    check_client(t, "127.0.0.1", "junk, 10.0.0.3", "10.0.0.3", true);
    /* A long chain of trusted hops is cut off after VMB_CIDR_MAX_HOPS. */
    for (int i = 0; i < 100; i++)
        g_string_append(chain, ", 10.0.0.1");
    many = vmb_cidr_client_addr(t, "127.0.0.1", chain->str, NULL);
    g_assert_cmpstr(many, ==, "10.0.0.1");
}

TEST_MAIN()
