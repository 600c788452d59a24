// SPDX-License-Identifier: LGPL-2.1-or-later
// The accelerator probe. vmbroker writes a one-sector boot disk of its own (no download),
// starts it as a transient domain under KVM, and watches: the guest switches from real mode
// straight to 64-bit long mode and then stores a magic quadword at physical address 0x500,
// which the broker reads with virDomainMemoryPeek. The quadword is built from two 32-bit
// halves with 64-bit instructions, so it exists in memory only if long mode really ran.
// A start that fails (QEMU may not open /dev/kvm), a domain that KVM pauses (an internal
// error, as a nested KVM gives on entering 64-bit mode), or silence past the bound all
// mean: not KVM.
#include "dom-accel.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dom-virt.h"

#define X(s) ((const xmlChar *) (s))
/* Where the probe stores its magic, and the magic: "VMBLP64!" in memory order. */
#define PROBE_ADDR 0x500
#define PROBE_MAGIC "VMBLP64!"
#define PROBE_POLL_MS 20
#define PROBE_DISK_BYTES (1024 * 1024)
#define PROBE_MEMORY_MIB 32

const char *const dom_accel_mode_names[DOM_ACCEL_MODE_LAST + 1] = {
    [DOM_ACCEL_AUTO] = "auto",
    [DOM_ACCEL_KVM] = "kvm",
    [DOM_ACCEL_QEMU] = "qemu",
    [DOM_ACCEL_MODE_LAST] = NULL,
};

/* The boot sector, loaded by the BIOS at 0x7c00 (assembled once by hand; the comments are
 * the source). Page tables at 0x1000-0x3fff identity-map the first 2 MiB with one large
 * page; the GDT holds one 64-bit code segment. */
static const unsigned char probe_sector[] = {
    0xfa,                                     /* 7c00 cli */
    0xea, 0x06, 0x7c, 0x00, 0x00,             /*      ljmp $0,$7c06: CS = 0 */
    0x31, 0xc0,                               /*      xor %ax,%ax */
    0x8e, 0xd8, 0x8e, 0xc0, 0x8e, 0xd0,       /*      mov %ax,%ds; %es; %ss */
    0xbc, 0x00, 0x7c,                         /*      mov $0x7c00,%sp */
    0xbf, 0x00, 0x10,                         /*      mov $0x1000,%di */
    0xb9, 0x00, 0x18,                         /*      mov $0x1800,%cx */
    0xf3, 0xab,                               /*      rep stosw: zero 0x1000-0x3fff */
    0x66, 0xc7, 0x06, 0x00, 0x10, 0x03, 0x20, 0x00, 0x00, /* PML4[0] = 0x2003 */
    0x66, 0xc7, 0x06, 0x00, 0x20, 0x03, 0x30, 0x00, 0x00, /* PDPT[0] = 0x3003 */
    0x66, 0xc7, 0x06, 0x00, 0x30, 0x83, 0x00, 0x00, 0x00, /* PD[0] = 0x83: 2 MiB page */
    0x66, 0x0f, 0x01, 0x16, 0xa0, 0x7c,       /*      lgdtl 0x7ca0 */
    0x0f, 0x20, 0xe0,                         /*      mov %cr4,%eax */
    0x66, 0x83, 0xc8, 0x20,                   /*      or $0x20,%eax: PAE */
    0x0f, 0x22, 0xe0,                         /*      mov %eax,%cr4 */
    0x66, 0xb8, 0x00, 0x10, 0x00, 0x00,       /*      mov $0x1000,%eax */
    0x0f, 0x22, 0xd8,                         /*      mov %eax,%cr3 */
    0x66, 0xb9, 0x80, 0x00, 0x00, 0xc0,       /*      mov $0xc0000080,%ecx: EFER */
    0x0f, 0x32,                               /*      rdmsr */
    0x66, 0x0d, 0x00, 0x01, 0x00, 0x00,       /*      or $0x100,%eax: LME */
    0x0f, 0x30,                               /*      wrmsr */
    0x0f, 0x20, 0xc0,                         /*      mov %cr0,%eax */
    0x66, 0x0d, 0x01, 0x00, 0x00, 0x80,       /*      or $0x80000001,%eax: PG, PE */
    0x0f, 0x22, 0xc0,                         /*      mov %eax,%cr0 */
    0x66, 0xea, 0x71, 0x7c, 0x00, 0x00, 0x08, 0x00, /* ljmpl $8,$7c71: into 64-bit code */
    0xb8, 0x56, 0x4d, 0x42, 0x4c,             /* 7c71 mov $0x4c424d56,%eax: "VMBL" */
    0xba, 0x50, 0x36, 0x34, 0x21,             /*      mov $0x21343650,%edx: "P64!" */
    0x48, 0xc1, 0xe2, 0x20,                   /*      shl $32,%rdx */
    0x48, 0x09, 0xd0,                         /*      or %rdx,%rax */
    0x48, 0x89, 0x04, 0x25, 0x00, 0x05, 0x00, 0x00, /* mov %rax,0x500 */
    0xfa, 0xf4, 0xeb, 0xfc,                   /* 7c8a cli; hlt; jmp 7c8a */
    0x66, 0x90,                               /*      padding */
    0, 0, 0, 0, 0, 0, 0, 0,                   /* 7c90 GDT: null descriptor */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x9a, 0x20, 0x00, /* selector 8: 64-bit code, DPL 0 */
    0x0f, 0x00, 0x90, 0x7c, 0x00, 0x00,       /* 7ca0 GDTR: limit 15, base 0x7c90 */
};
G_STATIC_ASSERT(sizeof(probe_sector) == 0xa6);

