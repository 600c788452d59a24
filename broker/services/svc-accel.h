// SPDX-License-Identifier: LGPL-2.1-or-later
// The host's accelerator, decided by a probe guest at start and after every libvirt
// reconnect (dom-accel), kept for creates and starts, and shown in readyz and metrics.
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <json-c/json.h>

#include "dom-accel.h"
#include "dom-hypervisor.h"
#include "vmb-metrics.h"

typedef struct SvcAccel SvcAccel;

typedef struct {
    DomHypervisor *hv;        /* libvirt */
    DomAccelMode mode;        /* libvirt.domain_type */
    const char *name_prefix;  /* the probe domain is <prefix>kvm-probe */
    const char *storage_dir;  /* the probe's boot disk is written here */
    guint timeout_ms;         /* libvirt.probe_timeout_ms */
    VmbMetrics *metrics;      /* (nullable) vmbroker_accelerator_info */
} SvcAccelOptions;

SvcAccel *svc_accel_new(const SvcAccelOptions *opts);
void svc_accel_free(SvcAccel *accel);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SvcAccel, svc_accel_free)

/* Decides anew on @conn (blocks up to the probe's bound); logs a change once. */
void svc_accel_refresh(SvcAccel *accel, virConnectPtr conn, bool only_new);
/* The domain type for a new guest (transfer full); VMB_ERROR_HOST_UNSUITABLE when KVM
 * is demanded and unusable. Decides first, on @conn, if nothing was decided yet. */
char *svc_accel_domain_type(SvcAccel *accel, virConnectPtr conn, GError **error);
/* A start failed under KVM for a KVM reason (@detail: libvirt's message). In auto mode
 * the host falls back to TCG and true is returned: retry as "qemu". */
bool svc_accel_demote(SvcAccel *accel, const char *detail);
/* {mode, accelerator, finding, fix} for readyz; accelerator is null when none is usable. */
json_object *svc_accel_to_json(SvcAccel *accel);
/* Whether a decision was made (not before libvirt first answered). */
bool svc_accel_decided(SvcAccel *accel);
/* Whether creates can get an accelerator (false, VMB_ERROR_HOST_UNSUITABLE: KVM demanded
 * and unusable). */
bool svc_accel_check(SvcAccel *accel, GError **error);
