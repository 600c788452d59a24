// SPDX-License-Identifier: LGPL-2.1-or-later
// The reconciler's words: libvirt's events, stop causes and pause causes as a VM's
// state_reason says them to users.
#include "svc-sync-words.h"

const char *
svc_sync_event_name(int event)
{
    switch (event) {
    case VIR_DOMAIN_EVENT_DEFINED: return "defined";
    case VIR_DOMAIN_EVENT_UNDEFINED: return "undefined";
    case VIR_DOMAIN_EVENT_STARTED: return "started";
    case VIR_DOMAIN_EVENT_SUSPENDED: return "suspended";
    case VIR_DOMAIN_EVENT_RESUMED: return "resumed";
    case VIR_DOMAIN_EVENT_STOPPED: return "stopped";
    case VIR_DOMAIN_EVENT_SHUTDOWN: return "shutdown";
    case VIR_DOMAIN_EVENT_PMSUSPENDED: return "pmsuspended";
    case VIR_DOMAIN_EVENT_CRASHED: return "crashed";
    default: return "other";
    }
}

/* Why a VM stopped, as its state_reason says, from the event that told us. */
const char *
svc_sync_event_reason(int event, int detail)
{
    if (event == VIR_DOMAIN_EVENT_UNDEFINED)
        return "domain undefined outside vmbroker";
    if (event == VIR_DOMAIN_EVENT_CRASHED)
        return "crashed";
    if (event != VIR_DOMAIN_EVENT_STOPPED)
        return NULL;
    switch (detail) {
    case VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN: return "the guest powered off";
    case VIR_DOMAIN_EVENT_STOPPED_DESTROYED: return "destroyed outside vmbroker";
    case VIR_DOMAIN_EVENT_STOPPED_CRASHED: return "crashed";
    case VIR_DOMAIN_EVENT_STOPPED_FAILED: return "crashed";
    default: return "stopped outside vmbroker";
    }
}

/* Why a VM stopped, from libvirt's record of the domain (the same words as the events'). */
const char *
svc_sync_cause_reason(DomStopCause cause)
{
    switch (cause) {
    case DOM_STOP_SHUTDOWN: return "the guest powered off";
    case DOM_STOP_DESTROYED: return "destroyed outside vmbroker";
    case DOM_STOP_CRASHED: return "crashed";
    case DOM_STOP_FAILED: return "crashed";
    case DOM_STOP_UNKNOWN: break;
    }
    return "shut off outside vmbroker";
}

/* Why a VM is paused, as its state_reason says: libvirt's reason in plain words. */
static const char *const pause_words[] = {
    [DOM_PAUSE_UNKNOWN] = "paused by libvirt: internal error (QEMU stopped the guest without "
                          "a reason, as on a KVM emulation failure)",
    [DOM_PAUSE_USER] = "paused outside vmbroker (virsh suspend)",
    [DOM_PAUSE_IOERROR] = "paused by libvirt: I/O error",
    [DOM_PAUSE_WATCHDOG] = "paused by libvirt: the guest's watchdog fired",
    [DOM_PAUSE_CRASHED] = "paused by libvirt: the guest crashed",
    [DOM_PAUSE_MIGRATION] = "paused for a migration",
    [DOM_PAUSE_MIGRATION_FAILED] = "paused by libvirt: a migration failed",
    [DOM_PAUSE_SAVE] = "paused outside vmbroker (save, dump or snapshot)",
    [DOM_PAUSE_SNAPSHOT] = "paused outside vmbroker (restored from a paused snapshot)",
    [DOM_PAUSE_SHUTTING_DOWN] = "paused while shutting down",
    [DOM_PAUSE_STARTING_UP] = "paused while starting",
};
G_STATIC_ASSERT(G_N_ELEMENTS(pause_words) == DOM_PAUSE_LAST);

const char *
svc_sync_pause_reason(DomPauseCause cause)
{
    return pause_words[(unsigned) cause < DOM_PAUSE_LAST ? cause : DOM_PAUSE_UNKNOWN];
}
