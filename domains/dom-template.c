// SPDX-License-Identifier: LGPL-2.1-or-later
// Template files: JSON read with json-c, validated field by field into DomTemplate, and a
// set of them loaded from a folder and looked up by name.
#include "dom-template.h"

#include <errno.h>
#include <string.h>

#include "dom-virt.h"
#include "vmb-error.h"

static const char *const kind_names[] = {
    [DOM_TEMPLATE_KIND_ISO] = "iso",
    [DOM_TEMPLATE_KIND_OVERLAY] = "overlay",
};
G_STATIC_ASSERT(G_N_ELEMENTS(kind_names) == DOM_TEMPLATE_KIND_LAST);

static const char *const network_names[] = {
    [DOM_NETWORK_ISOLATED] = "isolated",
    [DOM_NETWORK_LIBVIRT] = "libvirt",
    [DOM_NETWORK_NONE] = "none",
};
G_STATIC_ASSERT(G_N_ELEMENTS(network_names) == DOM_NETWORK_LAST);

static const char *const video_names[] = {
    [DOM_VIDEO_VGA] = "vga",
    [DOM_VIDEO_CIRRUS] = "cirrus",
    [DOM_VIDEO_VIRTIO] = "virtio",
    [DOM_VIDEO_BOCHS] = "bochs",
    [DOM_VIDEO_QXL] = "qxl",
};
G_STATIC_ASSERT(G_N_ELEMENTS(video_names) == DOM_VIDEO_LAST);

static const char *const disk_bus_names[] = {
    [DOM_DISK_BUS_VIRTIO] = "virtio",
    [DOM_DISK_BUS_SATA] = "sata",
    [DOM_DISK_BUS_SCSI] = "scsi",
    [DOM_DISK_BUS_IDE] = "ide",
};
G_STATIC_ASSERT(G_N_ELEMENTS(disk_bus_names) == DOM_DISK_BUS_LAST);

static const char *const boot_names[] = {
    [DOM_BOOT_CDROM] = "cdrom",
    [DOM_BOOT_HD] = "hd",
    [DOM_BOOT_NETWORK] = "network",
};
G_STATIC_ASSERT(G_N_ELEMENTS(boot_names) == DOM_BOOT_LAST);

static const char *const image_format_names[] = {
    [DOM_IMAGE_FORMAT_RAW] = "raw",
    [DOM_IMAGE_FORMAT_QCOW2] = "qcow2",
};
G_STATIC_ASSERT(G_N_ELEMENTS(image_format_names) == DOM_IMAGE_FORMAT_LAST);

static const char *
name_of(const char *const *names, unsigned n, int value)
{
    if (value < 0 || (unsigned) value >= n)
        return NULL;
    return names[value];
}

static int
value_of(const char *const *names, unsigned n, const char *s)
{
    if (!s)
        return -1;
    for (unsigned i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0)
            return (int) i;
    return -1;
}

/* Each pair: the stable name of a value, or NULL out of range; the value of a name, or -1. */
#define ENUM_STRINGS(fn, type, table)                                                     \
    const char *dom_template_##fn##_to_string(type v)                                     \
    {                                                                                     \
        return name_of(table, G_N_ELEMENTS(table), (int) v);                              \
    }                                                                                     \
    int dom_template_##fn##_from_string(const char *s)                                    \
    {                                                                                     \
        return value_of(table, G_N_ELEMENTS(table), s);                                   \
    }

ENUM_STRINGS(kind, DomTemplateKind, kind_names)
ENUM_STRINGS(network, DomNetworkMode, network_names)
ENUM_STRINGS(video, DomVideoModel, video_names)
ENUM_STRINGS(disk_bus, DomDiskBus, disk_bus_names)
ENUM_STRINGS(boot, DomBootDevice, boot_names)
ENUM_STRINGS(image_format, DomImageFormat, image_format_names)

