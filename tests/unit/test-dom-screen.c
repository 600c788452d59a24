// SPDX-License-Identifier: LGPL-2.1-or-later
// dom_screen_blank (domains/dom-screen.c) on images made here: PNGs written with each of the
// five row filters (so every undo path runs against known pixels), PPMs, and broken ones.
#include <string.h>
#include <gio/gio.h>

#include "dom-screen.h"
#include "test.h"
#include "vmb-error.h"

static void
put_be32(GByteArray *a, guint32 v)
{
    guint8 b[4] = { v >> 24, v >> 16, v >> 8, v };

    g_byte_array_append(a, b, 4);
}

/* A chunk; the CRC is not read, so zeros stand for it. */
static void
chunk(GByteArray *png, const char *type, const guint8 *data, guint32 len)
{
    static const guint8 crc[4] = { 0 };

    put_be32(png, len);
    g_byte_array_append(png, (const guint8 *) type, 4);
    if (len)
        g_byte_array_append(png, data, len);
    g_byte_array_append(png, crc, 4);
}

static guint8
paeth(guint8 a, guint8 b, guint8 c)
{
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);

    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/* Rows of @pixels (@bpp bytes each), each written with @filter, zlib-compressed. */
static GBytes *
idat_data(const guint8 *pixels, unsigned w, unsigned h, unsigned bpp, guint8 filter)
{
    g_autoptr(GByteArray) raw = g_byte_array_new();
    g_autoptr(GZlibCompressor) z = g_zlib_compressor_new(G_ZLIB_COMPRESSOR_FORMAT_ZLIB, 6);
    gsize stride = (gsize) w * bpp, cap = 2 * (stride + 1) * h + 1024, nread, nwritten;
    g_autofree guint8 *out = g_malloc(cap);

    for (unsigned y = 0; y < h; y++) {
        const guint8 *x = pixels + y * stride, *up = y ? x - stride : NULL;

        g_byte_array_append(raw, &filter, 1);
        for (gsize i = 0; i < stride; i++) {
            guint8 a = i >= bpp ? x[i - bpp] : 0, b = up ? up[i] : 0;
            guint8 c = up && i >= bpp ? up[i - bpp] : 0;
            guint8 pred[] = { 0, a, b, (guint8) ((a + b) / 2), paeth(a, b, c) };
            guint8 v = (guint8) (x[i] - (filter <= 4 ? pred[filter] : 0));

            g_byte_array_append(raw, &v, 1);
        }
    }
    g_assert_cmpint(g_converter_convert(G_CONVERTER(z), raw->data, raw->len, out, cap,
                                        G_CONVERTER_INPUT_AT_END, &nread, &nwritten, NULL),
                    ==, G_CONVERTER_FINISHED);
    return g_bytes_new(out, nwritten);
}

