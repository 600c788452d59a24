// SPDX-License-Identifier: LGPL-2.1-or-later
// Address blocks kept as 16-byte network addresses (IPv4 as IPv4-mapped IPv6), so one
// comparison serves both families.
#include "vmb-cidr.h"

#include <arpa/inet.h>
#include <string.h>

#include "vmb-error.h"

typedef struct {
    guint8 net[16];   /* the block's address, host bits cleared */
    unsigned prefix;  /* leading bits that must match, 0-128 */
} CidrBlock;

struct VmbCidrList {
    GArray *blocks;   /* CidrBlock */
};

static const guint8 v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

/* Text to a 16-byte address; @ret_v4 (optional) says whether it was IPv4 (or mapped). */
static bool
addr_parse(const char *text, guint8 ret_addr[16], bool *ret_v4)
{
    struct in_addr a4;
    struct in6_addr a6;
    bool v4 = false;

    if (inet_pton(AF_INET, text, &a4) == 1) {
        memcpy(ret_addr, v4_mapped, 12);
        memcpy(ret_addr + 12, &a4, 4);
        v4 = true;
    } else if (inet_pton(AF_INET6, text, &a6) == 1) {
        memcpy(ret_addr, &a6, 16);
        v4 = memcmp(ret_addr, v4_mapped, 12) == 0;
    } else {
        return false;
    }
    if (ret_v4)
        *ret_v4 = v4;
    return true;
}

static bool
block_matches(const CidrBlock *b, const guint8 addr[16])
{
    unsigned whole = b->prefix / 8, rest = b->prefix % 8;

    if (memcmp(b->net, addr, whole) != 0)
        return false;
    if (rest) {
        guint8 mask = (guint8) (0xff << (8 - rest));
        return (b->net[whole] & mask) == (addr[whole] & mask);
    }
    return true;
}

/* ADDRESS or ADDRESS/PREFIX; an IPv4 prefix counts IPv4 bits (the block is kept as the
 * matching IPv4-mapped IPv6 block). */
static bool
block_parse(const char *entry, CidrBlock *ret)
{
    g_autofree char *addr = g_strdup(entry);
    char *slash = strchr(addr, '/');
    bool v6_text = strchr(addr, ':') != NULL;
    unsigned max = v6_text ? 128 : 32;
    guint64 prefix = max;

    if (slash)
        *slash++ = '\0';
    if (!addr_parse(addr, ret->net, NULL))
        return false;
    if (slash && !g_ascii_string_to_unsigned(slash, 10, 0, max, &prefix, NULL))
        return false;
    ret->prefix = (unsigned) prefix + (v6_text ? 0 : 96);
    for (unsigned i = ret->prefix; i < 128; i++)
        ret->net[i / 8] &= (guint8) ~(0x80u >> (i % 8));
    return true;
}

/**
 * vmb_cidr_list_parse:
 * @text: entries separated by commas and/or spaces
 * @error: return location for an error
 *
 * Returns: (transfer full): the list (possibly empty), or NULL.
 */
VmbCidrList *
vmb_cidr_list_parse(const char *text, GError **error)
{
    g_autoptr(VmbCidrList) list = g_new0(VmbCidrList, 1);
    g_auto(GStrv) parts = g_strsplit_set(text, ", \t", -1);

    list->blocks = g_array_new(FALSE, FALSE, sizeof(CidrBlock));
    for (char **p = parts; *p; p++) {
        CidrBlock b = { 0 };
        if (!**p)
            continue;
        if (!block_parse(*p, &b)) {
            g_set_error(error, VMB_ERROR, VMB_ERROR_CONFIG,
                        "'%s' is not an IPv4 or IPv6 address or ADDRESS/PREFIX block", *p);
            return NULL;
        }
        g_array_append_val(list->blocks, b);
    }
    return g_steal_pointer(&list);
}

/**
 * vmb_cidr_list_free:
 * @list: (nullable): a list
 */
void
vmb_cidr_list_free(VmbCidrList *list)
{
    if (!list)
        return;
    g_array_unref(list->blocks);
    g_free(list);
}

size_t
vmb_cidr_list_len(const VmbCidrList *list)
{
    return list ? list->blocks->len : 0;
}

static bool
contains_parsed(const VmbCidrList *list, const guint8 addr[16])
{
    for (guint i = 0; list && i < list->blocks->len; i++)
        if (block_matches(&g_array_index(list->blocks, CidrBlock, i), addr))
            return true;
    return false;
}

/**
 * vmb_cidr_list_contains:
 * @list: (nullable): a list
 * @addr: (nullable): an address as text
 *
 * Returns: whether @addr lies in one of @list's blocks.
 */
bool
vmb_cidr_list_contains(const VmbCidrList *list, const char *addr)
{
    guint8 a[16];

    return addr && addr_parse(addr, a, NULL) && contains_parsed(list, a);
}

/* The address in inet_ntop's spelling (IPv4 for an IPv4-mapped one). */
static char *
addr_format(const guint8 a[16])
{
    char buf[INET6_ADDRSTRLEN];

    if (memcmp(a, v4_mapped, 12) == 0)
        inet_ntop(AF_INET, a + 12, buf, sizeof(buf));
    else
        inet_ntop(AF_INET6, a, buf, sizeof(buf));
    return g_strdup(buf);
}

/**
 * vmb_cidr_client_addr:
 * @trusted: (nullable): the proxies whose X-Forwarded-For is believed
 * @peer: the TCP peer's address
 * @xff: (nullable): the X-Forwarded-For value(s), comma-separated
 * @ret_trusted_peer: (out) (optional): whether @peer is a trusted proxy
 *
 * Returns: (transfer full): the client's address.
 */
char *
vmb_cidr_client_addr(const VmbCidrList *trusted, const char *peer, const char *xff,
                     bool *ret_trusted_peer)
{
    g_auto(GStrv) hops = NULL;
    guint8 best[16];
    unsigned seen = 0;

    if (ret_trusted_peer)
        *ret_trusted_peer = false;
    if (!addr_parse(peer, best, NULL) || !contains_parsed(trusted, best))
        return g_strdup(peer);
    if (ret_trusted_peer)
        *ret_trusted_peer = true;
    if (!xff)
        return addr_format(best);
    hops = g_strsplit(xff, ",", -1);
    for (gint i = (gint) g_strv_length(hops) - 1; i >= 0 && seen < VMB_CIDR_MAX_HOPS; i--) {
        guint8 hop[16];
        g_strstrip(hops[i]);
        if (!*hops[i])
            continue; /* "a,,b" or a trailing comma: nothing said */
        seen++;
        if (!addr_parse(hops[i], hop, NULL))
            break; /* garbage: nothing left of it can be believed */
        memcpy(best, hop, 16);
        if (!contains_parsed(trusted, hop))
            break;
    }
    return addr_format(best);
}