/* Every field a template file may carry; anything else is a typo worth reporting. */
static const char *const known_fields[] = {
    "description", "kind", "memory_mib", "vcpus", "video", "disk_bus", "network",
    "network_name", "boot", "idle_timeout_s", "max_lifetime_s", "iso_path", "disk_gib",
    "base_image", "base_format", "persistent", "console_exclusive", "warm_pool",
    "memory_image", "memory_image_after_s",
};

/**
 * dom_template_free:
 * @tmpl: (nullable): a template
 */
void
dom_template_free(DomTemplate *tmpl)
{
    if (!tmpl)
        return;
    g_free(tmpl->name);
    g_free(tmpl->path);
    g_free(tmpl->description);
    g_free(tmpl->network_name);
    g_free(tmpl->iso_path);
    g_free(tmpl->base_image);
    g_free(tmpl);
}

/* The context of one file's validation: errors name the file and the field. */
typedef struct {
    const char *path;
    json_object *root;
    GError **error;
} Loader;

G_GNUC_PRINTF(3, 4) static bool
field_error(Loader *l, const char *field, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *reason = NULL;

    va_start(ap, fmt);
    reason = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(l->error, VMB_ERROR_PRIVATE, VMB_ERROR_CONFIG, "%s: field '%s': %s", l->path, field,
                reason);
    return false;
}

static json_object *
get_field(Loader *l, const char *field)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(l->root, field, &v))
        return NULL;
    return v;
}

/* A string field; absent leaves *ret untouched. */
static bool
get_string(Loader *l, const char *field, bool required, const char **ret)
{
    json_object *v = get_field(l, field);

    if (!v) {
        if (required)
            return field_error(l, field, "is required");
        return true;
    }
    if (!json_object_is_type(v, json_type_string))
        return field_error(l, field, "must be a string");
    *ret = json_object_get_string(v);
    return true;
}

/* A true/false field; absent is false. */
static bool
get_bool(Loader *l, const char *field, bool *ret)
{
    json_object *v = get_field(l, field);

    if (v && !json_object_is_type(v, json_type_boolean))
        return field_error(l, field, "must be true or false");
    *ret = v && json_object_get_boolean(v);
    return true;
}

/* An integer field within [min, max]; absent leaves *ret untouched. */
static bool
get_uint(Loader *l, const char *field, bool required, guint min, guint max, guint *ret)
{
    json_object *v = get_field(l, field);
    int64_t n;

    if (!v) {
        if (required)
            return field_error(l, field, "is required");
        return true;
    }
    if (!json_object_is_type(v, json_type_int))
        return field_error(l, field, "must be an integer");
    n = json_object_get_int64(v);
    if (n < (int64_t) min || n > (int64_t) max)
        return field_error(l, field, "must be between %u and %u, not %" G_GINT64_FORMAT, min,
                           max, (gint64) n);
    *ret = (guint) n;
    return true;
}

/* An enum field given by name; absent leaves *ret untouched. */
static bool
get_enum(Loader *l, const char *field, bool required, const char *const *names, unsigned n,
         int *ret)
{
    const char *s = NULL;
    int value;

    if (!get_string(l, field, required, &s))
        return false;
    if (!s)
        return true;
    value = value_of(names, n, s);
    if (value < 0) {
        g_autoptr(GString) list = g_string_new(NULL);
        for (unsigned i = 0; i < n; i++)
            g_string_append_printf(list, "%s%s", i ? ", " : "", names[i]);
        return field_error(l, field, "must be one of %s, not '%s'", list->str, s);
    }
    *ret = value;
    return true;
}

static bool
is_plain_name(const char *s)
{
    if (!s[0] || s[0] == '.' || strlen(s) > 200)
        return false;
    for (const char *p = s; *p; p++)
        if (!g_ascii_isalnum(*p) && !strchr("._-", *p))
            return false;
    return true;
}

static bool
has_control_chars(const char *s)
{
    for (const unsigned char *p = (const unsigned char *) s; *p; p++)
        if (*p < 0x20 && *p != '\t' && *p != '\n')
            return true;
    return false;
}

