// SPDX-License-Identifier: LGPL-2.1-or-later
// The templates in use: one loaded set, replaced whole by a reload (SIGHUP) while requests
// and workers read it. A reader takes a reference to the set it looks in, so a template it
// holds stays valid for as long as it works with it.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"
#include "db-users.h"
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

/* The files of @dir with the templates defined through the API (api_templates). */
DomTemplateSet *svc_templates_load(DbPool *db, const char *dir, GError **error);

/* Defines (@create), replaces or (@text NULL) deletes a template of the API's, as an admin;
 * the set in use is reloaded. Template files stay read-only. */
bool svc_templates_change(SvcTemplates *templates, const DbUser *caller, const char *name,
                          const char *text, bool create, const char *remote_addr,
                          GError **error);

/* Loads the folder and the API's templates again, stores them and puts them in use; @summary gets what changed
 * ("2 template(s); added: a; removed: b; changed: c"). One bad file keeps the running set. */
bool svc_templates_reload(SvcTemplates *templates, GString *summary, GError **error);
