/* vessel emu [--strace] PROGRAM [ARGS...]: run a static riscv64 Linux
 * program under user-mode emulation. The exit status is the program's (or
 * 128 + signal number when it dies of a fault).
 * vessel emu --bare [--max-insns N] ELF: run a bare-metal test program
 * (tests/riscv-isa) that reports through HTIF tohost. */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "cmd/commands.h"
#include "cmd/opt.h"
#include "riscv/jit.h"
#include "riscv/user/emu.h"
#include "util/cleanup.h"

extern char **environ;

static void emu_usage(FILE *f)
{
    fprintf(f, "usage: vessel emu [--accel jit|interp] [--strace] PROGRAM [ARGS...]\n"
               "       vessel emu --bare [--accel jit|interp] [--max-insns N] ELF\n\n"
               "Runs a static riscv64 Linux ELF program on this machine (user-mode emulation).\n"
               "  --accel A       jit: translate to x86-64 (the default on x86-64 hosts);\n"
               "                  interp: the interpreter (the reference); with --bare, diff:\n"
               "                  both in lock-step, stopping at the first difference (exit 4)\n"
               "  --strace        log every system call on stderr\n"
               "  --bare          run a bare-metal M-mode test program that reports pass/fail\n"
               "                  through the HTIF tohost word (exit status 0 = pass)\n"
               "  --max-insns N   with --bare: give up after N instructions\n");
}

int cmd_emu(int argc, char **argv)
{
    struct rv_user_opts opts = {0};
    bool bare = false;
    const char *max = NULL, *accel = NULL;
    const struct cmd_opt table[] = {
        {"accel", 0, CMD_OPT_STR, &accel},
        {"strace", 0, CMD_OPT_FLAG, &opts.trace_syscalls},
        {"bare", 0, CMD_OPT_FLAG, &bare},
        {"max-insns", 0, CMD_OPT_STR, &max},
    };
    /* options, then the program and its arguments */
    cleanup_free char **pos = calloc((size_t)argc + 1, sizeof(*pos));
    struct cmd_optparse p = {.verb = "emu",
                             .opts = table,
                             .nopts = ARRAY_SIZE(table),
                             .pos = pos,
                             .maxpos = argc,
                             .rest_after_first = true};
    vs_err err = {0};
    int r = pos ? cmd_opt_parse(&p, argc - 1, argv + 1, &err) : -1;
    if (r == CMD_OPT_HELP) {
        emu_usage(stdout);
        return 0;
    }
    if (r < 0) {
        cmd_print_error(pos ? err.msg : "out of memory");
        emu_usage(stderr);
        return 2;
    }
    uint64_t max_insns = 0;
    if (max) {
        char *end;
        max_insns = strtoull(max, &end, 0);
        if (*end || !*max) {
            fprintf(stderr, "vessel: emu: bad --max-insns '%s'\n", max);
            return 2;
        }
    }
    if (!p.npos) {
        emu_usage(stderr);
        return 2;
    }
    int status = 0;
    opts.accel = rv_jit_available() ? RV_ACCEL_JIT : RV_ACCEL_INTERP;
    bool diff = accel && !strcmp(accel, "diff");
    if (diff && !bare) {
        fprintf(stderr, "vessel: emu: --accel diff needs --bare\n");
        return 2;
    }
    if (diff) {
        if (rv_bare_diff(pos[0], max_insns, &status, &err) < 0) {
            cmd_print_error(err.msg);
            return 127;
        }
        fflush(stdout);
        return status;
    }
    if (accel && !strcmp(accel, "interp")) {
        opts.accel = RV_ACCEL_INTERP;
    } else if (accel && !strcmp(accel, "jit")) {
        opts.accel = RV_ACCEL_JIT;
    } else if (accel) {
        fprintf(stderr, "vessel: emu: --accel: '%s' is not jit or interp\n", accel);
        return 2;
    }
    if (bare) {
        if (rv_bare_run(pos[0], max_insns, opts.accel, &status, &err) < 0) {
            cmd_print_error(err.msg);
            return 127;
        }
        fflush(stdout);
        return status;
    }
    if (rv_user_run(pos[0], pos, environ, &opts, &status, &err) < 0) {
        cmd_print_error(err.msg);
        return 127;
    }
    fflush(stdout);
    return status;
}
