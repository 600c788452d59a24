// SPDX-License-Identifier: LGPL-2.1-or-later
// Internal snapshots: virDomainSnapshotCreateXML without flags on a running domain saves its
// memory and an internal snapshot of every qcow2 disk. A snapshot's record keeps the domain's
// definition of that moment, ports and VNC password included; before a revert vmbroker
// redefines the record with the console the guest has now, so that libvirt's view of the
// running domain stays true (the ports are leased in PostgreSQL, the password was handed out).
#include "dom-snapshot.h"

#include <string.h>
#include <libxml/tree.h>

#include "dom-virt.h"

#define X(s) ((const xmlChar *) (s))

G_DEFINE_AUTOPTR_CLEANUP_FUNC(virDomainSnapshot, virDomainSnapshotFree)

void
dom_snapshot_free(DomSnapshot *snap)
{
    if (!snap)
        return;
    g_free(snap->name);
    g_free(snap->description);
    g_free(snap->state);
    g_free(snap);
}

static virDomainSnapshotPtr
lookup(virDomainPtr dom, const char *name, GError **error)
{
    virDomainSnapshotPtr snap = virDomainSnapshotLookupByName(dom, name, 0);

    if (!snap) {
        if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN_SNAPSHOT)
            g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_NOT_FOUND,
                        "domain '%s' has no snapshot '%s'", virDomainGetName(dom), name);
        else
            dom_virt_set_error(error, "looking up snapshot '%s' of domain '%s'", name,
                               virDomainGetName(dom));
    }
    return snap;
}

static DomSnapshot *
describe(virDomainSnapshotPtr snap, GError **error)
{
    g_autofree char *xml = virDomainSnapshotGetXMLDesc(snap, 0);
    g_autoptr(xmlDoc) doc = xml ? dom_virt_parse_xml(xml, "snapshot XML", error) : NULL;
    g_autofree char *created = NULL;
    DomSnapshot *out;

    if (!xml)
        dom_virt_set_error(error, "reading snapshot '%s'", virDomainSnapshotGetName(snap));
    if (!doc)
        return NULL;
    out = g_new0(DomSnapshot, 1);
    out->name = g_strdup(virDomainSnapshotGetName(snap));
    out->description = dom_virt_xpath_string(doc, "/domainsnapshot/description");
    out->state = dom_virt_xpath_string(doc, "/domainsnapshot/state");
    created = dom_virt_xpath_string(doc, "/domainsnapshot/creationTime");
    out->created = created ? g_ascii_strtoll(created, NULL, 10) : 0;
    return out;
}

static gint
newest_first(gconstpointer a, gconstpointer b)
{
    const DomSnapshot *x = *(DomSnapshot *const *) a, *y = *(DomSnapshot *const *) b;

    return x->created != y->created ? (x->created < y->created ? 1 : -1)
                                    : strcmp(x->name, y->name);
}

/**
 * dom_snapshot_list:
 * @dom: a domain
 * @error: return location for an error
 *
 * Returns: (transfer full) (element-type DomSnapshot): its snapshots, newest first.
 */
GPtrArray *
dom_snapshot_list(virDomainPtr dom, GError **error)
{
    virDomainSnapshotPtr *snaps = NULL;
    int n = virDomainListAllSnapshots(dom, &snaps, 0);
    g_autoptr(GPtrArray) out = NULL;

    if (n < 0) {
        dom_virt_set_error(error, "listing the snapshots of domain '%s'", virDomainGetName(dom));
        return NULL;
    }
    out = g_ptr_array_new_with_free_func((GDestroyNotify) dom_snapshot_free);
    for (int i = 0; i < n; i++) {
        DomSnapshot *s = out ? describe(snaps[i], error) : NULL;
        if (s)
            g_ptr_array_add(out, s);
        else
            g_clear_pointer(&out, g_ptr_array_unref);
        virDomainSnapshotFree(snaps[i]);
    }
    free(snaps);
    if (out)
        g_ptr_array_sort(out, newest_first);
    return g_steal_pointer(&out);
}