/* Every field of the file is one this version knows. */
static bool
check_known_fields(Loader *l)
{
    json_object_object_foreach(l->root, key, val) {
        bool known = false;
        (void) val;
        for (size_t i = 0; i < G_N_ELEMENTS(known_fields); i++)
            known |= strcmp(key, known_fields[i]) == 0;
        if (!known)
            return field_error(l, key, "unknown field");
    }

    return true;
}

/* kind, description, memory, vCPUs, video and disk bus. */
static bool
load_basics(Loader *l, DomTemplate *t)
{
    const char *s;
    int e;

    e = -1;
    if (!get_enum(l, "kind", true, kind_names, G_N_ELEMENTS(kind_names), &e))
        return false;
    t->kind = (DomTemplateKind) e;

    s = "";
    if (!get_string(l, "description", false, &s))
        return false;
    if (has_control_chars(s))
        return field_error(l, "description", "must not contain control characters");
    t->description = g_strdup(s);

    if (!get_uint(l, "memory_mib", true, 16, 1024 * 1024, &t->memory_mib))
        return false;
    t->vcpus = 1;
    if (!get_uint(l, "vcpus", false, 1, 256, &t->vcpus))
        return false;

    e = DOM_VIDEO_VGA;
    if (!get_enum(l, "video", false, video_names, G_N_ELEMENTS(video_names), &e))
        return false;
    t->video = (DomVideoModel) e;
    e = DOM_DISK_BUS_VIRTIO;
    if (!get_enum(l, "disk_bus", false, disk_bus_names, G_N_ELEMENTS(disk_bus_names), &e))
        return false;
    t->disk_bus = (DomDiskBus) e;

    return true;
}

/* network and network_name. */
static bool
load_network(Loader *l, DomTemplate *t)
{
    const char *s;
    int e;

    e = DOM_NETWORK_ISOLATED;
    s = NULL;
    if (!get_string(l, "network", false, &s))
        return false;
    /* "user" (QEMU's SLIRP) once reached the host's loopback; old templates that ask for it
     * get the isolated network, which gives them the outbound access they wanted. */
    if ((!s || strcmp(s, "user") != 0) &&
        !get_enum(l, "network", false, network_names, G_N_ELEMENTS(network_names), &e))
        return false;
    t->network = (DomNetworkMode) e;
    s = NULL;
    if (!get_string(l, "network_name", t->network == DOM_NETWORK_LIBVIRT, &s))
        return false;
    if (s && t->network != DOM_NETWORK_LIBVIRT)
        return field_error(l, "network_name", "is only allowed with \"network\": \"libvirt\"");
    if (s && !is_plain_name(s))
        return field_error(l, "network_name", "must be a plain name of letters, digits, '.', "
                                              "'_' and '-'");
    t->network_name = g_strdup(s);

    return true;
}

/* The fields of "kind": "iso" (and none of an overlay's). */
static bool
load_iso_kind(Loader *l, DomTemplate *t)
{
    static const char *const overlay_only[] = { "base_image", "base_format", "persistent" };
    const char *s;

    for (size_t i = 0; i < G_N_ELEMENTS(overlay_only); i++)
        if (get_field(l, overlay_only[i]))
            return field_error(l, overlay_only[i], "is only allowed with \"kind\": \"overlay\"");
    s = NULL;
    if (!get_string(l, "iso_path", false, &s))
        return false;
    if (s && (!g_path_is_absolute(s) || has_control_chars(s)))
        return field_error(l, "iso_path", "must be an absolute path");
    t->iso_path = g_strdup(s);
    if (!get_uint(l, "disk_gib", false, 1, 64 * 1024, &t->disk_gib))
        return false;
    return true;
}

