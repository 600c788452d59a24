// SPDX-License-Identifier: LGPL-2.1-or-later
// The templates in use, swapped whole under a lock that is held only to take a reference.
#include "svc-templates.h"

#include <string.h>

#include "db-templates.h"
#include "svc-audit.h"
#include "vmb-error.h"
#include "vmb-json.h"
#include "vmb-log.h"

struct SvcTemplates {
    DbPool *db;
    char *dir;
    GMutex lock;
    DomTemplateSet *set;
};

SvcTemplates *
svc_templates_new(const SvcTemplatesOptions *opts, DomTemplateSet *set)
{
    SvcTemplates *templates = g_new0(SvcTemplates, 1);

    templates->db = opts->db;
    templates->dir = g_strdup(opts->dir);
    g_mutex_init(&templates->lock);
    templates->set = set;
    return templates;
}

void
svc_templates_free(SvcTemplates *templates)
{
    if (!templates)
        return;
    g_clear_pointer(&templates->set, dom_template_set_unref);
    g_mutex_clear(&templates->lock);
    g_free(templates->dir);
    g_free(templates);
}

DomTemplateSet *
svc_templates_get(SvcTemplates *templates)
{
    DomTemplateSet *set;

    g_mutex_lock(&templates->lock);
    set = dom_template_set_ref(templates->set);
    g_mutex_unlock(&templates->lock);
    return set;
}

/* A template's definition as stored: also what tells a changed template from the same. */
static char *
definition(const DomTemplate *t)
{
    g_autoptr(json_object) def = dom_template_to_json(t);

    return g_strdup(json_object_to_json_string_ext(def, JSON_C_TO_STRING_PLAIN));
}

bool
svc_templates_store(DbConn *conn, const DomTemplateSet *set, GError **error)
{
    for (guint i = 0; i < dom_template_set_count(set); i++) {
        const DomTemplate *t = dom_template_set_nth(set, i);
        g_autofree char *def = definition(t);

        if (!db_templates_upsert(conn, t->name, dom_template_kind_to_string(t->kind), def, NULL,
                                 error))
            return false;
    }
    return true;
}

static bool
store_tx(DbConn *conn, void *data, GError **error)
{
    return svc_templates_store(conn, data, error);
}

/* Appends "; @what: a, b" for the templates of @from that @other lacks or, with @changed,
 * holds with another definition. */
static void
describe(GString *out, const char *what, const DomTemplateSet *from,
         const DomTemplateSet *other, bool changed)
{
    bool first = true;

    for (guint i = 0; i < dom_template_set_count(from); i++) {
        const DomTemplate *t = dom_template_set_nth(from, i);
        const DomTemplate *o = dom_template_set_lookup(other, t->name);

        if (changed) {
            g_autofree char *a = o ? definition(t) : NULL;
            g_autofree char *b = o ? definition(o) : NULL;
            if (!o || strcmp(a, b) == 0)
                continue;
        } else if (o) {
            continue;
        }
        if (first)
            g_string_append_printf(out, "; %s: ", what);
        g_string_append_printf(out, "%s%s", first ? "" : ", ", t->name);
        first = false;
    }
}

/* Adds the API's templates to @set; one whose name a file took, or that no longer passes
 * (a newer vmbroker checks more), is left out with a warning. */
static bool
add_api_templates(DbPool *db, DomTemplateSet *set, GError **error)
{
    g_autoptr(DbConn) conn = db_pool_acquire(db, error);
    g_autoptr(GPtrArray) rows = conn ? db_api_templates_list(conn, error) : NULL;

    for (guint i = 0; rows && i + 1 < rows->len; i += 2) {
        const char *name = rows->pdata[i], *text = rows->pdata[i + 1];
        g_autofree char *where = g_strdup_printf("template %s (defined through the API)", name);
        g_autoptr(GError) bad = NULL;
        DomTemplate *t = dom_template_parse(name, text, strlen(text), where, &bad);
        if (!t)
            vmb_warning("%s; left out", bad->message);
        else if (!dom_template_set_add(set, t))
            vmb_warning("%s: a file of templates.dir has that name; the file's is used", where);
    }
    return rows != NULL;
}

/**
 * svc_templates_load:
 * @db: PostgreSQL
 * @dir: templates.dir
 * @error: return location for an error
 *
 * Returns: (transfer full): the files of @dir and the templates defined through the API.
 */
DomTemplateSet *
svc_templates_load(DbPool *db, const char *dir, GError **error)
{
    g_autoptr(DomTemplateSet) set = dom_template_set_load_dir(dir, error);

    if (!set || !add_api_templates(db, set, error))
        return NULL;
    return g_steal_pointer(&set);
}

