// SPDX-License-Identifier: LGPL-2.1-or-later
// The PNG reader is the least a screenshot needs: one zlib stream (GLib's decompressor),
// non-interlaced 8-bit RGB or RGBA, the five row filters; rows are undone one at a time,
// two rows of memory, and reading ends at the first pixel of another colour.
#include "dom-screen.h"

#include <stdlib.h>
#include <string.h>
#include <gio/gio.h>

#include "vmb-error.h"

static const guint8 png_magic[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };

/* The pixels of an image as they arrive, row after row, each behind its filter byte. */
typedef struct {
    unsigned bpp;           /* bytes a pixel */
    gsize stride;           /* bytes a row, without its filter byte */
    unsigned rows_left;
    guint8 *row;            /* [0] the filter byte, then the row */
    guint8 *prev;           /* the row before, undone; zeros before the first */
    gsize have;             /* bytes of row filled */
    guint8 first[4];        /* the first pixel */
    bool started;
    bool differs;           /* a pixel of another colour was seen */
} Rows;

static bool
invalid(GError **error, const char *what)
{
    g_set_error(error, VMB_ERROR, VMB_ERROR_INVALID, "the screenshot %s", what);
    return false;
}

static guint32
be32(const guint8 *p)
{
    return (guint32) p[0] << 24 | (guint32) p[1] << 16 | (guint32) p[2] << 8 | p[3];
}

static guint8
paeth(guint8 a, guint8 b, guint8 c)
{
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);

    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/* Undoes @r's filled row in place and compares its pixels with the first. */
static bool
row_done(Rows *r, GError **error)
{
    guint8 *x = r->row + 1, *up = r->prev + 1;

    if (r->row[0] > 4)
        return invalid(error, "has an unknown PNG row filter");
    for (gsize i = 0; i < r->stride; i++) {
        guint8 a = i >= r->bpp ? x[i - r->bpp] : 0, c = i >= r->bpp ? up[i - r->bpp] : 0;

        switch (r->row[0]) {
        case 1: x[i] += a; break;
        case 2: x[i] += up[i]; break;
        case 3: x[i] += (guint8) ((a + up[i]) / 2); break;
        case 4: x[i] += paeth(a, up[i], c); break;
        }
    }
    if (!r->started) {
        memcpy(r->first, x, r->bpp);
        r->started = true;
    }
    for (gsize i = 0; i < r->stride && !r->differs; i += r->bpp)
        r->differs = memcmp(x + i, r->first, r->bpp) != 0;
    return true;
}

static bool
rows_feed(Rows *r, const guint8 *p, gsize n, GError **error)
{
    while (n > 0) {
        gsize take;
        guint8 *t;

        if (r->rows_left == 0)
            return invalid(error, "has more pixel data than its size");
        take = MIN(n, r->stride + 1 - r->have);
        memcpy(r->row + r->have, p, take);
        r->have += take;
        p += take;
        n -= take;
        if (r->have < r->stride + 1)
            continue;
        if (!row_done(r, error))
            return false;
        t = r->prev, r->prev = r->row, r->row = t;
        r->have = 0;
        r->rows_left--;
    }
    return true;
}

/* Inflates @z's concatenated IDAT data into @r until it ends or a second colour shows. */
static bool
inflate_rows(const guint8 *in, gsize in_len, Rows *r, GError **error)
{
    g_autoptr(GZlibDecompressor) z = g_zlib_decompressor_new(G_ZLIB_COMPRESSOR_FORMAT_ZLIB);
    g_autofree guint8 *out = g_malloc(64 * 1024);

    while (!r->differs) {
        gsize nread = 0, nwritten = 0;
        GConverterResult res = g_converter_convert(G_CONVERTER(z), in, in_len, out, 64 * 1024,
                                                   G_CONVERTER_INPUT_AT_END, &nread, &nwritten,
                                                   NULL);

        if (res == G_CONVERTER_ERROR)
            return invalid(error, "has corrupt PNG image data");
        in += nread;
        in_len -= nread;
        if (!rows_feed(r, out, nwritten, error))
            return false;
        if (res == G_CONVERTER_FINISHED)
            break;
    }
    if (!r->differs && r->rows_left > 0)
        return invalid(error, "has less pixel data than its size");
    return true;
}

