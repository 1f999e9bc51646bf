/* Booting the x86 machine through firmware (--firmware bios|PATH) instead
 * of a kernel: the image mapped so that it ends at 4 GiB (the reset vector
 * at 0xfffffff0) with its last 128 KiB also at 0xe0000 (the legacy BIOS
 * area, in RAM: SeaBIOS writes to itself there, with no chipset PAM to
 * unlock), fw_cfg at ports 0x510/0x514 carrying the machine's description
 * (x86/fw_cfg_items.h), the CMOS memory-size fields, SeaBIOS's debug port
 * 0x402 (lines at debug log level; on stderr with VESSEL_FIRMWARE_LOG=1), and a host bridge SeaBIOS
 * recognises as QEMU's (subsystem 1af4:1100). The vCPUs start in their reset state. */
#ifndef VESSEL_X86_FIRMWARE_H
#define VESSEL_X86_FIRMWARE_H

#include "util/err.h"

struct x86_machine;

/* After the machine's devices exist: map the image, fw_cfg, CMOS. */
int x86_firmware_create(struct x86_machine *m, vs_err *err);
/* At power-on and every reboot: the image's copy in the BIOS area. */
int x86_firmware_boot(struct x86_machine *m, vs_err *err);
void x86_firmware_destroy(struct x86_machine *m);

#endif
