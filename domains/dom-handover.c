// SPDX-License-Identifier: LGPL-2.1-or-later
// dom_handover(): a running domain's owner and VNC password changed in place. Both edits go
// through libxml2 on the XML libvirt gave, and through libvirt's live-and-config calls.
// dom_handover_saved(): the same for a domain that waits as a memory image (managed save),
// whose ports are new too; the edits go into the image's own definition, which libvirt
// restores from.
#include "dom-handover.h"

#include <string.h>

#include "dom-virt.h"
#include "dom-xml.h"

#define LIVE_AND_CONFIG (VIR_DOMAIN_AFFECT_LIVE | VIR_DOMAIN_AFFECT_CONFIG)

/* The first node @expr selects in @doc, or NULL. */
static xmlNode *
first_node(xmlDoc *doc, const char *expr)
{
    g_autoptr(xmlXPathContext) ctx = xmlXPathNewContext(doc);
    g_autoptr(xmlXPathObject) obj = NULL;

    obj = xmlXPathEvalExpression((const xmlChar *) expr, ctx);
    if (!obj || !obj->nodesetval || obj->nodesetval->nodeNr < 1)
        return NULL;
    return obj->nodesetval->nodeTab[0];
}

/* The <owner> of vmbroker's metadata in @doc (a domain or the metadata element alone) set
 * to @owner. libvirt answers the element without its namespace, and adds it back on the way
 * in: it is found by local names. */
static bool
set_owner_node(xmlDoc *doc, const char *name, const char *owner, GError **error)
{
    xmlNode *node = first_node(doc, "//*[local-name()='instance']/*[local-name()='owner']");

    if (!node) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_NOT_FOUND,
                    "domain '%s': its vmbroker metadata names no owner", name);
        return false;
    }
    xmlNodeSetContent(node, NULL);
    xmlNodeAddContent(node, (const xmlChar *) owner);
    return true;
}

/* vmbroker's metadata element with <owner> replaced, and the title, where @flags say. */
static bool
set_owner(virDomainPtr dom, const char *owner, const char *template_name, unsigned flags,
          GError **error)
{
    const char *name = virDomainGetName(dom);
    unsigned from = flags & VIR_DOMAIN_AFFECT_LIVE ? VIR_DOMAIN_AFFECT_LIVE
                                                   : VIR_DOMAIN_AFFECT_CONFIG;
    g_autofree char *xml = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT,
                                                DOM_XML_NS_URI, from);
    g_autofree char *edited = NULL;
    g_autofree char *title = g_strdup_printf("%s: %s", owner, template_name);
    g_autoptr(xmlDoc) doc = NULL;

    if (!xml) {
        dom_virt_set_error(error, "reading vmbroker metadata of domain '%s'", name);
        return false;
    }
    doc = dom_virt_parse_xml(xml, "domain metadata", error);
    if (!doc || !set_owner_node(doc, name, owner, error))
        return false;
    edited = dom_virt_node_string(doc, xmlDocGetRootElement(doc));
    if (virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, edited, DOM_XML_NS_PREFIX,
                             DOM_XML_NS_URI, flags) < 0 ||
        virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_TITLE, title, NULL, NULL, flags) < 0) {
        dom_virt_set_error(error, "setting the owner of domain '%s'", name);
        return false;
    }
    return true;
}

/* The VNC display as it is, with a new password: QEMU takes it at once. */
static bool
set_vnc_password(virDomainPtr dom, const char *password, GError **error)
{
    const char *name = virDomainGetName(dom);
    g_autofree char *xml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_SECURE);
    g_autofree char *device = NULL;
    g_autoptr(xmlDoc) doc = NULL;
    xmlNode *graphics;

    if (!xml) {
        dom_virt_set_error(error, "reading the definition of domain '%s'", name);
        return false;
    }
    doc = dom_virt_parse_xml(xml, "domain XML", error);
    if (!doc)
        return false;
    graphics = first_node(doc, "/domain/devices/graphics[@type='vnc']");
    if (!graphics) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_NOT_FOUND,
                    "domain '%s' has no VNC display", name);
        return false;
    }
    xmlSetProp(graphics, (const xmlChar *) "passwd", (const xmlChar *) password);
    device = dom_virt_node_string(doc, graphics);
    if (virDomainUpdateDeviceFlags(dom, device, LIVE_AND_CONFIG) < 0) {
        dom_virt_set_error(error, "setting the VNC password of domain '%s'", name);
        return false;
    }
    return true;
}

