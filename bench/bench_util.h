/* bench_util.h - shared helpers of the benchmark programs (bench.c, bench_gemm.c): a clock,
 * repeated timing with best/median, machine description, a tiny JSON writer. Header-only
 * (static functions) because every bench/NAME.c is built as its own program. */
#ifndef BMC_BENCH_UTIL_H
#define BMC_BENCH_UTIL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

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