/**
 * dom_accel_mode_to_string:
 * @mode: a mode
 *
 * Returns: its config spelling.
 */
const char *
dom_accel_mode_to_string(DomAccelMode mode)
{
    g_return_val_if_fail(mode < DOM_ACCEL_MODE_LAST, NULL);
    return dom_accel_mode_names[mode];
}

/**
 * dom_accel_mode_from_string:
 * @s: "auto", "kvm" or "qemu"
 *
 * Returns: the mode, or -1 for anything else.
 */
int
dom_accel_mode_from_string(const char *s)
{
    for (int m = 0; s && m < DOM_ACCEL_MODE_LAST; m++)
        if (strcmp(s, dom_accel_mode_names[m]) == 0)
            return m;
    return -1;
}

/**
 * dom_accel_choice_free:
 * @choice: (nullable): a choice
 */
void
dom_accel_choice_free(DomAccelChoice *choice)
{
    if (!choice)
        return;
    g_free(choice->domain_type);
    g_free(choice->finding);
    g_free(choice->fix);
    g_free(choice->detail);
    g_free(choice);
}

/**
 * dom_accel_write_image:
 * @path: where to write
 * @error: return location for an error
 *
 * Writes the probe's boot disk: the boot sector and zeros up to 1 MiB (sparse), mode 0644.
 *
 * Returns: true on success.
 */
bool
dom_accel_write_image(const char *path, GError **error)
{
    unsigned char sector[512] = { 0 };
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    bool ok;

    if (fd < 0) {
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_INTERNAL, "writing the KVM probe disk %s: %s",
                    path, g_strerror(errno));
        return false;
    }
    memcpy(sector, probe_sector, sizeof(probe_sector));
    sector[510] = 0x55;
    sector[511] = 0xaa;
    ok = write(fd, sector, sizeof(sector)) == (ssize_t) sizeof(sector) &&
         ftruncate(fd, PROBE_DISK_BYTES) == 0 && fchmod(fd, 0644) == 0;
    if (!ok)
        g_set_error(error, VMB_ERROR_PRIVATE, VMB_ERROR_INTERNAL, "writing the KVM probe disk %s: %s",
                    path, g_strerror(errno));
    close(fd);
    return ok;
}

/* The probe's domain: 32 MiB, one vCPU, the boot disk, no display, gone when it stops. */
static char *
probe_xml(const char *domain_type, const DomAccelProbe *probe)
{
    g_autoptr(xmlDoc) doc = xmlNewDoc(X("1.0"));
    g_autoptr(xmlBuffer) buf = xmlBufferCreate();
    xmlNode *dom = xmlNewNode(NULL, X("domain"));
    xmlNode *os, *devices, *disk, *n;
    char mem[16];

    xmlDocSetRootElement(doc, dom);
    xmlNewProp(dom, X("type"), X(domain_type));
    xmlNewTextChild(dom, NULL, X("name"), X(probe->probe_name));
    xmlNewTextChild(dom, NULL, X("title"), X("vmbroker accelerator probe"));
    g_snprintf(mem, sizeof(mem), "%d", PROBE_MEMORY_MIB);
    xmlNewProp(xmlNewTextChild(dom, NULL, X("memory"), X(mem)), X("unit"), X("MiB"));
    xmlNewTextChild(dom, NULL, X("vcpu"), X("1"));
    os = xmlNewChild(dom, NULL, X("os"), NULL);
    n = xmlNewTextChild(os, NULL, X("type"), X("hvm"));
    xmlNewProp(n, X("arch"), X("x86_64"));
    xmlNewProp(xmlNewChild(os, NULL, X("boot"), NULL), X("dev"), X("hd"));
    xmlNewTextChild(dom, NULL, X("on_poweroff"), X("destroy"));
    xmlNewTextChild(dom, NULL, X("on_reboot"), X("destroy"));
    xmlNewTextChild(dom, NULL, X("on_crash"), X("destroy"));
    devices = xmlNewChild(dom, NULL, X("devices"), NULL);
    disk = xmlNewChild(devices, NULL, X("disk"), NULL);
    xmlNewProp(disk, X("type"), X("file"));
    xmlNewProp(disk, X("device"), X("disk"));
    n = xmlNewChild(disk, NULL, X("driver"), NULL);
    xmlNewProp(n, X("name"), X("qemu"));
    xmlNewProp(n, X("type"), X("raw"));
    xmlNewProp(xmlNewChild(disk, NULL, X("source"), NULL), X("file"), X(probe->image_path));
    n = xmlNewChild(disk, NULL, X("target"), NULL);
    xmlNewProp(n, X("dev"), X("hda"));
    xmlNewProp(n, X("bus"), X("ide"));
    xmlNewProp(xmlNewChild(devices, NULL, X("memballoon"), NULL), X("model"), X("none"));
    xmlNodeDump(buf, doc, dom, 0, 0);
    return g_strdup((const char *) xmlBufferContent(buf));
}

