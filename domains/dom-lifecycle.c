// SPDX-License-Identifier: LGPL-2.1-or-later
// Domain lifecycle on libvirt. Every libvirt failure becomes a VMB_ERROR naming the
// domain, the step and libvirt's own message.
#include "dom-lifecycle.h"

#include <stdlib.h>
#include <string.h>

#include "dom-storage.h"
#include "dom-virt.h"
#include "vmb-error.h"

static const char *const state_names[] = {
    [DOM_STATE_RUNNING] = "running",
    [DOM_STATE_PAUSED] = "paused",
    [DOM_STATE_STOPPING] = "stopping",
    [DOM_STATE_SHUTOFF] = "shutoff",
    [DOM_STATE_CRASHED] = "crashed",
    [DOM_STATE_OTHER] = "other",
};
G_STATIC_ASSERT(G_N_ELEMENTS(state_names) == DOM_STATE_LAST);

/* Polling period while waiting for a guest to power off. */
#define STOP_POLL_US (50 * 1000)
/* Screenshots larger than this are refused: a sane PPM of 4K is 25 MiB. */
#define SCREENSHOT_MAX_BYTES (64u << 20)

/**
 * dom_lifecycle_state_to_string:
 * @state: a state
 *
 * Returns: its stable name, NULL out of range.
 */
const char *
dom_lifecycle_state_to_string(DomState state)
{
    if ((unsigned) state >= DOM_STATE_LAST)
        return NULL;
    return state_names[state];
}

/**
 * dom_lifecycle_state_from_string:
 * @s: a state's name
 *
 * Returns: the state, or -1.
 */
int
dom_lifecycle_state_from_string(const char *s)
{
    for (int i = 0; s && i < DOM_STATE_LAST; i++)
        if (strcmp(s, state_names[i]) == 0)
            return i;
    return -1;
}

/**
 * dom_lifecycle_define:
 * @conn: a connection
 * @xml: a domain document (dom_xml_build_string())
 * @error: return location for an error
 *
 * Defines a persistent domain, so that a libvirtd restart never loses it.
 *
 * Returns: (transfer full): the domain, or NULL on error.
 */
virDomainPtr
dom_lifecycle_define(virConnectPtr conn, const char *xml, GError **error)
{
    virDomainPtr dom = virDomainDefineXMLFlags(conn, xml, VIR_DOMAIN_DEFINE_VALIDATE);

    if (!dom) {
        dom_virt_set_error(error, "defining domain");
        return NULL;
    }
    /* The definition written is the one that starts: a memory image an earlier one left
     * (a warm pool's saved guest) would be restored instead, with its old ports. */
    if (virDomainHasManagedSaveImage(dom, 0) > 0 && virDomainManagedSaveRemove(dom, 0) < 0) {
        dom_virt_set_error(error, "dropping the memory image of domain '%s'",
                           virDomainGetName(dom));
        virDomainFree(dom);
        return NULL;
    }
    return dom;
}

/**
 * dom_lifecycle_save:
 * @dom: a running domain
 * @error: return location for an error
 *
 * Saves the guest's memory and devices to libvirt's managed save image and stops it; its
 * next start restores it as it was (dom_handover_saved() edits who it is for first).
 *
 * Returns: true when the domain is stopped with its image saved.
 */
bool
dom_lifecycle_save(virDomainPtr dom, GError **error)
{
    const char *name = virDomainGetName(dom);

    if (virDomainManagedSave(dom, 0) < 0) {
        dom_virt_set_error(error, "saving the memory of domain '%s'", name);
        return false;
    }
    return true;
}

/**
 * dom_lifecycle_lookup:
 * @conn: a connection
 * @name: a domain name
 * @error: return location for an error
 *
 * Returns: (transfer full): the domain, or NULL (not-found when there is none).
 */
virDomainPtr
dom_lifecycle_lookup(virConnectPtr conn, const char *name, GError **error)
{
    virDomainPtr dom = virDomainLookupByName(conn, name);

    if (!dom)
        dom_virt_set_error(error, "looking up domain '%s'", name);
    return dom;
}

