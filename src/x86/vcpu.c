/* One KVM vCPU: creation (CPUID, MSRs, LAPIC LINT pins), the boot register
 * state, the thread that runs KVM_RUN and dispatches exits to the I/O buses,
 * the register dump for fatal exits, and save/load. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/log.h"
#include "x86/cpuid.h"
#include "x86/layout.h"
#include "x86/machine.h"
#include "util/thread_role.h"

#define SIG_VCPU_KICK (SIGRTMIN + 2)

#define MSR_IA32_APICBASE 0x1b
#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_IA32_TSC_DEADLINE 0x6e0
#define MSR_MTRR_DEF_TYPE 0x2ff
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SYSCALL_MASK 0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102
#define MISC_ENABLE_FAST_STRING 1
#define EFER_LME 0x100
#define EFER_LMA 0x400

static void kick_handler(int sig)
{
    (void)sig;
}

static void install_kick_handler(void)
{
    struct sigaction sa = {.sa_handler = kick_handler};
    sigemptyset(&sa.sa_mask);
    sigaction(SIG_VCPU_KICK, &sa, NULL);
}

/* A signal's disposition is the process's, not a VM's: installed once. */
void x86_vcpu_signal_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install_kick_handler);
}

static int set_cpuid(struct x86_vcpu *v, vs_err *err)
{
    struct x86_machine *m = v->m;
    unsigned n = m->cpuid->nent;
    size_t sz = sizeof(struct kvm_cpuid2) + n * sizeof(struct kvm_cpuid_entry2);
    struct kvm_cpuid2 *c = malloc(sz);
    struct x86_cpuid_entry *e = calloc(n ? n : 1, sizeof(*e));
    if (!c || !e) {
        free(c);
        free(e);
        return vs_error(err, ENOMEM, "out of memory");
    }
    memcpy(c, m->cpuid, sz);
    for (unsigned i = 0; i < n; i++) {
        struct kvm_cpuid_entry2 *k = &c->entries[i];
        e[i] = (struct x86_cpuid_entry){k->function, k->index, k->flags, k->eax,
                                        k->ebx,      k->ecx,   k->edx};
    }
    x86_cpuid_patch(e, n, v->id, m->ncpus);
    struct x86_cpuid_extras x = {.tsc_deadline = m->tsc_deadline,
                                 .brand = m->has_brand ? m->brand : NULL};
    x86_cpuid_add_extras(e, n, &x);
    for (unsigned i = 0; i < n; i++) {
        struct kvm_cpuid_entry2 *k = &c->entries[i];
        k->eax = e[i].eax;
        k->ebx = e[i].ebx;
        k->ecx = e[i].ecx;
        k->edx = e[i].edx;
    }
    int r = ioctl(v->fd, KVM_SET_CPUID2, c);
    free(c);
    free(e);
    if (r < 0)
        return vs_error_errno(err, "vCPU %u: KVM_SET_CPUID2", v->id);
    return 0;
}

static int set_msrs(struct x86_vcpu *v, const uint32_t *idx, const uint64_t *val, unsigned n,
                    vs_err *err)
{
    struct {
        struct kvm_msrs h;
        struct kvm_msr_entry e[16];
    } b;
    memset(&b, 0, sizeof(b));
    b.h.nmsrs = n;
    for (unsigned i = 0; i < n; i++) {
        b.e[i].index = idx[i];
        b.e[i].data = val[i];
    }
    int r = ioctl(v->fd, KVM_SET_MSRS, &b);
    if (r < 0)
        return vs_error_errno(err, "vCPU %u: KVM_SET_MSRS", v->id);
    if ((unsigned)r != n)
        return vs_error(err, EINVAL, "vCPU %u: KVM refused MSR 0x%x", v->id, idx[r]);
    return 0;
}

