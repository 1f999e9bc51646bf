/* The translator: RISC-V basic blocks (at most one page, at most
 * MAX_INSNS instructions, ending at the first control transfer or
 * instruction that may change how code is fetched) become x86-64 code.
 *
 * Generated code keeps the hart in rbx, the block's most used guest
 * registers in r12-r14/rbp and the rest in struct rv_hart. Integer
 * operations, branches, jumps and double-precision arithmetic are emitted
 * inline with the semantics of sem.h and fpu.c's host path; loads and stores
 * look up the same TLB as the interpreter inline and call mmu.c's slow paths
 * on a miss; everything else calls rv_sem_exec(), the interpreter's own
 * code. So a fault anywhere is precise: the faulting instruction's pc is
 * stored, the slow path has set cause and tval, and the dispatcher takes the
 * trap as the interpreter would.
 *
 * Each block starts by charging its instruction count to the budget (r15)
 * and returns to the dispatcher when it runs out, so interrupts and stop
 * requests are taken at block boundaries, every batch. Exits to a known pc
 * are chained (patched into a direct jump) once the target is translated,
 * within a page, or anywhere when fetch is untranslated (M-mode, user-mode
 * emulation); other exits and indirect jumps look the target up in a small
 * pc -> code cache inline, which forgets everything on a TLB flush.
 *
 * A block is found by virtual pc, mode and the host address its code came
 * from, so a remapped pc finds other code. Invalidation: translated code
 * comes from RAM pages marked in h->code_pages, which get no store TLB
 * entries, so a store there (the guest's own, from any mode) goes through
 * mmu.c, which records the page; the block ends after that store and the
 * page's blocks are dropped, chains into them undone. FENCE.I and
 * rv_hart_code_changed() (a system call's buffer, another hart's FENCE.I,
 * reset, restore) move h->code_gen on: every block checks it on entry and
 * the dispatcher compares a stale block with memory before running it. */
#include "riscv/jit.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <sys/mman.h>

#include "riscv/exec.h"
#include "riscv/fpu.h"
#include "riscv/mmu.h"
#include "riscv/sem.h"
#include "riscv/trap.h"
#include "riscv/x64.h"

#if defined(__x86_64__)

#define MAX_INSNS 64
#define CODE_SIZE (64u << 20)
#define CODE_SLACK (64u << 10) /* room for one block, checked before translating */
#define META_SIZE (16u << 20)
#define HASH_SIZE 65536
#define JC_SIZE 4096

/* why generated code returned to the dispatcher */
enum jit_exit {
    JX_CHAIN,  /* h->pc is the next block (h->jit_link: the stub to patch, or 0) */
    JX_BUDGET, /* the batch's budget is used up; h->pc is this block's */
    JX_TRAP,   /* h->pc faulted: h->exc_cause/exc_tval */
    JX_EXIT,   /* an instruction asked to leave the batch (rv_sem_exec's RV_RES_EXIT) */
    JX_FLUSH,  /* code changed (FENCE.I, a store to translated code): h->pc is next */
    JX_STALE,  /* the block's code may have changed (h->code_gen moved on); h->pc is its */
};

/* a chained exit: the stub patched into a jump to a block, and the bytes
 * it had, to undo it when the block goes */
struct jit_link {
    uint8_t *stub;
    uint8_t saved[5];
    struct jit_link *next;
};

struct jit_block {
    struct jit_link *incoming;
    uint64_t pc;
    uintptr_t host; /* where its first instruction is in host memory: the physical page */
    uint32_t mode;
    uint32_t n;
    uint32_t gen;     /* h->code_gen its code was last checked at */
    uint8_t *gen_imm; /* where the prologue compares h->code_gen with gen */
    uint8_t *code;
    struct jit_block *next;      /* hash chain */
    struct jit_block *page_next; /* the blocks from the same RAM page */
    struct rv_dentry insns[];
};

struct jc_entry {
    uint64_t pc; /* ^ h->jit_jc_key */
    uint8_t *code;
    struct jit_block *block;
    uint64_t pad;
};

struct rv_jit {
    uint8_t *code, *code_ptr;
    uint64_t (*enter)(struct rv_hart *h, uint8_t *code);
    uint8_t *epilogue;
    uint8_t *meta;
    size_t meta_used;
    struct jit_block *hash[HASH_SIZE];
    struct jc_entry jc[JC_SIZE];
    unsigned jc_epoch;
    /* fetch_flat() for this privilege and TLB generation */
    uint64_t flat_tlb_gen;
    unsigned flat_priv;
    bool flat;
    uint32_t mode;
    uint64_t tlb_gen;
    int64_t start;                  /* budget at the start of the batch */
    uint64_t base;                  /* minstret = base + (start - budget) */
    size_t npages;                  /* of h->code_pages */
    struct jit_block **page_blocks; /* per RAM page: its blocks, through page_next */
    bool pages_used;                /* some code page is marked */
    bool has_fma;                   /* the host has FMA3: fused multiply-adds inline */
    FILE *perf_map;                 /* VESSEL_JIT_PERF_MAP: /tmp/perf-PID.map for perf */
    struct rv_jit_stats stats;
};

#define OFF_X(r) ((int32_t)(offsetof(struct rv_hart, x) + 8 * (r)))
#define OFF_PC ((int32_t)offsetof(struct rv_hart, pc))
#define OFF_BUDGET ((int32_t)offsetof(struct rv_hart, jit_budget))
#define OFF_LINK ((int32_t)offsetof(struct rv_hart, jit_link))
#define OFF_JC_KEY ((int32_t)offsetof(struct rv_hart, jit_jc_key))
#define OFF_RAM_BIAS ((int32_t)offsetof(struct rv_hart, jit_ram_bias))
#define OFF_MSTATUS ((int32_t)offsetof(struct rv_hart, mstatus))
#define OFF_FRM ((int32_t)offsetof(struct rv_hart, frm))
#define OFF_CODE_GEN ((int32_t)offsetof(struct rv_hart, code_gen))
#define OFF_TLB(set, acc)                                                                          \
    ((int32_t)(offsetof(struct rv_hart, tlb) +                                                     \
               ((size_t)(set)*3 + (acc)) * RV_TLB_SIZE * sizeof(struct rv_tlb_entry)))

enum { RAX = X64_RAX, RCX = X64_RCX, RDX = X64_RDX, RBX = X64_RBX, RSI = X64_RSI, RDI = X64_RDI };
/* h->jit_budget lives in r15 while generated code runs (a memory counter
 * would put a store-to-load round trip on every block); the entry loads
 * it and the epilogue stores it back */
#define BUDGET X64_R15
/* and h->jit_ram_bias in r11 (caller-saved: reloaded after every call), so
 * a load in flat user mode is one instruction, [r11 + x[rs1] + imm] */
#define RAM_BIAS X64_R11

static struct x64_mem xr(unsigned r)
{
    return x64_m(RBX, OFF_X(r));
}

static struct x64_mem hfield(int32_t off)
{
    return x64_m(RBX, off);
}

bool rv_jit_available(void)
{
    return true;
}

/* ---- the dispatcher's view of the mode a block was translated in ---- */

/* Is instruction fetch the identity with nothing to check per page? (M-mode
 * without locked PMP entries, or no paging and no PMP: user-mode emulation)
 * Then blocks may chain across pages; otherwise only within a page, and the
 * dispatcher checks the fetch translation of every block it enters. */
static bool fetch_flat(const struct rv_hart *h)
{
    if (h->priv != RV_PRIV_M && ((h->satp >> 60) != 0 || h->pmp_count != 0))
        return false;
    for (unsigned i = 0; i < h->pmp_count; i++)
        if (h->pmpcfg[i] & 0x80)
            return false;
    return true;
}

/* what generated code depends on: privilege, the data TLB set, whether
 * the FPU is on (FP loads and stores are inline only then), flat fetch */
static uint32_t cur_mode(const struct rv_hart *h, struct rv_jit *j)
{
    if (h->tlb_gen != j->flat_tlb_gen || h->priv != j->flat_priv) {
        /* PMP and satp writes flush the TLB: this is all that can change it */
        j->flat = fetch_flat(h);
        j->flat_tlb_gen = h->tlb_gen;
        j->flat_priv = h->priv;
    }
    return h->priv | (h->dset << 2) | ((h->mstatus & RV_MSTATUS_FS) ? 16 : 0) | (j->flat ? 32 : 0);
}

#define MODE_DSET(m) (((m) >> 2) & 3)
#define MODE_FP(m) (((m)&16) != 0)
#define MODE_FLAT(m) (((m)&32) != 0)

/* The indirect-jump cache maps pc ^ h->jit_jc_key to code. The key holds
 * the mode (bits 58-63) and an epoch (bits 48-57: above any canonical
 * address's distinct bits), so blocks of several modes live side by side
 * and a new epoch forgets every entry without clearing the table. */
static void jc_set_key(struct rv_hart *h, struct rv_jit *j)
{
    h->jit_jc_key = ((uint64_t)j->mode << 58) | ((uint64_t)j->jc_epoch << 48);
}

static void jc_new_epoch(struct rv_hart *h, struct rv_jit *j)
{
    j->jc_epoch = (j->jc_epoch + 1) & 1023;
    if (!j->jc_epoch)
        memset(j->jc, 0xff, sizeof(j->jc));
    jc_set_key(h, j);
}

static void flush(struct rv_hart *h, struct rv_jit *j)
{
    j->code_ptr = j->epilogue + 64; /* keep the entry trampoline and epilogue */
    j->meta_used = 0;
    memset(j->hash, 0, sizeof(j->hash));
    memset(j->page_blocks, 0, j->npages * sizeof(*j->page_blocks));
    memset(j->jc, 0xff, sizeof(j->jc)); /* pc ~0 (odd) matches nothing */
    if (j->pages_used)
        memset(h->code_pages, 0, j->npages);
    j->pages_used = false;
    __atomic_store_n(&h->code_written, false, __ATOMIC_RELAXED);
    h->jit_link = 0;
    j->tlb_gen = h->tlb_gen;
    j->stats.flushes++;
}

