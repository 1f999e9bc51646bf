/* vessel compare: the same workloads run natively, in a container (vessel's
 * OCI runtime), in a KVM microVM, in the emulated riscv64 machine and under
 * riscv64 user-mode emulation, interleaved, with medians, the ratio to native, start-up time and
 * peak RSS, as a table, JSON, a gnuplot chart (PNG, SVG) and terminal bars.
 *
 * The workloads are one C source (workload.c, embedded in vessel as text)
 * compiled at run time with the host's gcc and riscv64-linux-gnu-gcc;
 * builds are cached under ~/.cache/vessel/compare/<hash of source+flags>. */
#ifndef VESSEL_COMPARE_COMPARE_H
#define VESSEL_COMPARE_COMPARE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "util/err.h"

/* CMP_W_COMMAND is the user's own command (`-- CMD ARGS`), alone when given */
enum compare_workload {
    CMP_W_CPU,
    CMP_W_MEMORY,
    CMP_W_SYSCALL,
    CMP_W_DISK,
    CMP_W_NET,
    CMP_W_STARTUP,
    CMP_W_COMMAND,
    CMP_W_N
};
#define CMP_W_BUILTIN ((1u << CMP_W_COMMAND) - 1)
enum compare_kind {
    CMP_K_NATIVE,
    CMP_K_CONTAINER,
    CMP_K_KVM,
    CMP_K_RVVM_JIT, /* the emulated riscv64 machine (vessel vm run --arch riscv64) */
    CMP_K_RVVM_INTERP,
    CMP_K_EMU_JIT, /* riscv64 user-mode emulation (vessel emu) */
    CMP_K_EMU_INTERP,
    CMP_K_N
};
#define CMP_KIND_IS_RVVM(k) ((k) == CMP_K_RVVM_JIT || (k) == CMP_K_RVVM_INTERP)
#define CMP_KIND_IS_VM(k) ((k) == CMP_K_KVM || CMP_KIND_IS_RVVM(k))

#define CMP_MAX_RUNS 100

struct compare_opts {
    unsigned workloads; /* bit (1 << enum compare_workload) */
    unsigned kinds;     /* bit (1 << enum compare_kind): the rows asked for (--kinds) */
    int runs;           /* 1 .. CMP_MAX_RUNS */
    int scale;          /* workload size, 1 .. 1000 (4: the default) */
    const char *out_dir;
    bool json;             /* stdout: JSON instead of the table and bars */
    const char *vessel;    /* this vessel binary (runs `vessel emu`) */
    const char *runc;      /* vessel-runc (NULL: `vessel oci`) */
    char *const *cmd;      /* `-- CMD ARGS` (NULL-terminated), or NULL */
    const char *rv_binary; /* --riscv64-binary: CMD built for riscv64 */
    FILE *progress;        /* progress lines; NULL: none */
    /* set (by the caller's signal handler) to stop: the current run is
     * killed, its container deleted, the scratch directory removed */
    volatile sig_atomic_t *stop;
};

/* One (kind, workload) cell. */
struct compare_cell {
    const char *skip;                /* non-NULL: not measured, and why */
    char failed[256];                /* non-empty: a run failed, and how */
    int n;                           /* samples */
    uint64_t work_ns[CMP_MAX_RUNS];  /* the workload's own timing of its kernel */
    uint64_t start_ns[CMP_MAX_RUNS]; /* spawn to the workload's first line */
    uint64_t wall_ns[CMP_MAX_RUNS];  /* spawn to exit */
    long rss_kb[CMP_MAX_RUNS];       /* peak RSS of the process running the workload */
    uint64_t ops;                    /* units of work (iterations, bytes, calls) */
    uint64_t check;                  /* the workload's checksum */
    /* filled by compare_summarize */
    double median_ns; /* the measure of the workload: work_ns, or start_ns for start-up */
    double median_start_ns, median_wall_ns, ratio;
    long peak_rss_kb;
};

