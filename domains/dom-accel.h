// SPDX-License-Identifier: LGPL-2.1-or-later
// The accelerator for new guests: KVM where QEMU can actually use it, TCG otherwise. "Can
// use it" is proven by a probe guest, not read from the capabilities: a /dev/kvm that QEMU
// may not open, or a nested KVM that fails as soon as a guest enters 64-bit mode, are both
// offered by libvirt as `kvm`.
#pragma once

#include <stdbool.h>
#include <glib.h>
#include <libvirt/libvirt.h>

typedef enum {
    DOM_ACCEL_AUTO, /* KVM where the probe passes, else TCG */
    DOM_ACCEL_KVM,  /* KVM or nothing */
    DOM_ACCEL_QEMU, /* TCG always */

    DOM_ACCEL_MODE_LAST
} DomAccelMode;

/* libvirt.domain_type's spellings, indexed by mode, NULL-terminated. */
extern const char *const dom_accel_mode_names[DOM_ACCEL_MODE_LAST + 1];
const char *dom_accel_mode_to_string(DomAccelMode mode);
int dom_accel_mode_from_string(const char *s);

typedef struct {
    char *domain_type; /* for new guests: "kvm", "qemu" (or the test driver's "test");
                        * NULL when none may be used (KVM forced but unusable) */
    char *finding;     /* why, in plain words (no paths, no libvirt text) */
    char *fix;         /* (nullable) what an admin can do about it */
    char *detail;      /* (nullable) libvirt's own message, for the log only */
    guint probe_ms;    /* how long the probe guest took; 0 when none ran */
} DomAccelChoice;

void dom_accel_choice_free(DomAccelChoice *choice);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DomAccelChoice, dom_accel_choice_free)

typedef struct {
    DomAccelMode mode;
    const char *probe_name;  /* name of the transient probe domain */
    const char *image_path;  /* where the probe's boot disk is written (QEMU must read it) */
    guint timeout_ms;        /* how long the probe guest may take to signal */
} DomAccelProbe;

DomAccelChoice *dom_accel_choose(virConnectPtr conn, const DomAccelProbe *probe);
bool dom_accel_write_image(const char *path, GError **error);
bool dom_accel_run_probe(virConnectPtr conn, const char *domain_type, const DomAccelProbe *probe,
                         DomAccelChoice *result);
bool dom_accel_is_kvm_failure(const char *message);
