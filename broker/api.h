// SPDX-License-Identifier: LGPL-2.1-or-later
// HTTP handlers of `vmbroker serve`, one file per resource family (api-<family>.c), and
// the route table that maps paths to them.
#pragma once

#include "app.h"

HttpReply *api_health_live(HttpRequest *req, void *app);
HttpReply *api_health_ready(HttpRequest *req, void *app);
