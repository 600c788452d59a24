// SPDX-License-Identifier: LGPL-2.1-or-later
// Domain XML with libxml2's tree API: every text node and attribute value goes through
// libxml2, which escapes it; no XML is ever assembled by printf.
#include "dom-xml.h"

#include <string.h>

#include "dom-virt.h"
#include "vmb-error.h"

#define X(s) ((const xmlChar *) (s))

/* Appends "<owner>-": libvirt refuses '/' and line breaks in names, so those (and other
 * control characters) become '_'; each '-' of the owner is doubled, so the separator is the
 * last '-' of the first run of odd length and no (owner, suffix) pair meets another: owner
 * "a-b" with "c" is "a--b-c", owner "a" with "b-c" is "a-b-c". An owner without '-' keeps
 * the names it always had. */
static void
append_owner(GString *s, const char *owner)
{
    for (const unsigned char *p = (const unsigned char *) owner; *p; p++) {
        if (*p == '-')
            g_string_append_c(s, '-');
        g_string_append_c(s, (*p == '/' || *p < 0x20 || *p == 0x7f) ? '_' : (char) *p);
    }
    g_string_append_c(s, '-');
}

/**
 * dom_xml_domain_name:
 * @prefix: the configured name prefix, e.g. "vmbroker-"
 * @owner: the owner's user name
 * @vm_id: the VM's id; its first 8 letters and digits become the short id
 *
 * Builds "<prefix><owner>-<short id>", unique whatever the owner's name (see append_owner).
 *
 * Returns: (transfer full): the domain name.
 */
char *
dom_xml_domain_name(const char *prefix, const char *owner, const char *vm_id)
{
    GString *s = g_string_new(prefix);
    guint n = 0;

    append_owner(s, owner);
    for (const char *p = vm_id; *p && n < 8; p++) {
        if (g_ascii_isalnum(*p)) {
            g_string_append_c(s, g_ascii_tolower(*p));
            n++;
        }
    }
    return g_string_free(s, FALSE);
}

/**
 * dom_xml_domain_name_named:
 * @prefix: the configured name prefix
 * @owner: the owner's user name
 * @short_name: a name the owner chose, starting with a letter or digit
 *
 * Builds "<prefix><owner>-<short name>", escaped like dom_xml_domain_name(), so that it
 * meets neither another owner's named domain nor any default one.
 *
 * Returns: (transfer full): the domain name.
 */
char *
dom_xml_domain_name_named(const char *prefix, const char *owner, const char *short_name)
{
    GString *s = g_string_new(prefix);

    append_owner(s, owner);
    g_string_append(s, short_name);
    return g_string_free(s, FALSE);
}

/* Text that goes into the document: valid UTF-8 without control characters, which XML 1.0
 * cannot carry even escaped. */
static bool
check_text(const char *field, const char *value, bool required, GError **error)
{
    if (!value) {
        if (required) {
            g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_INVALID, "instance: %s is required", field);
            return false;
        }
        return true;
    }
    if ((required && !value[0]) || !g_utf8_validate(value, -1, NULL)) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_INVALID,
                    "instance: %s must be non-empty valid UTF-8", field);
        return false;
    }
    for (const unsigned char *p = (const unsigned char *) value; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_INVALID,
                        "instance: %s must not contain control characters", field);
            return false;
        }
    }
    return true;
}

static bool
check_instance(const DomTemplate *t, const DomInstance *in, GError **error)
{
    const struct {
        const char *field;
        const char *value;
        bool required;
    } texts[] = {
        { "domain_type", in->domain_type, true }, { "name", in->name, true },
        { "uuid", in->uuid, false },              { "vm_id", in->vm_id, true },
        { "owner", in->owner, true },             { "created", in->created, true },
        { "iso_path", in->iso_path, false },      { "disk_path", in->disk_path, false },
        { "backing_path", in->backing_path, false },
        { "backing_format", in->backing_format, false },
        { "listen", in->listen, true },           { "vnc_password", in->vnc_password, false },
        { "guest_network", in->guest_network, t->network == DOM_NETWORK_ISOLATED },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(texts); i++)
        if (!check_text(texts[i].field, texts[i].value, texts[i].required, error))
            return false;
    if (strchr(in->name, '/')) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_INVALID, "instance: name must not contain '/'");
        return false;
    }
    if (in->vnc_port == 0 || in->vnc_port > 65535 || in->ws_port == 0 || in->ws_port > 65535 ||
        in->vnc_port == in->ws_port) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_INVALID,
                    "instance: vnc_port (%u) and ws_port (%u) must be two different ports",
                    in->vnc_port, in->ws_port);
        return false;
    }
    if (t->kind == DOM_TEMPLATE_KIND_ISO && !in->iso_path && !t->iso_path) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_UNPROCESSABLE,
                    "template '%s' boots an ISO the user picks, and none was given", t->name);
        return false;
    }
    if (dom_template_has_disk(t) != (in->disk_path != NULL)) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_INVALID,
                    in->disk_path ? "template '%s' has no disk, yet a disk was given"
                                  : "template '%s' needs a disk volume, and none was given",
                    t->name);
        return false;
    }
    if (t->kind == DOM_TEMPLATE_KIND_OVERLAY &&
        (!in->backing_path ||
         dom_template_image_format_from_string(in->backing_format) != (int) t->base_format)) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_INVALID,
                    "template '%s' needs the overlay's backing image and its format '%s'",
                    t->name, dom_template_image_format_to_string(t->base_format));
        return false;
    }
    return true;
}

