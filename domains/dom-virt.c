// SPDX-License-Identifier: LGPL-2.1-or-later
// libvirt plumbing shared by the domains layer: a libvirt that never prints, connections,
// the host's best domain type, and libvirt's last error folded into a GError.
#include "dom-virt.h"

#include <string.h>

#include <libxml/parser.h>

/* libvirt prints every error to stderr by default; this layer returns errors instead. */
static void
silent_error_func(void *user_data, virErrorPtr err)
{
}

static void G_GNUC_PRINTF(2, 3)
silent_xml_error_func(void *ctx, const char *msg, ...)
{
}

/**
 * dom_virt_init:
 *
 * Initializes libvirt once and silences its default error printing. Every entry point of
 * the layer that talks to libvirt calls it, so callers need not.
 */
void
dom_virt_init(void)
{
    static gsize done = 0;

    if (g_once_init_enter(&done)) {
        virInitialize();
        virSetErrorFunc(NULL, silent_error_func);
        /* libxml2 (inside libvirt, too) prints parse errors; they reach callers as errors. */
        xmlSetGenericErrorFunc(NULL, silent_xml_error_func);
        g_once_init_leave(&done, 1);
    }
}

static VmbErrorKind
kind_of_last_error(void)
{
    virErrorPtr last = virGetLastError();

    /* The transport failed (libvirtd went away mid-call, "Cannot recv data"): whatever
     * the code, the daemon is unavailable, not the request wrong. */
    if (last && (last->domain == VIR_FROM_RPC || last->domain == VIR_FROM_REMOTE) &&
        last->code != VIR_ERR_AUTH_FAILED)
        return VMB_ERROR_UNAVAILABLE;
    switch (virGetLastErrorCode()) {
    case VIR_ERR_NO_DOMAIN:
    case VIR_ERR_NO_STORAGE_POOL:
    case VIR_ERR_NO_STORAGE_VOL:
    case VIR_ERR_NO_NETWORK:
        return VMB_ERROR_NOT_FOUND;
    case VIR_ERR_OPERATION_INVALID:
    case VIR_ERR_DOM_EXIST:
    case VIR_ERR_STORAGE_VOL_EXIST:
        return VMB_ERROR_CONFLICT;
    case VIR_ERR_NO_CONNECT:
    case VIR_ERR_RPC:
    case VIR_ERR_AUTH_FAILED:
    case VIR_ERR_AUTH_UNAVAILABLE:
        return VMB_ERROR_UNAVAILABLE;
    case VIR_ERR_XML_ERROR:
    case VIR_ERR_XML_DETAIL:
    case VIR_ERR_CONFIG_UNSUPPORTED:
    case VIR_ERR_INVALID_ARG:
        return VMB_ERROR_UNPROCESSABLE;
    default:
        return VMB_ERROR_INTERNAL;
    }
}

static void
set_error_va(GError **error, VmbErrorKind kind, const char *fmt, va_list ap)
{
    g_autofree char *what = g_strdup_vprintf(fmt, ap);
    const char *msg = virGetLastErrorMessage();

    g_set_error(error, VMB_ERROR_PRIVATE, kind, "%s: %s", what, msg ? msg : "unknown libvirt error");
}

/**
 * dom_virt_set_error:
 * @error: return location for an error
 * @fmt: printf format saying which object and what failed, e.g. "starting domain 'x'"
 *
 * Sets @error to "<what>: <libvirt's message>", with a kind derived from libvirt's last
 * error code (no such object -> not-found, wrong state -> conflict, no daemon -> unavailable).
 * Call it right after the failing libvirt call, on the same thread.
 */
void
dom_virt_set_error(GError **error, const char *fmt, ...)
{
    va_list ap;
    VmbErrorKind kind = kind_of_last_error();

    va_start(ap, fmt);
    set_error_va(error, kind, fmt, ap);
    va_end(ap);
}

/**
 * dom_virt_set_error_kind:
 * @error: return location for an error
 * @kind: the kind to report, whatever libvirt's code says
 * @fmt: printf format saying which object and what failed
 *
 * Like dom_virt_set_error() with an explicit kind.
 */