/* The fields of "kind": "overlay" (and none of an ISO template's). */
static bool
load_overlay_kind(Loader *l, DomTemplate *t)
{
    static const char *const iso_only[] = { "iso_path", "disk_gib" };
    const char *s;
    int e;

    for (size_t i = 0; i < G_N_ELEMENTS(iso_only); i++)
        if (get_field(l, iso_only[i]))
            return field_error(l, iso_only[i], "is only allowed with \"kind\": \"iso\"");
    s = NULL;
    if (!get_string(l, "base_image", true, &s))
        return false;
    if (!is_plain_name(s))
        return field_error(l, "base_image", "must be a volume name of letters, digits, '.', "
                                            "'_' and '-'");
    t->base_image = g_strdup(s);
    e = DOM_IMAGE_FORMAT_QCOW2;
    if (!get_enum(l, "base_format", false, image_format_names,
                  G_N_ELEMENTS(image_format_names), &e))
        return false;
    t->base_format = (DomImageFormat) e;
    if (!get_bool(l, "persistent", &t->persistent))
        return false;
    return true;
}

/* The boot order: given, or cdrom and/or hd as the template has them. */
static bool
load_boot(Loader *l, DomTemplate *t)
{
    json_object *boot = get_field(l, "boot");

    if (!boot) {
        if (t->kind == DOM_TEMPLATE_KIND_ISO)
            t->boot[t->n_boot++] = DOM_BOOT_CDROM;
        if (dom_template_has_disk(t))
            t->boot[t->n_boot++] = DOM_BOOT_HD;
    } else {
        size_t n;
        if (!json_object_is_type(boot, json_type_array))
            return field_error(l, "boot", "must be an array of device names");
        n = json_object_array_length(boot);
        if (n == 0)
            return field_error(l, "boot", "must name at least one device");
        for (size_t i = 0; i < n; i++) {
            json_object *d = json_object_array_get_idx(boot, i);
            int dev = json_object_is_type(d, json_type_string)
                          ? value_of(boot_names, G_N_ELEMENTS(boot_names), json_object_get_string(d))
                          : -1;
            if (dev < 0)
                return field_error(l, "boot", "entry %zu must be one of cdrom, hd, network", i);
            for (guint j = 0; j < t->n_boot; j++)
                if (t->boot[j] == (DomBootDevice) dev)
                    return field_error(l, "boot", "names '%s' twice", boot_names[dev]);
            if (dev == DOM_BOOT_CDROM && t->kind != DOM_TEMPLATE_KIND_ISO)
                return field_error(l, "boot", "'cdrom' needs \"kind\": \"iso\"");
            if (dev == DOM_BOOT_HD && !dom_template_has_disk(t))
                return field_error(l, "boot", "'hd' needs a disk (\"disk_gib\" or an overlay)");
            if (dev == DOM_BOOT_NETWORK && t->network == DOM_NETWORK_NONE)
                return field_error(l, "boot", "'network' needs a network card");
            t->boot[t->n_boot++] = (DomBootDevice) dev;
        }
    }
    return true;
}

/* Guests kept booted (or saved, with memory_image) for takers: only for a template whose
 * create needs nothing per request (no user ISO, no disk kept per user). */
static bool
load_warm_pool(Loader *l, DomTemplate *t)
{
    if (!get_uint(l, "warm_pool", false, 0, DOM_TEMPLATE_WARM_POOL_MAX, &t->warm_pool))
        return false;
    if (t->warm_pool && (dom_template_needs_iso(t) || t->persistent))
        return field_error(l, "warm_pool", "needs a template whose guests need nothing per "
                                           "user (a fixed \"iso_path\" or an overlay that is "
                                           "not persistent)");
    t->memory_image_after_s = DOM_TEMPLATE_MEMORY_IMAGE_AFTER_S;
    if (!get_bool(l, "memory_image", &t->memory_image) ||
        !get_uint(l, "memory_image_after_s", false, 0, 3600, &t->memory_image_after_s))
        return false;
    if (t->memory_image && (dom_template_needs_iso(t) || t->persistent))
        return field_error(l, "memory_image", "needs a template whose guests need nothing per "
                                              "user, as \"warm_pool\" does");
    return true;
}