static unsigned hash_of(uintptr_t host, uint32_t mode);

/* Take a block out of the table, undoing the chains into it (its code
 * stays until the next flush: nothing jumps to it any more). */
static void unlink_block(struct rv_hart *h, struct rv_jit *j, struct jit_block *b)
{
    for (struct jit_link *l = b->incoming; l; l = l->next)
        memcpy(l->stub, l->saved, 5);
    b->incoming = NULL;
    for (struct jit_block **pp = &j->hash[hash_of(b->host, b->mode)]; *pp; pp = &(*pp)->next)
        if (*pp == b) {
            *pp = b->next;
            break;
        }
    jc_new_epoch(h, j);
}

/* Drop the blocks translated from one RAM page (a store reached it),
 * undoing the chains into them. */
static void invalidate_page(struct rv_hart *h, struct rv_jit *j, uint64_t page)
{
    __atomic_store_n(&h->code_written, false, __ATOMIC_RELAXED);
    if (page >= j->npages) {
        flush(h, j);
        return;
    }
    for (struct jit_block *b = j->page_blocks[page]; b; b = b->page_next)
        unlink_block(h, j, b);
    j->page_blocks[page] = NULL;
    jc_new_epoch(h, j);
    h->jit_link = 0;
    h->code_pages[page] = 0; /* stores go fast again until code comes from it */
    j->stats.invalidations++;
}

/* by where the code is, not its virtual pc: processes that map different
 * code at the same addresses do not share buckets */
static unsigned hash_of(uintptr_t host, uint32_t mode)
{
    return (unsigned)(((host >> 1) ^ (host >> 17) ^ ((uint64_t)mode << 11)) & (HASH_SIZE - 1));
}

/* A block is the code at a virtual pc, translated from a physical page
 * (host address) in a mode: when the mapping changes the same pc finds
 * another block, or none. */
static struct jit_block *lookup(struct rv_jit *j, uint64_t pc, uint32_t mode, uintptr_t host)
{
    for (struct jit_block *b = j->hash[hash_of(host, mode)]; b; b = b->next)
        if (b->pc == pc && b->mode == mode && b->host == host)
            return b;
    return NULL;
}

/* ---- helpers called from generated code (SysV ABI) ---- */

struct jit_ld {
    uint64_t val, ok;
};

/* kind: length | 0x10 for sign extension */
static struct jit_ld jit_load(struct rv_hart *h, uint64_t va, uint64_t kind)
{
    unsigned len = kind & 0xf;
    uint64_t v;
    if (!rv_load_slow(h, va, len, &v))
        return (struct jit_ld){0, 0};
    if (kind & 0x10) {
        if (len == 1)
            v = (uint64_t)(int64_t)(int8_t)v;
        else if (len == 2)
            v = (uint64_t)(int64_t)(int16_t)v;
        else if (len == 4)
            v = rv_sext32(v);
    }
    return (struct jit_ld){v, 1};
}

/* 0 stored, 1 trap, 2 stored into translated code */
static uint64_t jit_store(struct rv_hart *h, uint64_t va, uint64_t val, uint64_t len)
{
    if (!rv_store_slow(h, va, (unsigned)len, val))
        return 1;
    return __atomic_load_n(&h->code_written, __ATOMIC_RELAXED) ? 2 : 0;
}

/* Inline double-precision arithmetic leaves its exception flags in MXCSR
 * (sticky, like fflags): fold them into h->fflags before anything else
 * looks at fflags or runs the FPU, and whenever generated code returns. */
static void fold_mxcsr(struct rv_hart *h)
{
    uint32_t m;
    __asm__ volatile("stmxcsr %0" : "=m"(m));
    if (!(m & 0x3f))
        return;
    uint32_t f = 0;
    if (m & 0x01)
        f |= 0x10; /* IE: NV */
    if (m & 0x04)
        f |= 0x08; /* ZE: DZ */
    if (m & 0x08)
        f |= 0x04; /* OE: OF */
    if (m & 0x10)
        f |= 0x02; /* UE: UF */
    if (m & 0x20)
        f |= 0x01; /* PE: NX */
    h->fflags |= f;
    m &= ~0x3fu;
    __asm__ volatile("ldmxcsr %0" ::"m"(m));
}

/* Drop MXCSR's flags without counting them: C code (fpu.c's host path)
 * leaves the flags of operations it has already put in fflags there. */
static void clear_mxcsr(void)
{
    uint32_t m;
    __asm__ volatile("stmxcsr %0" : "=m"(m));
    if (m & 0x3f) {
        m &= ~0x3fu;
        __asm__ volatile("ldmxcsr %0" ::"m"(m));
    }
}

/* An OP-FP or FMADD-family instruction the generated code did not do
 * itself: the FPU's own code. */
static bool jit_fpu(struct rv_hart *h, uint32_t insn)
{
    fold_mxcsr(h);
    bool ok = rv_fpu_exec(h, insn);
    clear_mxcsr();
    return ok;
}

/* Any instruction, through the interpreter's semantics. unexec: how many
 * instructions of the block come after this one (already charged). */
static uint64_t jit_exec(struct rv_hart *h, const struct rv_dentry *e, uint64_t unexec)
{
    struct rv_jit *j = h->jit;
    fold_mxcsr(h);
    int64_t used = j->start - h->jit_budget;
    h->minstret = j->base + (uint64_t)used - unexec;
    enum rv_res r = rv_sem_exec(h, e);
    clear_mxcsr();
    j->base = h->minstret + unexec - (uint64_t)used;
    if (r == RV_RES_CONT && __atomic_load_n(&h->code_written, __ATOMIC_RELAXED))
        return RV_RES_EXIT + 8; /* continue, but drop the translations first */
    return r;
}

/* ---- code generation ---- */

enum slow_kind { SLOW_LOAD, SLOW_STORE };

/* the first four are callee-saved; r8-r10 are not, so calls out of
 * generated code store them (if written) and load them again */
#define NCACHE 7
#define NCACHE_SAVED 4
static const int cache_hregs[NCACHE] = {X64_R12, X64_R13, X64_R14, X64_RBP,
                                        X64_R8,  X64_R9,  X64_R10};

struct slow {
    enum slow_kind kind;
    unsigned i;      /* instruction index */
    uint8_t *jcc[2]; /* jumps to patch to the slow path */
    uint8_t *resume; /* back to the fast path */
    bool addr_lost;  /* rax does not hold the address: compute it again */
};

struct gen {
    struct x64 x;
    struct rv_hart *h;
    struct rv_jit *j;
    struct jit_block *b;
    struct slow slow[MAX_INSNS];
    unsigned nslow;
    /* per instruction: where its trap exit is (emitted at the end) */
    uint8_t *trap_jumps[MAX_INSNS][4];
    unsigned ntrap[MAX_INSNS];
    /* guest registers held in host registers for the whole block: loaded
     * after the budget check, stored back before every exit and around
     * calls that may read or write x[] */
    int8_t creg[32];
    unsigned ncached, cached[NCACHE];
    /* Which cached registers the block loads on entry (those it may read
     * before writing) and which hold a value memory does not have yet (set
     * as the code that writes them is emitted, in program order): exits
     * store only those. dirty_at[i]: before instruction i. */
    uint32_t load_mask, dirty;
    uint32_t dirty_at[MAX_INSNS];
    /* the block's body, after the budget check and the register loads: a
     * jump back to the block's own start goes here directly */
    uint8_t *body;
    uint8_t *loop_broke[4];
    unsigned nloop_broke;
    /* conditional branches inside the block: the taken side leaves from the
     * tail, the fall-through goes on inline */
    struct {
        uint8_t *jcc;
        unsigned i;
        uint64_t target;
        uint32_t dirty;
    } taken[MAX_INSNS];
    unsigned ntaken;
};

static void call_abs(struct x64 *x, const void *fn)
{
    if (x64_rel32_ok(x->p + 5, fn)) {
        x64_call(x, fn);
    } else {
        x64_mov_imm(x, RAX, (uint64_t)(uintptr_t)fn);
        x64_call_r(x, RAX);
    }
    x64_load(x, 64, RAM_BIAS, hfield(OFF_RAM_BIAS)); /* the callee may have used r11 */
}

/* ---- guest registers: cached in a host register, or in struct rv_hart ---- */

static int creg(const struct gen *g, unsigned r)
{
    return r ? g->creg[r] : -1;
}

/* dst = x[r] */
static void get_x(struct gen *g, int dst, unsigned r)
{
    int c = creg(g, r);
    if (c >= 0)
        x64_mov_rr(&g->x, 64, dst, c);
    else
        x64_load(&g->x, 64, dst, xr(r)); /* x[0] is 0 in memory too */
}

/* x[r] = src */
static void put_x(struct gen *g, unsigned r, int src)
{
    int c = creg(g, r);
    if (!r)
        return;
    if (c >= 0) {
        g->dirty |= 1u << r;
        x64_mov_rr(&g->x, 64, c, src);
    } else {
        x64_store(&g->x, 64, xr(r), src);
    }
}

/* x[r] = v (clobbers rax for values that do not fit 32 bits signed) */
static void put_x_const(struct gen *g, unsigned r, uint64_t v)
{
    int c = creg(g, r);
    if (!r)
        return;
    if (c >= 0) {
        g->dirty |= 1u << r;
        x64_mov_imm(&g->x, c, v);
    } else if ((int64_t)v >= INT32_MIN && (int64_t)v <= INT32_MAX) {
        x64_store_imm(&g->x, 64, xr(r), (int32_t)v);
    } else {
        x64_mov_imm(&g->x, RAX, v);
        x64_store(&g->x, 64, xr(r), RAX);
    }
}