/* Words for a start that failed under KVM, and the fix where one is known. */
static void
explain_start_failure(const char *message, DomAccelChoice *result)
{
    struct stat st;

    if (strstr(message, "Permission denied") && stat("/dev/kvm", &st) == 0) {
        result->finding = g_strdup_printf("QEMU may not open /dev/kvm (mode %04o)",
                                          st.st_mode & 07777);
        result->fix = g_strdup("/dev/kvm is not usable by libvirt-qemu: give it group kvm, "
                               "mode 0660 (chgrp kvm /dev/kvm; chmod 0660 /dev/kvm), as udev "
                               "does on Debian");
    } else {
        result->finding = g_strdup("the probe guest could not start under KVM");
        result->fix = g_strdup("see the log line with libvirt's message, or set "
                               "libvirt.domain_type = qemu");
    }
}

/* One look at the running probe: true once it has decided, with result->domain_type set
 * for a pass. */
static bool
probe_look(virDomainPtr dom, const char *domain_type, DomAccelChoice *result)
{
    char seen[sizeof(PROBE_MAGIC) - 1];
    int state = 0, reason = 0;

    if (virDomainGetState(dom, &state, &reason, 0) < 0) {
        result->finding = g_strdup("the probe guest's state could not be read");
        result->detail = g_strdup(virGetLastErrorMessage());
        return true;
    }
    if (state == VIR_DOMAIN_PAUSED) {
        result->finding = g_strdup("KVM stopped the probe guest as it entered 64-bit mode "
                                   "(a KVM internal error, as a nested KVM that cannot run "
                                   "64-bit guests gives)");
        result->fix = g_strdup("enable working nested virtualization on this host, or set "
                               "libvirt.domain_type = qemu");
        return true;
    }
    if (state != VIR_DOMAIN_RUNNING) {
        result->finding = g_strdup("the probe guest stopped under KVM before reaching 64-bit "
                                   "mode");
        return true;
    }
    if (virDomainMemoryPeek(dom, PROBE_ADDR, sizeof(seen), seen, VIR_MEMORY_PHYSICAL) == 0 &&
        memcmp(seen, PROBE_MAGIC, sizeof(seen)) == 0) {
        result->domain_type = g_strdup(domain_type);
        return true;
    }
    return false;
}

/**
 * dom_accel_run_probe:
 * @conn: a connection
 * @domain_type: the domain type to try, "kvm" (or "qemu", to check the probe itself)
 * @probe: names, paths and the bound
 * @result: (out caller-allocates): on a pass, domain_type and probe_ms are set; on a
 *   failure finding (and fix, detail where known)
 *
 * Writes the boot disk, runs the probe guest under @domain_type for at most
 * @probe->timeout_ms, destroys it and removes the disk. The guest is started with
 * VIR_DOMAIN_START_AUTODESTROY, so it goes away with the connection if the caller dies.
 *
 * Returns: true when the guest reached 64-bit mode.
 */
