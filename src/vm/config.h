/* The machine-independent description of a VM, as `vessel vm run` flags (and
 * later the control API and snapshot metadata) give it. Each accelerator
 * (x86/KVM, riscv/emulator) builds its board from this. */
#ifndef VESSEL_VM_CONFIG_H
#define VESSEL_VM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include "util/err.h"
#include "util/rate_limit.h"

#define VM_MAX_DISKS 16
#define VM_MAX_NETS 8
#define VM_MAX_HOSTFWD 8
#define VM_MAX_CPUS 64
#define VM_MAX_SHARES 4
#define VM_SHARE_TAG_MAX 36 /* virtio-fs config space */
#define VM_MAX_LANDLOCK_RW 8

enum vm_arch { VM_ARCH_X86_64, VM_ARCH_RISCV64 };
enum vm_disk_cache { VM_CACHE_WRITEBACK, VM_CACHE_NONE, VM_CACHE_UNSAFE };
enum vm_net_kind { VM_NET_USER, VM_NET_TAP };
/* How guest RAM is backed. */
enum vm_mem_backend {
    VM_MEM_THP,   /* private anonymous memory with huge pages: boots faster */
    VM_MEM_MEMFD, /* a memfd: a snapshot copies it page-cache to page-cache and skips holes */
};

/* The limits of one VM, the same from every entry point (flags, the API, a
 * snapshot's config, the machines themselves); vm_config_validate checks them.
 * RAM is mapped in 2 MiB (huge page) pieces. The x86_64 floor is one such
 * piece: the kernel loads at 1 MiB, and whether a given kernel and initrd
 * fit is checked when they are loaded. The riscv64 board puts its firmware,
 * kernel, device tree and initrd at fixed offsets in RAM and needs 16 MiB;
 * its RAM window ends at 1 TiB. */
#define VM_MEMORY_ALIGN (2ULL << 20)
#define VM_MIN_MEMORY_X86_64 (2ULL << 20)
#define VM_MAX_MEMORY_X86_64 (64ULL << 40)
#define VM_MIN_MEMORY_RISCV64 (16ULL << 20)
#define VM_MAX_MEMORY_RISCV64 (1ULL << 40)

enum vm_accel {
    VM_ACCEL_DEFAULT, /* the translator where the host can run it, else the interpreter */
    VM_ACCEL_INTERP,  /* the interpreter, the reference */
    VM_ACCEL_JIT,     /* the translator to x86-64 */
};

/* How the VM process is confined (src/jail, docs/security.md): choices of
 * the host that runs it, not part of a snapshot's machine state. The zero
 * value is the confined one. */
enum vm_seccomp {
    VM_SECCOMP_ON,  /* per-thread allow-lists; anything else stops the process */
    VM_SECCOMP_OFF, /* for debugging only */
    VM_SECCOMP_LOG, /* the kernel logs what the lists would refuse, and lets it run */
};

struct vm_disk_config {
    char *path;
    bool readonly;
    enum vm_disk_cache cache;
    char *serial;               /* virtio-blk ID string, default derived from index */
    char *format;               /* "raw", "qcow2", or NULL to probe */
    struct vs_rate_config rate; /* bw=, iops= (changeable live) */
};

struct vm_net_config {
    enum vm_net_kind kind;
    char *tap; /* tap interface name */
    uint8_t mac[6];
    bool mac_set;
    char *hostfwd[VM_MAX_HOSTFWD]; /* "tcp::2222-:22" */
    unsigned nhostfwd;
    struct vs_rate_config rate; /* bw=, iops= per direction (changeable live) */
};

/* virtio-balloon (--balloon): absent unless enabled. */
struct vm_balloon_config {
    bool enabled;
    uint64_t size;       /* bytes the guest gives up from boot on */
    unsigned stats_secs; /* how often the guest is asked for statistics; 0: never */
    bool deflate_on_oom;
    bool free_page_reporting;
};

/* A host directory shared with the guest over virtio-fs (virtiofsd). */
struct vm_share_config {
    char *dir; /* absolute */
    char *tag; /* what the guest mounts: 1..VM_SHARE_TAG_MAX bytes */
};

struct vm_config {
    enum vm_arch arch;
    char *kernel, *initrd, *append, *bios;
    /* x86_64: boot through firmware from the disks instead of a kernel:
     * "bios" (SeaBIOS) or an image's path; resolved to a path */
    char *firmware;
    unsigned cpus;
    uint64_t memory; /* bytes */
    enum vm_mem_backend mem_backend;
    char *console; /* "stdio" (default), "none", "file:PATH" */
    bool no_reboot;
    struct vm_disk_config disks[VM_MAX_DISKS];
    unsigned ndisks;
    struct vm_net_config nets[VM_MAX_NETS];
    unsigned nnets;
    bool rng;           /* virtio-rng */
    char *vconsole;     /* virtio-console backend: "file:PATH", "socket:PATH" */
    uint32_t vsock_cid; /* 0 = no vsock device */
    char *vsock_uds;    /* host unix socket for the vsock bridge */
    char *api_sock;     /* control API socket path */
    struct vm_share_config shares[VM_MAX_SHARES];
    unsigned nshares;
    bool default_guest; /* no --kernel was given: the default guest is used */
    /* virtio-mmio VendorID (riscv64): false = vessel's own, true = QEMU's,
     * for guests written against QEMU's virt board that check for it */
    bool virtio_vendor_qemu;
    /* riscv64: how the emulator runs guest code (a run-time choice: not part
     * of a snapshot's machine state) */
    enum vm_accel accel;
    /* dynamic resources (vm/config_resources.c) */
    struct vm_balloon_config balloon;
    unsigned max_cpus; /* vCPUs present (hot-pluggable up to); 0: cpus */
    bool mergeable;    /* guest RAM private anonymous and MADV_MERGEABLE (KSM) */
    /* caps for the VM process's own cgroup (vm/limits.h); 0: none */
    uint64_t limit_memory;                 /* bytes */
    unsigned limit_cpu_millis;             /* thousandths of a CPU */
    enum vm_seccomp seccomp;               /* --seccomp=on|off|log */
    bool landlock;                         /* --landlock=on: only the VM's own files */
    char *landlock_rw[VM_MAX_LANDLOCK_RW]; /* --landlock-rw DIR: may create files beneath */
    unsigned nlandlock_rw;
    char *jail;                  /* --jail DIR: the VM process's root (src/jail/jail.h) */
    uint32_t jail_uid, jail_gid; /* what it runs as once set up */
    uint64_t jail_fsize;         /* RLIMIT_FSIZE in the jail; 0 = none */
    bool jail_host_net;          /* --jail-net host: the jail keeps the host's network
                                  * namespace (a VM that live-migrates between hosts) */
};