/* dst = x[r], nothing if dst already is x[r]'s host register */
static void load_into(struct gen *g, int dst, unsigned r)
{
    if (r == 0)
        x64_alu_rr(&g->x, 32, X64_XOR, dst, dst);
    else if (creg(g, r) != dst)
        get_x(g, dst, r);
}

/* dst op= x[r] */
static void alu_x(struct gen *g, unsigned bits, enum x64_alu op, int dst, unsigned r)
{
    int c = creg(g, r);
    if (c >= 0)
        x64_alu_rr(&g->x, bits, op, dst, c);
    else
        x64_alu_rm(&g->x, bits, op, dst, xr(r));
}

/* store the cached registers in mask (dirty ones) back to x[] */
static void cache_store(struct gen *g, uint32_t mask)
{
    for (unsigned k = 0; k < g->ncached; k++)
        if (mask & (1u << g->cached[k]))
            x64_store(&g->x, 64, xr(g->cached[k]), g->creg[g->cached[k]]);
}

/* before code that reads x[] or leaves, at the point being emitted */
static void cache_writeback(struct gen *g)
{
    cache_store(g, g->dirty);
}

/* after a call that may have written x[]: every cached register is
 * memory's value again */
static void cache_reload(struct gen *g)
{
    for (unsigned k = 0; k < g->ncached; k++)
        x64_load(&g->x, 64, g->creg[g->cached[k]], xr(g->cached[k]));
}

/* A call to C code that leaves x[] alone: the caller-saved host registers
 * that hold guest registers go to x[] around it (dirty: those written by
 * this point). */
static void call_saving(struct gen *g, const void *fn, uint32_t dirty)
{
    for (unsigned k = NCACHE_SAVED; k < g->ncached; k++)
        if (dirty & (1u << g->cached[k]))
            x64_store(&g->x, 64, xr(g->cached[k]), g->creg[g->cached[k]]);
    call_abs(&g->x, fn);
    for (unsigned k = NCACHE_SAVED; k < g->ncached; k++)
        x64_load(&g->x, 64, g->creg[g->cached[k]], xr(g->cached[k]));
}

/* on entry: only the registers the block may read before it writes them */
static void cache_load_entry(struct gen *g)
{
    for (unsigned k = 0; k < g->ncached; k++)
        if (g->load_mask & (1u << g->cached[k]))
            x64_load(&g->x, 64, g->creg[g->cached[k]], xr(g->cached[k]));
}

static void exit_with(struct gen *g, enum jit_exit why)
{
    x64_mov_imm(&g->x, RAX, why);
    x64_jmp(&g->x, g->j->epilogue);
}

static void exit_via_jc(struct gen *g);

/* Leave to a known pc, through a stub the dispatcher may patch into a jump
 * to the target's block (its first five bytes). */
static void exit_chain(struct gen *g, uint64_t target, uint32_t dirty)
{
    if (target == g->b->pc && g->body && g->nloop_broke < 4) {
        /* a loop within the block: charge the budget and go round again
         * with the registers where they are */
        x64_alu_ri(&g->x, 64, X64_SUB, BUDGET, (int32_t)g->b->n);
        g->loop_broke[g->nloop_broke++] = x64_jcc(&g->x, X64_CC_L, g->x.p);
        x64_jmp(&g->x, g->body);
        return;
    }
    cache_store(g, dirty); /* before the stub: a patched stub jumps from its first byte */
    uint8_t *stub = g->x.p;
    x64_mov_imm(&g->x, RAX, target); /* >= 5 bytes: room for the jmp */
    x64_store(&g->x, 64, hfield(OFF_PC), RAX);
    if (MODE_FLAT(g->b->mode) || (target >> 12) == (g->b->pc >> 12)) {
        x64_mov_imm(&g->x, RCX, (uint64_t)(uintptr_t)stub);
        x64_store(&g->x, 64, hfield(OFF_LINK), RCX);
        exit_with(g, JX_CHAIN);
    } else {
        /* another page under translation or PMP: not chained (the mapping
         * may change without this block being retranslated) but looked up
         * in the indirect-jump cache, which forgets on every TLB flush */
        exit_via_jc(g);
    }
}

static void exit_dynamic(struct gen *g);

/* Go to the block for the pc in rax (already in h->pc, registers written
 * back) through the indirect-jump cache; on a miss, to the dispatcher. */
static void exit_via_jc(struct gen *g)
{
    struct x64 *x = &g->x;
    x64_mov_rr(x, 32, RCX, RAX);
    x64_shift_ri(x, 32, X64_SHR, RCX, 1);
    x64_alu_ri(x, 32, X64_AND, RCX, JC_SIZE - 1);
    x64_shift_ri(x, 32, X64_SHL, RCX, 5);
    x64_mov_imm(x, RDX, (uint64_t)(uintptr_t)g->j->jc);
    x64_load(x, 64, RSI, hfield(OFF_JC_KEY));
    x64_alu_rr(x, 64, X64_XOR, RSI, RAX);
    x64_alu_rm(x, 64, X64_CMP, RSI, x64_mi(RDX, RCX, 1, 0));
    uint8_t *miss = x64_jcc(x, X64_CC_NE, x->p);
    x64_jmp_m(x, x64_mi(RDX, RCX, 1, 8));
    x64_patch_rel32(miss, x->p);
    exit_dynamic(g);
}

/* Leave with h->pc already set and nothing to chain. */
static void exit_dynamic(struct gen *g)
{
    x64_store_imm(&g->x, 64, hfield(OFF_LINK), 0);
    exit_with(g, JX_CHAIN);
}

/* Stop after instruction i (done) with h->pc set: give back the budget of
 * the instructions after it. */
static void refund(struct gen *g, unsigned i)
{
    unsigned unexec = g->b->n - i - 1;
    if (unexec)
        x64_alu_ri(&g->x, 64, X64_ADD, BUDGET, (int32_t)unexec);
}

/* rax = x[rs1] + imm, the effective address */
static void emit_addr(struct gen *g, const struct rv_dentry *e)
{
    get_x(g, RAX, e->rs1);
    if (e->imm)
        x64_lea(&g->x, RAX, x64_m(RAX, (int32_t)e->imm));
}

/* TLB lookup of rax (len bytes) in the block's data set: on a hit rax becomes
 * the host address; misses jump to slow path s. */
static void emit_tlb(struct gen *g, unsigned acc, unsigned len, struct slow *s)
{
    /* The entry is picked by the first byte's page, its tag compared with
     * the last byte's page: an access that crosses a page misses, as does
     * a wrong page (the slow path splits and checks both). */
    _Static_assert(RV_TLB_SIZE == 256 && sizeof(struct rv_tlb_entry) == 16, "entry index");
    struct x64 *x = &g->x;
    int32_t tlb = OFF_TLB(MODE_DSET(g->b->mode), acc);
    x64_mov_rr(x, 64, RDX, RAX);
    x64_shift_ri(x, 64, X64_SHR, RDX, 8);
    x64_alu_ri(x, 32, X64_AND, RDX, 0xff0); /* ((va >> 12) & 255) * 16 */
    if (len > 1)
        x64_lea(x, RCX, x64_m(RAX, (int32_t)len - 1));
    else
        x64_mov_rr(x, 64, RCX, RAX);
    x64_shift_ri(x, 64, X64_SHR, RCX, 12);
    x64_alu_rm(x, 64, X64_CMP, RCX, x64_mi(RBX, RDX, 1, tlb));
    s->jcc[0] = x64_jcc(x, X64_CC_NE, x->p);
    s->jcc[1] = NULL;
    x64_alu_rm(x, 64, X64_ADD, RAX, x64_mi(RBX, RDX, 1, tlb + 8));
}

/* Loads where data addresses are physical and unchecked (U-mode with no
 * paging and no PMP: user-mode emulation): RAM is one range, so a bounds
 * check replaces the TLB lookup. rax keeps the address for the slow path
 * (outside RAM: MMIO or a fault); *m becomes the host operand. */
static bool emit_flat(struct gen *g, uint32_t mode, unsigned len, struct slow *s, struct x64_mem *m)
{
    struct x64 *x = &g->x;
    const struct rv_bus *bus = &g->h->bus;
    int64_t d = (int64_t)len - 1 - (int64_t)bus->ram_base;
    if (!MODE_FLAT(mode) || (mode & 3) != RV_PRIV_U || MODE_DSET(mode) != 0 || d < INT32_MIN ||
        d > INT32_MAX)
        return false;
    /* rcx = offset of the last byte in RAM; below ram_size or slow */
    x64_lea(x, RCX, x64_m(RAX, (int32_t)d));
    x64_alu_rm(
        x, 64, X64_CMP, RCX,
        x64_m(RBX, (int32_t)(offsetof(struct rv_hart, bus) + offsetof(struct rv_bus, ram_size))));
    s->jcc[0] = x64_jcc(x, X64_CC_AE, x->p);
    s->jcc[1] = NULL;
    x64_alu_rm(x, 64, X64_ADD, RCX,
               x64_m(RBX, (int32_t)(offsetof(struct rv_hart, bus) + offsetof(struct rv_bus, ram))));
    *m = x64_m(RCX, -(int32_t)(len - 1));
    return true;
}

/* access length of a load or store (integer or FP) */
static unsigned mem_len(unsigned op)
{
    switch (op) {
    case RV_OP_LB:
    case RV_OP_LBU:
    case RV_OP_SB:
        return 1;
    case RV_OP_LH:
    case RV_OP_LHU:
    case RV_OP_SH:
        return 2;
    case RV_OP_LW:
    case RV_OP_LWU:
    case RV_OP_SW:
    case RV_OP_FLW:
    case RV_OP_FSW:
        return 4;
    default:
        return 8;
    }
}

