// SPDX-License-Identifier: LGPL-2.1-or-later
// vmbroker's guest network. QEMU's user-mode network (SLIRP) turns a guest's connection to
// its gateway into a connection from the host to 127.0.0.1, so a guest reaches every
// loopback service (the broker, other guests' VNC and websocket ports). Instead, guests sit
// on a bridge libvirt makes for us: NAT to the outside, bridge ports isolated from each other
// (<port isolated='yes'/>), and an nwfilter on each guest's port that lets the guest reach
// the host only for DHCP and DNS. Loopback is unreachable from a bridge by routing itself.
#include "dom-network.h"

#include <arpa/inet.h>
#include <string.h>

#include "dom-virt.h"
#include "vmb-error.h"

#define X(s) ((const xmlChar *) (s))

G_DEFINE_AUTOPTR_CLEANUP_FUNC(virNetwork, virNetworkFree)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virNWFilter, virNWFilterFree)

/* An IPv4 subnet, host order. */
typedef struct {
    guint32 net;
    guint prefix;
} Subnet;

static bool
parse_subnet(const char *text, Subnet *ret, GError **error)
{
    g_auto(GStrv) parts = text ? g_strsplit(text, "/", 2) : NULL;
    struct in_addr a;
    guint64 prefix;
    guint32 mask;

    /* /16 to /28: room for a DHCP range and never a whole class-A block by a typo. */
    if (!parts || !parts[0] || !parts[1] || inet_pton(AF_INET, parts[0], &a) != 1 ||
        !g_ascii_string_to_unsigned(parts[1], 10, 16, 28, &prefix, NULL)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFIG,
                    "guest subnet '%s' is not an IPv4 ADDRESS/PREFIX with a prefix of 16 to 28",
                    text ? text : "");
        return false;
    }
    mask = ~(guint32) 0 << (32 - prefix);
    if ((ntohl(a.s_addr) & ~mask) != 0) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFIG,
                    "guest subnet '%s' has host bits set", text);
        return false;
    }
    ret->net = ntohl(a.s_addr);
    ret->prefix = (guint) prefix;
    return true;
}

static char *
addr_string(guint32 host_order)
{
    char buf[INET_ADDRSTRLEN];
    struct in_addr a = { .s_addr = htonl(host_order) };

    inet_ntop(AF_INET, &a, buf, sizeof(buf));
    return g_strdup(buf);
}

/**
 * dom_network_check_subnet:
 * @subnet: the configured subnet, "a.b.c.d/N"
 * @error: return location for a config error
 *
 * Returns: true when @subnet is an IPv4 network of prefix 16 to 28 without host bits.
 */
bool
dom_network_check_subnet(const char *subnet, GError **error)
{
    Subnet s;

    return parse_subnet(subnet, &s, error);
}

/**
 * dom_network_check_name:
 * @name: the configured network name
 * @error: return location for a config error
 *
 * Returns: true when @name is 1 to 64 letters, digits, '.', '_' or '-', not starting with '.'.
 */
bool
dom_network_check_name(const char *name, GError **error)
{
    bool ok = name && name[0] && name[0] != '.' && strlen(name) <= 64;

    for (const char *p = name; ok && *p; p++)
        ok = g_ascii_isalnum(*p) || strchr("._-", *p);
    if (!ok)
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFIG,
                    "guest network name '%s' must be 1 to 64 letters, digits, '.', '_', '-'",
                    name ? name : "");
    return ok;
}

/**
 * dom_network_bridge_name:
 * @name: the network's name
 *
 * Linux allows 15 characters for an interface, so the bridge is "vmb" and a hash of @name.
 *
 * Returns: (transfer full): the bridge's name.
 */
char *
dom_network_bridge_name(const char *name)
{
    g_autofree char *sum = g_compute_checksum_for_string(G_CHECKSUM_SHA256, name, -1);

    return g_strdup_printf("vmb%.10s", sum);
}

static char *
dump(xmlDoc *doc)
{
    g_autoptr(xmlBuffer) buf = xmlBufferCreate();

    xmlNodeDump(buf, doc, xmlDocGetRootElement(doc), 0, 1);
    return g_strdup((const char *) xmlBufferContent(buf));
}

/**
 * dom_network_xml:
 * @name: the network's name
 * @subnet: its IPv4 subnet; the host takes the first address, DHCP hands out the rest
 * @error: return location for a config error
 *
 * Returns: (transfer full): the network's definition, or NULL.
 */