static xmlNode *
add_text(xmlNode *parent, xmlNs *ns, const char *name, const char *text)
{
    /* xmlNewTextChild escapes @text; xmlNewChild would take it as markup. */
    return xmlNewTextChild(parent, ns, X(name), X(text));
}

static xmlNode *
add_empty(xmlNode *parent, const char *name, const char *attr, const char *value)
{
    xmlNode *n = xmlNewChild(parent, NULL, X(name), NULL);

    if (attr)
        xmlNewProp(n, X(attr), X(value));
    return n;
}

static void
add_uint_prop(xmlNode *n, const char *attr, guint value)
{
    char buf[16];

    g_snprintf(buf, sizeof(buf), "%u", value);
    xmlNewProp(n, X(attr), X(buf));
}

static void
add_metadata(xmlNode *domain, const DomTemplate *t, const DomInstance *in)
{
    xmlNode *md = xmlNewChild(domain, NULL, X("metadata"), NULL);
    xmlNode *inst = xmlNewChild(md, NULL, X("instance"), NULL);
    xmlNs *ns = xmlNewNs(inst, X(DOM_XML_NS_URI), X(DOM_XML_NS_PREFIX));

    xmlSetNs(inst, ns);
    add_text(inst, ns, "vm-id", in->vm_id);
    add_text(inst, ns, "owner", in->owner);
    add_text(inst, ns, "template", t->name);
    add_text(inst, ns, "created", in->created);
    if (in->disk_path && in->disk_ephemeral)
        add_text(inst, ns, "ephemeral-volume", in->disk_path);
}

static void
add_disks(xmlNode *devices, const DomTemplate *t, const DomInstance *in)
{
    const char *iso = in->iso_path ? in->iso_path : t->iso_path;
    static const char *const target_dev[] = {
        [DOM_DISK_BUS_VIRTIO] = "vda",
        [DOM_DISK_BUS_SATA] = "sda",
        [DOM_DISK_BUS_SCSI] = "sda",
        [DOM_DISK_BUS_IDE] = "hda",
    };
    G_STATIC_ASSERT(G_N_ELEMENTS(target_dev) == DOM_DISK_BUS_LAST);

    if (in->disk_path) {
        xmlNode *disk = add_empty(devices, "disk", "type", "file");
        xmlNode *drv;
        xmlNode *tgt;

        xmlNewProp(disk, X("device"), X("disk"));
        drv = add_empty(disk, "driver", "name", "qemu");
        xmlNewProp(drv, X("type"), X("qcow2"));
        add_empty(disk, "source", "file", in->disk_path);
        if (in->backing_path) {
            /* The chain is spelled out so that libvirt and QEMU never probe a format. */
            xmlNode *bs = add_empty(disk, "backingStore", "type", "file");
            add_empty(bs, "format", "type", in->backing_format);
            add_empty(bs, "source", "file", in->backing_path);
            add_empty(bs, "backingStore", NULL, NULL);
        } else {
            add_empty(disk, "backingStore", NULL, NULL);
        }
        tgt = add_empty(disk, "target", "dev", target_dev[t->disk_bus]);
        xmlNewProp(tgt, X("bus"), X(dom_template_disk_bus_to_string(t->disk_bus)));
    }
    if (iso) {
        xmlNode *disk = add_empty(devices, "disk", "type", "file");
        xmlNode *drv;
        xmlNode *tgt;

        xmlNewProp(disk, X("device"), X("cdrom"));
        drv = add_empty(disk, "driver", "name", "qemu");
        xmlNewProp(drv, X("type"), X("raw"));
        add_empty(disk, "source", "file", iso);
        /* IDE works on the default (i440fx) machine of every QEMU. */
        tgt = add_empty(disk, "target", "dev", "hdc");
        xmlNewProp(tgt, X("bus"), X("ide"));
        add_empty(disk, "readonly", NULL, NULL);
    }
}