static bool is_fp_mem(unsigned op)
{
    return op == RV_OP_FLW || op == RV_OP_FLD || op == RV_OP_FSW || op == RV_OP_FSD;
}

static struct x64_mem fr(unsigned r)
{
    return x64_m(RBX, (int32_t)(offsetof(struct rv_hart, f) + 8 * r));
}

static bool load_signed(unsigned op)
{
    return op == RV_OP_LB || op == RV_OP_LH || op == RV_OP_LW;
}

/* A load in flat user mode (see emit_flat): the bounds check off to the
 * side, the access itself [r11 + x[rs1] + imm] straight from rs1's host
 * register, so a chain of dependent loads pays only the loads. False if
 * the mode or the numbers do not allow it. */
static bool emit_flat_load(struct gen *g, const struct rv_dentry *e, unsigned len, struct slow *s,
                           struct x64_mem *m)
{
    struct x64 *x = &g->x;
    const struct rv_bus *bus = &g->h->bus;
    uint32_t mode = g->b->mode;
    int64_t d = (int64_t)e->imm + (int64_t)len - 1 - (int64_t)bus->ram_base;
    if (!MODE_FLAT(mode) || (mode & 3) != RV_PRIV_U || MODE_DSET(mode) != 0 || d < INT32_MIN ||
        d > INT32_MAX)
        return false;
    int base = creg(g, e->rs1);
    if (base < 0) {
        get_x(g, RAX, e->rs1);
        base = RAX;
    }
    /* rcx = offset of the last byte in RAM; below ram_size or slow */
    x64_lea(x, RCX, x64_m(base, (int32_t)d));
    x64_alu_rm(
        x, 64, X64_CMP, RCX,
        x64_m(RBX, (int32_t)(offsetof(struct rv_hart, bus) + offsetof(struct rv_bus, ram_size))));
    s->jcc[0] = x64_jcc(x, X64_CC_AE, x->p);
    s->jcc[1] = NULL;
    s->addr_lost = true;
    *m = x64_mi(RAM_BIAS, base, 1, (int32_t)e->imm);
    return true;
}

static void emit_load(struct gen *g, unsigned i, const struct rv_dentry *e)
{
    struct x64 *x = &g->x;
    unsigned len = mem_len(e->op);
    struct slow *s = &g->slow[g->nslow++];
    s->kind = SLOW_LOAD;
    s->i = i;
    s->addr_lost = false;
    struct x64_mem m = x64_m(RAX, 0);
    if (!emit_flat_load(g, e, len, s, &m)) {
        emit_addr(g, e);
        if (!emit_flat(g, g->b->mode, len, s, &m))
            emit_tlb(g, RV_ACC_LOAD, len, s);
    }
    if (len == 8)
        x64_load(x, 64, RAX, m);
    else if (load_signed(e->op))
        x64_movsx(x, len * 8, RAX, m);
    else if (len == 4)
        x64_load(x, 32, RAX, m);
    else
        x64_movzx(x, len * 8, RAX, m);
    s->resume = x->p;
    if (e->op == RV_OP_FLW || e->op == RV_OP_FLD) {
        if (e->op == RV_OP_FLW) { /* NaN-boxed */
            x64_mov_imm(x, RCX, 0xffffffff00000000ull);
            x64_alu_rr(x, 64, X64_OR, RAX, RCX);
        }
        x64_store(x, 64, fr(e->rd), RAX);
        x64_alu_mi(x, 64, X64_OR, hfield(OFF_MSTATUS), (int32_t)RV_MSTATUS_FS);
    } else {
        put_x(g, e->rd, RAX);
    }
}

static void emit_store(struct gen *g, unsigned i, const struct rv_dentry *e)
{
    struct x64 *x = &g->x;
    unsigned len = mem_len(e->op);
    struct slow *s = &g->slow[g->nslow++];
    s->kind = SLOW_STORE;
    s->i = i;
    s->addr_lost = false;
    emit_addr(g, e);
    emit_tlb(g, RV_ACC_STORE, len, s);
    if (is_fp_mem(e->op))
        x64_load(x, 64, RCX, fr(e->rs2));
    else
        get_x(g, RCX, e->rs2);
    x64_store(x, len * 8, x64_m(RAX, 0), RCX);
    s->resume = x->p;
}

/* pc of instruction i into h->pc */
static void set_pc(struct gen *g, uint64_t pc)
{
    x64_mov_imm(&g->x, RAX, pc);
    x64_store(&g->x, 64, hfield(OFF_PC), RAX);
}

static void trap_jump(struct gen *g, unsigned i, uint8_t *disp)
{
    g->trap_jumps[i][g->ntrap[i]++] = disp;
}

/* Anything else: rv_sem_exec() with h->pc at the instruction. Returns
 * after the call with eax = 0 for "go on"; other results leave. */
static void emit_helper(struct gen *g, unsigned i, const struct rv_dentry *e, bool ends)
{
    struct x64 *x = &g->x;
    set_pc(g, e->pc);
    x64_store(x, 64, hfield(OFF_BUDGET), BUDGET); /* jit_exec computes minstret from it */
    x64_mov_rr(x, 64, RDI, RBX);
    x64_mov_imm(x, RSI, (uint64_t)(uintptr_t)e);
    x64_mov_imm(x, RDX, g->b->n - i - 1);
    cache_writeback(g);
    call_abs(x, (const void *)jit_exec);
    cache_reload(g);
    /* RV_RES_CONT = 0, RV_RES_EXIT = 1, RV_RES_TRAP = 2, flush = 9 */
    x64_alu_ri(x, 32, X64_CMP, RAX, RV_RES_TRAP);
    trap_jump(g, i, x64_jcc(x, X64_CC_E, x->p));
    x64_test_rr(x, 32, RAX, RAX);
    uint8_t *cont = x64_jcc(x, X64_CC_E, x->p);
    /* EXIT (1) or flush (9): h->pc is the next instruction */
    refund(g, i);
    x64_alu_ri(x, 32, X64_CMP, RAX, RV_RES_EXIT);
    uint8_t *flush = x64_jcc(x, X64_CC_NE, x->p);
    exit_with(g, JX_EXIT);
    x64_patch_rel32(flush, x->p);
    exit_with(g, JX_FLUSH);
    x64_patch_rel32(cont, x->p);
    if (ends) {
        refund(g, i);
        if (e->op == RV_OP_FENCE_I)
            exit_with(g, JX_FLUSH);
        else
            exit_dynamic(g);
    }
}