static bool
load_fields(Loader *l, DomTemplate *t)
{
    return check_known_fields(l) && load_basics(l, t) && load_network(l, t) &&
           get_uint(l, "idle_timeout_s", false, 0, G_MAXINT32, &t->idle_timeout_s) &&
           get_uint(l, "max_lifetime_s", false, 0, G_MAXINT32, &t->max_lifetime_s) &&
           get_bool(l, "console_exclusive", &t->console_exclusive) &&
           (t->kind == DOM_TEMPLATE_KIND_ISO ? load_iso_kind(l, t) : load_overlay_kind(l, t)) &&
           load_boot(l, t) && load_warm_pool(l, t);
}

/* @name is a template's name: 1-64 of a-z, 0-9, '_' and '-', starting with a letter or
 * digit. */
static bool
name_valid(const char *name)
{
    return name[0] && g_ascii_isalnum(name[0]) && strlen(name) <= 64 &&
           strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") == strlen(name);
}

/**
 * dom_template_parse:
 * @name: the template's name
 * @text: its JSON text
 * @len: the text's length
 * @where: what errors start with: the file's path, or "template NAME"
 * @error: return location for an error
 *
 * Validates one template definition. Errors have kind VMB_ERROR_CONFIG and read
 * "<where>: field '<field>': <reason>" (or "<where>: <reason>" for the text as a whole).
 *
 * Returns: (transfer full): the template (its path NULL), or NULL on error.
 */
DomTemplate *
dom_template_parse(const char *name, const char *text, gsize len, const char *where,
                   GError **error)
{
    g_autoptr(json_object) root = NULL;
    g_autoptr(DomTemplate) t = g_new0(DomTemplate, 1);
    json_tokener *tok;
    enum json_tokener_error jerr;
    size_t consumed;
    Loader l = { .path = where, .error = error };

    if (!name_valid(name)) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_CONFIG,
                    "%s: a template name is 1-64 of a-z, 0-9, '_' and '-', starting with a "
                    "letter or digit", where);
        return NULL;
    }
    if (len > 1024 * 1024 || strlen(text) != len) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_CONFIG, "%s: not a JSON text", where);
        return NULL;
    }
    if (!g_utf8_validate(text, (gssize) len, NULL)) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_CONFIG, "%s: not valid UTF-8", where);
        return NULL;
    }
    tok = json_tokener_new();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    root = json_tokener_parse_ex(tok, text, (int) len);
    jerr = json_tokener_get_error(tok);
    consumed = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!root || jerr != json_tokener_success) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_CONFIG, "%s: invalid JSON at byte %zu: %s",
                    where, consumed, jerr == json_tokener_continue ? "unexpected end of file"
                                                                   : json_tokener_error_desc(jerr));
        return NULL;
    }
    if (text[consumed + strspn(text + consumed, " \t\r\n")] != '\0') {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_CONFIG,
                    "%s: trailing text after the JSON object at byte %zu", where, consumed);
        return NULL;
    }
    if (!json_object_is_type(root, json_type_object)) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_CONFIG, "%s: a template is a JSON object",
                    where);
        return NULL;
    }
    l.root = root;
    if (!load_fields(&l, t))
        return NULL;
    t->name = g_strdup(name);
    return g_steal_pointer(&t);
}

/**
 * dom_template_load_file:
 * @path: a template file, "<name>.json"
 * @error: return location for an error
 *
 * Reads and validates one template (dom_template_parse(), errors starting with @path).
 *
 * Returns: (transfer full): the template, or NULL on error.
 */
DomTemplate *
dom_template_load_file(const char *path, GError **error)
{
    g_autofree char *text = NULL;
    g_autofree char *base = g_path_get_basename(path);
    gsize len = 0;
    g_autoptr(GError) local = NULL;
    DomTemplate *t;

    if (!g_str_has_suffix(base, ".json")) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_CONFIG,
                    "%s: a template file name ends in .json", path);
        return NULL;
    }
    base[strlen(base) - strlen(".json")] = '\0';
    if (!name_valid(base)) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_CONFIG,
                    "%s: a template name is 1-64 of a-z, 0-9, '_' and '-', starting with a "
                    "letter or digit", path);
        return NULL;
    }
    if (!g_file_get_contents(path, &text, &len, &local)) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_CONFIG, "%s: %s", path, local->message);
        return NULL;
    }
    t = dom_template_parse(base, text, len, path, error);
    if (t)
        t->path = g_strdup(path);
    return t;
}

