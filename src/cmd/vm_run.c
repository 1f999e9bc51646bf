#include <stdio.h>
#include <string.h>

#include "cmd/commands.h"
#include "vm/config.h"
#include "vm/machine.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: vessel vm run [FLAGS]\n\n"
        "  --kernel PATH        bzImage, vmlinux (ELF/PVH) or, with --arch riscv64, an Image\n"
        "                       (default: the guest built by guest/build-<arch>.sh)\n"
        "  --initrd PATH        initial ramdisk\n"
        "  --append CMDLINE     kernel command line\n"
        "  --cpus N             vCPUs, 1..64 (default 1)\n"
        "  --max-cpus M         riscv64: M harts present, N of them run; 'vm update --cpus'\n"
        "                       changes N live (default: N)\n"
        "  --memory SIZE        guest RAM, e.g. 256M, 2G (default 256M)\n"
        "  --mergeable          guest RAM open to the kernel's same-page merging (KSM)\n"
        "  --limit-memory SIZE  --limit-cpus N.N\n"
        "                       caps for the VM process (its own cgroup); 'vm update' changes "
        "them\n"
        "  --console stdio|none|file:PATH|[file:PATH,]socket:PATH\n"
        "                       serial console (stdio: Ctrl-A x quits)\n"
        "  --no-reboot          exit 0 when the guest reboots\n"
        "  --disk PATH[,ro][,cache=writeback|none|unsafe][,serial=ID][,format=raw|qcow2]\n"
        "  --net user[,hostfwd=tcp::HOSTPORT-:GUESTPORT][,mac=MAC] | tap=NAME[,mac=MAC]\n"
        "  --rng                virtio-rng device\n"
        "  --virtio-console file:PATH|socket:PATH\n"
        "  --vsock CID [--vsock-uds PATH]\n"
        "  --balloon on|size=SIZE,stats=SECONDS,deflate-on-oom=on|off,free-page-reporting=on|off\n"
        "                       virtio-balloon (defaults: size 0, stats every 1 s, both on);\n"
        "                       resize it live with 'vessel vm update --balloon SIZE'\n"
        "  --share HOST_DIR:TAG shared folder over virtio-fs (Debian's virtiofsd); the guest\n"
        "                       mounts it with 'mount -t virtiofs TAG DIR' (repeatable)\n"
        "  --api-sock PATH      control API (HTTP/JSON) on a unix socket\n"
        "  --incoming tcp:ADDR:PORT|unix:PATH\n"
        "                       wait for a live migration and run the VM it brings\n"
        "                       (only --api-sock, --console, --arch, --vsock-uds and\n"
        "                       --storage DIR, where disks moving along are created, apply)\n"
        "  --arch x86_64|riscv64\n"
        "  --bios PATH          firmware (riscv64: OpenSBI fw_jump/fw_dynamic)\n"
        "  --firmware bios|PATH x86_64: boot the disks through firmware (bios: Debian's\n"
        "                       SeaBIOS) instead of a kernel\n"
        "  --accel jit|interp   riscv64: translate guest code to x86-64 (the default on\n"
        "                       x86-64 hosts) or interpret it (the reference)\n"
        "  --virtio-vendor vessel|qemu\n"
        "                       riscv64: the virtio-mmio VendorID the guest sees (qemu: QEMU's,\n"
        "                       for guests written for QEMU's virt board)\n"
        "  --seccomp on|off|log per-thread system call filters (default on; off is for\n"
        "                       debugging; log: the kernel logs what they would refuse)\n"
        "  --landlock on|off    open only this VM's files (default off; docs/security.md)\n"
        "  --landlock-rw DIR    with --landlock=on: may also create files beneath DIR\n"
        "                       (snapshots; the API socket's directory always)\n"
        "  --jail DIR           run in namespaces of its own with DIR as its root, holding\n"
        "                       only this VM's files; drops to --jail-uid/--jail-gid\n"
        "                       (default 65534) once set up; --jail-fsize SIZE limits files;\n"
        "                       --jail-net host keeps the host's network (live migration)\n");
}

int cmd_vm_run(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
    }
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--incoming") || !strncmp(argv[i], "--incoming=", 11))
            return cmd_vm_incoming(argc, argv);
    struct vm_config cfg;
    vs_err err = {0};
    vm_config_init(&cfg);
    if (cmd_vm_run_args(&cfg, argc, argv, &err) < 0) {
        cmd_print_error(err.msg);
        vm_config_free(&cfg);
        return 1;
    }
    int status = vm_machine_run(&cfg, &err);
    if (status < 0) {
        cmd_print_error(err.msg);
        status = 1;
    }
    vm_config_free(&cfg);
    return status;
}
