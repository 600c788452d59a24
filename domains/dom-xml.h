// SPDX-License-Identifier: LGPL-2.1-or-later
// Domain XML: a template plus one VM's instance values in, a libvirt domain document out,
// built with libxml2's tree API; and vmbroker's <metadata> read back from libvirt.
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <libxml/tree.h>

#include "dom-template.h"

/* vmbroker's XML namespace inside <metadata>, and its prefix. */
#define DOM_XML_NS_URI "https://vmbroker.dev/xmlns/domain/1"
#define DOM_XML_NS_PREFIX "vmbroker"

/* What differs between two VMs of one template. Strings are borrowed. */
typedef struct {
    const char *domain_type;   /* "kvm", "qemu" (or "test"): dom_virt_host_domain_type() */
    const char *name;          /* the libvirt domain name: dom_xml_domain_name() */
    const char *uuid;          /* RFC 4122 text; NULL lets libvirt pick one */
    const char *vm_id;         /* vmbroker's id of the VM */
    const char *owner;         /* user name of the owner */
    const char *created;       /* ISO 8601 UTC time of creation */
    const char *iso_path;      /* CD-ROM image, raw; NULL for none */
    const char *disk_path;     /* qcow2 hard disk (blank or overlay); NULL for none */
    const char *backing_path;  /* the overlay's backing image; NULL for a blank disk */
    const char *backing_format;/* "qcow2" or "raw", with backing_path */
    bool disk_ephemeral;       /* the disk goes away with the VM */
    guint vnc_port;            /* QEMU's VNC server */
    guint ws_port;             /* QEMU's websocket server for the same display */
    const char *listen;        /* address both bind */
    const char *vnc_password;  /* VNC password, at most 8 characters count for VNC */
    const char *guest_network; /* vmbroker's guest network (and its filter), for templates
                                * of DOM_NETWORK_ISOLATED: dom_network_ensure() */
} DomInstance;

/* What vmbroker put into a domain's <metadata>. */
typedef struct {
    char *vm_id;
    char *owner;
    char *template_name;
    char *created;
    char **ephemeral_volumes;  /* NULL-terminated paths of volumes deleted with the VM */
} DomMetadata;

/* "<prefix><owner>-<short id>" and "<prefix><owner>-<short name>", the owner's '-' doubled
 * so that names of different owners never meet. */
char *dom_xml_domain_name(const char *prefix, const char *owner, const char *vm_id);
char *dom_xml_domain_name_named(const char *prefix, const char *owner, const char *short_name);

xmlDoc *dom_xml_build(const DomTemplate *tmpl, const DomInstance *inst, GError **error);
char *dom_xml_build_string(const DomTemplate *tmpl, const DomInstance *inst, GError **error);
char *dom_xml_to_string(xmlDoc *doc);

DomMetadata *dom_xml_parse_metadata(const char *xml, GError **error);
void dom_xml_metadata_free(DomMetadata *md);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DomMetadata, dom_xml_metadata_free)
