/* The translator's x86-64 encoder (src/riscv/x64.c) against the host
 * assembler: every form the translator emits, over registers that need
 * REX, SIB (rsp, r12) and a forced displacement (rbp, r13), assembled by
 * `as` and compared byte for byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "riscv/x64.h"

#define MAXCASES 512

struct cases {
    struct x64 x;
    uint8_t buf[16384];
    char text[65536];
    size_t tlen;
    unsigned n;
    const char *line[MAXCASES];
    size_t off[MAXCASES + 1];
};

static void add(struct cases *c, const char *line)
{
    c->line[c->n] = line;
    c->off[++c->n] = (size_t)(c->x.p - c->buf);
    c->tlen += (size_t)snprintf(c->text + c->tlen, sizeof(c->text) - c->tlen, "%s\n", line);
}

#define CASE(text, call)                                                                           \
    do {                                                                                           \
        call;                                                                                      \
        add(c, text);                                                                              \
    } while (0)

static const char *const r64[16] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
                                    "r8",  "r9",  "r10", "r11", "r12", "r13", "r14", "r15"};

static void emit_all(struct cases *c)
{
    static char lines[MAXCASES][96];
    unsigned k = 0;
#define FMT(...) (snprintf(lines[k], sizeof(lines[k]), __VA_ARGS__), lines[k++])
    for (int b = 0; b < 16; b++) {
        if (b == X64_RSP)
            continue;
        int d = (b * 7 + 3) & 15;
        CASE(FMT("mov %s, [%s+0x10]", r64[d], r64[b]), x64_load(&c->x, 64, d, x64_m(b, 0x10)));
        CASE(FMT("mov [%s+0x1234], %s", r64[b], r64[d]), x64_store(&c->x, 64, x64_m(b, 0x1234), d));
        CASE(FMT("add %s, [%s]", r64[d], r64[b]), x64_alu_rm(&c->x, 64, X64_ADD, d, x64_m(b, 0)));
        CASE(FMT("sub %s, %s", r64[b], r64[d]), x64_alu_rr(&c->x, 64, X64_SUB, b, d));
        CASE(FMT("mov %s, %s", r64[d], r64[b]), x64_mov_rr(&c->x, 64, d, b));
        CASE(FMT("lea %s, [%s+%s*8-8]", r64[d], r64[b], r64[d == 4 ? 5 : d]),
             x64_lea(&c->x, d, x64_mi(b, d == 4 ? 5 : d, 8, -8)));
        CASE(FMT("shl %s, 13", r64[b]), x64_shift_ri(&c->x, 64, X64_SHL, b, 13));
        CASE(FMT("push %s", r64[b]), x64_push(&c->x, b));
        CASE(FMT("pop %s", r64[b]), x64_pop(&c->x, b));
    }
    CASE("mov rax, [rsp+8]", x64_load(&c->x, 64, X64_RAX, x64_m(X64_RSP, 8)));
    CASE("mov rax, [r12]", x64_load(&c->x, 64, X64_RAX, x64_m(X64_R12, 0)));
    CASE("mov rax, [r13]", x64_load(&c->x, 64, X64_RAX, x64_m(X64_R13, 0)));
    CASE("mov rax, [rbp]", x64_load(&c->x, 64, X64_RAX, x64_m(X64_RBP, 0)));
    CASE("mov eax, [rbx+0x100]", x64_load(&c->x, 32, X64_RAX, x64_m(X64_RBX, 0x100)));
    CASE("mov ax, [rbx+4]", x64_load(&c->x, 16, X64_RAX, x64_m(X64_RBX, 4)));
    CASE("mov dword ptr [rax], ecx", x64_store(&c->x, 32, x64_m(X64_RAX, 0), X64_RCX));
    CASE("mov word ptr [rax], cx", x64_store(&c->x, 16, x64_m(X64_RAX, 0), X64_RCX));
    CASE("mov byte ptr [rax], cl", x64_store(&c->x, 8, x64_m(X64_RAX, 0), X64_RCX));
    CASE("mov byte ptr [rax], sil", x64_store(&c->x, 8, x64_m(X64_RAX, 0), X64_RSI));
    CASE("mov byte ptr [r9+r10*1], r11b",
         x64_store(&c->x, 8, x64_mi(X64_R9, X64_R10, 1, 0), X64_R11));
    CASE("movzx eax, byte ptr [rax]", x64_movzx(&c->x, 8, X64_RAX, x64_m(X64_RAX, 0)));
    CASE("movzx r8d, word ptr [rcx+rdx*1]",
         x64_movzx(&c->x, 16, X64_R8, x64_mi(X64_RCX, X64_RDX, 1, 0)));
    CASE("movsx rax, byte ptr [rax]", x64_movsx(&c->x, 8, X64_RAX, x64_m(X64_RAX, 0)));
    CASE("movsx rcx, word ptr [rax+2]", x64_movsx(&c->x, 16, X64_RCX, x64_m(X64_RAX, 2)));
    CASE("movsxd rax, dword ptr [rax+rcx*1]",
         x64_movsx(&c->x, 32, X64_RAX, x64_mi(X64_RAX, X64_RCX, 1, 0)));
    CASE("movsxd rax, ecx", x64_movsxd_rr(&c->x, X64_RAX, X64_RCX));
    CASE("movsxd r9, r10d", x64_movsxd_rr(&c->x, X64_R9, X64_R10));
    CASE("movzx eax, cl", x64_movzx8_rr(&c->x, X64_RAX, X64_RCX));
    CASE("mov eax, 5", x64_mov_imm(&c->x, X64_RAX, 5));
    CASE("mov r9d, 0xffffffff", x64_mov_imm(&c->x, X64_R9, 0xffffffffull));
    CASE("mov rax, -1", x64_mov_imm(&c->x, X64_RAX, UINT64_MAX));
    CASE("mov r10, -0x80000000", x64_mov_imm(&c->x, X64_R10, (uint64_t)(int64_t)INT32_MIN));
    CASE("movabs rcx, 0x123456789a", x64_mov_imm(&c->x, X64_RCX, 0x123456789aull));
    CASE("movabs r15, 0x8000000000000000", x64_mov_imm(&c->x, X64_R15, 1ull << 63));
    CASE("mov qword ptr [rbx+8], 7", x64_store_imm(&c->x, 64, x64_m(X64_RBX, 8), 7));
    CASE("mov qword ptr [rbx+0x200], -2", x64_store_imm(&c->x, 64, x64_m(X64_RBX, 0x200), -2));
    CASE("mov dword ptr [rbx], 0x12345", x64_store_imm(&c->x, 32, x64_m(X64_RBX, 0), 0x12345));
    static const char *const alu[8] = {"add", "or", 0, 0, "and", "sub", "xor", "cmp"};
    for (int op = 0; op < 8; op++) {
        if (!alu[op])
            continue;
        CASE(FMT("%s rax, rcx", alu[op]), x64_alu_rr(&c->x, 64, op, X64_RAX, X64_RCX));
        CASE(FMT("%s r8d, r15d", alu[op]), x64_alu_rr(&c->x, 32, op, X64_R8, X64_R15));
        CASE(FMT("%s rdx, [rbx+0x88]", alu[op]),
             x64_alu_rm(&c->x, 64, op, X64_RDX, x64_m(X64_RBX, 0x88)));
        CASE(FMT("%s rax, 5", alu[op]), x64_alu_ri(&c->x, 64, op, X64_RAX, 5));
        CASE(FMT("%s rax, 0x1000", alu[op]), x64_alu_ri(&c->x, 64, op, X64_RAX, 0x1000));
        CASE(FMT("%s rcx, -0x1000", alu[op]), x64_alu_ri(&c->x, 64, op, X64_RCX, -0x1000));
        CASE(FMT("%s r11, -3", alu[op]), x64_alu_ri(&c->x, 64, op, X64_R11, -3));
        CASE(FMT("%s ecx, 0x7ff", alu[op]), x64_alu_ri(&c->x, 32, op, X64_RCX, 0x7ff));
        CASE(FMT("%s qword ptr [rbx+0x40], 64", alu[op]),
             x64_alu_mi(&c->x, 64, op, x64_m(X64_RBX, 0x40), 64));
        CASE(FMT("%s qword ptr [rbx+0x400], 0x4000", alu[op]),
             x64_alu_mi(&c->x, 64, op, x64_m(X64_RBX, 0x400), 0x4000));
    }
    static const char *const sh[8] = {"rol", "ror", 0, 0, "shl", "shr", 0, "sar"};
    for (int op = 0; op < 8; op++) {
        if (!sh[op])
            continue;
        CASE(FMT("%s rax, 1", sh[op]), x64_shift_ri(&c->x, 64, op, X64_RAX, 1));
        CASE(FMT("%s rdx, 63", sh[op]), x64_shift_ri(&c->x, 64, op, X64_RDX, 63));
        CASE(FMT("%s r9d, 5", sh[op]), x64_shift_ri(&c->x, 32, op, X64_R9, 5));
        CASE(FMT("%s rax, cl", sh[op]), x64_shift_rcl(&c->x, 64, op, X64_RAX));
        CASE(FMT("%s esi, cl", sh[op]), x64_shift_rcl(&c->x, 32, op, X64_RSI));
    }
    CASE("imul rax, rcx", x64_imul_rr(&c->x, 64, X64_RAX, X64_RCX));
    CASE("imul r10d, r11d", x64_imul_rr(&c->x, 32, X64_R10, X64_R11));
    CASE("not rax", x64_not(&c->x, 64, X64_RAX));
    CASE("neg r12", x64_neg(&c->x, 64, X64_R12));
    CASE("test rax, rcx", x64_test_rr(&c->x, 64, X64_RAX, X64_RCX));
    CASE("test r8d, r8d", x64_test_rr(&c->x, 32, X64_R8, X64_R8));
    CASE("lea rax, [rax+0x7ff]", x64_lea(&c->x, X64_RAX, x64_m(X64_RAX, 0x7ff)));
    CASE("lea rdx, [rcx+rax*2]", x64_lea(&c->x, X64_RDX, x64_mi(X64_RCX, X64_RAX, 2, 0)));
    CASE("lea rdx, [rcx+rax*4]", x64_lea(&c->x, X64_RDX, x64_mi(X64_RCX, X64_RAX, 4, 0)));
    static const char *const cc[16] = {"o", 0, "b", "ae", "e", "ne", "be", "a",
                                       "s", 0, 0,   0,    "l", "ge", "le", "g"};
    for (int k2 = 0; k2 < 16; k2++)
        if (cc[k2])
            CASE(FMT("set%s al", cc[k2]), x64_setcc(&c->x, k2, X64_RAX));
    CASE("setb dl", x64_setcc(&c->x, X64_CC_B, X64_RDX));
    CASE("ret", x64_ret(&c->x));
    CASE("call rax", x64_call_r(&c->x, X64_RAX));
    CASE("call r11", x64_call_r(&c->x, X64_R11));
    CASE("jmp rcx", x64_jmp_r(&c->x, X64_RCX));
    CASE("jmp qword ptr [rdx+rcx*1+8]", x64_jmp_m(&c->x, x64_mi(X64_RDX, X64_RCX, 1, 8)));
    CASE("setp al", x64_setcc(&c->x, X64_CC_P, X64_RAX));
    CASE("movsd xmm0, qword ptr [rbx+0x108]", x64_sd_rm(&c->x, 0x10, 0, x64_m(X64_RBX, 0x108)));
    CASE("movsd xmm9, qword ptr [r12]", x64_sd_rm(&c->x, 0x10, 9, x64_m(X64_R12, 0)));
    CASE("movsd qword ptr [rbx+0x110], xmm2", x64_movsd_store(&c->x, x64_m(X64_RBX, 0x110), 2));
    CASE("movsd qword ptr [rax], xmm8", x64_movsd_store(&c->x, x64_m(X64_RAX, 0), 8));
    CASE("addsd xmm0, xmm1", x64_sd_rr(&c->x, 0x58, 0, 1));
    CASE("mulsd xmm3, xmm10", x64_sd_rr(&c->x, 0x59, 3, 10));
    CASE("subsd xmm0, qword ptr [rbx+0x118]", x64_sd_rm(&c->x, 0x5c, 0, x64_m(X64_RBX, 0x118)));
    CASE("divsd xmm11, xmm2", x64_sd_rr(&c->x, 0x5e, 11, 2));
    CASE("sqrtsd xmm0, xmm0", x64_sd_rr(&c->x, 0x51, 0, 0));
    CASE("ucomisd xmm0, xmm0", x64_ucomisd(&c->x, 0, 0));
    CASE("ucomisd xmm1, xmm9", x64_ucomisd(&c->x, 1, 9));
    CASE("vfmadd231sd xmm2, xmm0, xmm1", x64_vfma231sd(&c->x, 0xb9, 2, 0, 1));
    CASE("vfmsub231sd xmm2, xmm0, xmm1", x64_vfma231sd(&c->x, 0xbb, 2, 0, 1));
    CASE("vfnmadd231sd xmm2, xmm0, xmm1", x64_vfma231sd(&c->x, 0xbd, 2, 0, 1));
    CASE("vfnmsub231sd xmm2, xmm0, xmm1", x64_vfma231sd(&c->x, 0xbf, 2, 0, 1));
    CASE("vfmadd231sd xmm12, xmm5, xmm9", x64_vfma231sd(&c->x, 0xb9, 12, 5, 9));
    CASE("movss xmm0, dword ptr [rbx+0x108]", x64_ss_rm(&c->x, 0x10, 0, x64_m(X64_RBX, 0x108)));
    CASE("movss dword ptr [rbx+0x110], xmm2", x64_movss_store(&c->x, x64_m(X64_RBX, 0x110), 2));
    CASE("addss xmm0, xmm1", x64_ss_rr(&c->x, 0x58, 0, 1));
    CASE("divss xmm9, xmm2", x64_ss_rr(&c->x, 0x5e, 9, 2));
    CASE("sqrtss xmm0, xmm0", x64_ss_rr(&c->x, 0x51, 0, 0));
    CASE("ucomiss xmm0, xmm0", x64_ucomiss(&c->x, 0, 0));
    CASE("ucomiss xmm1, xmm10", x64_ucomiss(&c->x, 1, 10));
    CASE("vfmadd231ss xmm2, xmm0, xmm1", x64_vfma231ss(&c->x, 0xb9, 2, 0, 1));
    CASE("vfnmsub231ss xmm11, xmm3, xmm12", x64_vfma231ss(&c->x, 0xbf, 11, 3, 12));
#undef FMT
}

static void matches_gnu_as(void **state)
{
    struct cases *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->x = (struct x64){.p = c->buf, .end = c->buf + sizeof(c->buf)};
    emit_all(c);
    assert_false(c->x.overflow);
    char dir[] = "/tmp/vessel-x64-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], cmd[1024];
    snprintf(path, sizeof(path), "%s/t.s", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, ".intel_syntax noprefix\n.text\n%s", c->text);
    fclose(f);
    snprintf(cmd, sizeof(cmd),
             "as --64 -o %s/t.o %s/t.s && objcopy -O binary -j .text %s/t.o %s/t.bin", dir, dir,
             dir, dir);
    if (system(cmd) != 0)
        fail_msg("as/objcopy failed (binutils missing?)");
    snprintf(path, sizeof(path), "%s/t.bin", dir);
    f = fopen(path, "rb");
    assert_non_null(f);
    static uint8_t want[16384];
    size_t n = fread(want, 1, sizeof(want), f);
    fclose(f);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fail_msg("cleanup failed");
    size_t got = (size_t)(c->x.p - c->buf);
    for (unsigned i = 0; i < c->n; i++) {
        size_t a = c->off[i], b = c->off[i + 1];
        if (b > n || memcmp(c->buf + a, want + a, b - a)) {
            char hex[128] = "", exp[128] = "";
            for (size_t k = a; k < b && k - a < 15; k++) {
                snprintf(hex + strlen(hex), sizeof(hex) - strlen(hex), "%02x ", c->buf[k]);
                if (k < n)
                    snprintf(exp + strlen(exp), sizeof(exp) - strlen(exp), "%02x ", want[k]);
            }
            fail_msg("'%s': encoded %s, as says %s", c->line[i], hex, exp);
        }
    }
    assert_int_equal(got, n);
    free(c);
}

static int32_t rd32(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void rel32_jumps(void **state)
{
    uint8_t buf[64] = {0};
    struct x64 x = {.p = buf, .end = buf + sizeof(buf)};
    uint8_t *d = x64_jmp(&x, buf + 40);
    assert_int_equal(buf[0], 0xe9);
    assert_ptr_equal(d, buf + 1);
    assert_int_equal(rd32(d), 40 - 5);
    d = x64_jcc(&x, X64_CC_NE, buf);
    assert_int_equal(buf[5], 0x0f);
    assert_int_equal(buf[6], 0x85);
    assert_int_equal(rd32(d), -11);
    d = x64_call(&x, buf + 11);
    assert_int_equal(buf[11], 0xe8);
    assert_int_equal(rd32(d), -5);
    x64_patch_rel32(d, buf + 60);
    assert_int_equal(rd32(d), 60 - 16);
    /* overflow: nothing written past the end */
    struct x64 small = {.p = buf, .end = buf + 3};
    x64_mov_imm(&small, X64_RAX, 1ull << 40);
    assert_true(small.overflow);
    assert_ptr_equal(small.p, buf + 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matches_gnu_as),
        cmocka_unit_test(rel32_jumps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
