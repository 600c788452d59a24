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

/* Takes @set over. */
SvcTemplates *svc_templates_new(DomTemplateSet *set);
void svc_templates_free(SvcTemplates *templates);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SvcTemplates, svc_templates_free)

/* The set in use now: (transfer full), drop it with dom_template_set_unref (or g_autoptr). */
DomTemplateSet *svc_templates_get(SvcTemplates *templates);

/* Writes @set's definitions to the templates table (in the caller's transaction). */
bool svc_templates_store(DbConn *conn, const DomTemplateSet *set, GError **error);

/* Loads @dir again, stores it and puts it in use; @summary gets what changed ("2 templates;
 * added: a; removed: b; changed: c"). One bad file keeps the running set. */
bool svc_templates_reload(SvcTemplates *templates, const char *dir, DbPool *db,
                          GString *summary, GError **error);