/**
 * dom_handover:
 * @dom: a running domain vmbroker made
 * @owner: the new owner's user name
 * @template_name: its template, for the title
 * @vnc_password: the new VNC password (the old one stops working at once)
 * @error: return location for an error
 *
 * Returns: true when both the live domain and its definition name @owner and take only
 *   @vnc_password.
 */
bool
dom_handover(virDomainPtr dom, const char *owner, const char *template_name,
             const char *vnc_password, GError **error)
{
    return set_vnc_password(dom, vnc_password, error) &&
           set_owner(dom, owner, template_name, LIVE_AND_CONFIG, error);
}

/* In the saved definition @doc: the title, and the VNC display's ports and password. */
static bool
edit_saved(xmlDoc *doc, const char *name, const char *title, const char *vnc_password,
           unsigned vnc_port, unsigned ws_port, GError **error)
{
    xmlNode *root = xmlDocGetRootElement(doc);
    xmlNode *node = first_node(doc, "/domain/title");
    g_autofree char *vnc = g_strdup_printf("%u", vnc_port);
    g_autofree char *ws = g_strdup_printf("%u", ws_port);

    if (!node)
        node = xmlNewChild(root, NULL, (const xmlChar *) "title", NULL);
    xmlNodeSetContent(node, NULL);
    xmlNodeAddContent(node, (const xmlChar *) title);
    node = first_node(doc, "/domain/devices/graphics[@type='vnc']");
    if (!node) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_NOT_FOUND,
                    "the memory image of domain '%s' has no VNC display", name);
        return false;
    }
    xmlSetProp(node, (const xmlChar *) "port", (const xmlChar *) vnc);
    xmlSetProp(node, (const xmlChar *) "websocket", (const xmlChar *) ws);
    xmlSetProp(node, (const xmlChar *) "autoport", (const xmlChar *) "no");
    xmlSetProp(node, (const xmlChar *) "passwd", (const xmlChar *) vnc_password);
    return true;
}

/**
 * dom_handover_saved:
 * @dom: a stopped domain vmbroker made, with a memory image (managed save)
 * @owner: the new owner's user name
 * @template_name: its template, for the title
 * @vnc_password: the new VNC password
 * @vnc_port: the VNC port leased for it
 * @ws_port: the websocket port leased for it
 * @error: return location for an error
 *
 * Edits the definition saved with the memory image, which is the one a start restores: the
 * owner, title, ports and password (libvirt checks that nothing the guest sees changes).
 * The domain's own definition gets the owner and title; its next cold start writes the rest.
 *
 * Returns: true when a start of @dom now restores a guest that is @owner's.
 */
bool
dom_handover_saved(virDomainPtr dom, const char *owner, const char *template_name,
                   const char *vnc_password, unsigned vnc_port, unsigned ws_port,
                   GError **error)
{
    const char *name = virDomainGetName(dom);
    g_autofree char *xml = virDomainManagedSaveGetXMLDesc(dom, VIR_DOMAIN_SAVE_IMAGE_XML_SECURE);
    g_autofree char *title = g_strdup_printf("%s: %s", owner, template_name);
    g_autofree char *edited = NULL;
    g_autoptr(xmlDoc) doc = NULL;
    bool ok;

    if (!xml) {
        dom_virt_set_error(error, "reading the memory image of domain '%s'", name);
        return false;
    }
    doc = dom_virt_parse_xml(xml, "saved domain XML", error);
    if (!doc || !set_owner_node(doc, name, owner, error) ||
        !edit_saved(doc, name, title, vnc_password, vnc_port, ws_port, error))
        return false;
    edited = dom_virt_node_string(doc, xmlDocGetRootElement(doc));
    ok = virDomainManagedSaveDefineXML(dom, edited, 0) == 0;
    explicit_bzero(edited, strlen(edited));
    explicit_bzero(xml, strlen(xml));
    if (!ok) {
        dom_virt_set_error(error, "editing the memory image of domain '%s'", name);
        return false;
    }
    return set_owner(dom, owner, template_name, VIR_DOMAIN_AFFECT_CONFIG, error);
}