void vm_config_init(struct vm_config *c);
void vm_config_free(struct vm_config *c);
/* The one set of limits every config meets, whether it comes from flags, the
 * API or a snapshot (one line in err for the first problem):
 *   cpus       1 .. VM_MAX_CPUS
 *   memory     VM_MIN_MEMORY_<ARCH> .. VM_MAX_MEMORY_<ARCH> (x86_64: 2 MiB ..
 *              64 TiB, riscv64: 16 MiB .. 1 TiB), at most the host's RAM, a
 *              multiple of VM_MEMORY_ALIGN
 *   vsock_cid  0 (none) or 3 .. 0xfffffffe (0-2 are the hypervisor's, local, host)
 *   console    NULL, "stdio", "none" or "file:PATH"
 *   disks, nets at most VM_MAX_DISKS, VM_MAX_NETS
 *   shares     at most VM_MAX_SHARES, absolute directories, distinct tags of
 *              1..VM_SHARE_TAG_MAX bytes */
int vm_config_validate(const struct vm_config *c, vs_err *err);
/* Before a fresh boot: no kernel means the default guest (vm_default_guest_dir),
 * the kernel, initrd and firmware must be readable files, shared
 * directories directories and virtiofsd there to serve them, a firmware
 * name (--firmware bios) becomes its image's path, the console
 * defaults to stdio, and the memory backend is chosen: a memfd where the VM
 * may be snapshotted (it has a control API), shares its RAM with a
 * vhost-user backend (a share) or on riscv64, huge pages
 * otherwise; VESSEL_X86_THP=0/1 overrides on x86_64. */
int vm_config_resolve_boot(struct vm_config *c, vs_err *err);
int vm_config_add_disk(struct vm_config *c, const char *spec, vs_err *err);
int vm_config_add_net(struct vm_config *c, const char *spec, vs_err *err);
/* "HOST_DIR:TAG" (the last ':' separates them); the directory must exist. */
int vm_config_add_share(struct vm_config *c, const char *spec, vs_err *err);
/* Debian's SeaBIOS image for --firmware bios. */
#define VM_SEABIOS_DIR "/usr/share/seabios"
/* The virtiofsd that serves shares: $VESSEL_VIRTIOFSD, else Debian's
 * (/usr/lib/qemu/virtiofsd, package qemu-system-common). */
const char *vm_virtiofsd_path(void);
/* Where guest/build-*.sh put the default guest for arch (cached outside the
 * checkout): $VESSEL_GUEST_DIR, else $XDG_CACHE_HOME/vessel/guest, else
 * ~/.cache/vessel/guest; then /<arch>. Returns a malloc'd path. */
char *vm_default_guest_dir(enum vm_arch arch);
const char *vm_arch_name(enum vm_arch arch);
/* "on", "off" or "log" (--seccomp) */
int vm_parse_seccomp(const char *s, enum vm_seccomp *out, vs_err *err);
/* "on" or "off" (--landlock, --jail-...) */
int vm_parse_on_off(const char *flag, const char *s, bool *out, vs_err *err);
/* Another --landlock-rw directory (an absolute path is kept as given). */
int vm_config_add_landlock_rw(struct vm_config *c, const char *dir, vs_err *err);
/* --jail DIR and its --jail-uid, --jail-gid (default 65534, nobody and
 * nogroup), --jail-fsize, --jail-net host|own (own: a network namespace of
 * the jail's own unless user networking needs the host's); any may be
 * NULL. The others need --jail. */
int vm_config_set_jail(struct vm_config *c, const char *dir, const char *uid, const char *gid,
                       const char *fsize, const char *net, vs_err *err);
/* "52:54:00:12:34:56" into mac; -1 for anything else, a multicast address
 * included (it cannot be a NIC's). */
int vm_parse_mac(const char *s, uint8_t mac[6]);
/* --balloon SPEC: "on", or a comma list of size=BYTES, stats=SECONDS,
 * deflate-on-oom=on|off, free-page-reporting=on|off (defaults: 0, 1, on, on). */
int vm_config_set_balloon(struct vm_config *c, const char *spec, vs_err *err);
/* A --disk or --net rate-limit option (bw=SIZE per second, bw-burst=SIZE,
 * iops=N, iops-burst=N): 1 if k was one (stored in r), 0 if not, -1 if its
 * value is bad. */
int vm_rate_option(struct vs_rate_config *r, const char *what, const char *k, const char *v,
                   vs_err *err);
/* "1.5" CPUs into thousandths (0.01 .. VM_MAX_CPUS * 4, or 0: no cap). */
int vm_parse_cpu_limit(const char *s, unsigned *millis, vs_err *err);
/* The dynamic-resource part of vm_config_validate. */
int vm_config_validate_resources(const struct vm_config *c, vs_err *err);

#endif
