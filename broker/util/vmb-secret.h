// SPDX-License-Identifier: LGPL-2.1-or-later
// Random secrets from getrandom(2) and their SHA-256 digests, for tokens, session ids,
// tickets and VNC passwords. Secrets are stored only as digests.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <glib.h>

/* Bytes of randomness in a token, session id or ticket: 256 bits. */
#define VMB_SECRET_BYTES 32

bool vmb_secret_random(void *buf, size_t len, GError **error);

/* "<prefix>" followed by base64url (unpadded) of VMB_SECRET_BYTES random bytes. */
char *vmb_secret_new_token(const char *prefix, GError **error);

/* @len random characters from [A-Za-z0-9], e.g. for generated passwords. */
char *vmb_secret_new_password(size_t len, GError **error);

/* Lower-case hex SHA-256 of @data. */
char *vmb_secret_sha256_hex(const void *data, size_t len);

/* Constant-time comparison of two strings of equal length; false when lengths differ. */
bool vmb_secret_equal(const char *a, const char *b);
