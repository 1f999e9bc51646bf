/* cgroup v2 device control: v2 has no devices.allow/deny files; a
 * BPF_PROG_TYPE_CGROUP_DEVICE program attached to the cgroup decides each
 * access. The program checks the rules from the last to the first (in
 * OCI, as in v1, a later rule overrides an earlier one) and denies what no
 * rule matches. */
#include "oci/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/bpf.h>

#include "util/cleanup.h"

#define INSN(c, d, s, o, i)                                                                        \
    ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})

struct prog {
    struct bpf_insn *insn;
    size_t n, cap;
};

static int emit(struct prog *p, struct bpf_insn i)
{
    if (p->n == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 64;
        struct bpf_insn *ni = realloc(p->insn, nc * sizeof(*ni));
        if (!ni)
            return -1;
        p->insn = ni;
        p->cap = nc;
    }
    p->insn[p->n++] = i;
    return 0;
}

static unsigned access_bits(const char *a)
{
    unsigned b = 0;
    if (!a || !*a)
        a = "rwm";
    for (; *a; a++)
        b |= *a == 'r' ? BPF_DEVCG_ACC_READ : *a == 'w' ? BPF_DEVCG_ACC_WRITE : BPF_DEVCG_ACC_MKNOD;
    return b;
}

/* One rule: jump to the next one unless it matches, then return allow/deny.
 * Registers: r2 = device type, r3 = access, r4 = major, r5 = minor. */
static int emit_rule(struct prog *p, const struct oci_dev_rule *r)
{
    struct bpf_insn body[8];
    int n = 0;
    if (r->type != 'a')
        body[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, 2, 0, 0,
                         r->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR);
    unsigned acc = access_bits(r->access);
    if (acc != (BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD)) {
        /* matches only if every requested access is in the rule */
        body[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_X, 1, 3, 0, 0);
        body[n++] = INSN(BPF_ALU64 | BPF_AND | BPF_K, 1, 0, 0, (int)~acc);
        body[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, 1, 0, 0, 0);
    }
    if (r->major >= 0)
        body[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, 4, 0, 0, (int)r->major);
    if (r->minor >= 0)
        body[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, 5, 0, 0, (int)r->minor);
    /* fix the jump offsets: each conditional skips to after this rule's
     * two final instructions (mov r0, exit) */
    for (int i = 0; i < n; i++)
        if (BPF_CLASS(body[i].code) == BPF_JMP)
            body[i].off = (short)(n - i - 1 + 2);
    for (int i = 0; i < n; i++)
        if (emit(p, body[i]) < 0)
            return -1;
    if (emit(p, INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, r->allow ? 1 : 0)) < 0 ||
        emit(p, INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)) < 0)
        return -1;
    /* a rule without conditions matches everything: what follows would be
     * unreachable, which the verifier refuses */
    return n == 0 ? 1 : 0;
}

int oci_cgroup_v2_devices(const char *dir, const struct oci_dev_rule *rules, size_t n,
                          const struct oci_dev_rule *extra, size_t n_extra, vs_err *err)
{
    struct prog p = {0};
    /* struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; } */
    emit(&p, INSN(BPF_LDX | BPF_MEM | BPF_W, 2, 1, 0, 0));   /* r2 = access_type */
    emit(&p, INSN(BPF_ALU64 | BPF_MOV | BPF_X, 3, 2, 0, 0)); /* r3 = r2 >> 16 (access) */
    emit(&p, INSN(BPF_ALU64 | BPF_RSH | BPF_K, 3, 0, 0, 16));
    emit(&p, INSN(BPF_ALU64 | BPF_AND | BPF_K, 2, 0, 0, 0xffff)); /* r2 = type */
    emit(&p, INSN(BPF_LDX | BPF_MEM | BPF_W, 4, 1, 4, 0));        /* r4 = major */
    emit(&p, INSN(BPF_LDX | BPF_MEM | BPF_W, 5, 1, 8, 0));        /* r5 = minor */
    int rc = 0; /* 1 once a catch-all rule ended the program */
    for (size_t i = n_extra; i-- > 0 && rc == 0;)
        rc = emit_rule(&p, &extra[i]);
    for (size_t i = n; i-- > 0 && rc == 0;)
        rc = emit_rule(&p, &rules[i]);
    if (rc == 0) {
        emit(&p, INSN(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0));
        rc = emit(&p, INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
    }
    if (rc == 1)
        rc = 0;
    if (rc < 0 || !p.insn) {
        free(p.insn);
        return vs_error(err, ENOMEM, "out of memory");
    }
    /* load without a verifier log (a full log of a long program overflows
     * any small buffer: ENOSPC); on failure load again to get the reason */
    static char log[65536];
    int prog = -1;
    for (int attempt = 0; attempt < 2 && prog < 0; attempt++) {
        union bpf_attr a;
        memset(&a, 0, sizeof(a));
        a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
        a.insns = (uint64_t)(uintptr_t)p.insn;
        a.insn_cnt = (uint32_t)p.n;
        a.license = (uint64_t)(uintptr_t) "GPL";
        if (attempt) {
            log[0] = 0;
            a.log_buf = (uint64_t)(uintptr_t)log;
            a.log_size = sizeof(log);
            a.log_level = 1;
        }
        prog = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof(a));
    }
    free(p.insn);
    if (prog < 0) {
        /* the verifier's first complaint is the line before its summary */
        size_t l = strnlen(log, sizeof(log));
        while (l && log[l - 1] == '\n')
            log[--l] = 0;
        char *last = strrchr(log, '\n');
        if (last && !strncmp(last + 1, "processed", 9)) {
            *last = 0;
            last = strrchr(log, '\n');
        }
        return vs_error_errno(err, "cgroup v2: cannot load the device program (%s)",
                              last ? last + 1 : log);
    }
    cleanup_close int cg = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cg < 0) {
        close(prog);
        return vs_error_errno(err, "cgroup v2: cannot open %s", dir);
    }
    union bpf_attr a;
    memset(&a, 0, sizeof(a));
    a.target_fd = (uint32_t)cg;
    a.attach_bpf_fd = (uint32_t)prog;
    a.attach_type = BPF_CGROUP_DEVICE;
    a.attach_flags = BPF_F_ALLOW_MULTI;
    int r = (int)syscall(SYS_bpf, BPF_PROG_ATTACH, &a, sizeof(a));
    close(prog); /* the attachment holds its own reference */
    if (r < 0)
        return vs_error_errno(err, "cgroup v2: cannot attach the device program to %s", dir);
    return 0;
}