/**
 * dom_lifecycle_start:
 * @dom: a defined domain
 * @error: return location for an error
 *
 * Returns: true when the domain was started (conflict when it already runs).
 */
bool
dom_lifecycle_start(virDomainPtr dom, GError **error)
{
    const char *name = virDomainGetName(dom);
    int active = virDomainIsActive(dom);

    /* Drivers disagree on the error code for this; say it the same way for all. */
    if (active > 0) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_CONFLICT, "starting domain '%s': already running",
                    name);
        return false;
    }
    /* libvirt clears its last error on every call: take the name before, not after. */
    if (virDomainCreate(dom) < 0) {
        dom_virt_set_error(error, "starting domain '%s'", name);
        return false;
    }
    return true;
}

/**
 * dom_lifecycle_state:
 * @dom: a domain
 * @ret_state: (out): its state
 * @error: return location for an error
 *
 * Returns: true on success.
 */
bool
dom_lifecycle_state(virDomainPtr dom, DomState *ret_state, GError **error)
{
    const char *name = virDomainGetName(dom);
    int state = 0;
    int reason = 0;

    if (virDomainGetState(dom, &state, &reason, 0) < 0) {
        dom_virt_set_error(error, "reading the state of domain '%s'", name);
        return false;
    }
    switch ((virDomainState) state) {
    case VIR_DOMAIN_RUNNING:
        *ret_state = DOM_STATE_RUNNING;
        break;
    case VIR_DOMAIN_PAUSED:
        *ret_state = DOM_STATE_PAUSED;
        break;
    case VIR_DOMAIN_SHUTDOWN:
        *ret_state = DOM_STATE_STOPPING;
        break;
    case VIR_DOMAIN_SHUTOFF:
        *ret_state = DOM_STATE_SHUTOFF;
        break;
    case VIR_DOMAIN_CRASHED:
        *ret_state = DOM_STATE_CRASHED;
        break;
    case VIR_DOMAIN_NOSTATE:
    case VIR_DOMAIN_BLOCKED:
    case VIR_DOMAIN_PMSUSPENDED:
    default:
        *ret_state = DOM_STATE_OTHER;
        break;
    }
    return true;
}

/**
 * dom_lifecycle_list_names:
 * @conn: a connection
 * @prefix: a name prefix, "" for all
 * @error: return location for an error
 *
 * Returns: (transfer full) (element-type utf8): the names, or NULL on error.
 */
GPtrArray *
dom_lifecycle_list_names(virConnectPtr conn, const char *prefix, GError **error)
{
    virDomainPtr *doms = NULL;
    int n = virConnectListAllDomains(conn, &doms, 0);
    GPtrArray *names;

    if (n < 0) {
        dom_virt_set_error(error, "listing domains");
        return NULL;
    }
    names = g_ptr_array_new_with_free_func(g_free);
    for (int i = 0; i < n; i++) {
        const char *name = virDomainGetName(doms[i]);
        if (name && g_str_has_prefix(name, prefix))
            g_ptr_array_add(names, g_strdup(name));
        virDomainFree(doms[i]);
    }
    free(doms);
    return names;
}

static const char *const pause_names[] = {
    [DOM_PAUSE_UNKNOWN] = "unknown",
    [DOM_PAUSE_USER] = "user",
    [DOM_PAUSE_IOERROR] = "io-error",
    [DOM_PAUSE_WATCHDOG] = "watchdog",
    [DOM_PAUSE_CRASHED] = "crashed",
    [DOM_PAUSE_MIGRATION] = "migration",
    [DOM_PAUSE_MIGRATION_FAILED] = "migration-failed",
    [DOM_PAUSE_SAVE] = "save",
    [DOM_PAUSE_SNAPSHOT] = "snapshot",
    [DOM_PAUSE_SHUTTING_DOWN] = "shutting-down",
    [DOM_PAUSE_STARTING_UP] = "starting-up",
};
G_STATIC_ASSERT(G_N_ELEMENTS(pause_names) == DOM_PAUSE_LAST);

