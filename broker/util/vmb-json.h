// SPDX-License-Identifier: LGPL-2.1-or-later
// json-c with GLib's automatic cleanup, declared once for every layer that uses JSON.
#pragma once

#include <glib.h>
#include <json-c/json.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_object, json_object_put)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_tokener, json_tokener_free)