/* An ALU operation inline where x86 has it, else a call of its sem.h helper. */
static void emit_alu(struct gen *g, const struct rv_dentry *e)
{
    struct x64 *x = &g->x;
    unsigned op = e->op, rd = e->rd;
    int32_t imm = (int32_t)e->imm;
    if (!rd)
        return;
    bool w = false;
    enum x64_alu aop;
    enum x64_shift sop;
    switch (op) {
    case RV_OP_ADDI:
        if (e->rs1 == 0) {
            put_x_const(g, rd, (uint64_t)(int64_t)imm);
            return;
        }
        aop = X64_ADD;
        goto alu_imm;
    case RV_OP_ANDI:
        aop = X64_AND;
        goto alu_imm;
    case RV_OP_ORI:
        aop = X64_OR;
        goto alu_imm;
    case RV_OP_XORI:
        aop = X64_XOR;
        goto alu_imm;
    case RV_OP_ADDIW:
        aop = X64_ADD;
        w = true;
        goto alu_imm;
    case RV_OP_ADD:
        aop = X64_ADD;
        goto alu_reg;
    case RV_OP_SUB:
        aop = X64_SUB;
        goto alu_reg;
    case RV_OP_AND:
        aop = X64_AND;
        goto alu_reg;
    case RV_OP_OR:
        aop = X64_OR;
        goto alu_reg;
    case RV_OP_XOR:
        aop = X64_XOR;
        goto alu_reg;
    case RV_OP_ADDW:
        aop = X64_ADD;
        w = true;
        goto alu_reg;
    case RV_OP_SUBW:
        aop = X64_SUB;
        w = true;
        goto alu_reg;
    case RV_OP_SLLI:
        sop = X64_SHL;
        goto sh_imm;
    case RV_OP_SRLI:
        sop = X64_SHR;
        goto sh_imm;
    case RV_OP_SRAI:
        sop = X64_SAR;
        goto sh_imm;
    case RV_OP_RORI:
        sop = X64_ROR;
        goto sh_imm;
    case RV_OP_SLLIW:
        sop = X64_SHL;
        w = true;
        goto sh_imm;
    case RV_OP_SRLIW:
        sop = X64_SHR;
        w = true;
        goto sh_imm;
    case RV_OP_SRAIW:
        sop = X64_SAR;
        w = true;
        goto sh_imm;
    case RV_OP_SLL:
        sop = X64_SHL;
        goto sh_reg;
    case RV_OP_SRL:
        sop = X64_SHR;
        goto sh_reg;
    case RV_OP_SRA:
        sop = X64_SAR;
        goto sh_reg;
    case RV_OP_SLLW:
        sop = X64_SHL;
        w = true;
        goto sh_reg;
    case RV_OP_SRLW:
        sop = X64_SHR;
        w = true;
        goto sh_reg;
    case RV_OP_SRAW:
        sop = X64_SAR;
        w = true;
        goto sh_reg;
    case RV_OP_SLT:
    case RV_OP_SLTU:
        get_x(g, RAX, e->rs1);
        alu_x(g, 64, X64_CMP, RAX, e->rs2);
        goto set;
    case RV_OP_SLTI:
    case RV_OP_SLTIU:
        get_x(g, RAX, e->rs1);
        x64_alu_ri(x, 64, X64_CMP, RAX, imm);
    set:
        x64_setcc(x, op == RV_OP_SLT || op == RV_OP_SLTI ? X64_CC_L : X64_CC_B, RAX);
        x64_movzx8_rr(x, RAX, RAX);
        put_x(g, rd, RAX);
        return;
    case RV_OP_MUL:
    case RV_OP_MULW:
        get_x(g, RAX, e->rs1);
        get_x(g, RCX, e->rs2);
        x64_imul_rr(x, op == RV_OP_MULW ? 32 : 64, RAX, RCX);
        if (op == RV_OP_MULW)
            x64_movsxd_rr(x, RAX, RAX);
        put_x(g, rd, RAX);
        return;
    case RV_OP_SH1ADD:
    case RV_OP_SH2ADD:
    case RV_OP_SH3ADD:
        get_x(g, RAX, e->rs1);
        get_x(g, RCX, e->rs2);
        x64_lea(x, RAX, x64_mi(RCX, RAX, 2u << (op - RV_OP_SH1ADD), 0));
        put_x(g, rd, RAX);
        return;
    default: {
        /* everything else: the sem.h helper, out of line */
        get_x(g, RDI, e->rs1);
        if (rv_op_is_alu_imm(op))
            x64_mov_imm(x, RSI, (uint64_t)e->imm);
        else
            get_x(g, RSI, e->rs2);
        call_saving(g, (const void *)rv_alu_helpers[op], g->dirty); /* leaves x[] alone */
        put_x(g, rd, RAX);
        return;
    }
    }
    /* compute in rd's host register when it has one (unless rd is also the
     * second operand, which that would overwrite), else in rax */
    int t;
alu_imm:
    t = creg(g, rd) >= 0 ? creg(g, rd) : RAX;
    load_into(g, t, e->rs1);
    if (!(imm == 0 && (aop == X64_ADD || aop == X64_OR || aop == X64_XOR)))
        x64_alu_ri(x, w ? 32 : 64, aop, t, imm);
    goto done;
alu_reg:
    if (!w && (aop == X64_ADD || aop == X64_OR || aop == X64_XOR) && (!e->rs1 || !e->rs2)) {
        /* with x0: a move (c.mv is add rd, x0, rs2) */
        unsigned src = e->rs1 ? e->rs1 : e->rs2;
        t = creg(g, rd) >= 0 ? creg(g, rd) : RAX;
        load_into(g, t, src);
        goto done;
    }
    t = creg(g, rd) >= 0 && rd != e->rs2 ? creg(g, rd) : RAX;
    load_into(g, t, e->rs1);
    alu_x(g, w ? 32 : 64, aop, t, e->rs2);
    goto done;
sh_imm:
    t = creg(g, rd) >= 0 ? creg(g, rd) : RAX;
    load_into(g, t, e->rs1);
    if (imm)
        x64_shift_ri(x, w ? 32 : 64, sop, t, (uint8_t)imm);
    goto done;
sh_reg:
    t = creg(g, rd) >= 0 ? creg(g, rd) : RAX;
    get_x(g, RCX, e->rs2); /* before t is written: rd may be rs2 */
    load_into(g, t, e->rs1);
    x64_shift_rcl(x, w ? 32 : 64, sop, t);
done:
    if (w)
        x64_movsxd_rr(x, t, t);
    if (t != creg(g, rd))
        put_x(g, rd, t);
    else
        g->dirty |= 1u << rd;
}

static enum x64_cc branch_cc(unsigned op)
{
    switch (op) {
    case RV_OP_BEQ:
        return X64_CC_E;
    case RV_OP_BNE:
        return X64_CC_NE;
    case RV_OP_BLT:
        return X64_CC_L;
    case RV_OP_BGE:
        return X64_CC_GE;
    case RV_OP_BLTU:
        return X64_CC_B;
    default:
        return X64_CC_AE;
    }
}

/* Does the instruction end a block? (jumps, and whatever may change privilege,
 * translation or the code itself; conditional branches do not: the block
 * goes on along the fall-through path, a trace) */
static bool ends_block(unsigned op)
{
    switch (op) {
    case RV_OP_JAL:
    case RV_OP_JALR:
    case RV_OP_ECALL:
    case RV_OP_EBREAK:
    case RV_OP_MRET:
    case RV_OP_SRET:
    case RV_OP_WFI:
    case RV_OP_SFENCE_VMA:
    case RV_OP_FENCE_I:
    case RV_OP_CSRRW:
    case RV_OP_CSRRS:
    case RV_OP_CSRRC:
    case RV_OP_CSRRWI:
    case RV_OP_CSRRSI:
    case RV_OP_CSRRCI:
    case RV_OP_ILLEGAL:
        return true;
    }
    return false;
}

/* Double-precision operations the host does exactly as RISC-V does
 * (fpu.c's host path, inline): add, sub, mul, div, sqrt and the fused
 * multiply-adds in round-to-nearest-even on non-NaN operands, a NaN result
 * made canonical, exception flags accumulating in MXCSR (see fold_mxcsr);
 * and the sign injections and moves, which are bit operations. Anything
 * else, another rounding mode or a NaN operand jumps to the FPU's C code
 * that follows. Returns the jump to patch past that code, or NULL if the
 * instruction is not done inline at all. */
static uint8_t *emit_fp_inline(struct gen *g, const struct rv_dentry *e)
{
    struct x64 *x = &g->x;
    uint32_t insn = e->insn;
    unsigned op7 = insn & 0x7f, f7 = insn >> 25, rm = (insn >> 12) & 7;
    unsigned rd = e->rd, rs1 = e->rs1, rs2 = e->rs2, rs3 = insn >> 27;
    uint8_t *slow[12];
    unsigned nslow = 0;
    if (op7 == 0x53 && f7 == 0x11 && rm <= 2) { /* fsgnj.d, fsgnjn.d, fsgnjx.d */
        x64_load(x, 64, RAX, fr(rs1));
        if (rs1 == rs2 && rm == 0) {
            x64_store(x, 64, fr(rd), RAX); /* fmv.d */
        } else {
            x64_load(x, 64, RCX, fr(rs2));
            if (rm == 1)
                x64_not(x, 64, RCX);
            if (rm == 2)
                x64_alu_rr(x, 64, X64_XOR, RCX, RAX);
            x64_mov_imm(x, RDX, 1ull << 63);
            x64_alu_rr(x, 64, X64_AND, RCX, RDX);
            x64_not(x, 64, RDX);
            x64_alu_rr(x, 64, X64_AND, RAX, RDX);
            x64_alu_rr(x, 64, X64_OR, RAX, RCX);
            x64_store(x, 64, fr(rd), RAX);
        }
        goto dirty;
    }
    if (op7 == 0x53 && f7 == 0x71 && rm == 0 && rs2 == 0) { /* fmv.x.d */
        if (rd) {
            x64_load(x, 64, RAX, fr(rs1));
            put_x(g, rd, RAX);
        }
        return x64_jmp(x, x->p);
    }
    if (op7 == 0x53 && f7 == 0x79 && rm == 0 && rs2 == 0) { /* fmv.d.x */
        get_x(g, RAX, rs1);
        x64_store(x, 64, fr(rd), RAX);
        goto dirty;
    }
    uint8_t sse = 0, fma = 0;
    bool dbl;
    if (op7 == 0x53) {
        dbl = f7 & 1;
        switch (f7 & ~1u) {
        case 0x00:
            sse = 0x58;
            break;
        case 0x04:
            sse = 0x5c;
            break;
        case 0x08:
            sse = 0x59;
            break;
        case 0x0c:
            sse = 0x5e;
            break;
        case 0x2c:
            if (rs2 == 0)
                sse = 0x51;
            break;
        }
    } else {
        unsigned fmt = (insn >> 25) & 3;
        dbl = fmt == 1;
        if (fmt <= 1 && g->j->has_fma) {
            static const uint8_t ops[4] = {0xb9, 0xbb, 0xbd, 0xbf}; /* fmadd fmsub fnmsub fnmadd */
            fma = ops[(op7 >> 2) & 3];
        }
    }
    if ((!sse && !fma) || (rm != 0 && rm != 7))
        return NULL;
    if (rm == 7) { /* dynamic: frm must be RNE */
        x64_alu_mi(x, 32, X64_CMP, hfield(OFF_FRM), 0);
        slow[nslow++] = x64_jcc(x, X64_CC_NE, x->p);
    }
    /* operands: single values must be NaN-boxed (else they read as the
     * canonical NaN: the C code's business), and no operand a NaN */
    unsigned srcs[3] = {rs1, rs2, rs3}, nsrc = fma ? 3 : sse == 0x51 ? 1 : 2;
    for (unsigned k = 0; k < nsrc; k++) {
        if (dbl) {
            x64_sd_rm(x, 0x10, (int)k, fr(srcs[k]));
            x64_ucomisd(x, (int)k, (int)k);
        } else {
            struct x64_mem hi = fr(srcs[k]);
            hi.disp += 4;
            x64_alu_mi(x, 32, X64_CMP, hi, -1);
            slow[nslow++] = x64_jcc(x, X64_CC_NE, x->p);
            x64_ss_rm(x, 0x10, (int)k, fr(srcs[k]));
            x64_ucomiss(x, (int)k, (int)k);
        }
        slow[nslow++] = x64_jcc(x, X64_CC_P, x->p);
    }
    int res = 0;
    if (fma) {
        if (dbl)
            x64_vfma231sd(x, fma, 2, 0, 1);
        else
            x64_vfma231ss(x, fma, 2, 0, 1);
        res = 2;
    } else if (dbl) {
        x64_sd_rr(x, sse, 0, sse == 0x51 ? 0 : 1);
    } else {
        x64_ss_rr(x, sse, 0, sse == 0x51 ? 0 : 1);
    }
    /* a NaN result (invalid operation) is the canonical NaN */
    if (dbl)
        x64_ucomisd(x, res, res);
    else
        x64_ucomiss(x, res, res);
    uint8_t *nan = x64_jcc(x, X64_CC_P, x->p);
    if (dbl) {
        x64_movsd_store(x, fr(rd), res);
    } else {
        struct x64_mem hi = fr(rd);
        hi.disp += 4;
        x64_movss_store(x, fr(rd), res);
        x64_store_imm(x, 32, hi, -1); /* NaN-boxed */
    }
    uint8_t *stored = x64_jmp(x, x->p);
    x64_patch_rel32(nan, x->p);
    x64_mov_imm(x, RAX, dbl ? 0x7ff8000000000000ull : 0xffffffff7fc00000ull);
    x64_store(x, 64, fr(rd), RAX);
    x64_patch_rel32(stored, x->p);
dirty:
    x64_alu_mi(x, 64, X64_OR, hfield(OFF_MSTATUS), (int32_t)RV_MSTATUS_FS);
    uint8_t *done = x64_jmp(x, x->p);
    for (unsigned k = 0; k < nslow; k++)
        x64_patch_rel32(slow[k], x->p);
    return done;
}