char *
dom_network_xml(const char *name, const char *subnet, GError **error)
{
    g_autoptr(xmlDoc) doc = xmlNewDoc(X("1.0"));
    g_autofree char *bridge = NULL, *gw = NULL, *mask = NULL, *first = NULL, *last = NULL;
    xmlNode *net, *n, *ip, *dhcp;
    Subnet s;
    guint32 size;

    if (!dom_network_check_name(name, error) || !parse_subnet(subnet, &s, error))
        return NULL;
    size = (guint32) 1 << (32 - s.prefix);
    bridge = dom_network_bridge_name(name);
    gw = addr_string(s.net + 1);
    mask = addr_string(~(guint32) 0 << (32 - s.prefix));
    first = addr_string(s.net + 2);
    last = addr_string(s.net + size - 2);

    net = xmlNewNode(NULL, X("network"));
    xmlDocSetRootElement(doc, net);
    xmlNewTextChild(net, NULL, X("name"), X(name));
    n = xmlNewChild(net, NULL, X("forward"), NULL);
    xmlNewProp(n, X("mode"), X("nat"));
    n = xmlNewChild(net, NULL, X("bridge"), NULL);
    xmlNewProp(n, X("name"), X(bridge));
    xmlNewProp(n, X("stp"), X("off"));
    /* Guests on this bridge cannot send each other a single frame. */
    n = xmlNewChild(net, NULL, X("port"), NULL);
    xmlNewProp(n, X("isolated"), X("yes"));
    ip = xmlNewChild(net, NULL, X("ip"), NULL);
    xmlNewProp(ip, X("address"), X(gw));
    xmlNewProp(ip, X("netmask"), X(mask));
    dhcp = xmlNewChild(ip, NULL, X("dhcp"), NULL);
    n = xmlNewChild(dhcp, NULL, X("range"), NULL);
    xmlNewProp(n, X("start"), X(first));
    xmlNewProp(n, X("end"), X(last));
    return dump(doc);
}

static void
add_rule(xmlNode *filter, const char *action, const char *proto, const char *gw,
         const char *port, const char *priority)
{
    xmlNode *rule = xmlNewChild(filter, NULL, X("rule"), NULL);
    xmlNode *p;

    xmlNewProp(rule, X("action"), X(action));
    xmlNewProp(rule, X("direction"), X("out"));
    xmlNewProp(rule, X("priority"), X(priority));
    p = xmlNewChild(rule, NULL, X(proto), NULL);
    if (gw)
        xmlNewProp(p, X("dstipaddr"), X(gw));
    if (port) {
        xmlNewProp(p, X("dstportstart"), X(port));
        xmlNewProp(p, X("dstportend"), X(port));
    }
}

/**
 * dom_network_filter_xml:
 * @name: the filter's name (the network's: the two live in separate name spaces)
 * @subnet: the network's subnet, whose first address is the host
 * @error: return location for a config error
 *
 * Rules on each guest's port, in priority order: DHCP anywhere and DNS to the host pass;
 * any other TCP to the host is refused (a reset, so a guest sees "refused" at once), any
 * other packet to the host is dropped; IPv6 is dropped both ways (the network has none,
 * and a link-local address would reach the host's services).
 *
 * Returns: (transfer full): the nwfilter's definition, or NULL.
 */
char *
dom_network_filter_xml(const char *name, const char *subnet, GError **error)
{
    g_autoptr(xmlDoc) doc = xmlNewDoc(X("1.0"));
    g_autofree char *gw = NULL;
    xmlNode *filter, *rule;
    Subnet s;

    if (!dom_network_check_name(name, error) || !parse_subnet(subnet, &s, error))
        return NULL;
    gw = addr_string(s.net + 1);
    filter = xmlNewNode(NULL, X("filter"));
    xmlDocSetRootElement(doc, filter);
    xmlNewProp(filter, X("name"), X(name));
    xmlNewProp(filter, X("chain"), X("root"));
    add_rule(filter, "accept", "udp", NULL, "67", "100");
    add_rule(filter, "accept", "udp", gw, "53", "100");
    add_rule(filter, "accept", "tcp", gw, "53", "100");
    add_rule(filter, "reject", "tcp", gw, NULL, "200");
    add_rule(filter, "drop", "all", gw, NULL, "300");
    rule = xmlNewChild(filter, NULL, X("rule"), NULL);
    xmlNewProp(rule, X("action"), X("drop"));
    xmlNewProp(rule, X("direction"), X("inout"));
    xmlNewProp(rule, X("priority"), X("-500"));
    xmlNewChild(rule, NULL, X("ipv6"), NULL);
    return dump(doc);
}

