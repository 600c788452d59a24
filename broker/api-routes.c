// SPDX-License-Identifier: LGPL-2.1-or-later
// The route table: every path vmbroker serves. contrib/openapi.yaml describes the same set.
#include "api.h"

const HttpRoute api_routes[] = {
    { "GET", "/healthz", api_health_live, 0 },
    { "GET", "/readyz", api_health_ready, 0 },
};
const size_t api_routes_count = G_N_ELEMENTS(api_routes);