/* The MSR values a PC BIOS leaves and Linux expects. */
static int set_boot_msrs(struct x86_vcpu *v, vs_err *err)
{
    static const uint32_t idx[] = {
        MSR_IA32_SYSENTER_CS,
        MSR_IA32_SYSENTER_ESP,
        MSR_IA32_SYSENTER_EIP,
        MSR_STAR,
        MSR_LSTAR,
        MSR_CSTAR,
        MSR_SYSCALL_MASK,
        MSR_KERNEL_GS_BASE,
    };
    /* Not MSR_IA32_TSC: KVM starts every vCPU's TSC in sync; writing it
     * per vCPU at different times makes Linux mark the TSC unstable. */
    uint64_t val[ARRAY_SIZE(idx)] = {0};
    if (set_msrs(v, idx, val, ARRAY_SIZE(idx), err) < 0)
        return -1;
    /* Fast strings and write-back MTRR default: some KVM builds reject
     * one of these (e.g. no MTRR emulation); that is not fatal. */
    uint32_t misc = MSR_IA32_MISC_ENABLE, mtrr = MSR_MTRR_DEF_TYPE;
    uint64_t misc_v = MISC_ENABLE_FAST_STRING, mtrr_v = 1u << 11 | 6;
    vs_err ignored;
    if (set_msrs(v, &misc, &misc_v, 1, &ignored) < 0)
        vs_debug("vCPU %u: %s", v->id, ignored.msg);
    if (set_msrs(v, &mtrr, &mtrr_v, 1, &ignored) < 0)
        vs_debug("vCPU %u: %s", v->id, ignored.msg);
    return 0;
}

/* LINT0 = ExtINT (the 8259 behind the local APIC), LINT1 = NMI, as a BIOS
 * programs them. */
static int set_lint(struct x86_vcpu *v, vs_err *err)
{
    struct kvm_lapic_state l;
    if (ioctl(v->fd, KVM_GET_LAPIC, &l) < 0)
        return vs_error_errno(err, "vCPU %u: KVM_GET_LAPIC", v->id);
    uint32_t *lvt0 = (uint32_t *)(void *)&l.regs[0x350];
    uint32_t *lvt1 = (uint32_t *)(void *)&l.regs[0x360];
    *lvt0 = (*lvt0 & ~0x700u) | 0x700u; /* ExtINT */
    *lvt1 = (*lvt1 & ~0x700u) | 0x400u; /* NMI */
    if (ioctl(v->fd, KVM_SET_LAPIC, &l) < 0)
        return vs_error_errno(err, "vCPU %u: KVM_SET_LAPIC", v->id);
    return 0;
}

