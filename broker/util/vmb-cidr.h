// SPDX-License-Identifier: LGPL-2.1-or-later
// Lists of addresses and CIDR blocks (http.trusted_proxies), and finding the real client's
// address in an X-Forwarded-For chain that only trusted proxies may extend.
#pragma once

#include <stdbool.h>
#include <glib.h>

typedef struct VmbCidrList VmbCidrList;

/* Parses a list of IPv4/IPv6 addresses and ADDRESS/PREFIX blocks separated by commas or
 * spaces ("" gives an empty list). NULL with @error set (VMB_ERROR_CONFIG) naming the first
 * bad entry. */
VmbCidrList *vmb_cidr_list_parse(const char *text, GError **error);
void vmb_cidr_list_free(VmbCidrList *list);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmbCidrList, vmb_cidr_list_free)

/* How many entries the list has. */
size_t vmb_cidr_list_len(const VmbCidrList *list);
/* Whether @addr (text; an IPv4-mapped IPv6 address counts as IPv4) is in one of the blocks.
 * False for NULL, an empty list or text that is no address. */
bool vmb_cidr_list_contains(const VmbCidrList *list, const char *addr);

/* At most this many X-Forwarded-For hops are looked at, right to left. */
#define VMB_CIDR_MAX_HOPS 32

/* The client's address for a request whose TCP peer is @peer and whose X-Forwarded-For
 * header (all of them joined by commas) is @xff (nullable): @peer itself unless it is in
 * @trusted; then, walking @xff from the right, the first hop not in @trusted. When every hop
 * is trusted the left-most is the client; a hop that is no address, or more than
 * VMB_CIDR_MAX_HOPS hops, stops the walk at the last address believed. @ret_trusted_peer
 * (optional) says whether @peer was trusted (and so whether X-Forwarded-Proto may be read).
 * Returns: (transfer full): the address, normalized by inet_ntop. */
char *vmb_cidr_client_addr(const VmbCidrList *trusted, const char *peer, const char *xff,
                           bool *ret_trusted_peer);