/**
 * dom_lifecycle_pause_cause_to_string:
 * @cause: a pause cause
 *
 * Returns: its stable name, NULL out of range.
 */
const char *
dom_lifecycle_pause_cause_to_string(DomPauseCause cause)
{
    if ((unsigned) cause >= DOM_PAUSE_LAST)
        return NULL;
    return pause_names[cause];
}

/* libvirt's VIR_DOMAIN_PAUSED_* reason as a DomPauseCause. */
static DomPauseCause
pause_cause(int reason)
{
    switch (reason) {
    case VIR_DOMAIN_PAUSED_USER: return DOM_PAUSE_USER;
    case VIR_DOMAIN_PAUSED_IOERROR: return DOM_PAUSE_IOERROR;
    case VIR_DOMAIN_PAUSED_WATCHDOG: return DOM_PAUSE_WATCHDOG;
    case VIR_DOMAIN_PAUSED_CRASHED: return DOM_PAUSE_CRASHED;
    case VIR_DOMAIN_PAUSED_MIGRATION: return DOM_PAUSE_MIGRATION;
    case VIR_DOMAIN_PAUSED_POSTCOPY: return DOM_PAUSE_MIGRATION;
    case VIR_DOMAIN_PAUSED_POSTCOPY_FAILED: return DOM_PAUSE_MIGRATION_FAILED;
    case VIR_DOMAIN_PAUSED_SAVE: return DOM_PAUSE_SAVE;
    case VIR_DOMAIN_PAUSED_DUMP: return DOM_PAUSE_SAVE;
    case VIR_DOMAIN_PAUSED_SNAPSHOT: return DOM_PAUSE_SAVE;
    case VIR_DOMAIN_PAUSED_FROM_SNAPSHOT: return DOM_PAUSE_SNAPSHOT;
    case VIR_DOMAIN_PAUSED_SHUTTING_DOWN: return DOM_PAUSE_SHUTTING_DOWN;
    case VIR_DOMAIN_PAUSED_STARTING_UP: return DOM_PAUSE_STARTING_UP;
    default: return DOM_PAUSE_UNKNOWN;
    }
}

/* libvirt's VIR_DOMAIN_SHUTOFF_* reason as a DomStopCause. */
static DomStopCause
stop_cause(int reason)
{
    switch (reason) {
    case VIR_DOMAIN_SHUTOFF_SHUTDOWN: return DOM_STOP_SHUTDOWN;
    case VIR_DOMAIN_SHUTOFF_DESTROYED: return DOM_STOP_DESTROYED;
    case VIR_DOMAIN_SHUTOFF_CRASHED: return DOM_STOP_CRASHED;
    case VIR_DOMAIN_SHUTOFF_FAILED: return DOM_STOP_FAILED;
    default: return DOM_STOP_UNKNOWN;
    }
}

/**
 * dom_lifecycle_run_state:
 * @dom: a domain
 * @ret_state: (out): whether it runs, whether it is paused and why, or why it stopped;
 *   untouched on failure
 * @error: return location for an error
 *
 * A crashed domain that libvirt keeps (on_crash=preserve) counts as not running: its
 * guest does nothing, and destroying it is all that is left to do. A paused domain runs:
 * QEMU holds its memory and ports until it is destroyed.
 *
 * Returns: true on success.
 */
bool
dom_lifecycle_run_state(virDomainPtr dom, DomRunState *ret_state, GError **error)
{
    int state = 0, reason = 0;
    DomRunState st = { .stop = DOM_STOP_UNKNOWN, .pause = DOM_PAUSE_UNKNOWN };

    if (virDomainGetState(dom, &state, &reason, 0) < 0) {
        dom_virt_set_error(error, "reading the state of domain '%s'", virDomainGetName(dom));
        return false;
    }
    st.running = state != VIR_DOMAIN_SHUTOFF && state != VIR_DOMAIN_CRASHED;
    if (state == VIR_DOMAIN_CRASHED)
        st.stop = DOM_STOP_CRASHED;
    else if (state == VIR_DOMAIN_SHUTOFF)
        st.stop = stop_cause(reason);
    else if (state == VIR_DOMAIN_PAUSED) {
        st.paused = true;
        st.pause = pause_cause(reason);
    }
    *ret_state = st;
    return true;
}