static void emit_insn(struct gen *g, unsigned i)
{
    struct x64 *x = &g->x;
    const struct rv_dentry *e = &g->b->insns[i];
    uint64_t pc = e->pc, npc = pc + e->len;
    unsigned op = e->op;
    if (rv_op_is_alu(op)) {
        emit_alu(g, e);
        return;
    }
    switch (op) {
    case RV_OP_LUI:
        put_x_const(g, e->rd, (uint64_t)e->imm);
        return;
    case RV_OP_AUIPC:
        put_x_const(g, e->rd, pc + (uint64_t)e->imm);
        return;
    case RV_OP_LB:
    case RV_OP_LH:
    case RV_OP_LW:
    case RV_OP_LD:
    case RV_OP_LBU:
    case RV_OP_LHU:
    case RV_OP_LWU:
        emit_load(g, i, e);
        return;
    case RV_OP_SB:
    case RV_OP_SH:
    case RV_OP_SW:
    case RV_OP_SD:
        emit_store(g, i, e);
        return;
    case RV_OP_FLW:
    case RV_OP_FLD:
        if (!MODE_FP(g->b->mode))
            break; /* FPU off: the helper raises the trap */
        emit_load(g, i, e);
        return;
    case RV_OP_FSW:
    case RV_OP_FSD:
        if (!MODE_FP(g->b->mode))
            break;
        emit_store(g, i, e);
        return;
    case RV_OP_FP: {
        uint8_t *done = MODE_FP(g->b->mode) ? emit_fp_inline(g, e) : NULL;
        /* the FPU's code (it changes nothing but f, fflags and FS); an
         * illegal encoding goes the general way, which raises the trap */
        x64_mov_rr(x, 64, RDI, RBX);
        x64_mov_imm(x, RSI, e->insn);
        cache_writeback(g); /* the FPU writes x[rd] for compares and conversions */
        call_abs(x, (const void *)jit_fpu);
        cache_reload(g);
        x64_movzx8_rr(x, RAX, RAX);
        x64_test_rr(x, 32, RAX, RAX);
        uint8_t *ok = x64_jcc(x, X64_CC_NE, x->p);
        emit_helper(g, i, e, false);
        x64_patch_rel32(ok, x->p);
        if (done)
            x64_patch_rel32(done, x->p);
        return;
    }
    case RV_OP_JAL:
        put_x_const(g, e->rd, npc);
        exit_chain(g, pc + (uint64_t)e->imm, g->dirty);
        return;
    case RV_OP_JALR: {
        get_x(g, RAX, e->rs1);
        if (e->imm)
            x64_lea(x, RAX, x64_m(RAX, (int32_t)e->imm));
        x64_alu_ri(x, 64, X64_AND, RAX, -2);
        x64_store(x, 64, hfield(OFF_PC), RAX);
        put_x_const(g, e->rd, npc); /* may clobber rax */
        cache_writeback(g);
        x64_load(x, 64, RAX, hfield(OFF_PC));
        exit_via_jc(g);
        return;
    }
    case RV_OP_BEQ:
    case RV_OP_BNE:
    case RV_OP_BLT:
    case RV_OP_BGE:
    case RV_OP_BLTU:
    case RV_OP_BGEU: {
        int a = creg(g, e->rs1);
        if (a < 0) {
            get_x(g, RAX, e->rs1);
            a = RAX;
        }
        if (e->rs2 == 0)
            x64_test_rr(x, 64, a, a); /* against zero: same flags as cmp a, 0 */
        else
            alu_x(g, 64, X64_CMP, a, e->rs2);
        g->taken[g->ntaken].jcc = x64_jcc(x, branch_cc(op), x->p);
        g->taken[g->ntaken].i = i;
        g->taken[g->ntaken].target = pc + (uint64_t)e->imm;
        g->taken[g->ntaken].dirty = g->dirty;
        g->ntaken++;
        return; /* the block goes on with the fall-through */
    }
    default:
        break;
    }
    emit_helper(g, i, e, ends_block(op));
}

/* The out-of-line parts: slow paths of loads and stores, and the trap exits. */
static void emit_tails(struct gen *g)
{
    struct x64 *x = &g->x;
    for (unsigned k = 0; k < g->ntaken; k++) {
        x64_patch_rel32(g->taken[k].jcc, x->p);
        refund(g, g->taken[k].i);
        exit_chain(g, g->taken[k].target, g->taken[k].dirty);
    }
    for (unsigned k = 0; k < g->nslow; k++) {
        struct slow *s = &g->slow[k];
        const struct rv_dentry *e = &g->b->insns[s->i];
        for (unsigned m = 0; m < 2; m++)
            if (s->jcc[m])
                x64_patch_rel32(s->jcc[m], x->p);
        if (s->addr_lost)
            emit_addr(g, e);
        /* rax holds the address */
        x64_mov_rr(x, 64, RSI, RAX);
        x64_mov_rr(x, 64, RDI, RBX);
        if (s->kind == SLOW_LOAD) {
            x64_mov_imm(x, RDX, mem_len(e->op) | (load_signed(e->op) ? 0x10 : 0));
            call_saving(g, (const void *)jit_load, g->dirty_at[s->i]);
            x64_test_rr(x, 32, RDX, RDX);
            trap_jump(g, s->i, x64_jcc(x, X64_CC_E, x->p));
            x64_jmp(x, s->resume);
        } else {
            if (is_fp_mem(e->op))
                x64_load(x, 64, RDX, fr(e->rs2));
            else
                get_x(g, RDX, e->rs2);
            x64_mov_imm(x, RCX, mem_len(e->op));
            call_saving(g, (const void *)jit_store, g->dirty_at[s->i]);
            x64_test_rr(x, 32, RAX, RAX);
            uint8_t *bad = x64_jcc(x, X64_CC_NE, x->p);
            x64_jmp(x, s->resume);
            x64_patch_rel32(bad, x->p);
            x64_alu_ri(x, 32, X64_CMP, RAX, 1);
            trap_jump(g, s->i, x64_jcc(x, X64_CC_E, x->p));
            /* stored into translated code: stop after this instruction */
            set_pc(g, e->pc + e->len);
            refund(g, s->i);
            cache_store(g, g->dirty_at[s->i]);
            exit_with(g, JX_FLUSH);
        }
    }
    for (unsigned i = 0; i < g->b->n; i++) {
        if (!g->ntrap[i])
            continue;
        for (unsigned m = 0; m < g->ntrap[i]; m++)
            x64_patch_rel32(g->trap_jumps[i][m], x->p);
        set_pc(g, g->b->insns[i].pc);
        refund(g, i);
        cache_store(g, g->dirty_at[i]);
        exit_with(g, JX_TRAP);
    }
}

/* Does instruction e only write x[rd] (nothing of it read first), and in
 * inline code that goes through put_x or rd's cached register? */
static bool writes_rd_only(const struct rv_dentry *e)
{
    unsigned op = e->op;
    if (op == RV_OP_LUI || op == RV_OP_AUIPC || op == RV_OP_JAL)
        return true;
    if (rv_op_is_alu(op))
        return e->rs1 != e->rd && (rv_op_is_alu_imm(op) || e->rs2 != e->rd);
    if ((op >= RV_OP_LB && op <= RV_OP_LWU) || op == RV_OP_JALR)
        return e->rs1 != e->rd;
    return false;
}

static bool block_loops(const struct jit_block *b)
{
    for (unsigned i = 0; i < b->n; i++) {
        const struct rv_dentry *e = &b->insns[i];
        if (((e->op >= RV_OP_BEQ && e->op <= RV_OP_BGEU) || e->op == RV_OP_JAL) &&
            e->pc + (uint64_t)e->imm == b->pc)
            return true;
    }
    return false;
}

/* Which cached registers to load on entry: all but those whose first
 * mention in the block is a write that reads nothing of them. A block that
 * may go round again to its start loads (and stores) all: its second
 * time round starts with everything written. */
static void choose_entry_loads(struct gen *g)
{
    uint32_t cached = 0;
    for (unsigned k = 0; k < g->ncached; k++)
        cached |= 1u << g->cached[k];
    g->load_mask = cached;
    g->dirty = 0;
    if (block_loops(g->b)) {
        g->dirty = cached;
        return;
    }
    uint32_t seen = 0;
    for (unsigned i = 0; i < g->b->n; i++) {
        const struct rv_dentry *e = &g->b->insns[i];
        uint32_t rd = 1u << e->rd;
        if (writes_rd_only(e) && !(seen & rd))
            g->load_mask &= ~rd;
        seen |= rd | (1u << e->rs1) | (1u << e->rs2) | (1u << (e->insn >> 27));
    }
}