bool
dom_accel_run_probe(virConnectPtr conn, const char *domain_type, const DomAccelProbe *probe,
                    DomAccelChoice *result)
{
    g_autofree char *xml = probe_xml(domain_type, probe);
    g_autoptr(virDomain) dom = NULL;
    g_autoptr(GError) err = NULL;
    gint64 start = g_get_monotonic_time();
    gint64 deadline = start + (gint64) probe->timeout_ms * 1000;

    if (!dom_accel_write_image(probe->image_path, &err)) {
        result->finding = g_strdup("the probe's boot disk could not be written");
        result->detail = g_strdup(err->message);
        return false;
    }
    dom = virDomainCreateXML(conn, xml, VIR_DOMAIN_START_AUTODESTROY);
    if (!dom) {
        result->detail = g_strdup(virGetLastErrorMessage());
        explain_start_failure(result->detail, result);
    }
    while (dom && !probe_look(dom, domain_type, result)) {
        if (g_get_monotonic_time() >= deadline) {
            result->finding = g_strdup_printf("the probe guest did not reach 64-bit mode under "
                                              "%s within %u ms", domain_type,
                                              probe->timeout_ms);
            break;
        }
        g_usleep(PROBE_POLL_MS * 1000);
    }
    if (result->domain_type)
        result->probe_ms = (guint) ((g_get_monotonic_time() - start) / 1000);
    if (dom)
        virDomainDestroy(dom);
    unlink(probe->image_path);
    return result->domain_type != NULL;
}

/* Whether the host's capabilities offer @type for hvm guests. */
static bool
offers(xmlDoc *caps, const char *type)
{
    g_autofree char *expr = g_strdup_printf(
        "/capabilities/guest[os_type='hvm']/arch/domain[@type='%s']/@type", type);
    g_autofree char *found = dom_virt_xpath_string(caps, expr);

    return found != NULL;
}

/* The choice when KVM is not to be had: TCG, unless KVM was demanded. */
static DomAccelChoice *
without_kvm(const DomAccelProbe *probe, DomAccelChoice *c)
{
    if (probe->mode != DOM_ACCEL_KVM)
        c->domain_type = g_strdup("qemu");
    return c;
}

/**
 * dom_accel_choose:
 * @conn: a connection
 * @probe: the mode and how to probe
 *
 * Decides the domain type for new guests on this host. `qemu` mode needs no probe; `auto`
 * and `kvm` run the probe guest when libvirt offers `kvm`. A driver that offers neither
 * (libvirt's test driver) gets its first domain type.
 *
 * Returns: (transfer full): the choice; domain_type is NULL only when KVM was demanded and
 * is unusable, or the capabilities could not be read.
 */
DomAccelChoice *
dom_accel_choose(virConnectPtr conn, const DomAccelProbe *probe)
{
    g_autoptr(DomAccelChoice) c = g_new0(DomAccelChoice, 1);
    g_autofree char *caps_xml = virConnectGetCapabilities(conn);
    g_autoptr(xmlDoc) caps = NULL;
    g_autoptr(GError) err = NULL;

    if (caps_xml)
        caps = dom_virt_parse_xml(caps_xml, "the host's capabilities", &err);
    if (!caps) {
        c->finding = g_strdup("the host's capabilities could not be read");
        c->detail = g_strdup(err ? err->message : virGetLastErrorMessage());
        return g_steal_pointer(&c);
    }
    if (!offers(caps, "kvm") && !offers(caps, "qemu")) {
        c->domain_type = dom_virt_host_domain_type(conn, NULL);
        c->finding = g_strdup("this libvirt driver runs no QEMU guests");
        return g_steal_pointer(&c);
    }
    if (probe->mode == DOM_ACCEL_QEMU) {
        c->domain_type = g_strdup("qemu");
        c->finding = g_strdup("libvirt.domain_type = qemu: TCG, as configured");
        return g_steal_pointer(&c);
    }
    if (!offers(caps, "kvm")) {
        c->finding = g_strdup("libvirt offers no KVM on this host (no usable /dev/kvm)");
        c->fix = g_strdup("load the kvm module and enable virtualization in the firmware, "
                          "or set libvirt.domain_type = qemu");
        return without_kvm(probe, g_steal_pointer(&c));
    }
    if (dom_accel_run_probe(conn, "kvm", probe, c)) {
        c->finding = g_strdup_printf("a probe guest reached 64-bit mode under KVM in %u ms",
                                     c->probe_ms);
        return g_steal_pointer(&c);
    }
    return without_kvm(probe, g_steal_pointer(&c));
}

/**
 * dom_accel_is_kvm_failure:
 * @message: (nullable): libvirt's message for a failed domain start
 *
 * Returns: whether it names KVM as the cause (QEMU could not open or use /dev/kvm).
 */
bool
dom_accel_is_kvm_failure(const char *message)
{
    return message && (strstr(message, "KVM") || strstr(message, "/dev/kvm") ||
                       strstr(message, "initialize kvm"));
}