/**
 * dom_lifecycle_is_running:
 * @dom: a domain
 * @ret_running: (out): false when shut off or crashed
 * @ret_cause: (out) (optional): when not running, libvirt's recorded cause
 * @error: return location for an error
 *
 * See dom_lifecycle_run_state(), of which this is the part most callers need.
 *
 * Returns: true on success.
 */
bool
dom_lifecycle_is_running(virDomainPtr dom, bool *ret_running, DomStopCause *ret_cause,
                         GError **error)
{
    DomRunState st;

    if (!dom_lifecycle_run_state(dom, &st, error))
        return false;
    *ret_running = st.running;
    if (ret_cause)
        *ret_cause = st.stop;
    return true;
}

/**
 * dom_lifecycle_destroy:
 * @dom: a domain
 * @error: return location for an error
 *
 * Powers the domain off at once. A domain that is not running is left alone, so that
 * the call can be retried.
 *
 * Returns: true when the domain is not running afterwards.
 */
bool
dom_lifecycle_destroy(virDomainPtr dom, GError **error)
{
    const char *name = virDomainGetName(dom);
    int active = virDomainIsActive(dom);

    if (active < 0) {
        dom_virt_set_error(error, "querying domain '%s'", name);
        return false;
    }
    if (!active)
        return true;
    if (virDomainDestroy(dom) < 0) {
        g_autoptr(GError) local = NULL;

        dom_virt_set_error(&local, "destroying domain '%s'", name);
        /* It may have stopped between the two calls. */
        if (virDomainIsActive(dom) == 0)
            return true;
        g_propagate_error(error, g_steal_pointer(&local));
        return false;
    }
    return true;
}

/**
 * dom_lifecycle_reboot:
 * @dom: a running domain
 * @error: return location for an error
 *
 * Asks the guest to reboot (ACPI); a guest without ACPI is reset like a reset button.
 *
 * Returns: true when the reboot was requested or done.
 */
bool
dom_lifecycle_reboot(virDomainPtr dom, GError **error)
{
    const char *name = virDomainGetName(dom);

    if (virDomainIsActive(dom) != 1) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_CONFLICT, "domain '%s' is not running", name);
        return false;
    }
    if (virDomainReboot(dom, VIR_DOMAIN_REBOOT_ACPI_POWER_BTN) == 0)
        return true;
    if (virDomainReset(dom, 0) < 0) {
        dom_virt_set_error(error, "resetting domain '%s'", name);
        return false;
    }
    return true;
}

/**
 * dom_lifecycle_vnc_password:
 * @dom: a domain
 * @error: return location for an error
 *
 * The password is kept only in libvirt's definition, which shows it to privileged
 * connections asking for the secure XML; vmbroker stores no copy.
 *
 * Returns: (transfer full): the VNC password, or NULL (VMB_ERROR_NOT_FOUND when none).
 */
char *
dom_lifecycle_vnc_password(virDomainPtr dom, GError **error)
{
    g_autofree char *xml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_SECURE);
    g_autoptr(xmlDoc) doc = NULL;
    char *password;

    if (!xml) {
        dom_virt_set_error(error, "reading the definition of domain '%s'", virDomainGetName(dom));
        return NULL;
    }
    doc = dom_virt_parse_xml(xml, "domain XML", error);
    if (!doc)
        return NULL;
    password = dom_virt_xpath_string(doc, "/domain/devices/graphics[@type='vnc']/@passwd");
    if (!password) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_NOT_FOUND, "domain '%s' has no VNC password",
                    virDomainGetName(dom));
        return NULL;
    }
    return password;
}