int
dom_snapshot_count(virDomainPtr dom, GError **error)
{
    int n = virDomainSnapshotNum(dom, 0);

    if (n < 0)
        dom_virt_set_error(error, "counting the snapshots of domain '%s'", virDomainGetName(dom));
    return n;
}

/**
 * dom_snapshot_disk_bytes:
 * @dom: a domain
 * @ret_bytes: (out): the host bytes its writable disks take (virDomainGetBlockInfo's
 *   physical size: a qcow2 file with its internal snapshots)
 * @error: return location for an error
 *
 * Returns: true on success.
 */
bool
dom_snapshot_disk_bytes(virDomainPtr dom, guint64 *ret_bytes, GError **error)
{
    g_autofree char *xml = virDomainGetXMLDesc(dom, 0);
    g_autoptr(xmlDoc) doc = xml ? dom_virt_parse_xml(xml, "domain XML", error) : NULL;
    guint64 total = 0;

    if (!xml)
        dom_virt_set_error(error, "reading the definition of domain '%s'", virDomainGetName(dom));
    if (!doc)
        return false;
    for (unsigned i = 1;; i++) {
        g_autofree char *expr = g_strdup_printf(
            "(/domain/devices/disk[@device='disk' and not(readonly)])[%u]/target/@dev", i);
        g_autofree char *target = dom_virt_xpath_string(doc, expr);
        virDomainBlockInfo info;
        if (!target)
            break;
        if (virDomainGetBlockInfo(dom, target, &info, 0) < 0) {
            dom_virt_set_error(error, "reading disk %s of domain '%s'", target,
                               virDomainGetName(dom));
            return false;
        }
        total += info.physical;
    }
    *ret_bytes = total;
    return true;
}

/**
 * dom_snapshot_create:
 * @dom: a running domain whose writable disks are qcow2
 * @name: the snapshot's name (unique per domain)
 * @description: (nullable): shown by `virsh snapshot-info`
 * @error: return location for an error (VMB_ERROR_CONFLICT for a name in use)
 *
 * Returns: true when the snapshot was taken.
 */
bool
dom_snapshot_create(virDomainPtr dom, const char *name, const char *description,
                    GError **error)
{
    g_autoptr(xmlDoc) doc = xmlNewDoc(X("1.0"));
    xmlNode *root = xmlNewNode(NULL, X("domainsnapshot"));
    g_autofree char *xml = NULL;
    g_autoptr(virDomainSnapshot) snap = NULL;

    xmlDocSetRootElement(doc, root);
    xmlNewTextChild(root, NULL, X("name"), X(name));
    if (description)
        xmlNewTextChild(root, NULL, X("description"), X(description));
    xml = dom_virt_node_string(doc, root);
    snap = virDomainSnapshotCreateXML(dom, xml, VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC);
    if (!snap) {
        dom_virt_set_error_kind(error, virGetLastErrorCode() == VIR_ERR_OPERATION_INVALID
                                           ? VMB_ERROR_CONFLICT : VMB_ERROR_INTERNAL,
                                "taking snapshot '%s' of domain '%s'", name,
                                virDomainGetName(dom));
        return false;
    }
    return true;
}

