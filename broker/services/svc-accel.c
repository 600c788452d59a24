// SPDX-License-Identifier: LGPL-2.1-or-later
// The host's accelerator. One decision at a time: a refresh runs the probe outside the lock
// and swaps the result in, so creates keep the previous decision while a probe runs. The
// decision is logged when it changes (with its cause and fix), never per create.
#include "svc-accel.h"

#include <string.h>

#include "vmb-error.h"
#include "vmb-log.h"

#define INFO_METRIC "vmbroker_accelerator_info"

struct SvcAccel {
    SvcAccelOptions opts;
    char *name_prefix;
    char *storage_dir;
    GMutex probing;          /* one probe at a time */
    GMutex lock;
    DomAccelChoice *choice;  /* (lock) NULL until the first decision */
    guint64 probed_gen;      /* (probing) the libvirt connection decided on; 0: none */
};

/**
 * svc_accel_new:
 * @opts: settings; strings are copied
 *
 * Returns: (transfer full): the service; nothing is decided yet.
 */
SvcAccel *
svc_accel_new(const SvcAccelOptions *opts)
{
    SvcAccel *accel = g_new0(SvcAccel, 1);

    accel->opts = *opts;
    accel->name_prefix = g_strdup(opts->name_prefix);
    accel->storage_dir = g_strdup(opts->storage_dir);
    accel->opts.name_prefix = accel->name_prefix;
    accel->opts.storage_dir = accel->storage_dir;
    g_mutex_init(&accel->probing);
    g_mutex_init(&accel->lock);
    if (opts->metrics)
        vmb_metrics_declare(opts->metrics, INFO_METRIC, VMB_METRIC_GAUGE,
                            "The accelerator new guests get on this host (1), by mode; "
                            "accelerator=\"none\" when KVM is demanded and unusable.", NULL, 0);
    return accel;
}

/**
 * svc_accel_free:
 * @accel: (nullable): the service
 */
void
svc_accel_free(SvcAccel *accel)
{
    if (!accel)
        return;
    dom_accel_choice_free(accel->choice);
    g_mutex_clear(&accel->probing);
    g_mutex_clear(&accel->lock);
    g_free(accel->name_prefix);
    g_free(accel->storage_dir);
    g_free(accel);
}

static bool
same_choice(const DomAccelChoice *a, const DomAccelChoice *b)
{
    return a && b && g_strcmp0(a->domain_type, b->domain_type) == 0 &&
           g_strcmp0(a->finding, b->finding) == 0;
}

static void
log_choice(const SvcAccel *accel, const DomAccelChoice *c)
{
    const char *mode = dom_accel_mode_to_string(accel->opts.mode);

    if (c->detail)
        vmb_info("accelerator probe: libvirt said: %s", c->detail);
    if (!c->domain_type)
        vmb_error("accelerator: none usable (libvirt.domain_type = %s): %s%s%s; creates "
                  "answer 503", mode, c->finding, c->fix ? "; fix: " : "", c->fix ? c->fix : "");
    else if (strcmp(c->domain_type, "qemu") == 0 && accel->opts.mode != DOM_ACCEL_QEMU)
        vmb_warning("accelerator: TCG (domain type qemu), because %s%s%s", c->finding,
                    c->fix ? "; fix: " : "", c->fix ? c->fix : "");
    else
        vmb_info("accelerator: %s (libvirt.domain_type = %s): %s",
                 strcmp(c->domain_type, "kvm") == 0 ? "KVM"
                 : strcmp(c->domain_type, "qemu") == 0 ? "TCG" : c->domain_type,
                 mode, c->finding);
}

/* Takes @c as the decision (with the lock held), logging and counting a change. */
static void
set_choice(SvcAccel *accel, DomAccelChoice *c)
{
    if (!same_choice(accel->choice, c)) {
        log_choice(accel, c);
        if (accel->opts.metrics) {
            vmb_metrics_reset(accel->opts.metrics, INFO_METRIC);
            vmb_metrics_set(accel->opts.metrics, INFO_METRIC, 1, "accelerator",
                            c->domain_type ? c->domain_type : "none", "mode",
                            dom_accel_mode_to_string(accel->opts.mode), NULL);
        }
    }
    dom_accel_choice_free(accel->choice);
    accel->choice = c;
}

/**
 * svc_accel_refresh:
 * @accel: the service
 * @conn: a live connection to the host
 * @only_new: decide only when @conn is a connection not decided on yet (after a reconnect,
 *   libvirtd may run on another kernel, with other permissions)
 *
 * Runs the decision (and with it the probe guest, bounded by opts->timeout_ms) and keeps
 * it. Concurrent refreshes run one after the other.
 */