/* Whether waiting for an active domain to power off can help: not when its CPUs are paused
 * or it crashed. A state that cannot be read says nothing: keep waiting. */
static bool
stop_would_wait(virDomainPtr dom)
{
    DomRunState st;

    return !dom_lifecycle_run_state(dom, &st, NULL) || (st.running && !st.paused);
}

/**
 * dom_lifecycle_stop:
 * @dom: a domain
 * @timeout_ms: how long the guest may take to power off after the ACPI request
 * @ret_forced: (out) (optional): whether the guest had to be destroyed
 * @error: return location for an error
 *
 * Gracefully stops the domain: presses the ACPI power button, waits up to @timeout_ms
 * for the guest to power off, then destroys it. A guest that ignores ACPI (or has none)
 * is therefore stopped too. A paused guest (or one that pauses meanwhile, or a crashed
 * one libvirt kept) cannot see the button: it is destroyed at once. A domain that is not
 * running is left alone.
 *
 * Returns: true when the domain is shut off afterwards.
 */
bool
dom_lifecycle_stop(virDomainPtr dom, guint timeout_ms, bool *ret_forced, GError **error)
{
    const char *name = virDomainGetName(dom);
    gint64 deadline = g_get_monotonic_time() + (gint64) timeout_ms * 1000;
    int active = virDomainIsActive(dom);

    if (active < 0) {
        dom_virt_set_error(error, "querying domain '%s'", name);
        return false;
    }
    if (!active) {
        if (ret_forced)
            *ret_forced = false;
        return true;
    }
    if (!stop_would_wait(dom))
        deadline = 0;
    /* A refused request (the guest has no ACPI, or it just went away) is not fatal: the
     * destroy below still stops it. */
    if (deadline && virDomainShutdownFlags(dom, VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN) < 0) {
        int code = virGetLastErrorCode();
        /* Drivers without a choice of method (libvirt's test driver) take the default. */
        if (code == VIR_ERR_INVALID_ARG || code == VIR_ERR_NO_SUPPORT ||
            code == VIR_ERR_ARGUMENT_UNSUPPORTED)
            virDomainShutdownFlags(dom, 0);
    }
    for (;;) {
        active = virDomainIsActive(dom);
        if (active < 0) {
            dom_virt_set_error(error, "querying domain '%s'", name);
            return false;
        }
        if (!active) {
            if (ret_forced)
                *ret_forced = false;
            return true;
        }
        if (g_get_monotonic_time() >= deadline || !stop_would_wait(dom))
            break;
        g_usleep(STOP_POLL_US);
    }
    if (!dom_lifecycle_destroy(dom, error))
        return false;
    if (ret_forced)
        *ret_forced = true;
    return true;
}

/**
 * dom_lifecycle_metadata:
 * @dom: a domain
 * @error: return location for an error
 *
 * Returns: (transfer full): vmbroker's metadata of @dom, or NULL (not-found when the
 * domain carries none: it is not vmbroker's).
 */
DomMetadata *
dom_lifecycle_metadata(virDomainPtr dom, GError **error)
{
    const char *name = virDomainGetName(dom);
    g_autofree char *xml = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT,
                                                DOM_XML_NS_URI, VIR_DOMAIN_AFFECT_CONFIG);

    if (!xml) {
        if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN_METADATA) {
            g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_NOT_FOUND,
                        "domain '%s' carries no vmbroker metadata", name);
            return NULL;
        }
        dom_virt_set_error(error, "reading vmbroker metadata of domain '%s'", name);
        return NULL;
    }
    return dom_xml_parse_metadata(xml, error);
}

/**
 * dom_lifecycle_undefine:
 * @dom: a domain that is not running
 * @delete_ephemeral: also delete the volumes its metadata lists as ephemeral
 * @error: return location for an error
 *
 * Removes the domain's definition together with its managed save image, snapshot and
 * checkpoint metadata and NVRAM, then (when asked) its ephemeral volumes. A running
 * domain is refused (conflict): stop or destroy it first.
 *
 * Returns: true on success.
 */
