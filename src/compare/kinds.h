/* How each kind runs a workload (kinds.c); internal to src/compare. */
#ifndef VESSEL_COMPARE_KINDS_H
#define VESSEL_COMPARE_KINDS_H

#include <limits.h>

#include "compare/compare.h"

/* What every run shares: the binaries, images and scratch directory. */
struct compare_ctx {
    const struct compare_opts *o;
    char tmp[64]; /* the scratch directory */
    char scale[16];
    char x86[PATH_MAX];               /* the workload for the host */
    char rv[PATH_MAX];                /* ... for riscv64 */
    char bare[PATH_MAX];              /* the KVM row's guest */
    bool kvm_ring0;                   /* PVM: the workload runs in the guest's kernel */
    char rv_disk[PATH_MAX + 16];      /* ext4 with the riscv64 workload as /run */
    char rv_user_disk[PATH_MAX + 16]; /* ... with --riscv64-binary */
    struct compare_vm_env vm;
};

#define CMP_ARGV_MAX 40
struct compare_argv {
    const char *v[CMP_ARGV_MAX];
    size_t n;
    char buf[3][PATH_MAX + 600]; /* strings the arguments point into */
    char disk[PATH_MAX + 32];    /* the disk workload's file on the host (made fresh per run) */
};

/* The command line for kind k and workload w (id: a container's name). */
int compare_kind_argv(const struct compare_ctx *c, int k, int w, const char *id,
                      struct compare_argv *a, struct compare_spawn_how *how);

#endif