void
dom_virt_set_error_kind(GError **error, VmbErrorKind kind, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    set_error_va(error, kind, fmt, ap);
    va_end(ap);
}

/**
 * dom_virt_connect:
 * @uri: a libvirt URI such as "qemu:///system" or "test:///default"
 * @error: return location for an error
 *
 * Returns: (transfer full): a read-write connection, or NULL with an "unavailable" error.
 */
virConnectPtr
dom_virt_connect(const char *uri, GError **error)
{
    virConnectPtr conn;

    dom_virt_init();
    conn = virConnectOpen(uri);
    if (!conn) {
        dom_virt_set_error_kind(error, VMB_ERROR_UNAVAILABLE, "connecting to libvirt at '%s'",
                                uri);
        return NULL;
    }
    return conn;
}

/**
 * dom_virt_parse_xml:
 * @xml: a document libvirt produced
 * @what: what it is, for the error message
 * @error: return location for an error
 *
 * Parses without network access or entity expansion.
 *
 * Returns: (transfer full): the document, or NULL on error.
 */
xmlDoc *
dom_virt_parse_xml(const char *xml, const char *what, GError **error)
{
    xmlDoc *doc = xmlReadMemory(xml, (int) strlen(xml), what, NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);

    if (!doc)
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_INTERNAL, "cannot parse the XML of %s", what);
    return doc;
}

/**
 * dom_virt_xpath_string:
 * @doc: a document
 * @expr: an XPath expression, evaluated as string()
 *
 * Returns: (transfer full) (nullable): the expression's string value, NULL when empty.
 */
char *
dom_virt_xpath_string(xmlDoc *doc, const char *expr)
{
    g_autoptr(xmlXPathContext) ctx = xmlXPathNewContext(doc);
    g_autofree char *wrapped = g_strdup_printf("string(%s)", expr);
    g_autoptr(xmlXPathObject) obj = NULL;

    if (!ctx)
        return NULL;
    obj = xmlXPathEvalExpression((const xmlChar *) wrapped, ctx);
    if (!obj || obj->type != XPATH_STRING || !obj->stringval || !obj->stringval[0])
        return NULL;
    return g_strdup((const char *) obj->stringval);
}

/**
 * dom_virt_host_domain_type:
 * @conn: a connection
 * @error: return location for an error
 *
 * Picks the domain type for new guests from the host's capabilities: "kvm" where the host
 * offers it, else "qemu" (TCG), else the first type the driver knows (libvirt's test driver
 * offers only "test").
 *
 * Returns: (transfer full): the type, or NULL on error.
 */
char *
dom_virt_host_domain_type(virConnectPtr conn, GError **error)
{
    g_autofree char *caps = virConnectGetCapabilities(conn);
    g_autoptr(xmlDoc) doc = NULL;
    static const char *const preferred[] = { "kvm", "qemu" };
    char *first;

    if (!caps) {
        dom_virt_set_error(error, "reading the host's capabilities");
        return NULL;
    }
    doc = dom_virt_parse_xml(caps, "the host's capabilities", error);
    if (!doc)
        return NULL;
    for (size_t i = 0; i < G_N_ELEMENTS(preferred); i++) {
        g_autofree char *expr = g_strdup_printf(
            "/capabilities/guest[os_type='hvm']/arch/domain[@type='%s']/@type", preferred[i]);
        g_autofree char *found = dom_virt_xpath_string(doc, expr);
        if (found)
            return g_steal_pointer(&found);
    }
    first = dom_virt_xpath_string(doc, "/capabilities/guest/arch/domain[1]/@type");
    if (!first)
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_UNAVAILABLE,
                    "the host's capabilities list no domain type for new guests");
    return first;
}

/**
 * dom_virt_node_string:
 * @doc: a document
 * @node: one of its nodes
 *
 * Returns: (transfer full): @node and what it holds as XML text.
 */
char *
dom_virt_node_string(xmlDoc *doc, xmlNode *node)
{
    g_autoptr(xmlBuffer) buf = xmlBufferCreate();

    xmlNodeDump(buf, doc, node, 0, 0);
    return g_strdup((const char *) xmlBufferContent(buf));
}