int x86_vcpu_create(struct x86_machine *m, unsigned id, vs_err *err)
{
    struct x86_vcpu *v = &m->vcpus[id];
    memset(v, 0, sizeof(*v));
    v->m = m;
    v->id = id;
    v->fd = ioctl(m->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
    if (v->fd < 0)
        return vs_error_errno(err, "KVM_CREATE_VCPU %u", id);
    v->run = mmap(NULL, m->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
    if (v->run == MAP_FAILED) {
        v->run = NULL;
        return vs_error_errno(err, "vCPU %u: mmap kvm_run", id);
    }
    if (set_cpuid(v, err) < 0 || set_boot_msrs(v, err) < 0 || set_lint(v, err) < 0)
        return -1;
    return 0;
}

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code64, bool db)
{
    *s = (struct kvm_segment){.base = 0,
                              .limit = 0xffffffff,
                              .selector = sel,
                              .type = type,
                              .present = 1,
                              .dpl = 0,
                              .db = db,
                              .s = 1,
                              .l = code64,
                              .g = 1};
}

int x86_vcpu_setup_boot(struct x86_vcpu *v, bool pvh, uint64_t entry, uint64_t boot_info,
                        vs_err *err)
{
    struct kvm_sregs s;
    if (ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
        return vs_error_errno(err, "vCPU %u: KVM_GET_SREGS", v->id);
    s.gdt.base = X86_GDT_ADDR;
    s.gdt.limit = 6 * 8 - 1;
    s.idt.base = 0;
    s.idt.limit = 0;
    struct kvm_segment data;
    seg(&data, 0x18, 3, false, true);
    s.ds = s.es = s.fs = s.gs = s.ss = data;
    s.tr = (struct kvm_segment){
        .base = 0, .limit = 0x67, .selector = 0x20, .type = 11, .present = 1, .s = 0};
    struct kvm_regs r = {.rflags = 2, .rip = entry, .rsp = X86_BOOT_STACK, .rbp = X86_BOOT_STACK};
    if (pvh) {
        /* PVH: 32-bit protected mode, paging off, start info in EBX. */
        seg(&s.cs, 0x28, 11, false, true);
        s.cr0 = 0x11; /* PE | ET */
        s.cr4 = 0;
        s.efer = 0;
        r.rbx = boot_info;
    } else {
        /* The 64-bit boot protocol: long mode, identity-mapped paging,
         * __BOOT_CS = 0x10, __BOOT_DS = 0x18, boot_params in RSI. */
        seg(&s.cs, 0x10, 11, true, false);
        s.cr3 = X86_PML4_ADDR;
        s.cr4 = 0x20;        /* PAE */
        s.cr0 = 0x80010033u; /* PG | WP | NE | ET | MP | PE */
        s.efer = EFER_LME | EFER_LMA;
        r.rsi = boot_info;
    }
    if (ioctl(v->fd, KVM_SET_SREGS, &s) < 0)
        return vs_error_errno(err, "vCPU %u: KVM_SET_SREGS", v->id);
    if (ioctl(v->fd, KVM_SET_REGS, &r) < 0)
        return vs_error_errno(err, "vCPU %u: KVM_SET_REGS", v->id);
    struct kvm_fpu f = {.fcw = 0x37f, .mxcsr = 0x1f80};
    if (ioctl(v->fd, KVM_SET_FPU, &f) < 0)
        return vs_error_errno(err, "vCPU %u: KVM_SET_FPU", v->id);
    return 0;
}

void x86_vcpu_dump(struct x86_vcpu *v, FILE *f)
{
    struct kvm_regs r;
    struct kvm_sregs s;
    if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0) {
        fprintf(f, "vCPU %u: registers unavailable: %s\n", v->id, strerror(errno));
        return;
    }
    fprintf(f,
            "vCPU %u registers:\n"
            " rip=%016llx rflags=%016llx\n"
            " rax=%016llx rbx=%016llx rcx=%016llx rdx=%016llx\n"
            " rsi=%016llx rdi=%016llx rsp=%016llx rbp=%016llx\n"
            " r8 =%016llx r9 =%016llx r10=%016llx r11=%016llx\n"
            " r12=%016llx r13=%016llx r14=%016llx r15=%016llx\n"
            " cs=%04x(base %llx l=%u db=%u) ss=%04x ds=%04x es=%04x fs=%04x gs=%04x tr=%04x\n"
            " cr0=%016llx cr2=%016llx cr3=%016llx cr4=%016llx efer=%016llx\n"
            " gdt=%016llx/%04x idt=%016llx/%04x apic_base=%016llx\n",
            v->id, r.rip, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rsp, r.rbp, r.r8,
            r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, s.cs.selector, s.cs.base, s.cs.l,
            s.cs.db, s.ss.selector, s.ds.selector, s.es.selector, s.fs.selector, s.gs.selector,
            s.tr.selector, s.cr0, s.cr2, s.cr3, s.cr4, s.efer, s.gdt.base, s.gdt.limit, s.idt.base,
            s.idt.limit, s.apic_base);
}

/* VESSEL_EXIT_STATS=1: count user-space exits per port / MMIO page and
 * print the busiest when the machine goes (finding what a guest's boot
 * spends exits on). */
struct x86_exit_stats {
    _Atomic uint32_t port[65536];
    _Atomic uint32_t mmio[256];
    uint64_t mmio_pages[256];
};

struct x86_exit_stats *x86_exit_stats_new(void)
{
    const char *e = getenv("VESSEL_EXIT_STATS");
    return e && *e && *e != '0' ? calloc(1, sizeof(struct x86_exit_stats)) : NULL;
}

void x86_exit_stats_print(struct x86_exit_stats *st)
{
    if (!st)
        return;
    for (int round = 0; round < 12; round++) {
        unsigned best = 0;
        uint32_t n = 0;
        for (unsigned p = 0; p < 65536; p++)
            if (st->port[p] > n)
                n = st->port[best = p];
        if (!n)
            break;
        fprintf(stderr, "exit stats: port 0x%04x %u\n", best, n);
        st->port[best] = 0;
    }
    for (unsigned i = 0; i < 256; i++)
        if (st->mmio[i])
            fprintf(stderr, "exit stats: mmio page 0x%llx %u\n",
                    (unsigned long long)st->mmio_pages[i], (unsigned)st->mmio[i]);
}

static void handle_io(struct x86_vcpu *v)
{
    struct kvm_run *run = v->run;
    uint8_t *p = (uint8_t *)run + run->io.data_offset;
    unsigned size = run->io.size;
    struct x86_exit_stats *st = v->m->exit_stats;
    if (st)
        st->port[run->io.port]++;
    for (uint32_t i = 0; i < run->io.count; i++, p += size) {
        uint64_t val = 0;
        if (run->io.direction == KVM_EXIT_IO_OUT) {
            memcpy(&val, p, size);
            io_bus_write(&v->m->pio, run->io.port, val, size);
        } else {
            if (!io_bus_read(&v->m->pio, run->io.port, size, &val))
                val = ~0ULL; /* nothing there: the bus floats high */
            memcpy(p, &val, size);
        }
    }
}

static void handle_mmio(struct x86_vcpu *v)
{
    struct kvm_run *run = v->run;
    unsigned len = run->mmio.len;
    struct x86_exit_stats *st = v->m->exit_stats;
    if (st) {
        uint64_t page = run->mmio.phys_addr & ~0xfffULL;
        unsigned h = (unsigned)(page >> 12) % 256;
        st->mmio_pages[h] = page;
        st->mmio[h]++;
    }
    if (len > 8)
        len = 8;
    uint64_t val = 0;
    if (run->mmio.is_write) {
        memcpy(&val, run->mmio.data, len);
        io_bus_write(&v->m->mmio, run->mmio.phys_addr, val, len);
    } else {
        if (!io_bus_read(&v->m->mmio, run->mmio.phys_addr, len, &val))
            val = ~0ULL;
        memcpy(run->mmio.data, &val, len);
    }
}

/* A fatal exit: dump the registers on stderr and stop the VM with why. */
static void fatal(struct x86_vcpu *v, const char *why)
{
    /* The guest's last words first, then ours. */
    serial_console_flush(v->m->console);
    x86_vcpu_dump(v, stderr);
    x86_machine_request_stop(v->m, X86_STOP_ERROR, "vCPU %u: %s", v->id, why);
}

static void *vcpu_thread(void *arg)
{
    struct x86_vcpu *v = arg;
    struct x86_machine *m = v->m;
    char name[16];
    snprintf(name, sizeof(name), "vcpu%u", v->id);
    pthread_setname_np(pthread_self(), name);
    vs_thread_role_enter(VS_THREAD_VCPU, name);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIG_VCPU_KICK);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    char msg[256];
    for (;;) {
        x86_machine_vcpu_checkpoint(m, v);
        if (atomic_load(&m->stop))
            break;
        if (atomic_exchange(&v->dump_req, false)) {
            fprintf(stderr, "vessel: SIGUSR1: ");
            x86_vcpu_dump(v, stderr);
        }
        int r = ioctl(v->fd, KVM_RUN, 0);
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                __atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
                continue;
            }
            snprintf(msg, sizeof(msg), "KVM_RUN failed: %s", strerror(errno));
            fatal(v, msg);
            break;
        }
        struct kvm_run *run = v->run;
        switch (run->exit_reason) {
        case KVM_EXIT_IO:
            handle_io(v);
            break;
        case KVM_EXIT_MMIO:
            handle_mmio(v);
            break;
        case KVM_EXIT_INTR:
            break;
        case KVM_EXIT_HLT:
            /* Only without an in-kernel LAPIC; ours has one. */
            break;
        case KVM_EXIT_SHUTDOWN:
            fatal(v, "triple fault (KVM_EXIT_SHUTDOWN)");
            return NULL;
        case KVM_EXIT_FAIL_ENTRY:
            snprintf(msg, sizeof(msg), "VM entry failed (hardware reason 0x%llx)",
                     (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
            fatal(v, msg);
            return NULL;
        case KVM_EXIT_INTERNAL_ERROR: {
            int n = snprintf(msg, sizeof(msg), "KVM internal error (suberror %u",
                             run->internal.suberror);
            for (unsigned i = 0;
                 i < run->internal.ndata && i < 4 && n > 0 && (size_t)n < sizeof(msg); i++)
                n += snprintf(msg + n, sizeof(msg) - n, " %llx",
                              (unsigned long long)run->internal.data[i]);
            if (n > 0 && (size_t)n < sizeof(msg))
                snprintf(msg + n, sizeof(msg) - n, ")");
            fatal(v, msg);
            return NULL;
        }
        case KVM_EXIT_SYSTEM_EVENT:
            if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
                x86_machine_request_stop(m, X86_STOP_REBOOT, "reset");
            else
                x86_machine_request_stop(m, X86_STOP_POWEROFF, "poweroff");
            return NULL;
        default:
            snprintf(msg, sizeof(msg), "unexpected KVM exit %u", run->exit_reason);
            fatal(v, msg);
            return NULL;
        }
    }
    return NULL;
}

