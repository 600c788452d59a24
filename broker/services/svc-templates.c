// SPDX-License-Identifier: LGPL-2.1-or-later
// The templates in use, swapped whole under a lock that is held only to take a reference.
#include "svc-templates.h"

#include <string.h>

#include "db-templates.h"
#include "vmb-json.h"

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

bool
svc_templates_reload(SvcTemplates *templates, GString *summary, GError **error)
{
    g_autoptr(DomTemplateSet) fresh = dom_template_set_load_dir(templates->dir, error);
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