static bool
ensure_filter(virConnectPtr conn, const char *name, const char *subnet, GError **error)
{
    g_autoptr(virNWFilter) f = virNWFilterLookupByName(conn, name);
    g_autofree char *xml = NULL;

    if (f)
        return true;
    if (virGetLastErrorCode() != VIR_ERR_NO_NWFILTER) {
        dom_virt_set_error(error, "looking up network filter '%s'", name);
        return false;
    }
    xml = dom_network_filter_xml(name, subnet, error);
    if (!xml)
        return false;
    f = virNWFilterDefineXML(conn, xml);
    /* Another broker may have defined it a moment ago. */
    if (!f)
        f = virNWFilterLookupByName(conn, name);
    if (!f) {
        dom_virt_set_error(error, "defining network filter '%s'", name);
        return false;
    }
    return true;
}

static bool
start_network(virNetworkPtr net, const char *name, GError **error)
{
    int active = virNetworkIsActive(net);

    if (active < 0) {
        dom_virt_set_error(error, "reading the state of network '%s'", name);
        return false;
    }
    /* Another broker may start it at the same moment: then it is running, which is fine. */
    if (active == 0 && virNetworkCreate(net) < 0 && virNetworkIsActive(net) != 1) {
        dom_virt_set_error(error, "starting network '%s'", name);
        return false;
    }
    return true;
}

/**
 * dom_network_ensure:
 * @conn: a connection to the host that is to run a guest
 * @name: the configured guest network's name
 * @subnet: its configured subnet
 * @error: return location for an error
 *
 * Defines the filter and the network where missing (persistent, autostart) and starts the
 * network if it is not running. An existing network or filter of that name is used as it is:
 * an admin may have tuned it (see README, "Guest network").
 *
 * Returns: true when a guest can be defined on @name.
 */
bool
dom_network_ensure(virConnectPtr conn, const char *name, const char *subnet, GError **error)
{
    g_autoptr(virNetwork) net = NULL;

    if (!ensure_filter(conn, name, subnet, error))
        return false;
    net = virNetworkLookupByName(conn, name);
    if (!net) {
        g_autofree char *xml = NULL;

        if (virGetLastErrorCode() != VIR_ERR_NO_NETWORK) {
            dom_virt_set_error(error, "looking up network '%s'", name);
            return false;
        }
        xml = dom_network_xml(name, subnet, error);
        if (!xml)
            return false;
        net = virNetworkDefineXML(conn, xml);
        if (!net && (net = virNetworkLookupByName(conn, name)) != NULL)
            return start_network(net, name, error); /* another broker was first */
        if (!net) {
            dom_virt_set_error(error, "defining network '%s'", name);
            return false;
        }
        if (virNetworkSetAutostart(net, 1) < 0) {
            dom_virt_set_error(error, "marking network '%s' autostart", name);
            return false;
        }
    }
    return start_network(net, name, error);
}

/**
 * dom_network_state:
 * @conn: a connection to a host
 * @name: the configured guest network's name
 * @error: return location for an error
 *
 * For /readyz: "active" (guests can be defined on it now), "inactive" (defined, not
 * running), or "absent" (the network or its filter is missing); the next create defines and
 * starts what is missing, so only a libvirt error is a failure.
 *
 * Returns: (transfer none): the state, or NULL when libvirt could not be asked.
 */
const char *
dom_network_state(virConnectPtr conn, const char *name, GError **error)
{
    g_autoptr(virNWFilter) f = virNWFilterLookupByName(conn, name);
    g_autoptr(virNetwork) net = NULL;
    int active;

    if (!f && virGetLastErrorCode() != VIR_ERR_NO_NWFILTER) {
        dom_virt_set_error(error, "looking up network filter '%s'", name);
        return NULL;
    }
    net = virNetworkLookupByName(conn, name);
    if (!net && virGetLastErrorCode() != VIR_ERR_NO_NETWORK) {
        dom_virt_set_error(error, "looking up network '%s'", name);
        return NULL;
    }
    if (!f || !net)
        return "absent";
    active = virNetworkIsActive(net);
    if (active < 0) {
        dom_virt_set_error(error, "reading the state of network '%s'", name);
        return NULL;
    }
    return active ? "active" : "inactive";
}