/* Cache the guest registers the block's inline code uses most (twice at
 * least) in host registers. */
static void choose_cache(struct gen *g)
{
    unsigned uses[32] = {0};
    memset(g->creg, -1, sizeof(g->creg));
    g->ncached = 0;
    for (unsigned i = 0; i < g->b->n; i++) {
        const struct rv_dentry *e = &g->b->insns[i];
        unsigned op = e->op;
        bool rs1 = false, rs2 = false, rd = false;
        if (rv_op_is_alu(op)) {
            rs1 = rd = true;
            rs2 = !rv_op_is_alu_imm(op);
        } else if (op >= RV_OP_LB && op <= RV_OP_LWU) {
            rs1 = rd = true;
        } else if (op >= RV_OP_SB && op <= RV_OP_SD) {
            rs1 = rs2 = true;
        } else if (op >= RV_OP_BEQ && op <= RV_OP_BGEU) {
            rs1 = rs2 = true;
        } else if (op == RV_OP_JALR) {
            rs1 = rd = true;
        } else if (op == RV_OP_LUI || op == RV_OP_AUIPC || op == RV_OP_JAL) {
            rd = true;
        } else if (op == RV_OP_FLW || op == RV_OP_FLD || op == RV_OP_FSW || op == RV_OP_FSD) {
            rs1 = true;
        }
        if (rs1)
            uses[e->rs1]++;
        if (rs2)
            uses[e->rs2]++;
        if (rd)
            uses[e->rd]++;
    }
    uses[0] = 0;
    while (g->ncached < NCACHE) {
        unsigned best = 0;
        for (unsigned r = 1; r < 32; r++)
            if (g->creg[r] < 0 && uses[r] > uses[best])
                best = r;
        if (uses[best] < 2)
            break;
        g->creg[best] = (int8_t)cache_hregs[g->ncached];
        g->cached[g->ncached++] = best;
    }
    choose_entry_loads(g);
}

/* ---- translation ---- */

/* Mark the RAM page of host address p as holding code, dropping store TLB
 * entries that map it. */
static void mark_code_page(struct rv_hart *h, struct rv_jit *j, uintptr_t p)
{
    size_t page = (p - (uintptr_t)h->bus.ram) >> 12;
    if (page >= j->npages || h->code_pages[page])
        return;
    h->code_pages[page] = 1;
    j->pages_used = true;
    uintptr_t host_page = p & ~(uintptr_t)0xfff;
    for (unsigned set = 0; set < 4; set++)
        for (unsigned k = 0; k < RV_TLB_SIZE; k++) {
            struct rv_tlb_entry *t = &h->tlb[set][RV_ACC_STORE][k];
            if (t->tag != UINT64_MAX && (uintptr_t)(t->tag << 12) + t->addend == host_page)
                t->tag = UINT64_MAX;
        }
}

/* Host address of the instruction at pc, fetching it through the TLB (a
 * miss fills it through mmu.c). NULL: not in RAM, or at a page end where
 * the instruction might straddle (the interpreter runs those); *fault: the
 * fetch faulted (exception recorded). */
static const uint8_t *fetch_host(struct rv_hart *h, uint64_t pc, bool *fault)
{
    *fault = false;
    if ((pc & 0xfff) > 0xffc)
        return NULL;
    const struct rv_tlb_entry *t = &h->tlb[h->iset][RV_ACC_FETCH][RV_TLB_IDX(pc)];
    if (t->tag != (pc >> 12)) {
        uint32_t insn;
        if (!rv_fetch_slow(h, pc, &insn)) {
            *fault = true;
            return NULL;
        }
        if (t->tag != (pc >> 12))
            return NULL;
    }
    return (const uint8_t *)(uintptr_t)(pc + t->addend);
}

enum tr_result { TR_OK, TR_FAULT, TR_INTERPRET };

static enum tr_result translate(struct rv_hart *h, struct rv_jit *j, uint32_t mode,
                                struct jit_block **out)
{
    uint64_t pc0 = h->pc;
    if ((size_t)(j->code + CODE_SIZE - j->code_ptr) < CODE_SLACK ||
        META_SIZE - j->meta_used < sizeof(struct jit_block) + MAX_INSNS * sizeof(struct rv_dentry))
        flush(h, j);
    struct jit_block *b = (struct jit_block *)(j->meta + j->meta_used);
    b->pc = pc0;
    b->host = 0;
    b->incoming = NULL;
    b->mode = mode;
    b->n = 0;
    uint64_t pc = pc0;
    while (b->n < MAX_INSNS) {
        if ((pc >> 12) != (pc0 >> 12))
            break;
        bool fault;
        const uint8_t *p = fetch_host(h, pc, &fault);
        if (!p) {
            if (b->n)
                break;
            return fault ? TR_FAULT : TR_INTERPRET;
        }
        uint32_t insn;
        memcpy(&insn, p, 4);
        uint32_t raw = (insn & 3) == 3 ? insn : (insn & 0xffff);
        struct rv_dentry *e = &b->insns[b->n];
        rv_decode(e, pc, raw);
        mark_code_page(h, j, (uintptr_t)p);
        if (!b->n)
            b->host = (uintptr_t)p;
        b->n++;
        pc += e->len;
        if (ends_block(e->op))
            break;
    }
    j->meta_used += sizeof(*b) + b->n * sizeof(struct rv_dentry);
    j->meta_used = (j->meta_used + 15) & ~(size_t)15;

    struct gen *g = calloc(1, sizeof(*g));
    if (!g)
        return TR_INTERPRET;
    g->h = h;
    g->j = j;
    g->b = b;
    g->x = (struct x64){.p = j->code_ptr, .end = j->code + CODE_SIZE};
    b->code = g->x.p;
    /* code changed since this block was checked (FENCE.I)? back to the
     * dispatcher, which compares it with memory */
    b->gen = __atomic_load_n(&h->code_gen, __ATOMIC_ACQUIRE);
    x64_alu_mi(&g->x, 32, X64_CMP, hfield(OFF_CODE_GEN), 0x7fffffff); /* imm32 form */
    b->gen_imm = g->x.p - 4;
    if (!g->x.overflow)
        memcpy(b->gen_imm, &b->gen, 4);
    uint8_t *stale = x64_jcc(&g->x, X64_CC_NE, g->x.p);
    /* charge the block to the budget; out of budget: back to the dispatcher */
    x64_alu_ri(&g->x, 64, X64_SUB, BUDGET, (int32_t)b->n);
    uint8_t *broke = x64_jcc(&g->x, X64_CC_L, g->x.p);
    choose_cache(g);
    cache_load_entry(g);
    g->body = g->x.p;
    for (unsigned i = 0; i < b->n; i++) {
        g->dirty_at[i] = g->dirty;
        emit_insn(g, i);
    }
    if (!ends_block(b->insns[b->n - 1].op))
        exit_chain(g, pc, g->dirty);
    emit_tails(g);
    if (g->nloop_broke) {
        /* out of budget going round the loop: registers back first */
        for (unsigned k = 0; k < g->nloop_broke; k++)
            x64_patch_rel32(g->loop_broke[k], g->x.p);
        cache_store(g, UINT32_MAX); /* a looping block loads and stores all */
    }
    x64_patch_rel32(broke, g->x.p);
    x64_alu_ri(&g->x, 64, X64_ADD, BUDGET, (int32_t)b->n);
    set_pc(g, pc0);
    x64_store_imm(&g->x, 64, hfield(OFF_LINK), 0);
    exit_with(g, JX_BUDGET);
    x64_patch_rel32(stale, g->x.p);
    set_pc(g, pc0);
    x64_store_imm(&g->x, 64, hfield(OFF_LINK), 0);
    exit_with(g, JX_STALE);
    bool overflow = g->x.overflow;
    j->code_ptr = g->x.p;
    free(g);
    if (overflow) {
        flush(h, j);
        return TR_INTERPRET;
    }
    if (j->perf_map)
        fprintf(j->perf_map, "%lx %lx rv_%s%lx\n", (unsigned long)(uintptr_t)b->code,
                (unsigned long)(j->code_ptr - b->code), MODE_FLAT(mode) ? "" : "v",
                (unsigned long)pc0);
    j->code_ptr = (uint8_t *)(((uintptr_t)j->code_ptr + 15) & ~(uintptr_t)15);
    size_t page = (b->host - (uintptr_t)h->bus.ram) >> 12;
    b->page_next = j->page_blocks[page];
    j->page_blocks[page] = b;
    unsigned hsh = hash_of(b->host, mode);
    b->next = j->hash[hsh];
    j->hash[hsh] = b;
    j->stats.blocks++;
    *out = b;
    return TR_OK;
}

/* ---- the dispatcher ---- */

static void sync_minstret(struct rv_hart *h, struct rv_jit *j)
{
    h->minstret = j->base + (uint64_t)(j->start - h->jit_budget);
}

/* run n instructions in the interpreter (keeps minstret and the budget) */
static uint64_t interpret(struct rv_hart *h, struct rv_jit *j, uint64_t n)
{
    sync_minstret(h, j);
    uint64_t done = rv_interp_batch(h, n);
    clear_mxcsr();
    h->jit_budget -= (int64_t)done;
    j->base = h->minstret - (uint64_t)(j->start - h->jit_budget);
    j->stats.fallback += done;
    return done;
}

/* One block at h->pc (translated first if need be), or one instruction in
 * the interpreter where there is no block. single: run that block alone,
 * not what it chains to (the lock-step tester). False: the batch ends. */
/* After FENCE.I (h->code_gen moved on): is the block's code still what is
 * in memory? Then it stands at the new generation; else it goes. */