/* IHDR's size and pixel format, checked; fills @r's shape. */
static bool
png_header(const guint8 *h, guint32 len, Rows *r, GError **error)
{
    guint32 width, height;

    if (len != 13)
        return invalid(error, "has a bad PNG header");
    width = be32(h);
    height = be32(h + 4);
    if (width == 0 || height == 0 || width > DOM_SCREEN_MAX_SIDE ||
        height > DOM_SCREEN_MAX_SIDE || (guint64) width * height > DOM_SCREEN_MAX_PIXELS)
        return invalid(error, "is larger than a screen is read for");
    if (h[8] != 8 || (h[9] != 2 && h[9] != 6) || h[10] != 0 || h[11] != 0 || h[12] != 0)
        return invalid(error, "is a PNG of a kind QEMU does not write");
    r->bpp = h[9] == 2 ? 3 : 4;
    r->stride = (gsize) width * r->bpp;
    r->rows_left = height;
    return true;
}

static bool
png_blank(const guint8 *p, gsize len, bool *ret_blank, GError **error)
{
    g_autoptr(GByteArray) idat = g_byte_array_new();
    g_autofree guint8 *rows_mem = NULL;
    Rows r = { 0 };
    gsize pos = sizeof(png_magic);

    while (pos + 12 <= len) {
        guint32 n = be32(p + pos);
        const guint8 *type = p + pos + 4, *data = p + pos + 8;

        if (n > len - pos - 12)
            return invalid(error, "has a truncated PNG chunk");
        if (pos == sizeof(png_magic) ? memcmp(type, "IHDR", 4) != 0 : !memcmp(type, "IHDR", 4))
            return invalid(error, "has no single PNG header first");
        if (!memcmp(type, "IHDR", 4) && !png_header(data, n, &r, error))
            return false;
        if (!memcmp(type, "IDAT", 4))
            g_byte_array_append(idat, data, n);
        pos += 12 + (gsize) n;
        if (!memcmp(type, "IEND", 4))
            break;
    }
    if (r.bpp == 0 || idat->len == 0)
        return invalid(error, "has no PNG image data");
    rows_mem = g_malloc0(2 * (r.stride + 1));
    r.row = rows_mem;
    r.prev = rows_mem + r.stride + 1;
    if (!inflate_rows(idat->data, idat->len, &r, error))
        return false;
    *ret_blank = !r.differs;
    return true;
}

/* Reads one header number of a PPM at *@p (after any whitespace); false when there is none
 * or it is over @max. */
static bool
header_number(const guint8 **p, const guint8 *end, unsigned max, unsigned *ret)
{
    unsigned n = 0;
    bool any = false;

    while (*p < end && g_ascii_isspace(**p))
        (*p)++;
    for (; *p < end && g_ascii_isdigit(**p); (*p)++) {
        n = n * 10 + (unsigned) (**p - '0');
        if (n > max)
            return false;
        any = true;
    }
    *ret = n;
    return any;
}

static bool
ppm_blank(const guint8 *p, gsize len, bool *ret_blank, GError **error)
{
    const guint8 *end = p + len;
    unsigned width, height, maxval;
    gsize pixels;

    p += 2;
    if (!header_number(&p, end, DOM_SCREEN_MAX_SIDE, &width) ||
        !header_number(&p, end, DOM_SCREEN_MAX_SIDE, &height) ||
        !header_number(&p, end, 255, &maxval) || maxval == 0 || p >= end ||
        !g_ascii_isspace(*p))
        return invalid(error, "has a bad PPM header");
    p++;    /* the one whitespace byte before the pixels */
    pixels = (gsize) width * height;
    if (pixels == 0 || pixels > DOM_SCREEN_MAX_PIXELS || (gsize) (end - p) < pixels * 3)
        return invalid(error, "has a bad PPM size");
    *ret_blank = true;
    for (gsize i = 1; i < pixels && *ret_blank; i++)
        *ret_blank = memcmp(p + 3 * i, p, 3) == 0;
    return true;
}

/**
 * dom_screen_blank:
 * @image: a screenshot: PNG (8-bit RGB or RGBA, not interlaced) or binary PPM (8-bit)
 * @ret_blank: (out): whether every pixel has the first pixel's colour
 * @error: return location for an error (VMB_ERROR_INVALID for anything else)
 *
 * A screen of one flat colour (black before the firmware draws, or a guest that cleared it)
 * shows a person nothing; a second colour is text, a logo or a desktop.
 *
 * Returns: true when @image could be read.
 */
bool
dom_screen_blank(GBytes *image, bool *ret_blank, GError **error)
{
    gsize len;
    const guint8 *p = g_bytes_get_data(image, &len);

    if (len >= sizeof(png_magic) && memcmp(p, png_magic, sizeof(png_magic)) == 0)
        return png_blank(p, len, ret_blank, error);
    if (len >= 2 && memcmp(p, "P6", 2) == 0)
        return ppm_blank(p, len, ret_blank, error);
    return invalid(error, "is neither PNG nor PPM");
}
