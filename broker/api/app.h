// SPDX-License-Identifier: LGPL-2.1-or-later
// What the daemon's HTTP handlers share: configuration, database pool, hypervisor.
#pragma once

#include "config.h"
#include "db-cache.h"
#include "db-pool.h"
#include "dom-hypervisor.h"
#include "http-server.h"
#include "svc-accel.h"
#include "svc-auth.h"
#include "svc-console.h"
#include "svc-images.h"
#include "svc-isos.h"
#include "svc-events.h"
#include "svc-fleet.h"
#include "svc-health.h"
#include "svc-hosts.h"
#include "svc-pools.h"
#include "svc-templates.h"
#include "svc-vms.h"

typedef struct {
    const Config *cfg;     /* the loaded configuration */
    DbPool *db;            /* PostgreSQL */
    DbCache *cache;        /* token checks and VM lists, dropped at every change */
    DomHypervisor *hv;     /* libvirt */
    SvcAccel *accel;       /* the accelerator new guests get */
    VmbBounded *bounded;   /* libvirt work of requests, waited for within a bound */
    SvcAuth *auth;         /* logins, sessions, tokens */
    SvcUsers *users;       /* accounts and their API tokens */
    SvcHosts *hosts;       /* hypervisor hosts (admins) */
    SvcFleet *fleet;       /* (nullable) the added hosts' connections */
    SvcPools *pools;       /* warm pools */
    VmbMetrics *metrics;   /* what /metrics shows */
    SvcTemplates *templates; /* in use now: a SIGHUP reloads them */
    SvcVms *vms;           /* the VM life cycle */
    SvcOps *ops;           /* operations: what a waiting request waits for */
    GThreadPool *creates;  /* creates, run off the HTTP threads (api_vms_create_run) */
    SvcEvents *events;     /* event streams */
    SvcConsole *console;   /* console tickets and the relay */
    SvcIsos *isos;         /* ISO uploads */
    SvcImages *images;     /* base images (admins) */
    SvcHealth *health;     /* what /readyz and /metrics read from the database */
    char *host_id;         /* hosts row of libvirt.uri */
    bool secure_cookies;   /* public_url is https: Secure cookies with the __Host- prefix */
} App;

/* The route table of `vmbroker serve`. */
extern const HttpRoute api_routes[];
extern const size_t api_routes_count;
