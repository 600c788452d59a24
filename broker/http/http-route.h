// SPDX-License-Identifier: LGPL-2.1-or-later
// The router of the HTTP server: which route of the table a method and path reach, and the
// {name} segments they carry. Internal to broker/http.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "http-server.h"

const HttpRoute *http_route_find(const HttpRoute *routes, size_t nroutes, const char *method,
                                 const char *path, GHashTable **ret_params,
                                 unsigned *ret_status);
