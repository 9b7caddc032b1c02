/* bench_util.h - shared helpers of the benchmark programs (bench.c, bench_gemm.c): a clock,
 * repeated timing with best/median, machine description, the FMA peak, a tiny JSON writer. Header-only
 * (static functions) because every bench/NAME.c is built as its own program. */
#ifndef BMC_BENCH_UTIL_H
#define BMC_BENCH_UTIL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pthread.h>

#include <cblas.h>

#include "cpu.h" /* the kernel level in use: the FMA peak is measured at it */

static double bu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int bu_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Timing of one workload: seconds per call over n repetitions. */
typedef struct bu_timing {
    double best, median, mean;
    int n;
} bu_timing;

#define BU_MAX_REPS 1000

/* Calls fn(arg) once to warm up (not counted unless it alone exceeds max_time), then until both
 * min_reps calls and min_time seconds are done (at most max_reps, and stops adding calls once
 * max_time is spent). fn returns 0 on success; a failure aborts the timing (n = 0). */
static bu_timing bu_time(int (*fn)(void *), void *arg, int min_reps, double min_time, double max_time) {
    bu_timing t = {0, 0, 0, 0};
    static double s[BU_MAX_REPS];
    double t0 = bu_now();
    if (fn(arg) != 0) return t;
    double warm = bu_now() - t0;
    int n = 0;
    double start = bu_now();
    if (warm > max_time) { /* too slow to repeat: the warm-up call is the measurement */
        s[n++] = warm;
    } else {
        while (n < BU_MAX_REPS) {
            double a = bu_now();
            if (fn(arg) != 0) { t.n = 0; return t; }
            s[n++] = bu_now() - a;
            double spent = bu_now() - start;
            if (n >= min_reps && spent >= min_time) break;
            if (spent + s[n - 1] > max_time && n >= 1) break;
        }
    }
    qsort(s, (size_t)n, sizeof s[0], bu_cmp_double);
    double sum = 0;
    for (int i = 0; i < n; i++) sum += s[i];
    t.best = s[0];
    t.median = (n % 2) ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    t.mean = sum / n;
    t.n = n;
    return t;
}

/* "model name" of /proc/cpuinfo (first CPU), or "unknown". */
static void bu_cpu_model(char *buf, size_t size) {
    snprintf(buf, size, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *p = strchr(line, ':');
            if (p) {
                p++;
                while (*p == ' ' || *p == '\t') p++;
                size_t n = strcspn(p, "\n");
                snprintf(buf, size, "%.*s", (int)n, p);
            }
            break;
        }
    }
    fclose(f);
}

/* OpenBLAS's own description (declared in OpenBLAS's cblas.h). */
static const char *bu_blas_core(void) { return openblas_get_corename(); }
static const char *bu_blas_config(void) { return openblas_get_config(); }

static long bu_online_cpus(void) { return sysconf(_SC_NPROCESSORS_ONLN); }

/* ---- the machine's single-precision FMA peak at the kernel level in use -----------------
 * Independent vector FMAs, nothing else, run by `threads` threads at once: the ceiling that no
 * product can pass at that level, so that GFLOP/s figures can be stated as a share of it. Per
 * level (lib/cpu.h): 24 chains of 16-lane FMAs at AVX-512, 12 chains of 8-lane FMAs at AVX2
 * (16 ymm registers), and at the portable level the CPU's best of those two (OpenBLAS picks its
 * own kernels by CPU) or, without AVX2 + FMA, 12 chains of 4-lane multiply-adds (SSE2). Each
 * variant is compiled for its instructions (target attributes) and only run where cpu.c found
 * them, so the bench builds and runs on any x86-64. -std=c11 disables FMA contraction; these
 * functions want it. */
/* 16 floats as a generic vector (the compiler splits it into what the build targets) */
typedef float bu_v16 __attribute__((vector_size(64)));
#pragma GCC push_options
#pragma GCC optimize("fp-contract=fast")
typedef struct bu_fma_arg {
    long iters;
    double seconds;
    float sink;
} bu_fma_arg;
#define BU_FMA_THREAD(name, target_, lanes, chains)                                          \
    typedef float name##_v __attribute__((vector_size(4 * (lanes))));                         \
    __attribute__((target(target_))) static void *name(void *p) {                             \
        bu_fma_arg *a = p;                                                                    \
        name##_v acc[chains], m, c;                                                           \
        for (int i = 0; i < (lanes); i++) m[i] = 0.999f, c[i] = 1e-6f;                        \
        for (int j = 0; j < (chains); j++)                                                    \
            for (int i = 0; i < (lanes); i++) acc[j][i] = (float)(j + i) * 1e-3f;             \
        double t0 = bu_now();                                                                 \
        for (long k = 0; k < a->iters; k++) {                                                 \
            _Pragma("GCC unroll 24") for (int j = 0; j < (chains); j++) acc[j] = acc[j] * m + c; \
            __asm__ volatile("" : "+v"(m)); /* keep the loop: m may have changed */           \
        }                                                                                     \
        a->seconds = bu_now() - t0;                                                           \
        float s = 0;                                                                          \
        for (int j = 0; j < (chains); j++)                                                    \
            for (int i = 0; i < (lanes); i++) s += acc[j][i];                                 \
        a->sink = s;                                                                          \
        return NULL;                                                                          \
    }
