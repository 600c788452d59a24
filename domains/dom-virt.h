// SPDX-License-Identifier: LGPL-2.1-or-later
// The domains layer's common ground: cleanup functions for libvirt, libxml2 and json-c
// objects, a quiet libvirt, connections, and libvirt errors turned into VMB_ERROR errors.
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <json-c/json.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "vmb-error.h"
#include "vmb-json.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(virConnect, virConnectClose)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virDomain, virDomainFree)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virStoragePool, virStoragePoolFree)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virStorageVol, virStorageVolFree)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virStream, virStreamFree)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlDoc, xmlFreeDoc)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlBuffer, xmlBufferFree)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlXPathContext, xmlXPathFreeContext)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlXPathObject, xmlXPathFreeObject)

/* Initialization (idempotent, thread-safe) */
void dom_virt_init(void);

/* Connections */
virConnectPtr dom_virt_connect(const char *uri, GError **error);
char *dom_virt_host_domain_type(virConnectPtr conn, GError **error);

/* Errors */
void dom_virt_set_error(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
void dom_virt_set_error_kind(GError **error, VmbErrorKind kind, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

/* XML parsing of libvirt's answers (never of user input) */
xmlDoc *dom_virt_parse_xml(const char *xml, const char *what, GError **error);
char *dom_virt_xpath_string(xmlDoc *doc, const char *expr);
/* @node of @doc serialized on its own, unindented. */
char *dom_virt_node_string(xmlDoc *doc, xmlNode *node);
