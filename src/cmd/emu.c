/* vessel emu [--strace] PROGRAM [ARGS...]: run a static riscv64 Linux
 * program under user-mode emulation. The exit status is the program's (or
 * 128 + signal number when it dies of a fault).
 * vessel emu --bare [--max-insns N] ELF: run a bare-metal test program
 * (tests/riscv-isa) that reports through HTIF tohost. */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "cmd/commands.h"
#include "riscv/user/emu.h"

extern char **environ;

static void emu_usage(FILE *f)
{
    fprintf(f, "usage: vessel emu [--strace] PROGRAM [ARGS...]\n"
               "       vessel emu --bare [--max-insns N] ELF\n\n"
               "Runs a static riscv64 Linux ELF program on this machine (user-mode emulation).\n"
               "  --strace        log every system call on stderr\n"
               "  --bare          run a bare-metal M-mode test program that reports pass/fail\n"
               "                  through the HTIF tohost word (exit status 0 = pass)\n"
               "  --max-insns N   with --bare: give up after N instructions\n");
}

int cmd_emu(int argc, char **argv)
{
    struct rv_user_opts opts = {0};
    bool bare = false;
    uint64_t max_insns = 0;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--")) {
            i++;
            break;
        }
        if (!strcmp(argv[i], "--strace")) {
            opts.trace_syscalls = true;
        } else if (!strcmp(argv[i], "--bare")) {
            bare = true;
        } else if (!strcmp(argv[i], "--max-insns") && i + 1 < argc) {
            char *end;
            max_insns = strtoull(argv[++i], &end, 0);
            if (*end) {
                fprintf(stderr, "vessel: emu: bad --max-insns '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            emu_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "vessel: emu: unknown option '%s'\n", argv[i]);
            emu_usage(stderr);
            return 2;
        }
    }
    if (i >= argc) {
        emu_usage(stderr);
        return 2;
    }
    vs_err err = {0};
    int status = 0;
    if (bare) {
        if (rv_bare_run(argv[i], max_insns, &status, &err) < 0) {
            cmd_print_error(err.msg);
            return 127;
        }
        fflush(stdout);
        return status;
    }
    if (rv_user_run(argv[i], argv + i, environ, &opts, &status, &err) < 0) {
        cmd_print_error(err.msg);
        return 127;
    }
    fflush(stdout);
    return status;
}