struct compare_result {
    struct compare_opts opts;
    struct compare_cell cell[CMP_K_N][CMP_W_N];
    const char *kind_skip[CMP_K_N]; /* a kind skipped as a whole, and why */
    char env_title[512];            /* "CPU, N cores, Linux R, OS" */
    char cpu[256], kernel[128], os[128];
    char loadavg[64]; /* /proc/loadavg's first three fields when the run began */
    int ncpus;
    char png[4096], svg[4096], json_path[4096];
    char chart_note[512]; /* why no chart, when there is none */
    char date[64];
};

/* a kind left out with --kinds has no row at all (it was not asked for) */
#define CMP_KIND_ON(res, k) (((res)->opts.kinds >> (k)) & 1u)

extern const char *const compare_workload_names[CMP_W_N];
extern const char *const compare_kind_names[CMP_K_N];

/* "cpu,memory" into a bit mask; -1 with err on an unknown name. */
int compare_parse_workloads(const char *list, unsigned *mask, vs_err *err);
/* "native,kvm" into a bit mask; -1 with err on an unknown name. */
int compare_parse_kinds(const char *list, unsigned *mask, vs_err *err);

/* Build (or find cached) workload binaries: paths into x86 and rv (either
 * may come back empty with *why set when that compiler is missing). */
int compare_build_workloads(char *x86, size_t x86len, char *rv, size_t rvlen, const char **rv_why,
                            vs_err *err);
/* The KVM row's guest: workload.c over bare_libc.c and bare_start.S, a
 * freestanding x86-64 ELF (build.c); NULL, or why it cannot be built. */
const char *compare_build_bare_guest(char *elf, size_t len);

/* vmkinds.c: what the VM kinds need */
struct compare_vm_env {
    const char *kvm_limit; /* non-NULL: the KVM row runs only startup, and why */
    unsigned long tsc_khz; /* the host's TSC rate, for the bare guest's clock */
    int sink_port;         /* the host's TCP sink for the net workload (0: none) */
};
/* Why the kvm kind cannot run at all here, or NULL; *limit says why only
 * some workloads run (a software KVM). */
const char *compare_kvm_check(const char **limit);
unsigned long compare_tsc_khz(void);
/* An ext4 image at img holding binary as /run (for vessel.run=). */
int compare_make_run_disk(const char *img, const char *binary, vs_err *err);
/* A raw scratch disk for the disk workload. */
int compare_make_scratch(const char *path, uint64_t bytes, vs_err *err);
/* A TCP sink on 127.0.0.1 in a thread: reads each connection to its end and
 * answers with the byte count (what the workload's own sink does). */
int compare_start_sink(int *port, vs_err *err);

/* Measure everything; res is filled (allocate it: it is large). */
int compare_run(const struct compare_opts *o, struct compare_result *res, vs_err *err);

/* report.c */
void compare_summarize(struct compare_result *res);
void compare_environment(struct compare_result *res);
void compare_print_table(FILE *f, const struct compare_result *res);
void compare_print_bars(FILE *f, const struct compare_result *res);
int compare_write_json(const struct compare_result *res, const char *path, FILE *also, vs_err *err);

/* chart.c: PNG and SVG with gnuplot into res->png/svg; 0 when gnuplot is
 * missing (chart_note says so), -1 with err when it fails. */
int compare_chart(struct compare_result *res, vs_err *err);

/* runner.c */
struct compare_sample {
    uint64_t work_ns, start_ns, wall_ns, ops, check;
    long rss_kb;
};
struct compare_spawn_how {
    const char *workload; /* the RESULT marker to find; NULL: a user's command */
    /* VMs: take start-up as the moment the start marker reached the host (a
     * guest's clock is not the host's), and the peak RSS as the VMM's */
    bool host_clock;
    /* a user's command in a riscv64 VM: its time is from init's READY line
     * to VESSEL-RUN-EXIT, whose status must be 0 */
    bool guest_run;
};
/* Spawn argv with stdout read for the workload's markers; fails (with the
 * program's last stderr line) unless it exits 0 and printed both markers;
 * fails with code EINTR (the program killed) when *stop is set. */
int compare_spawn(char *const argv[], const struct compare_spawn_how *how,
                  volatile sig_atomic_t *stop, struct compare_sample *s, vs_err *err);

#endif
