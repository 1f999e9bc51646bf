/* vessel compare: the same workloads run natively, in a container (vessel's
 * OCI runtime), in a KVM microVM and under riscv64 user-mode emulation,
 * interleaved, with medians, the ratio to native, start-up time and peak
 * RSS, as a table, JSON, a gnuplot chart (PNG, SVG) and terminal bars.
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

enum compare_workload { CMP_W_CPU, CMP_W_MEMORY, CMP_W_SYSCALL, CMP_W_STARTUP, CMP_W_N };
enum compare_kind {
    CMP_K_NATIVE,
    CMP_K_CONTAINER,
    CMP_K_KVM,
    CMP_K_EMU_JIT,
    CMP_K_EMU_INTERP,
    CMP_K_N
};

#define CMP_MAX_RUNS 100

struct compare_opts {
    unsigned workloads; /* bit (1 << enum compare_workload) */
    int runs;           /* 1 .. CMP_MAX_RUNS */
    int scale;          /* workload size, 1 .. 1000 (4: the default) */
    const char *out_dir;
    bool json;          /* stdout: JSON instead of the table and bars */
    const char *vessel; /* this vessel binary (runs `vessel emu`) */
    const char *runc;   /* vessel-runc (NULL: `vessel oci`) */
    FILE *progress;     /* progress lines; NULL: none */
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

extern const char *const compare_workload_names[CMP_W_N];
extern const char *const compare_kind_names[CMP_K_N];

/* "cpu,memory" into a bit mask; -1 with err on an unknown name. */
int compare_parse_workloads(const char *list, unsigned *mask, vs_err *err);

/* Build (or find cached) workload binaries: paths into x86 and rv (either
 * may come back empty with *why set when that compiler is missing). */
int compare_build_workloads(char *x86, size_t x86len, char *rv, size_t rvlen, const char **rv_why,
                            vs_err *err);

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
/* Spawn argv with stdout read for the workload's markers; fails (with the
 * program's last stderr line) unless it exits 0 and printed both markers;
 * fails with code EINTR (the program killed) when *stop is set. */
int compare_spawn(char *const argv[], const char *workload, volatile sig_atomic_t *stop,
                  struct compare_sample *s, vs_err *err);

#endif
