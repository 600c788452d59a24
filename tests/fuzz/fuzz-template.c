// SPDX-License-Identifier: LGPL-2.1-or-later
// Template files (domains/dom-template.c) of any content; a template that loads is also
// turned into domain XML, which must then succeed.
#include <glib.h>

#include "dom-template.h"
#include "dom-xml.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_scratch_file(data, size, ".json");
    g_autoptr(GError) error = NULL;
    DomTemplate *t = dom_template_load_file(path, &error);
    g_autofree char *xml = NULL;

    if (!t)
        return 0;
    xml = dom_xml_build_string(t, &(DomInstance) {
        .domain_type = "qemu", .name = "vmbroker-fuzz-1", .vm_id = "1", .owner = "fuzz",
        .created = "2026-01-01T00:00:00Z",
        .iso_path = dom_template_needs_iso(t) ? "/fuzz/iso.iso" : NULL,
        .disk_path = dom_template_has_disk(t) ? "/fuzz/disk.qcow2" : NULL,
        .backing_path = t->kind == DOM_TEMPLATE_KIND_OVERLAY ? "/fuzz/base" : NULL,
        .backing_format = t->kind == DOM_TEMPLATE_KIND_OVERLAY
                              ? dom_template_image_format_to_string(t->base_format) : NULL,
        .vnc_port = 5900, .ws_port = 5700, .listen = "127.0.0.1", .guest_network = "fuzz",
    }, &error);
    g_assert(xml);
    dom_template_free(t);
    return 0;
}
