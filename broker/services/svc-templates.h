// SPDX-License-Identifier: LGPL-2.1-or-later
// The templates in use: one loaded set, replaced whole by a reload (SIGHUP) while requests
// and workers read it. A reader takes a reference to the set it looks in, so a template it
// holds stays valid for as long as it works with it.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"
#include "dom-template.h"

typedef struct SvcTemplates SvcTemplates;

typedef struct {
    DbPool *db;      /* where a reload stores the templates' rows */
    const char *dir; /* templates.dir, read again by a reload */
} SvcTemplatesOptions;

/* Takes @set, as loaded from @opts->dir, over. */
SvcTemplates *svc_templates_new(const SvcTemplatesOptions *opts, DomTemplateSet *set);
void svc_templates_free(SvcTemplates *templates);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SvcTemplates, svc_templates_free)

/* The set in use now: (transfer full), drop it with dom_template_set_unref (or g_autoptr). */
DomTemplateSet *svc_templates_get(SvcTemplates *templates);

/* Writes @set's definitions to the templates table (in the caller's transaction). */
bool svc_templates_store(DbConn *conn, const DomTemplateSet *set, GError **error);

/* Loads the folder again, stores it and puts it in use; @summary gets what changed
 * ("2 template(s); added: a; removed: b; changed: c"). One bad file keeps the running set. */
bool svc_templates_reload(SvcTemplates *templates, GString *summary, GError **error);
