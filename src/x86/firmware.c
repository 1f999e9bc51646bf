#include "x86/firmware.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "hw/fw_cfg.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "virtio/virtio.h"
#include "x86/fw_cfg_items.h"
#include "x86/layout.h"
#include "x86/machine.h"

#define BIOS_AREA 0xe0000ULL
#define BIOS_AREA_SIZE 0x20000ULL
#define DEBUG_PORT 0x402
#define PCI_VENDOR_REDHAT 0x1af4
/* SeaBIOS reboots this long after finding nothing to boot (its default:
 * never); with --no-reboot the VM then ends */
#define BOOT_FAIL_WAIT_MS 5000

struct x86_firmware {
    struct fw_cfg cfg;
    uint8_t *image;
    size_t len;
    char line[256];    /* the debug port's current line */
    bool log;          /* VESSEL_FIRMWARE_LOG=1: its lines on stderr */
    bool said_nothing; /* "found nothing to boot" was said */
    size_t nline;
};

static uint64_t debug_read(void *opaque, uint64_t off, unsigned len)
{
    return 0xe9; /* what QEMU's debugcon answers: "present" */
}

static void debug_write(void *opaque, uint64_t off, uint64_t val, unsigned len)
{
    struct x86_firmware *fw = opaque;
    char c = (char)val;
    if (c == '\n' || fw->nline == sizeof(fw->line) - 1) {
        fw->line[fw->nline] = 0;
        /* SeaBIOS's verdict on the disks, said once however often it retries */
        if (!fw->said_nothing && strstr(fw->line, "No bootable device")) {
            fw->said_nothing = true;
            vs_warn("the firmware found nothing to boot on the disks (it retries every %u s)",
                    BOOT_FAIL_WAIT_MS / 1000);
        }
        if (fw->log)
            vs_warn("firmware: %s", fw->line);
        else
            vs_debug("firmware: %s", fw->line);
        fw->nline = 0;
    }
    if (c != '\n' && c != '\r')
        fw->line[fw->nline++] = c;
}

static int read_image(struct x86_firmware *fw, const char *path, vs_err *err)
{
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return vs_error_errno(err, "firmware %s", path);
    fw->len = (size_t)st.st_size;
    if (fw->len < BIOS_AREA_SIZE || fw->len > (16u << 20) || fw->len % 4096)
        return vs_error(err, EINVAL, "firmware %s: %zu bytes is not a BIOS image", path, fw->len);
    fw->image = malloc(fw->len);
    if (!fw->image)
        return vs_error(err, ENOMEM, "out of memory");
    for (size_t got = 0; got < fw->len;) {
        ssize_t n = pread(fd, fw->image + got, fw->len - got, (off_t)got);
        if (n <= 0)
            return vs_error_errno(err, "reading firmware %s", path);
        got += (size_t)n;
    }
    return 0;
}

/* The PC's CMOS memory fields, for firmware that reads them before
 * fw_cfg: base and extended memory in KiB, RAM above 16 MiB and above
 * 4 GiB in 64 KiB units, CPUs minus one. */
static void cmos_memory(struct x86_machine *m)
{
    struct rtc_cmos *c = &m->rtc;
    uint64_t low = m->ram.low, high = m->ram.high;
    rtc_cmos_write(c, 0x15, 640 & 0xff);
    rtc_cmos_write(c, 0x16, 640 >> 8);
    uint64_t ext = low > (1 << 20) ? (low - (1 << 20)) >> 10 : 0;
    if (ext > 0xfc00)
        ext = 0xfc00;
    rtc_cmos_write(c, 0x17, (uint8_t)ext);
    rtc_cmos_write(c, 0x18, (uint8_t)(ext >> 8));
    rtc_cmos_write(c, 0x30, (uint8_t)ext);
    rtc_cmos_write(c, 0x31, (uint8_t)(ext >> 8));
    uint64_t above16 = low > (16 << 20) ? (low - (16 << 20)) >> 16 : 0;
    if (above16 > 0xffff)
        above16 = 0xffff;
    rtc_cmos_write(c, 0x34, (uint8_t)above16);
    rtc_cmos_write(c, 0x35, (uint8_t)(above16 >> 8));
    uint64_t above4g = high >> 16;
    rtc_cmos_write(c, 0x5b, (uint8_t)above4g);
    rtc_cmos_write(c, 0x5c, (uint8_t)(above4g >> 8));
    rtc_cmos_write(c, 0x5d, (uint8_t)(above4g >> 16));
    rtc_cmos_write(c, 0x5f, (uint8_t)(m->ncpus - 1));
}

/* Slots of the virtio-blk functions on bus 0, in slot order (= --disk
 * order): the boot order. */