/**
 * dom_template_needs_iso:
 * @tmpl: a template
 *
 * Returns: true when a VM of @tmpl boots an ISO the user picks (an uploaded one).
 */
bool
dom_template_needs_iso(const DomTemplate *tmpl)
{
    return tmpl->kind == DOM_TEMPLATE_KIND_ISO && !tmpl->iso_path;
}

/**
 * dom_template_has_disk:
 * @tmpl: a template
 *
 * Returns: true when a VM of @tmpl has a hard disk (blank or overlay).
 */
bool
dom_template_has_disk(const DomTemplate *tmpl)
{
    return tmpl->kind == DOM_TEMPLATE_KIND_OVERLAY || tmpl->disk_gib > 0;
}

/**
 * dom_template_to_json:
 * @tmpl: a template
 *
 * The public view of a template, as `GET /api/v1/templates` lists it. File paths on the
 * host are left out.
 *
 * Returns: (transfer full): a new JSON object.
 */
json_object *
dom_template_to_json(const DomTemplate *tmpl)
{
    json_object *o = json_object_new_object();
    json_object *boot = json_object_new_array();

    json_object_object_add(o, "name", json_object_new_string(tmpl->name));
    json_object_object_add(o, "kind", json_object_new_string(kind_names[tmpl->kind]));
    json_object_object_add(o, "description", json_object_new_string(tmpl->description));
    json_object_object_add(o, "memory_mib", json_object_new_int64(tmpl->memory_mib));
    json_object_object_add(o, "vcpus", json_object_new_int64(tmpl->vcpus));
    json_object_object_add(o, "video", json_object_new_string(video_names[tmpl->video]));
    json_object_object_add(o, "disk_bus", json_object_new_string(disk_bus_names[tmpl->disk_bus]));
    json_object_object_add(o, "network", json_object_new_string(network_names[tmpl->network]));
    for (guint i = 0; i < tmpl->n_boot; i++)
        json_object_array_add(boot, json_object_new_string(boot_names[tmpl->boot[i]]));
    json_object_object_add(o, "boot", boot);
    json_object_object_add(o, "idle_timeout_s", json_object_new_int64(tmpl->idle_timeout_s));
    json_object_object_add(o, "max_lifetime_s", json_object_new_int64(tmpl->max_lifetime_s));
    json_object_object_add(o, "console_exclusive",
                           json_object_new_boolean(tmpl->console_exclusive));
    json_object_object_add(o, "needs_iso", json_object_new_boolean(dom_template_needs_iso(tmpl)));
    json_object_object_add(o, "warm_pool", json_object_new_int64(tmpl->warm_pool));
    json_object_object_add(o, "memory_image", json_object_new_boolean(tmpl->memory_image));
    if (tmpl->memory_image)
        json_object_object_add(o, "memory_image_after_s",
                               json_object_new_int64(tmpl->memory_image_after_s));
    if (tmpl->kind == DOM_TEMPLATE_KIND_ISO) {
        json_object_object_add(o, "disk_gib", json_object_new_int64(tmpl->disk_gib));
    } else {
        json_object_object_add(o, "base_image", json_object_new_string(tmpl->base_image));
        json_object_object_add(o, "persistent", json_object_new_boolean(tmpl->persistent));
    }
    return o;
}

struct _DomTemplateSet {
    gatomicrefcount ref;
    GPtrArray *list;   /* DomTemplate*, owned, sorted by name */
    GHashTable *by_name; /* name -> DomTemplate*, borrowed from list */
};

/**
 * dom_template_set_ref:
 * @set: a set
 *
 * A set never changes once loaded; a reload makes a new one, and readers of the old one keep
 * it alive with a reference.
 *
 * Returns: (transfer full): @set
 */