void
svc_accel_refresh(SvcAccel *accel, virConnectPtr conn, bool only_new)
{
    g_autofree char *probe_name = g_strconcat(accel->name_prefix, "kvm-probe", NULL);
    g_autofree char *image = g_strdup_printf("%s/%skvm-probe.img", accel->storage_dir,
                                             accel->name_prefix);
    DomAccelProbe probe = {
        .mode = accel->opts.mode,
        .probe_name = probe_name,
        .image_path = image,
        .timeout_ms = accel->opts.timeout_ms,
    };
    DomAccelChoice *c;

    guint64 gen = dom_hypervisor_generation(accel->opts.hv);

    g_mutex_lock(&accel->probing);
    if (only_new && gen == accel->probed_gen) {
        g_mutex_unlock(&accel->probing);
        return;
    }
    accel->probed_gen = gen;
    c = dom_accel_choose(conn, &probe);
    g_mutex_lock(&accel->lock);
    set_choice(accel, c);
    g_mutex_unlock(&accel->lock);
    g_mutex_unlock(&accel->probing);
}

/* With the lock held: false, and VMB_ERROR_HOST_UNSUITABLE, when the decision is that no
 * accelerator may be used. */
static bool
check_locked(SvcAccel *accel, GError **error)
{
    if (!accel->choice || accel->choice->domain_type)
        return true;
    /* For clients: the finding, which names host details, goes to readyz and the log. */
    g_set_error_literal(error, VMB_ERROR, VMB_ERROR_HOST_UNSUITABLE,
                        "This host cannot start guests: it is set to use KVM only, and KVM "
                        "does not work here. An administrator finds why in /readyz.");
    return false;
}

/**
 * svc_accel_domain_type:
 * @accel: the service
 * @conn: a live connection, used to decide when nothing is decided yet
 * @error: return location for an error (VMB_ERROR_UNAVAILABLE)
 *
 * Returns: (transfer full): "kvm", "qemu" (or the test driver's type), or NULL.
 */
char *
svc_accel_domain_type(SvcAccel *accel, virConnectPtr conn, GError **error)
{
    char *type = NULL;

    if (!svc_accel_decided(accel))
        svc_accel_refresh(accel, conn, false);

    g_mutex_lock(&accel->lock);
    if (check_locked(accel, error))
        type = g_strdup(accel->choice->domain_type);
    g_mutex_unlock(&accel->lock);
    return type;
}

/**
 * svc_accel_demote:
 * @accel: the service
 * @detail: libvirt's message for the start that failed
 *
 * Returns: true when the caller should retry the start as "qemu" (auto mode).
 */
bool
svc_accel_demote(SvcAccel *accel, const char *detail)
{
    DomAccelChoice *c;

    if (accel->opts.mode != DOM_ACCEL_AUTO)
        return false;
    c = g_new0(DomAccelChoice, 1);
    c->domain_type = g_strdup("qemu");
    c->finding = g_strdup("a guest failed to start under KVM although the probe passed");
    c->fix = g_strdup("see the log line with libvirt's message; the probe runs again at the "
                      "next libvirt reconnect or restart");
    c->detail = g_strdup(detail);
    g_mutex_lock(&accel->lock);
    set_choice(accel, c);
    g_mutex_unlock(&accel->lock);
    return true;
}

/**
 * svc_accel_decided:
 * @accel: the service
 *
 * Returns: whether a decision was made (false until libvirt first answered).
 */
bool
svc_accel_decided(SvcAccel *accel)
{
    bool decided;

    g_mutex_lock(&accel->lock);
    decided = accel->choice != NULL;
    g_mutex_unlock(&accel->lock);
    return decided;
}

/**
 * svc_accel_check:
 * @accel: the service
 * @error: return location for an error (VMB_ERROR_HOST_UNSUITABLE)
 *
 * Returns: false only when the decision is that no accelerator may be used.
 */
bool
svc_accel_check(SvcAccel *accel, GError **error)
{
    bool ok;

    g_mutex_lock(&accel->lock);
    ok = check_locked(accel, error);
    g_mutex_unlock(&accel->lock);
    return ok;
}

/**
 * svc_accel_to_json:
 * @accel: the service
 *
 * Returns: (transfer full): {mode, accelerator, finding, fix}; accelerator and finding are
 * null before the first decision.
 */
json_object *
svc_accel_to_json(SvcAccel *accel)
{
    json_object *obj = json_object_new_object();
    const DomAccelChoice *c;

    json_object_object_add(obj, "mode",
                           json_object_new_string(dom_accel_mode_to_string(accel->opts.mode)));
    g_mutex_lock(&accel->lock);
    c = accel->choice;
    json_object_object_add(obj, "accelerator", c && c->domain_type
                                                   ? json_object_new_string(c->domain_type)
                                                   : NULL);
    json_object_object_add(obj, "finding", c ? json_object_new_string(c->finding) : NULL);
    json_object_object_add(obj, "fix", c && c->fix ? json_object_new_string(c->fix) : NULL);
    g_mutex_unlock(&accel->lock);
    return obj;
}