static void
add_devices(xmlNode *domain, const DomTemplate *t, const DomInstance *in)
{
    xmlNode *devices = xmlNewChild(domain, NULL, X("devices"), NULL);
    xmlNode *n;
    xmlNode *g;

    add_disks(devices, t, in);

    if (t->network != DOM_NETWORK_NONE) {
        bool isolated = t->network == DOM_NETWORK_ISOLATED;

        n = add_empty(devices, "interface", "type", "network");
        add_empty(n, "source", "network", isolated ? in->guest_network : t->network_name);
        /* The filter of the same name keeps the guest off the host (dom-network.c). */
        if (isolated)
            add_empty(n, "filterref", "filter", in->guest_network);
        /* e1000 has drivers in every installer; virtio would not boot some. */
        add_empty(n, "model", "type", "e1000");
    }

    /* A tablet makes the pointer follow the browser's exactly. */
    n = add_empty(devices, "input", "type", "tablet");
    xmlNewProp(n, X("bus"), X("usb"));

    g = add_empty(devices, "graphics", "type", "vnc");
    add_uint_prop(g, "port", in->vnc_port);
    xmlNewProp(g, X("autoport"), X("no"));
    add_uint_prop(g, "websocket", in->ws_port);
    if (in->vnc_password)
        xmlNewProp(g, X("passwd"), X(in->vnc_password));
    xmlNewProp(g, X("listen"), X(in->listen));
    n = add_empty(g, "listen", "type", "address");
    xmlNewProp(n, X("address"), X(in->listen));

    n = add_empty(devices, "video", NULL, NULL);
    add_empty(n, "model", "type", dom_template_video_to_string(t->video));
}

/**
 * dom_xml_build:
 * @tmpl: the template
 * @inst: the VM's instance values
 * @error: return location for an error
 *
 * Builds the domain document of one VM. Formats are always explicit (raw, read-only ISO;
 * qcow2 disk with its backing chain and format), <title> and <description> name owner and
 * template, and <metadata> carries vmbroker's own element (see DomMetadata).
 *
 * Returns: (transfer full): the document, or NULL when @inst does not fit @tmpl.
 */
xmlDoc *
dom_xml_build(const DomTemplate *tmpl, const DomInstance *inst, GError **error)
{
    g_autoptr(xmlDoc) doc = NULL;
    g_autofree char *title = NULL;
    g_autofree char *desc = NULL;
    char num[16];
    xmlNode *domain;
    xmlNode *n;

    if (!check_instance(tmpl, inst, error))
        return NULL;

    doc = xmlNewDoc(X("1.0"));
    domain = xmlNewNode(NULL, X("domain"));
    xmlDocSetRootElement(doc, domain);
    xmlNewProp(domain, X("type"), X(inst->domain_type));

    add_text(domain, NULL, "name", inst->name);
    if (inst->uuid)
        add_text(domain, NULL, "uuid", inst->uuid);
    title = g_strdup_printf("%s: %s", inst->owner, tmpl->name);
    add_text(domain, NULL, "title", title);
    desc = g_strdup_printf("vmbroker VM %s of %s, template %s, created %s", inst->vm_id,
                           inst->owner, tmpl->name, inst->created);
    add_text(domain, NULL, "description", desc);
    add_metadata(domain, tmpl, inst);

    g_snprintf(num, sizeof(num), "%u", tmpl->memory_mib);
    n = add_text(domain, NULL, "memory", num);
    xmlNewProp(n, X("unit"), X("MiB"));
    g_snprintf(num, sizeof(num), "%u", tmpl->vcpus);
    add_text(domain, NULL, "vcpu", num);

    n = xmlNewChild(domain, NULL, X("os"), NULL);
    add_text(n, NULL, "type", "hvm");
    for (guint i = 0; i < tmpl->n_boot; i++)
        add_empty(n, "boot", "dev", dom_template_boot_to_string(tmpl->boot[i]));

    /* ACPI lets a graceful stop ask the guest to power off. */
    n = xmlNewChild(domain, NULL, X("features"), NULL);
    add_empty(n, "acpi", NULL, NULL);
    add_empty(n, "apic", NULL, NULL);
    add_empty(domain, "clock", "offset", "utc");
    add_text(domain, NULL, "on_poweroff", "destroy");
    add_text(domain, NULL, "on_reboot", "restart");
    add_text(domain, NULL, "on_crash", "destroy");

    add_devices(domain, tmpl, inst);
    return g_steal_pointer(&doc);
}

