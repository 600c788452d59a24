// SPDX-License-Identifier: LGPL-2.1-or-later
// dom_handover(): a running domain's owner and VNC password changed in place. Both edits go
// through libxml2 on the XML libvirt gave, and through libvirt's live-and-config calls.
#include "dom-handover.h"

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

/* vmbroker's metadata element with <owner> replaced, and the title. */
static bool
set_owner(virDomainPtr dom, const char *owner, const char *template_name, GError **error)
{
    const char *name = virDomainGetName(dom);
    g_autofree char *xml = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT,
                                                DOM_XML_NS_URI, VIR_DOMAIN_AFFECT_LIVE);
    g_autofree char *edited = NULL;
    g_autofree char *title = g_strdup_printf("%s: %s", owner, template_name);
    g_autoptr(xmlDoc) doc = NULL;
    xmlNode *node;

    if (!xml) {
        dom_virt_set_error(error, "reading vmbroker metadata of domain '%s'", name);
        return false;
    }
    doc = dom_virt_parse_xml(xml, "domain metadata", error);
    if (!doc)
        return false;
    /* libvirt answers the element without its namespace, and adds it back on the way in. */
    node = first_node(doc, "/*[local-name()='instance']/*[local-name()='owner']");
    if (!node) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_NOT_FOUND,
                    "domain '%s': its vmbroker metadata names no owner", name);
        return false;
    }
    xmlNodeSetContent(node, NULL);
    xmlNodeAddContent(node, (const xmlChar *) owner);
    edited = dom_virt_node_string(doc, xmlDocGetRootElement(doc));
    if (virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, edited, DOM_XML_NS_PREFIX,
                             DOM_XML_NS_URI, LIVE_AND_CONFIG) < 0 ||
        virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_TITLE, title, NULL, NULL,
                             LIVE_AND_CONFIG) < 0) {
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
           set_owner(dom, owner, template_name, error);
}