bool
svc_templates_reload(SvcTemplates *templates, GString *summary, GError **error)
{
    g_autoptr(DomTemplateSet) fresh = svc_templates_load(templates->db, templates->dir, error);
    g_autoptr(DomTemplateSet) old = NULL;

    if (!fresh || !db_pool_transaction(templates->db, store_tx, fresh, error))
        return false;
    g_mutex_lock(&templates->lock);
    old = g_steal_pointer(&templates->set);
    templates->set = dom_template_set_ref(fresh);
    g_mutex_unlock(&templates->lock);
    g_string_append_printf(summary, "%u template(s)", dom_template_set_count(fresh));
    describe(summary, "added", fresh, old, false);
    describe(summary, "removed", old, fresh, false);
    describe(summary, "changed", fresh, old, true);
    return true;
}

static bool
admin_only(const DbUser *caller, GError **error)
{
    if (caller->role == DB_ROLE_ADMIN)
        return true;
    g_set_error(error, VMB_ERROR, VMB_ERROR_FORBIDDEN, "Templates are defined by admins.");
    return false;
}

/* Whether a template file (read-only here) holds @name. */
static bool
file_template(SvcTemplates *templates, const char *name)
{
    g_autoptr(DomTemplateSet) set = svc_templates_get(templates);
    const DomTemplate *t = dom_template_set_lookup(set, name);

    return t && t->path;
}

/* @text as a template for the API: valid as a file would be, and with no host path in it. */
static bool
check_definition(const char *name, const char *text, GError **error)
{
    g_autofree char *where = g_strdup_printf("template %s", name);
    g_autoptr(GError) bad = NULL;
    g_autoptr(DomTemplate) t = dom_template_parse(name, text, strlen(text), where, &bad);

    if (!t) {
        /* Its words name fields, never host paths: the uploader needs them. */
        g_set_error_literal(error, VMB_ERROR, VMB_ERROR_UNPROCESSABLE, bad->message);
        return false;
    }
    if (t->iso_path) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_UNPROCESSABLE,
                    "%s: field 'iso_path': a host path is for template files; a template "
                    "defined here boots an uploaded ISO or a base image", where);
        return false;
    }
    return true;
}

typedef struct {
    const char *name;
    const char *text;     /* NULL: delete */
    const DbUser *caller;
    const char *remote_addr;
    bool create;
} ChangeTx;

static bool
change_tx(DbConn *conn, void *data, GError **error)
{
    ChangeTx *tx = data;
    g_autoptr(json_object) detail = json_object_new_object();
    const char *action = !tx->text ? "template.delete"
                         : tx->create ? "template.create" : "template.update";

    if (tx->text && !db_api_templates_put(conn, tx->name, tx->text, tx->caller->id, tx->create,
                                          error))
        return false;
    if (!tx->text && !db_api_templates_delete(conn, tx->name, error))
        return false;
    if (tx->text)
        json_object_object_add(detail, "definition", json_tokener_parse(tx->text));
    return svc_audit_write(conn, tx->caller, action, "template", tx->name, tx->remote_addr,
                           detail, error);
}

/**
 * svc_templates_change:
 * @templates: the service
 * @caller: who asks (an admin)
 * @name: the template
 * @text: (nullable): its JSON definition; NULL deletes it
 * @create: a new template rather than a replacement
 * @remote_addr: (nullable): for the audit log
 * @error: return location for an error (VMB_ERROR_FORBIDDEN, _UNPROCESSABLE with the field
 *   that is wrong, _CONFLICT for a file's name, a name in use or a template VMs use,
 *   _NOT_FOUND)
 *
 * Stores the change (audited as template.create, .update or .delete) and puts the templates
 * in use anew, as a reload does.
 *
 * Returns: true on success.
 */
bool
svc_templates_change(SvcTemplates *templates, const DbUser *caller, const char *name,
                     const char *text, bool create, const char *remote_addr, GError **error)
{
    ChangeTx tx = { name, text, caller, remote_addr, create };
    g_autoptr(GString) summary = g_string_new(NULL);
    g_autoptr(GError) bad = NULL;

    if (!admin_only(caller, error) || (text && !check_definition(name, text, error)))
        return false;
    if (file_template(templates, name)) {
        g_set_error(error, VMB_ERROR, VMB_ERROR_CONFLICT,
                    "Template %s is a file of templates.dir: change it there.", name);
        return false;
    }
    if (!db_pool_transaction(templates->db, change_tx, &tx, error))
        return false;
    /* Stored, the change stands: a folder that does not load now (a bad file) keeps the set
     * in use, as SIGHUP does, and the next reload brings the change in. */
    if (!svc_templates_reload(templates, summary, &bad))
        vmb_warning("template %s stored; the templates in use stay as they were: %s", name,
                    bad->message);
    else
        vmb_info("templates changed through the API: %s", summary->str);
    return true;
}