/* The snapshot's record of @name with the live domain's VNC console in its definition. */
static char *
record_with_live_console(virDomainPtr dom, virDomainSnapshotPtr snap, GError **error)
{
    g_autofree char *live = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_SECURE);
    g_autofree char *rec = virDomainSnapshotGetXMLDesc(snap, VIR_DOMAIN_SNAPSHOT_XML_SECURE);
    g_autoptr(xmlDoc) ldoc = live ? dom_virt_parse_xml(live, "domain XML", error) : NULL;
    g_autoptr(xmlDoc) sdoc = ldoc && rec ? dom_virt_parse_xml(rec, "snapshot XML", error)
                                         : NULL;
    g_autoptr(xmlXPathContext) lctx = NULL, sctx = NULL;
    g_autoptr(xmlXPathObject) lg = NULL, sg = NULL;
    xmlNode *copy;

    if (!live || !rec)
        dom_virt_set_error(error, "reading domain '%s' and its snapshot",
                           virDomainGetName(dom));
    if (!sdoc)
        return NULL;
    lctx = xmlXPathNewContext(ldoc);
    sctx = xmlXPathNewContext(sdoc);
    lg = xmlXPathEvalExpression(X("/domain/devices/graphics[@type='vnc']"), lctx);
    sg = xmlXPathEvalExpression(X("/domainsnapshot/domain/devices/graphics[@type='vnc']"),
                                sctx);
    if (!lg || !sg || xmlXPathNodeSetIsEmpty(lg->nodesetval) ||
        xmlXPathNodeSetIsEmpty(sg->nodesetval)) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_CONFLICT,
                    "domain '%s' or its snapshot has no VNC console", virDomainGetName(dom));
        return NULL;
    }
    copy = xmlDocCopyNode(lg->nodesetval->nodeTab[0], sdoc, 1);
    xmlFreeNode(xmlReplaceNode(sg->nodesetval->nodeTab[0], copy));
    return dom_virt_node_string(sdoc, xmlDocGetRootElement(sdoc));
}

/**
 * dom_snapshot_revert:
 * @dom: a running domain
 * @name: one of its snapshots, taken while it ran
 * @error: return location for an error (VMB_ERROR_NOT_FOUND, VMB_ERROR_CONFLICT)
 *
 * Returns: true when the guest is back at the snapshot, with the console it had before.
 */
bool
dom_snapshot_revert(virDomainPtr dom, const char *name, GError **error)
{
    g_autoptr(virDomainSnapshot) snap = lookup(dom, name, error);
    g_autoptr(virDomainSnapshot) again = NULL;
    g_autoptr(DomSnapshot) info = snap ? describe(snap, error) : NULL;
    g_autofree char *rec = NULL;

    if (!info)
        return false;
    if (g_strcmp0(info->state, "running") != 0 && g_strcmp0(info->state, "paused") != 0) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_CONFLICT,
                    "snapshot '%s' holds no running guest (state %s)", name, info->state);
        return false;
    }
    rec = record_with_live_console(dom, snap, error);
    if (!rec)
        return false;
    again = virDomainSnapshotCreateXML(dom, rec, VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE);
    if (!again) {
        dom_virt_set_error(error, "redefining snapshot '%s' of domain '%s'", name,
                           virDomainGetName(dom));
        return false;
    }
    if (virDomainRevertToSnapshot(again, VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING) < 0) {
        dom_virt_set_error(error, "reverting domain '%s' to snapshot '%s'",
                           virDomainGetName(dom), name);
        return false;
    }
    return true;
}

/**
 * dom_snapshot_delete:
 * @dom: a domain
 * @name: one of its snapshots
 * @metadata_only: forget libvirt's record alone (the disk that held it is gone)
 * @error: return location for an error (VMB_ERROR_NOT_FOUND)
 *
 * Returns: true when it is gone.
 */
bool
dom_snapshot_delete(virDomainPtr dom, const char *name, bool metadata_only, GError **error)
{
    g_autoptr(virDomainSnapshot) snap = lookup(dom, name, error);

    if (!snap)
        return false;
    if (virDomainSnapshotDelete(snap, metadata_only ? VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY
                                                    : 0) < 0) {
        dom_virt_set_error(error, "deleting snapshot '%s' of domain '%s'", name,
                           virDomainGetName(dom));
        return false;
    }
    return true;
}

bool
dom_snapshot_delete_all(virDomainPtr dom, bool metadata_only, GError **error)
{
    g_autoptr(GPtrArray) all = dom_snapshot_list(dom, error);

    for (guint i = 0; all && i < all->len; i++)
        if (!dom_snapshot_delete(dom, ((DomSnapshot *) all->pdata[i])->name, metadata_only,
                                 error))
            return false;
    return all != NULL;
}