bool
dom_lifecycle_undefine(virDomainPtr dom, bool delete_ephemeral, GError **error)
{
    const char *name = virDomainGetName(dom);
    virConnectPtr conn = virDomainGetConnect(dom);
    g_autoptr(DomMetadata) md = NULL;
    int active = virDomainIsActive(dom);
    unsigned int flags = VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
                         VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
                         VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA | VIR_DOMAIN_UNDEFINE_NVRAM;

    if (active < 0) {
        dom_virt_set_error(error, "querying domain '%s'", name);
        return false;
    }
    if (active) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_CONFLICT,
                    "domain '%s' is running: stop or destroy it before undefining it", name);
        return false;
    }
    if (delete_ephemeral) {
        g_autoptr(GError) local = NULL;
        md = dom_lifecycle_metadata(dom, &local);
        /* A domain without our metadata has no volumes of ours to delete. */
        if (!md && vmb_error_kind(local) != VMB_ERROR_NOT_FOUND) {
            g_propagate_error(error, g_steal_pointer(&local));
            return false;
        }
    }
    if (virDomainUndefineFlags(dom, flags) < 0) {
        /* A driver without NVRAM or checkpoints (libvirt's test driver) refuses those
         * flags; it has nothing of the kind to remove either. */
        if (virGetLastErrorCode() != VIR_ERR_INVALID_ARG ||
            virDomainUndefineFlags(dom, flags & (VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
                                                 VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)) < 0) {
            dom_virt_set_error(error, "undefining domain '%s'", name);
            return false;
        }
    }
    for (char **v = md ? md->ephemeral_volumes : NULL; v && *v; v++)
        if (!dom_storage_delete_path(conn, *v, error))
            return false;
    return true;
}

/**
 * dom_lifecycle_screenshot:
 * @dom: a running domain
 * @ret_mime: (out) (optional): the image's MIME type, as the hypervisor reports it
 * @error: return location for an error
 *
 * Takes a screenshot of the first screen.
 *
 * Returns: (transfer full): the image bytes, or NULL on error.
 */
GBytes *
dom_lifecycle_screenshot(virDomainPtr dom, char **ret_mime, GError **error)
{
    const char *name = virDomainGetName(dom);
    virConnectPtr conn = virDomainGetConnect(dom);
    g_autoptr(virStream) st = virStreamNew(conn, 0);
    g_autoptr(GByteArray) data = g_byte_array_new();
    g_autofree char *mime = NULL;
    g_autofree char *chunk = g_malloc(64 * 1024);

    if (!st) {
        dom_virt_set_error(error, "opening a stream for a screenshot of domain '%s'", name);
        return NULL;
    }
    mime = virDomainScreenshot(dom, st, 0, 0);
    if (!mime) {
        dom_virt_set_error(error, "taking a screenshot of domain '%s'", name);
        return NULL;
    }
    for (;;) {
        int n = virStreamRecv(st, chunk, 64 * 1024);
        if (n == 0)
            break;
        if (n < 0 || data->len + (guint) n > SCREENSHOT_MAX_BYTES) {
            if (n < 0)
                dom_virt_set_error(error, "receiving the screenshot of domain '%s'", name);
            else
                g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_TOO_LARGE,
                            "screenshot of domain '%s' exceeds %u bytes", name,
                            SCREENSHOT_MAX_BYTES);
            virStreamAbort(st);
            return NULL;
        }
        g_byte_array_append(data, (const guint8 *) chunk, (guint) n);
    }
    if (virStreamFinish(st) < 0) {
        dom_virt_set_error(error, "finishing the screenshot of domain '%s'", name);
        return NULL;
    }
    if (ret_mime)
        *ret_mime = g_steal_pointer(&mime);
    return g_byte_array_free_to_bytes(g_steal_pointer(&data));
}