BU_FMA_THREAD(bu_fma_avx512, "avx512f,fma", 16, 24)
BU_FMA_THREAD(bu_fma_avx2, "avx2,fma", 8, 12)
BU_FMA_THREAD(bu_fma_sse2, "sse2", 4, 12)
#pragma GCC pop_options
/* the peak's variant for the level in use: its function, and flops per iteration */
static void *(*bu_fma_kind(double *flops, const char **name))(void *) {
    bmc__level l = bmc__kern()->level;
    if (l == BMC__LEVEL_PORTABLE) l = bmc__cpu_best();
    if (l >= BMC__LEVEL_AVX512) return *flops = 24.0 * 16 * 2, *name = "24 chains of 16-lane FMAs", bu_fma_avx512;
    if (l == BMC__LEVEL_AVX2) return *flops = 12.0 * 8 * 2, *name = "12 chains of 8-lane FMAs", bu_fma_avx2;
    return *flops = 12.0 * 4 * 2, *name = "12 chains of 4-lane multiply-adds", bu_fma_sse2;
}
/* What the peak measures, and at which kernel level, in words. */
static const char *bu_fma_desc(void) {
    static char buf[160];
    double flops;
    const char *kind;
    bu_fma_kind(&flops, &kind);
    snprintf(buf, sizeof buf, "kernels %s: %s", bmc__level_name(bmc__kern()->level), kind);
    return buf;
}
/* GFLOP/s of `threads` threads together (best of 3 runs of about 0.1 s each). */
static double bu_fma_peak(int threads) {
    if (threads < 1) threads = 1;
    if (threads > 64) threads = 64;
    pthread_t th[64];
    bu_fma_arg arg[64];
    double best = 0, flops = 0;
    const char *kind = NULL;
    void *(*fn)(void *) = bu_fma_kind(&flops, &kind);
    (void)kind;
    for (int rep = 0; rep < 3; rep++) {
        for (int i = 0; i < threads; i++) {
            arg[i] = (bu_fma_arg){6000000, 0, 0};
            if (pthread_create(&th[i], NULL, fn, &arg[i]) != 0) return 0;
        }
        double slowest = 0;
        for (int i = 0; i < threads; i++) {
            pthread_join(th[i], NULL);
            if (arg[i].seconds > slowest) slowest = arg[i].seconds;
        }
        double g = threads * 6000000.0 * flops / slowest / 1e9;
        if (g > best) best = g;
    }
    return best;
}

/* 1-minute load average (/proc/loadavg), -1 if unknown: a busy machine makes timings noisy. */
static double bu_loadavg(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

/* ---- a minimal JSON writer: enough for flat objects and arrays of flat objects ---- */
typedef struct bu_json {
    FILE *f;
    int need_comma[16];
    int depth;
} bu_json;

static void bu_json_sep(bu_json *j) {
    if (!j->f) return;
    if (j->need_comma[j->depth]) fputs(",", j->f);
    fputs("\n", j->f);
    for (int i = 0; i < j->depth; i++) fputs("  ", j->f);
    j->need_comma[j->depth] = 1;
}
static void bu_json_str_raw(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}
static void bu_json_key(bu_json *j, const char *key) {
    bu_json_sep(j);
    if (key && j->f) { bu_json_str_raw(j->f, key); fputs(": ", j->f); }
}
static void bu_json_open(bu_json *j, const char *key, char c) {
    bu_json_key(j, key);
    if (j->f) fputc(c, j->f);
    j->depth++;
    j->need_comma[j->depth] = 0;
}
static void bu_json_close(bu_json *j, char c) {
    j->depth--;
    if (!j->f) return;
    fputs("\n", j->f);
    for (int i = 0; i < j->depth; i++) fputs("  ", j->f);
    fputc(c, j->f);
}
static void bu_json_num(bu_json *j, const char *key, double v) {
    bu_json_key(j, key);
    if (j->f) fprintf(j->f, "%.9g", v);
}
static void bu_json_str(bu_json *j, const char *key, const char *v) {
    bu_json_key(j, key);
    if (j->f) bu_json_str_raw(j->f, v);
}

/* ---- deterministic inputs shared with the peers (the peers in bench/peers use the same formulas) ----
 * u(i) = (i * 2654435761) mod 2^32; pixel value = (u >> 8) / 2^24 * 4 - 2 (exact in float);
 * token id = 5 + (u(i + 7919 * seed) >> 8) % 28000 (below the 28,895-entry vocabulary). */
static inline unsigned bu_hash(unsigned i) { return i * 2654435761u; }
static inline float bu_pixel(unsigned i) { return (float)((double)(bu_hash(i) >> 8) / 16777216.0 * 4.0 - 2.0); }
static inline int bu_token(unsigned i, unsigned seed) { return 5 + (int)((bu_hash(i + 7919u * seed) >> 8) % 28000u); }

#endif /* BMC_BENCH_UTIL_H */