static unsigned boot_slots(struct x86_machine *m, unsigned *out, unsigned max)
{
    unsigned n = 0;
    for (unsigned slot = 0; slot < 32 && n < max; slot++) {
        uint32_t id = pci_config_read(&m->pci, slot, 0, 0, 4);
        if ((id & 0xffff) == PCI_VENDOR_REDHAT && (id >> 16) == 0x1040 + VIRTIO_ID_BLOCK)
            out[n++] = slot;
    }
    return n;
}

int x86_firmware_create(struct x86_machine *m, vs_err *err)
{
    struct x86_firmware *fw = calloc(1, sizeof(*fw));
    if (!fw)
        return vs_error(err, ENOMEM, "out of memory");
    m->firmware = fw;
    const char *e = getenv("VESSEL_FIRMWARE_LOG");
    fw->log = e && *e == '1';
    if (read_image(fw, m->cfg->firmware, err) < 0)
        return -1;
    /* the image ends at 4 GiB */
    uint64_t top = X86_RAM_4G - fw->len;
    if (guest_mem_add_anon(&m->mem, top, fw->len, err) < 0 ||
        guest_mem_write(&m->mem, top, fw->image, fw->len) < 0)
        return vs_error_prefix(err, "firmware: ");
    /* SeaBIOS checks for QEMU's host bridge by its subsystem IDs */
    uint8_t *hb = m->host_bridge.cfg;
    hb[0x2c] = PCI_VENDOR_REDHAT & 0xff;
    hb[0x2d] = PCI_VENDOR_REDHAT >> 8;
    hb[0x2e] = 0x00;
    hb[0x2f] = 0x11;
    if (fw_cfg_init(&fw->cfg, &m->mem, err) < 0 || fw_cfg_register_pio(&fw->cfg, &m->pio, err) < 0)
        return -1;
    struct io_region dbg = {.name = "debugcon",
                            .base = DEBUG_PORT,
                            .size = 1,
                            .read = debug_read,
                            .write = debug_write,
                            .opaque = fw};
    if (io_bus_register(&m->pio, &dbg, err) < 0)
        return -1;
    struct x86_acpi_config ac = {.ncpus = m->ncpus,
                                 .pci_mmio32_start = X86_MMIO32_START,
                                 .pci_mmio32_end = X86_PCI_MMIO32_END,
                                 .pci_mmio64_start = m->pci.mmio64_end > 0 ? m->pci.mmio64_next : 0,
                                 .pci_mmio64_end = m->pci.mmio64_end,
                                 .pci_gsi_base = X86_PCI_GSI_BASE,
                                 .pci_gsi_count = 8};
    unsigned slots[VM_MAX_DISKS];
    struct x86_fw_cfg_config c = {.ram = &m->ram,
                                  .ncpus = m->ncpus,
                                  .cmdline = m->cfg->append,
                                  .acpi = &ac,
                                  .boot_slots = slots,
                                  .nboot = boot_slots(m, slots, VM_MAX_DISKS)};
    /* SeaBIOS's text output goes to COM1 too (no VGA here) */
    uint8_t sercon[2] = {0xf8, 0x03};
    uint8_t fail_wait[4] = {BOOT_FAIL_WAIT_MS & 0xff, (BOOT_FAIL_WAIT_MS >> 8) & 0xff, 0, 0};
    if (x86_fw_cfg_populate(&fw->cfg, &c, err) < 0 ||
        fw_cfg_add_file(&fw->cfg, "etc/sercon-port", sercon, 2, err) < 0 ||
        fw_cfg_add_file(&fw->cfg, "etc/boot-fail-wait", fail_wait, 4, err) < 0)
        return -1;
    cmos_memory(m);
    return 0;
}

int x86_firmware_boot(struct x86_machine *m, vs_err *err)
{
    struct x86_firmware *fw = m->firmware;
    if (guest_mem_write(&m->mem, BIOS_AREA, fw->image + fw->len - BIOS_AREA_SIZE, BIOS_AREA_SIZE) <
            0 ||
        guest_mem_write(&m->mem, X86_RAM_4G - fw->len, fw->image, fw->len) < 0)
        return vs_error(err, EINVAL, "firmware: the BIOS area 0x%llx is not RAM",
                        (unsigned long long)BIOS_AREA);
    cmos_memory(m);
    return 0;
}

void x86_firmware_destroy(struct x86_machine *m)
{
    struct x86_firmware *fw = m->firmware;
    if (!fw)
        return;
    fw_cfg_destroy(&fw->cfg);
    free(fw->image);
    free(fw);
    m->firmware = NULL;
}