int x86_vcpu_start(struct x86_vcpu *v, vs_err *err)
{
    x86_vcpu_signal_init();
    /* on run_loop's default 1 MiB stack (machine.c), out of THP's reach */
    int e = pthread_create(&v->thread, NULL, vcpu_thread, v);
    if (e) {
        errno = e;
        return vs_error_errno(err, "vCPU %u thread", v->id);
    }
    v->started = true;
    return 0;
}

void x86_vcpu_kick(struct x86_vcpu *v)
{
    if (!v->run)
        return;
    __atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
    if (v->started)
        pthread_kill(v->thread, SIG_VCPU_KICK);
}

void x86_vcpu_destroy(struct x86_vcpu *v)
{
    if (v->started) {
        x86_vcpu_kick(v);
        pthread_join(v->thread, NULL);
        v->started = false;
    }
    if (v->run)
        munmap(v->run, v->m->run_size);
    v->run = NULL;
    if (v->fd > 0)
        close(v->fd);
    v->fd = -1;
}

/* ---- save / load ---- */

static int msr_filter(struct x86_vcpu *v)
{
    /* Keep only the MSRs this vCPU can read: KVM_GET_MSRS stops at the first
     * one it refuses. */
    struct x86_machine *m = v->m;
    unsigned o = 0;
    for (unsigned i = 0; i < m->nmsrs; i++) {
        struct {
            struct kvm_msrs h;
            struct kvm_msr_entry e;
        } b = {.h.nmsrs = 1, .e.index = m->msr_list[i]};
        if (ioctl(v->fd, KVM_GET_MSRS, &b) == 1)
            m->msr_list[o++] = m->msr_list[i];
    }
    m->nmsrs = o;
    return 0;
}

