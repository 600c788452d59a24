// SPDX-License-Identifier: LGPL-2.1-or-later
// Secrets: getrandom(2), base64url encoding, SHA-256 digests.
#include "vmb-secret.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "vmb-error.h"

/**
 * vmb_secret_random:
 * @buf: where to write
 * @len: how many random bytes
 * @error: return location for an error
 *
 * Fills @buf from the kernel's CSPRNG, blocking until it is seeded.
 *
 * Returns: true on success.
 */
bool
vmb_secret_random(void *buf, size_t len, GError **error)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = getrandom((char *) buf + done, len - done, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            g_set_error(error, VMB_ERROR, VMB_ERROR_INTERNAL, "getrandom: %s", g_strerror(errno));
            return false;
        }
        done += (size_t) n;
    }
    return true;
}

/**
 * vmb_secret_new_token:
 * @prefix: text put before the random part, e.g. "vmb_"
 * @error: return location for an error
 *
 * Returns: (transfer full): a new token, or NULL on error.
 */
char *
vmb_secret_new_token(const char *prefix, GError **error)
{
    unsigned char raw[VMB_SECRET_BYTES];
    g_autofree char *b64 = NULL;

    if (!vmb_secret_random(raw, sizeof(raw), error))
        return NULL;
    b64 = g_base64_encode(raw, sizeof(raw));
    explicit_bzero(raw, sizeof(raw));

    /* base64url without padding: safe in URLs, cookies and headers. */
    for (char *p = b64; *p; p++) {
        if (*p == '+')
            *p = '-';
        else if (*p == '/')
            *p = '_';
        else if (*p == '=') {
            *p = '\0';
            break;
        }
    }
    return g_strconcat(prefix, b64, NULL);
}

/**
 * vmb_secret_new_password:
 * @len: length of the password, at least 1
 * @error: return location for an error
 *
 * Returns: (transfer full): a password of letters and digits, or NULL on error.
 */
char *
vmb_secret_new_password(size_t len, GError **error)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const size_t n = sizeof(alphabet) - 1;
    g_autofree char *out = g_malloc(len + 1);
    size_t i = 0;

    while (i < len) {
        unsigned char b[64];
        if (!vmb_secret_random(b, sizeof(b), error))
            return NULL;
        /* Rejection sampling keeps the characters uniform: 248 = 4 * 62. */
        for (size_t j = 0; j < sizeof(b) && i < len; j++)
            if (b[j] < 248)
                out[i++] = alphabet[b[j] % n];
    }
    out[len] = '\0';
    return g_steal_pointer(&out);
}

/**
 * vmb_secret_sha256_hex:
 * @data: bytes to hash
 * @len: their length
 *
 * Returns: (transfer full): 64 lower-case hex digits.
 */
char *
vmb_secret_sha256_hex(const void *data, size_t len)
{
    return g_compute_checksum_for_data(G_CHECKSUM_SHA256, data, len);
}

/**
 * vmb_secret_equal:
 * @a: a string
 * @b: another string
 *
 * Compares without an early exit, so timing does not reveal the common prefix.
 *
 * Returns: true when both are non-NULL and equal.
 */
bool
vmb_secret_equal(const char *a, const char *b)
{
    size_t la, lb;
    unsigned char diff = 0;

    if (!a || !b)
        return false;
    la = strlen(a);
    lb = strlen(b);
    if (la != lb)
        return false;
    for (size_t i = 0; i < la; i++)
        diff |= (unsigned char) (a[i] ^ b[i]);
    return diff == 0;
}