static GBytes *
make_png(const guint8 *pixels, unsigned w, unsigned h, unsigned bpp, guint8 filter)
{
    static const guint8 magic[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
    GByteArray *png = g_byte_array_new();
    g_autoptr(GByteArray) ihdr = g_byte_array_new();
    g_autoptr(GBytes) idat = idat_data(pixels, w, h, bpp, filter);
    guint8 fmt[5] = { 8, bpp == 3 ? 2 : 6, 0, 0, 0 };
    gsize n;
    const guint8 *d = g_bytes_get_data(idat, &n);

    g_byte_array_append(png, magic, 8);
    put_be32(ihdr, w);
    put_be32(ihdr, h);
    g_byte_array_append(ihdr, fmt, 5);
    chunk(png, "IHDR", ihdr->data, ihdr->len);
    /* Split in two IDATs, as encoders do for large images. */
    chunk(png, "IDAT", d, (guint32) n / 2);
    chunk(png, "IDAT", d + n / 2, (guint32) (n - n / 2));
    chunk(png, "IEND", NULL, 0);
    return g_byte_array_free_to_bytes(png);
}

/* A screen of one colour, with the pixel at @odd (when not -1) of another. */
static guint8 *
screen(unsigned w, unsigned h, unsigned bpp, long odd)
{
    guint8 *p = g_malloc((gsize) w * h * bpp);

    for (gsize i = 0; i < (gsize) w * h * bpp; i++)
        p[i] = (guint8) (0x20 + i % bpp);
    if (odd >= 0)
        p[odd * bpp + 1] ^= 0x80;
    return p;
}

/* Takes @image. */
static bool
blank(GBytes *image)
{
    g_autoptr(GBytes) owned = image;
    g_autoptr(GError) error = NULL;
    bool b = false;

    g_assert_true(dom_screen_blank(image, &b, &error));
    g_assert_no_error(error);
    return b;
}

/* Takes @image. */
static void
assert_invalid(GBytes *image)
{
    g_autoptr(GBytes) owned = image;
    g_autoptr(GError) error = NULL;
    bool b;

    g_assert_false(dom_screen_blank(image, &b, &error));
    g_assert_error(error, VMB_ERROR, VMB_ERROR_INVALID);
}

TEST(png_every_filter)
{
    const unsigned w = 97, h = 31;

    for (unsigned bpp = 3; bpp <= 4; bpp++) {
        for (guint8 f = 0; f <= 4; f++) {
            g_autofree guint8 *flat = screen(w, h, bpp, -1);
            g_autofree guint8 *last = screen(w, h, bpp, (long) w * h - 1);
            g_autofree guint8 *middle = screen(w, h, bpp, (long) w * 15 + 40);

            g_assert_true(blank(make_png(flat, w, h, bpp, f)));
            g_assert_false(blank(make_png(last, w, h, bpp, f)));
            g_assert_false(blank(make_png(middle, w, h, bpp, f)));
        }
    }
}

TEST(png_broken)
{
    g_autofree guint8 *flat = screen(16, 8, 3, -1);
    g_autoptr(GBytes) good = make_png(flat, 16, 8, 3, 2);
    gsize n;
    const guint8 *d = g_bytes_get_data(good, &n);
    g_autofree guint8 *copy = g_memdup2(d, n);

    /* Cut short: the last IDAT and IEND gone. */
    assert_invalid(g_bytes_new_static(d, n - 30));
    /* Not a known filter. */
    assert_invalid(make_png(flat, 16, 8, 3, 5));
    /* 16-bit samples, then interlaced: not what QEMU writes. */
    copy[8 + 8 + 8] = 16;
    assert_invalid(g_bytes_new_static(copy, n));
    copy[8 + 8 + 8] = 8;
    copy[8 + 8 + 12] = 1;
    assert_invalid(g_bytes_new_static(copy, n));
    copy[8 + 8 + 12] = 0;
    /* Larger than any screen. */
    copy[8 + 8] = 0x7f;
    assert_invalid(g_bytes_new_static(copy, n));
    copy[8 + 8] = 0;
    g_assert_true(blank(g_bytes_new_static(copy, n)));
    /* Neither PNG nor PPM. */
    assert_invalid(g_bytes_new_static("GIF89a", 6));
}

TEST(png_more_rows_than_its_size)
{
    g_autofree guint8 *flat = screen(16, 8, 3, -1);
    g_autoptr(GBytes) tall = make_png(flat, 16, 8, 3, 0);
    gsize n;
    const guint8 *d = g_bytes_get_data(tall, &n);
    g_autofree guint8 *copy = g_memdup2(d, n);

    copy[8 + 8 + 7] = 4;    /* says 4 rows, holds 8 */
    assert_invalid(g_bytes_new_static(copy, n));
}

TEST(ppm)
{
    g_autoptr(GString) img = g_string_new("P6\n4 2\n255\n");

    for (int i = 0; i < 8; i++)
        g_string_append_len(img, "\x10\x20\x30", 3);
    g_assert_true(blank(g_bytes_new_static(img->str, img->len)));
    img->str[img->len - 1] = 0x31;
    g_assert_false(blank(g_bytes_new_static(img->str, img->len)));
    assert_invalid(g_bytes_new_static(img->str, img->len - 1));
    assert_invalid(g_bytes_new_static("P6\n99999 2\n255\n", 15));
}

TEST_MAIN()