static void put_blob(struct state_writer *w, const void *p, uint32_t len)
{
    state_put_u32(w, len);
    state_put(w, p, len);
}

static int get_blob(struct state_reader *r, void *p, uint32_t len, const char *what, vs_err *err)
{
    uint32_t n;
    if (state_get_u32(r, &n, err) < 0)
        return -1;
    if (n != len)
        return vs_error(err, EINVAL, "vCPU state: %s is %u bytes, expected %u", what, n, len);
    return state_get(r, p, len, err);
}

/* The vCPU state KVM hands out in fixed-size structs, saved and loaded in
 * this order (XSAVE and the MSRs are sized at run time). */
struct vcpu_regs {
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_xcrs xcrs;
    struct kvm_debugregs dregs;
    struct kvm_lapic_state lapic;
    struct kvm_mp_state mp;
    struct kvm_vcpu_events ev;
};

static size_t xsave_size(struct x86_vcpu *v)
{
    int n = ioctl(v->m->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
    return n > (int)sizeof(struct kvm_xsave) ? (size_t)n : sizeof(struct kvm_xsave);
}

int x86_vcpu_save(struct x86_vcpu *v, struct state_writer *w, vs_err *err)
{
    struct x86_machine *m = v->m;
    struct vcpu_regs st;
    size_t xs = xsave_size(v);
    void *xsave = calloc(1, xs);
    if (!xsave)
        return vs_error(err, ENOMEM, "out of memory");
    unsigned long xreq = xs > sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE;
    if (ioctl(v->fd, KVM_GET_REGS, &st.regs) < 0 || ioctl(v->fd, KVM_GET_SREGS, &st.sregs) < 0 ||
        ioctl(v->fd, xreq, xsave) < 0 || ioctl(v->fd, KVM_GET_XCRS, &st.xcrs) < 0 ||
        ioctl(v->fd, KVM_GET_DEBUGREGS, &st.dregs) < 0 ||
        ioctl(v->fd, KVM_GET_LAPIC, &st.lapic) < 0 || ioctl(v->fd, KVM_GET_MP_STATE, &st.mp) < 0 ||
        ioctl(v->fd, KVM_GET_VCPU_EVENTS, &st.ev) < 0) {
        free(xsave);
        return vs_error_errno(err, "vCPU %u: reading state", v->id);
    }
    if (v->id == 0)
        msr_filter(v);
    size_t msz = sizeof(struct kvm_msrs) + m->nmsrs * sizeof(struct kvm_msr_entry);
    struct kvm_msrs *msrs = calloc(1, msz);
    if (!msrs) {
        free(xsave);
        return vs_error(err, ENOMEM, "out of memory");
    }
    msrs->nmsrs = m->nmsrs;
    for (unsigned i = 0; i < m->nmsrs; i++)
        msrs->entries[i].index = m->msr_list[i];
    int got = ioctl(v->fd, KVM_GET_MSRS, msrs);
    if (got < 0) {
        free(xsave);
        free(msrs);
        return vs_error_errno(err, "vCPU %u: KVM_GET_MSRS", v->id);
    }
    state_begin(w, "x86.vcpu", v->id, 1);
    put_blob(w, &st.regs, sizeof(st.regs));
    put_blob(w, &st.sregs, sizeof(st.sregs));
    put_blob(w, xsave, (uint32_t)xs);
    put_blob(w, &st.xcrs, sizeof(st.xcrs));
    put_blob(w, &st.dregs, sizeof(st.dregs));
    put_blob(w, &st.lapic, sizeof(st.lapic));
    put_blob(w, &st.mp, sizeof(st.mp));
    put_blob(w, &st.ev, sizeof(st.ev));
    state_put_u32(w, (uint32_t)got);
    for (int i = 0; i < got; i++) {
        state_put_u32(w, msrs->entries[i].index);
        state_put_u64(w, msrs->entries[i].data);
    }
    state_end(w);
    free(xsave);
    free(msrs);
    return 0;
}

int x86_vcpu_load(struct x86_vcpu *v, struct state_reader *r, bool reset, vs_err *err)
{
    struct vcpu_regs st;
    uint32_t version, n, xs;
    if (state_find(r, "x86.vcpu", v->id, &version, err) < 0)
        return -1;
    if (version != 1)
        return vs_error(err, EINVAL, "x86.vcpu state version %u is not supported", version);
    if (get_blob(r, &st.regs, sizeof(st.regs), "regs", err) < 0 ||
        get_blob(r, &st.sregs, sizeof(st.sregs), "sregs", err) < 0 ||
        state_get_u32(r, &xs, err) < 0)
        return -1;
    size_t want = xsave_size(v);
    if (xs != want)
        return vs_error(err, EINVAL,
                        "vCPU state: XSAVE area is %u bytes, this host uses %zu (different CPU)",
                        xs, want);
    void *xsave = calloc(1, xs);
    if (!xsave)
        return vs_error(err, ENOMEM, "out of memory");
    if (state_get(r, xsave, xs, err) < 0 ||
        get_blob(r, &st.xcrs, sizeof(st.xcrs), "xcrs", err) < 0 ||
        get_blob(r, &st.dregs, sizeof(st.dregs), "debugregs", err) < 0 ||
        get_blob(r, &st.lapic, sizeof(st.lapic), "lapic", err) < 0 ||
        get_blob(r, &st.mp, sizeof(st.mp), "mp_state", err) < 0 ||
        get_blob(r, &st.ev, sizeof(st.ev), "events", err) < 0 || state_get_u32(r, &n, err) < 0) {
        free(xsave);
        return -1;
    }
    if (n > 4096) {
        free(xsave);
        return vs_error(err, EINVAL, "vCPU state: %u MSRs", n);
    }
    struct kvm_msrs *msrs = calloc(1, sizeof(*msrs) + n * sizeof(struct kvm_msr_entry));
    if (!msrs) {
        free(xsave);
        return vs_error(err, ENOMEM, "out of memory");
    }
    uint32_t kept = 0;
    int tsc_khz = reset ? 0 : ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t index;
        uint64_t d;
        if (state_get_u32(r, &index, err) < 0 || state_get_u64(r, &d, err) < 0) {
            free(xsave);
            free(msrs);
            return -1;
        }
        /* MSR_IA32_TSC, MSR_IA32_TSC_ADJUST: left alone for a reset. */
        if (reset && (index == 0x10 || index == 0x3b))
            continue;
        if (index == 0x10 && v->m->restore_advance_ns && tsc_khz > 0)
            d += (uint64_t)((unsigned __int128)v->m->restore_advance_ns * (unsigned)tsc_khz /
                            1000000u);
        msrs->entries[kept].index = index;
        msrs->entries[kept].data = d;
        kept++;
    }
    n = kept;
    msrs->nmsrs = n;
    /* QEMU's order: segments and control registers before the rest. */
    int rc = 0;
    if (ioctl(v->fd, KVM_SET_SREGS, &st.sregs) < 0 || ioctl(v->fd, KVM_SET_REGS, &st.regs) < 0 ||
        ioctl(v->fd, KVM_SET_XSAVE, xsave) < 0 || ioctl(v->fd, KVM_SET_XCRS, &st.xcrs) < 0)
        rc = vs_error_errno(err, "vCPU %u: restoring registers", v->id);
    if (!rc) {
        int set = ioctl(v->fd, KVM_SET_MSRS, msrs);
        if (set < 0 || (uint32_t)set != n)
            rc = vs_error(err, EINVAL, "vCPU %u: KVM refused saved MSR 0x%x", v->id,
                          set >= 0 && (uint32_t)set < n ? msrs->entries[set].index : 0);
    }
    if (!rc &&
        (ioctl(v->fd, KVM_SET_MP_STATE, &st.mp) < 0 || ioctl(v->fd, KVM_SET_LAPIC, &st.lapic) < 0 ||
         ioctl(v->fd, KVM_SET_VCPU_EVENTS, &st.ev) < 0 ||
         ioctl(v->fd, KVM_SET_DEBUGREGS, &st.dregs) < 0))
        rc = vs_error_errno(err, "vCPU %u: restoring interrupt state", v->id);
    /* KVM drops a TSC-deadline write while the LAPIC timer is not in
     * TSC-deadline mode, and it was not until KVM_SET_LAPIC just now: set the
     * deadline again (as QEMU does), or a restored guest's timer never fires
     * (RCU stalls, a hung shell). */
    for (uint32_t i = 0; !rc && i < n; i++) {
        if (msrs->entries[i].index != MSR_IA32_TSC_DEADLINE)
            continue;
        uint32_t idx = MSR_IA32_TSC_DEADLINE;
        uint64_t val = msrs->entries[i].data;
        rc = set_msrs(v, &idx, &val, 1, err);
    }
    free(xsave);
    free(msrs);
    return rc;
}