static bool revalidate(struct rv_hart *h, struct rv_jit *j, struct jit_block *b)
{
    uint32_t gen = __atomic_load_n(&h->code_gen, __ATOMIC_ACQUIRE);
    for (unsigned i = 0; i < b->n; i++) {
        const struct rv_dentry *e = &b->insns[i];
        uint32_t now = 0;
        memcpy(&now, (const void *)(b->host + (e->pc - b->pc)), e->len);
        if (now != e->raw) {
            unlink_block(h, j, b);
            return false;
        }
    }
    b->gen = gen;
    memcpy(b->gen_imm, &gen, 4);
    return true;
}

static bool run_one(struct rv_hart *h, struct rv_jit *j, bool single)
{
    if (__atomic_load_n(&h->code_written, __ATOMIC_ACQUIRE))
        invalidate_page(h, j, h->code_written_page);
    uint32_t mode = cur_mode(h, j);
    if (h->tlb_gen != j->tlb_gen) {
        /* indirect jumps were checked against the old translations */
        j->tlb_gen = h->tlb_gen;
        j->mode = mode;
        jc_new_epoch(h, j);
        h->jit_link = 0;
    } else if (mode != j->mode) {
        j->mode = mode;
        jc_set_key(h, j);
        h->jit_link = 0;
    }
    bool fault = false;
    struct jc_entry *c = &j->jc[(h->pc >> 1) & (JC_SIZE - 1)];
    struct jit_block *b = c->pc == (h->pc ^ h->jit_jc_key) ? c->block : NULL;
    const uint8_t *host = b ? (const uint8_t *)b->host : fetch_host(h, h->pc, &fault);
    if (!b && host)
        b = lookup(j, h->pc, mode, (uintptr_t)host);
    if (b && b->gen != __atomic_load_n(&h->code_gen, __ATOMIC_ACQUIRE) && !revalidate(h, j, b))
        b = NULL;
    if (!b) {
        enum tr_result r = fault ? TR_FAULT : !host ? TR_INTERPRET : translate(h, j, mode, &b);
        if (r == TR_FAULT) {
            /* the fetch faulted: no instruction retired */
            h->jit_budget--;
            j->base--;
            rv_take_trap(h, h->exc_cause, h->exc_tval);
            h->jit_link = 0;
            return true;
        }
        if (r == TR_INTERPRET) {
            interpret(h, j, 1);
            h->jit_link = 0;
            return !(h->wfi || h->irq_check);
        }
    }
    if (!single && (int64_t)b->n > h->jit_budget) {
        /* the batch ends inside this block: the interpreter runs the rest */
        interpret(h, j, (uint64_t)h->jit_budget);
        h->jit_link = 0;
        return false;
    }
    c->pc = h->pc ^ h->jit_jc_key;
    c->code = b->code;
    c->block = b;
    if (h->jit_link && !single && META_SIZE - j->meta_used >= sizeof(struct jit_link)) {
        uint8_t *stub = (uint8_t *)(uintptr_t)h->jit_link;
        struct jit_link *l = (struct jit_link *)(j->meta + j->meta_used);
        j->meta_used += (sizeof(*l) + 15) & ~(size_t)15;
        l->stub = stub;
        memcpy(l->saved, stub, 5);
        l->next = b->incoming;
        b->incoming = l;
        struct x64 px = {.p = stub, .end = stub + 5};
        x64_jmp(&px, b->code);
        j->stats.chained++;
    }
    h->jit_link = 0;
    if (single) {
        /* exactly this block: whatever it jumps to finds no budget */
        j->start += (int64_t)b->n - h->jit_budget;
        h->jit_budget = b->n;
    }
    enum jit_exit why = (enum jit_exit)j->enter(h, b->code);
    fold_mxcsr(h);
    sync_minstret(h, j);
    switch (why) {
    case JX_CHAIN:
        return true;
    case JX_TRAP:
        h->jit_link = 0;
        rv_take_trap(h, h->exc_cause, h->exc_tval);
        return true;
    case JX_FLUSH: /* FENCE.I or a store into translated code: flagged already */
    case JX_STALE: /* looked up and checked again next time round */
        return true;
    case JX_BUDGET:
    case JX_EXIT:
        break;
    }
    return false;
}

static void batch_begin(struct rv_hart *h, struct rv_jit *j, uint64_t n)
{
    clear_mxcsr(); /* whatever C code left there is already in fflags */
    if (n > INT64_MAX / 2)
        n = INT64_MAX / 2;
    h->jit_budget = (int64_t)n;
    h->jit_ram_bias = (uint64_t)(uintptr_t)h->bus.ram - h->bus.ram_base;
    j->start = (int64_t)n;
    j->base = h->minstret;
    h->jit_link = 0;
}

uint64_t rv_jit_batch(struct rv_hart *h, uint64_t n)
{
    struct rv_jit *j = h->jit;
    batch_begin(h, j, n);
    while (!h->fatal && h->jit_budget > 0)
        if (!run_one(h, j, false))
            break;
    sync_minstret(h, j);
    return (uint64_t)(j->start - h->jit_budget);
}

uint64_t rv_jit_step(struct rv_hart *h)
{
    struct rv_jit *j = h->jit;
    batch_begin(h, j, MAX_INSNS);
    if (!h->fatal)
        run_one(h, j, true);
    sync_minstret(h, j);
    return (uint64_t)(j->start - h->jit_budget);
}

/* ---- setup ---- */

int rv_jit_create(struct rv_hart *h, vs_err *err)
{
    struct rv_jit *j = calloc(1, sizeof(*j));
    if (!j)
        return vs_error(err, ENOMEM, "translator: out of memory");
    j->code = mmap(NULL, CODE_SIZE, PROT_READ | PROT_WRITE | PROT_EXEC,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    j->meta = malloc(META_SIZE);
    j->npages = h->bus.ram_size >> 12;
    h->code_pages = calloc(j->npages ? j->npages : 1, 1);
    j->page_blocks = calloc(j->npages ? j->npages : 1, sizeof(*j->page_blocks));
    if (j->code == MAP_FAILED || !j->meta || !h->code_pages || !j->page_blocks) {
        if (j->code != MAP_FAILED)
            munmap(j->code, CODE_SIZE);
        free(j->meta);
        free(h->code_pages);
        free(j->page_blocks);
        h->code_pages = NULL;
        free(j);
        return vs_error(err, ENOMEM, "translator: cannot map its code buffer");
    }
    /* enter(h, code): save the callee-saved registers, rbx = h, jump in;
     * the epilogue undoes it and returns eax (the exit reason) */
    struct x64 x = {.p = j->code, .end = j->code + 256};
    static const int saved[] = {X64_RBX, X64_RBP, X64_R12, X64_R13, X64_R14, X64_R15};
    for (unsigned i = 0; i < 6; i++)
        x64_push(&x, saved[i]);
    x64_alu_ri(&x, 64, X64_SUB, X64_RSP, 8); /* 16-byte aligned calls */
    x64_mov_rr(&x, 64, RBX, RDI);
    x64_load(&x, 64, BUDGET, hfield(OFF_BUDGET));
    x64_load(&x, 64, RAM_BIAS, hfield(OFF_RAM_BIAS));
    x64_jmp_r(&x, RSI);
    j->epilogue = x.p;
    x64_store(&x, 64, hfield(OFF_BUDGET), BUDGET);
    x64_alu_ri(&x, 64, X64_ADD, X64_RSP, 8);
    for (int i = 5; i >= 0; i--)
        x64_pop(&x, saved[i]);
    x64_ret(&x);
    j->enter = (uint64_t(*)(struct rv_hart *, uint8_t *))(void *)j->code;
    j->code_ptr = j->epilogue + 64;
    j->mode = UINT32_MAX;
    j->tlb_gen = h->tlb_gen;
    memset(j->jc, 0xff, sizeof(j->jc));
    j->flat_tlb_gen = UINT64_MAX;
    __builtin_cpu_init();
    j->has_fma = __builtin_cpu_supports("fma");
    if (getenv("VESSEL_JIT_PERF_MAP")) {
        /* perf's convention for JIT code: one "start size name" line a block */
        char path[64];
        snprintf(path, sizeof(path), "/tmp/perf-%d.map", (int)getpid());
        j->perf_map = fopen(path, "a");
        if (j->perf_map)
            setvbuf(j->perf_map, NULL, _IOLBF, 0);
    }
    h->jit = j;
    return 0;
}

void rv_jit_destroy(struct rv_hart *h)
{
    struct rv_jit *j = h->jit;
    if (!j)
        return;
    if (j->perf_map)
        fclose(j->perf_map);
    munmap(j->code, CODE_SIZE);
    free(j->meta);
    free(j->page_blocks);
    free(j);
    free(h->code_pages);
    h->code_pages = NULL;
    h->jit = NULL;
}

void rv_jit_get_stats(struct rv_hart *h, struct rv_jit_stats *s)
{
    if (h->jit)
        *s = h->jit->stats;
    else
        memset(s, 0, sizeof(*s));
}

#else /* not x86-64 */

bool rv_jit_available(void)
{
    return false;
}

int rv_jit_create(struct rv_hart *h, vs_err *err)
{
    return vs_error(err, ENOTSUP, "the translator generates x86-64 code only");
}

void rv_jit_destroy(struct rv_hart *h) {}

uint64_t rv_jit_batch(struct rv_hart *h, uint64_t n)
{
    return rv_interp_batch(h, n);
}

uint64_t rv_jit_step(struct rv_hart *h)
{
    return rv_interp_batch(h, 1);
}

void rv_jit_get_stats(struct rv_hart *h, struct rv_jit_stats *s)
{
    memset(s, 0, sizeof(*s));
}

#endif