/**
 * dom_xml_to_string:
 * @doc: a document
 *
 * Returns: (transfer full): @doc indented, without the XML declaration, as libvirt and
 * `virsh define` take it.
 */
char *
dom_xml_to_string(xmlDoc *doc)
{
    g_autoptr(xmlBuffer) buf = xmlBufferCreate();
    xmlNode *root = xmlDocGetRootElement(doc);

    xmlNodeDump(buf, doc, root, 0, 1);
    xmlBufferCCat(buf, "\n");
    return g_strdup((const char *) xmlBufferContent(buf));
}

/**
 * dom_xml_build_string:
 * @tmpl: the template
 * @inst: the VM's instance values
 * @error: return location for an error
 *
 * dom_xml_build() and dom_xml_to_string() in one.
 *
 * Returns: (transfer full): the domain XML, or NULL on error.
 */
char *
dom_xml_build_string(const DomTemplate *tmpl, const DomInstance *inst, GError **error)
{
    g_autoptr(xmlDoc) doc = dom_xml_build(tmpl, inst, error);

    return doc ? dom_xml_to_string(doc) : NULL;
}

/**
 * dom_xml_metadata_free:
 * @md: (nullable): metadata
 */
void
dom_xml_metadata_free(DomMetadata *md)
{
    if (!md)
        return;
    g_free(md->vm_id);
    g_free(md->owner);
    g_free(md->template_name);
    g_free(md->created);
    g_strfreev(md->ephemeral_volumes);
    g_free(md);
}

/* Ours: in our namespace, or in none when libvirt handed the element out on its own
 * (virDomainGetMetadata() strips the namespace). */
static bool
is_ours(xmlNode *n, const char *name)
{
    return n->type == XML_ELEMENT_NODE && xmlStrEqual(n->name, X(name)) &&
           (!n->ns || xmlStrEqual(n->ns->href, X(DOM_XML_NS_URI)));
}

static char *
child_text(xmlNode *parent, const char *name)
{
    for (xmlNode *c = parent->children; c; c = c->next) {
        if (is_ours(c, name)) {
            xmlChar *s = xmlNodeGetContent(c);
            char *out = g_strdup((const char *) s);
            xmlFree(s);
            return out;
        }
    }
    return NULL;
}

/**
 * dom_xml_parse_metadata:
 * @xml: vmbroker's metadata element, as virDomainGetMetadata() returns it, or a whole
 *   domain document
 * @error: return location for an error
 *
 * Returns: (transfer full): the metadata, or NULL with a not-found error when @xml holds
 * no vmbroker element (the domain is not vmbroker's).
 */
DomMetadata *
dom_xml_parse_metadata(const char *xml, GError **error)
{
    g_autoptr(xmlDoc) doc = dom_virt_parse_xml(xml, "domain metadata", error);
    g_autoptr(xmlXPathContext) ctx = NULL;
    g_autoptr(xmlXPathObject) obj = NULL;
    g_autoptr(DomMetadata) md = NULL;
    g_autoptr(GPtrArray) vols = g_ptr_array_new();
    xmlNode *inst = NULL;
    xmlNode *root;

    if (!doc)
        return NULL;
    root = xmlDocGetRootElement(doc);
    if (root && is_ours(root, "instance")) {
        inst = root;
    } else {
        ctx = xmlXPathNewContext(doc);
        xmlXPathRegisterNs(ctx, X("v"), X(DOM_XML_NS_URI));
        obj = xmlXPathEvalExpression(X("/domain/metadata/v:instance"), ctx);
        if (obj && obj->nodesetval && obj->nodesetval->nodeNr > 0)
            inst = obj->nodesetval->nodeTab[0];
    }
    if (!inst) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_NOT_FOUND, "no vmbroker metadata in the domain");
        return NULL;
    }
    md = g_new0(DomMetadata, 1);
    md->vm_id = child_text(inst, "vm-id");
    md->owner = child_text(inst, "owner");
    md->template_name = child_text(inst, "template");
    md->created = child_text(inst, "created");
    for (xmlNode *c = inst->children; c; c = c->next) {
        if (is_ours(c, "ephemeral-volume")) {
            xmlChar *s = xmlNodeGetContent(c);
            g_ptr_array_add(vols, g_strdup((const char *) s));
            xmlFree(s);
        }
    }
    g_ptr_array_add(vols, NULL);
    md->ephemeral_volumes = (char **) g_ptr_array_free(g_steal_pointer(&vols), FALSE);
    if (!md->vm_id || !md->owner || !md->template_name) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_INVALID,
                    "vmbroker metadata lacks vm-id, owner or template");
        return NULL;
    }
    return g_steal_pointer(&md);
}
