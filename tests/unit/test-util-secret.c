// SPDX-License-Identifier: LGPL-2.1-or-later
// Tokens, passwords and digests of broker/util/vmb-secret.c.
#include <string.h>

#include "test.h"
#include "vmb-error.h"
#include "vmb-secret.h"

TEST(token_shape)
{
    g_autofree char *a = vmb_secret_new_token("vmb_", NULL);
    g_autofree char *b = vmb_secret_new_token("vmb_", NULL);

    g_assert_nonnull(a);
    g_assert_true(g_str_has_prefix(a, "vmb_"));
    /* 32 bytes are 43 base64 characters without padding. */
    g_assert_cmpuint(strlen(a), ==, 4 + 43);
    g_assert_cmpuint(strspn(a + 4, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                   "0123456789-_"), ==, 43);
    g_assert_cmpstr(a, !=, b);
}

TEST(password_alphabet)
{
    g_autofree char *p = vmb_secret_new_password(200, NULL);

    g_assert_cmpuint(strlen(p), ==, 200);
    g_assert_cmpuint(strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                               "0123456789"), ==, 200);
}

TEST(sha256_known_vector)
{
    g_autofree char *h = vmb_secret_sha256_hex("abc", 3);

    g_assert_cmpstr(h, ==, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(equal)
{
    g_assert_true(vmb_secret_equal("abc", "abc"));
    g_assert_false(vmb_secret_equal("abc", "abd"));
    g_assert_false(vmb_secret_equal("abc", "abcd"));
    g_assert_false(vmb_secret_equal(NULL, "abc"));
}

TEST(error_kinds_named)
{
    for (int k = 0; k < VMB_ERROR_LAST; k++)
        g_assert_nonnull(vmb_error_kind_to_string((VmbErrorKind) k));
    g_assert_cmpstr(vmb_error_kind_to_string(VMB_ERROR_LAST), ==, "internal");
}

TEST_MAIN()