DomTemplateSet *
dom_template_set_ref(DomTemplateSet *set)
{
    g_atomic_ref_count_inc(&set->ref);
    return set;
}

/**
 * dom_template_set_unref:
 * @set: (nullable): a set
 */
void
dom_template_set_unref(DomTemplateSet *set)
{
    if (!set || !g_atomic_ref_count_dec(&set->ref))
        return;
    g_hash_table_unref(set->by_name);
    g_ptr_array_unref(set->list);
    g_free(set);
}

static gint
compare_by_name(gconstpointer a, gconstpointer b)
{
    const DomTemplate *ta = *(const DomTemplate *const *) a;
    const DomTemplate *tb = *(const DomTemplate *const *) b;

    return strcmp(ta->name, tb->name);
}

/**
 * dom_template_set_load_dir:
 * @dir: a folder of "<name>.json" template files (other files are ignored)
 * @error: return location for an error
 *
 * Loads every template in @dir. One bad file fails the whole load, so that a typo is found
 * at start-up rather than when a user picks that template.
 *
 * Returns: (transfer full): the set (possibly empty), or NULL on error.
 */
DomTemplateSet *
dom_template_set_load_dir(const char *dir, GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(GDir) d = g_dir_open(dir, 0, &local);
    g_autoptr(DomTemplateSet) set = NULL;
    const char *entry;

    if (!d) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_CONFIG, "templates folder %s: %s", dir,
                    local->message);
        return NULL;
    }
    set = g_new0(DomTemplateSet, 1);
    g_atomic_ref_count_init(&set->ref);
    set->list = g_ptr_array_new_with_free_func((GDestroyNotify) dom_template_free);
    set->by_name = g_hash_table_new(g_str_hash, g_str_equal);
    while ((entry = g_dir_read_name(d))) {
        g_autofree char *path = NULL;
        DomTemplate *t;

        if (!g_str_has_suffix(entry, ".json") || entry[0] == '.')
            continue;
        path = g_build_filename(dir, entry, NULL);
        t = dom_template_load_file(path, error);
        if (!t)
            return NULL;
        g_ptr_array_add(set->list, t);
    }
    g_ptr_array_sort(set->list, compare_by_name);
    for (guint i = 0; i < set->list->len; i++) {
        DomTemplate *t = g_ptr_array_index(set->list, i);
        g_hash_table_insert(set->by_name, t->name, t);
    }
    return g_steal_pointer(&set);
}

/**
 * dom_template_set_add:
 * @set: a set no reader holds yet (just loaded)
 * @tmpl: (transfer full): a template
 *
 * Returns: true when @tmpl joined @set; false (and @tmpl freed) when @set has one by that
 *   name already.
 */
bool
dom_template_set_add(DomTemplateSet *set, DomTemplate *tmpl)
{
    if (g_hash_table_contains(set->by_name, tmpl->name)) {
        dom_template_free(tmpl);
        return false;
    }
    g_ptr_array_add(set->list, tmpl);
    g_ptr_array_sort(set->list, compare_by_name);
    g_hash_table_insert(set->by_name, tmpl->name, tmpl);
    return true;
}

/**
 * dom_template_set_lookup:
 * @set: a set
 * @name: a template name
 *
 * Returns: (transfer none) (nullable): the template, or NULL when @set has none by @name.
 */
const DomTemplate *
dom_template_set_lookup(const DomTemplateSet *set, const char *name)
{
    return name ? g_hash_table_lookup(set->by_name, name) : NULL;
}

/**
 * dom_template_set_count:
 * @set: a set
 *
 * Returns: how many templates @set holds.
 */
guint
dom_template_set_count(const DomTemplateSet *set)
{
    return set->list->len;
}

/**
 * dom_template_set_nth:
 * @set: a set
 * @i: an index below dom_template_set_count()
 *
 * Returns: (transfer none): the @i-th template in name order.
 */
const DomTemplate *
dom_template_set_nth(const DomTemplateSet *set, guint i)
{
    g_return_val_if_fail(i < set->list->len, NULL);
    return g_ptr_array_index(set->list, i);
}
