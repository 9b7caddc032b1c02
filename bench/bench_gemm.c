/* bench_gemm.c - the library's products (bmc__gemm, lib/gemm.c) against OpenBLAS's SGEMM for
 * the shapes the two towers use (Y[M,N] = X[M,K] W[N,K]^T; W in PyTorch's [out, in] order for
 * OpenBLAS, in the model file's 64-output panels for ours), and both against the machine's
 * limits.
 *
 * Thin products (M = 1..32 rows: one short text, the heads) are bound by streaming the weights
 * from memory, not by arithmetic: each weight float is used M times. The program therefore
 * cycles through a pool of weight copies larger than the last-level cache (as a forward pass
 * does: every layer's weights are new), measures the read bandwidth and the FMA peak, and prints
 * the roofline bound min(FMA peak, bandwidth * M / 2 flop/byte) next to each rate. Every result
 * is checked against a double-precision reference on sampled entries.
 *
 * usage: bench_gemm [--threads N] [--min-time S] [--quick] [--json-out FILE]
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>

#include "bench_util.h"
#include "ops.h"  /* bmc__gemm: the library's product (internal header) */
#include "panels.h" /* tests/: the weight layout */
#include "pool.h"

#define POOL_BYTES ((size_t)320 << 20) /* > any L3 this runs on */
#define MAX_M 2048                     /* the largest M in big_m below */

typedef struct gemm_job {
    const char *what;
    int M, N, K;
} gemm_job;

typedef struct run_arg {
    int M, N, K;
    const float *x;
    float *y;
    const float *pool; /* weight pool; successive calls use successive copies */
    size_t pool_floats;
    size_t next;       /* offset of the next weight copy */
    int kernel;        /* 0: OpenBLAS sgemm, 1: ours (bmc__gemm on `lib_pool`), 2: OpenBLAS sgemv per row */
    bmc__pool *lib_pool;
    const float *last; /* the weights of the latest call (for check) */
} run_arg;

static const float *next_weights(run_arg *a) {
    /* ours reads the weights as the model file holds them (64-output panels), OpenBLAS as rows */
    size_t nk = a->kernel == 1 ? bmc__panel_floats(a->N, a->K) : (size_t)a->N * (size_t)a->K;
    if (a->next + nk > a->pool_floats) a->next = 0;
    const float *w = a->pool + a->next;
    a->next += (nk + 15) & ~(size_t)15;
    a->last = w;
    return w;
}

static int run_once(void *p) {
    run_arg *a = p;
    const float *w = next_weights(a);
    if (a->kernel == 0) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, a->M, a->N, a->K, 1.0f, a->x, a->K, w, a->K,
                    0.0f, a->y, a->N);
    } else if (a->kernel == 1) {
        bmc__panels pw = {w, a->N, a->K, 0, BMC__W_F32};
        bmc__gemm(a->lib_pool, bmc__mat_of(a->y, a->M, a->N, a->N), bmc__mat_of(a->x, a->M, a->K, a->K),
                  pw, NULL, 0);
    } else {
        for (int m = 0; m < a->M; m++)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, a->N, a->K, 1.0f, w, a->K, a->x + (size_t)m * a->K, 1,
                        0.0f, a->y + (size_t)m * a->N, 1);
    }
    return 0;
}

/* Max relative error of Y against a double-precision product on sampled entries. */
static double check(const run_arg *a, const float *w) {
    double worst = 0;
    for (int s = 0; s < 64; s++) {
        int m = (int)(bu_hash((unsigned)s * 3u + 1u) % (unsigned)a->M);
        int n = (int)(bu_hash((unsigned)s * 5u + 2u) % (unsigned)a->N);
        double ref = 0, mag = 0;
        for (int k = 0; k < a->K; k++) {
            size_t at = a->kernel == 1 ? (size_t)(n / 64) * a->K * 64 + (size_t)k * 64 + n % 64
                                       : (size_t)n * a->K + k;
            double t = (double)a->x[(size_t)m * a->K + k] * w[at];
            ref += t;
            mag += fabs(t);
        }
        double err = fabs(a->y[(size_t)m * a->N + n] - ref) / (mag > 0 ? mag : 1);
        if (err > worst) worst = err;
    }
    return worst;
}

/* ---- read bandwidth: T threads sum disjoint parts of the pool, best of two kernels ---- */
/* 16 floats at p added into the vector s (a macro: a function passing 64-byte vectors by value
 * would have an ABI that depends on AVX-512, and the build is for any x86-64) */
#define ADD16(s, p)                                                                        \
    do {                                                                                   \
        bu_v16 v_;                                                                         \
        memcpy(&v_, (p), sizeof v_);                                                       \
        (s) += v_;                                                                         \
    } while (0)
typedef struct bw_arg {
    const float *p;
    size_t n;
    int method;  /* 0: vector sum below, 1: OpenBLAS sasum (1 thread) */
    double sink;
} bw_arg;
static void *bw_thread(void *p) {
    bw_arg *a = p;
    if (a->method == 1) {
        a->sink = cblas_sasum((blasint)a->n, a->p, 1);
        return NULL;
    }
    /* four independent vector accumulators: bound by loads, not by the add latency */
    bu_v16 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
    for (size_t i = 0; i + 64 <= a->n; i += 64) {
        ADD16(s0, a->p + i);
        ADD16(s1, a->p + i + 16);
        ADD16(s2, a->p + i + 32);
        ADD16(s3, a->p + i + 48);
    }
    s0 += s1 + s2 + s3;
    double sum = 0;
    for (int i = 0; i < 16; i++) sum += s0[i];
    a->sink = sum;
    return NULL;
}
static double read_bandwidth(const float *pool, size_t n, int threads) {
    openblas_set_num_threads(1);
    double best = 0;
    for (int rep = 0; rep < 6; rep++) {
        pthread_t th[16];
        bw_arg args[16];
        double t0 = bu_now();
        for (int i = 0; i < threads; i++) {
            args[i] = (bw_arg){pool + n / threads * i, n / threads, rep % 2, 0};
            pthread_create(&th[i], NULL, bw_thread, &args[i]);
        }
        for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
        double gbs = (double)n * 4 / (bu_now() - t0) / 1e9;
        if (gbs > best) best = gbs;
    }
    return best;
}

static void usage(void) {
    fprintf(stderr, "usage: bench_gemm [--threads N] [--min-time S] [--quick] [--json-out FILE]\n");
}

int main(int argc, char **argv) {
    int threads = (int)bu_online_cpus();
    double min_time = 0.3;
    int quick = 0;
    const char *json_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--min-time") && i + 1 < argc) min_time = atof(argv[++i]);
        else if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--json-out") && i + 1 < argc) json_path = argv[++i];
        else { usage(); return 2; }
    }
    if (threads < 1 || threads > 16) { fprintf(stderr, "bench_gemm: --threads must be 1..16\n"); return 2; }
    if (quick) min_time = 0.05;

    size_t pool_floats = POOL_BYTES / sizeof(float);
    float *pool = aligned_alloc(64, POOL_BYTES);
    /* X and Y hold the largest M (2048) times the widest N or K (3072) */
    const size_t io_floats = (size_t)MAX_M * 3072;
    float *x = aligned_alloc(64, io_floats * sizeof(float));
    float *y = aligned_alloc(64, io_floats * sizeof(float));
    if (!pool || !x || !y) { fprintf(stderr, "bench_gemm: out of memory\n"); return 1; }
    for (size_t i = 0; i < pool_floats; i++) pool[i] = bu_pixel((unsigned)i) * 0.05f;
    for (size_t i = 0; i < io_floats; i++) x[i] = bu_pixel((unsigned)(i + 12345));

    char cpu[256];
    bu_cpu_model(cpu, sizeof cpu);
    const char *coretype = getenv("OPENBLAS_CORETYPE");
    printf("bench_gemm: %s, %ld CPUs; OpenBLAS core %s (%s); OPENBLAS_CORETYPE=%s; load average %.2f\n", cpu,
           bu_online_cpus(), bu_blas_core(), bu_blas_config(), coretype ? coretype : "(unset)", bu_loadavg());

    double bw1 = read_bandwidth(pool, pool_floats, 1);
    double bwT = threads > 1 ? read_bandwidth(pool, pool_floats, threads) : bw1;
    printf("read bandwidth (sum over %zu MB): %.1f GB/s with 1 thread, %.1f GB/s with %d\n",
           POOL_BYTES >> 20, bw1, bwT, threads);

    /* The ceilings: the FMA peak, and OpenBLAS on a large product with the weights hot. */
    double fmaT = bu_fma_peak(threads), fma1 = threads > 1 ? bu_fma_peak(1) : fmaT;
    printf("FMA peak (%s): %.1f GFLOP/s with %d threads, %.1f with 1\n", bu_fma_desc(), fmaT,
           threads, fma1);
    openblas_set_num_threads(threads);
    run_arg big = {1576, 3072, 768, x, y, pool, pool_floats, 0, 0, NULL, NULL};
    bu_timing tb = bu_time(run_once, &big, 3, min_time * 2, 10);
    double peakT = 2.0 * 1576 * 3072 * 768 / tb.best / 1e9;
    openblas_set_num_threads(1);
    big.next = 0;
    bu_timing tb1 = bu_time(run_once, &big, 3, min_time * 2, 10);
    double peak1 = 2.0 * 1576 * 3072 * 768 / tb1.best / 1e9;
    printf("large SGEMM 1576x768 @ 768x3072: %.1f GFLOP/s with %d threads, %.1f GFLOP/s with 1\n\n", peakT,
           threads, peak1);

    /* ours: a pool of `threads` threads, and one of 1 */
    bmc__pool *poolT = NULL, *pool1 = NULL;
    if (bmc__pool_new(threads, 16, &poolT) != BMC_OK ||
        bmc__pool_new(1, 16, &pool1) != BMC_OK) {
        fprintf(stderr, "bench_gemm: cannot start the thread pool\n");
        return 1;
    }

    static const int thin_m[] = {1, 2, 4, 8, 12, 16, 24, 32, 64, 96, 128};
    static const int big_m[] = {197, 256, 788, 1576, 2048};
    static const struct { const char *what; int N, K; } wshape[] = {
        {"768x768 (attn out / BERT q,k,v)", 768, 768},
        {"2304x768 (ViT qkv)", 2304, 768},
        {"3072x768 (MLP in)", 3072, 768},
        {"768x3072 (MLP out)", 768, 3072},
        {"512x768 (image head)", 512, 768},
        {"640x768 (text proj 0)", 640, 768},
    };
    int n_thin = quick ? 4 : (int)(sizeof thin_m / sizeof thin_m[0]);
    int n_big = quick ? 1 : (int)(sizeof big_m / sizeof big_m[0]);
    int n_w = quick ? 4 : (int)(sizeof wshape / sizeof wshape[0]);

    bu_json js = {0};
    if (json_path) {
        js.f = fopen(json_path, "w");
        if (!js.f) { fprintf(stderr, "bench_gemm: cannot write %s\n", json_path); return 1; }
    }
    bu_json_open(&js, NULL, '{');
    bu_json_str(&js, "cpu", cpu);
    bu_json_str(&js, "blas_core", bu_blas_core());
    bu_json_str(&js, "openblas_coretype_env", coretype ? coretype : "");
    bu_json_num(&js, "threads", threads);
    bu_json_num(&js, "read_gbs_1", bw1);
    bu_json_num(&js, "read_gbs_T", bwT);
    bu_json_num(&js, "fma_peak_gflops_T", fmaT);
    bu_json_num(&js, "fma_peak_gflops_1", fma1);
    bu_json_num(&js, "sgemm_peak_gflops_T", peakT);
    bu_json_num(&js, "sgemm_peak_gflops_1", peak1);
    bu_json_open(&js, "rows", '[');

    printf("GFLOP/s, weights cycled through %zu MB (cold); roofline = min(FMA peak, bandwidth x M/2)\n",
           POOL_BYTES >> 20);
    printf("%-32s %5s | %7s %7s %7s | %7s %7s %7s %7s | %s\n", "weight [N,K]", "M", "ours-T", "blas-T", "roof-T",
           "ours-1", "blas-1", "gemv-1", "roof-1", "max rel err (ours, blas)");
    double worst_err = 0;
    for (int wi = 0; wi < n_w; wi++) {
        for (int pass = 0; pass < 2; pass++) {
            int nm = pass == 0 ? n_thin : n_big;
            for (int mi = 0; mi < nm; mi++) {
                int M = pass == 0 ? thin_m[mi] : big_m[mi];
                int N = wshape[wi].N, K = wshape[wi].K;
                double flop = 2.0 * M * N * K;
                run_arg a = {M, N, K, x, y, pool, pool_floats, 0, 0, NULL, NULL};
                openblas_set_num_threads(threads);
                bu_timing bT = bu_time(run_once, &a, 5, min_time, 5);
                double errb = check(&a, a.last);
                openblas_set_num_threads(1);
                a.next = 0;
                bu_timing b1 = bu_time(run_once, &a, 5, min_time, 5);
                a.kernel = 1, a.lib_pool = poolT, a.next = 0;
                bu_timing oT = bu_time(run_once, &a, 5, min_time, 5);
                double erro = check(&a, a.last);
                a.lib_pool = pool1, a.next = 0;
                bu_timing o1 = bu_time(run_once, &a, 5, min_time, 5);
                double gemv = 0;
                if (M <= 32) {
                    a.kernel = 2, a.next = 0;
                    bu_timing tg = bu_time(run_once, &a, 5, min_time, 5);
                    gemv = flop / tg.best / 1e9;
                }
                double roofT = fmin(fmaT, bwT * M / 2), roof1 = fmin(fma1, bw1 * M / 2);
                double gT = flop / bT.best / 1e9, g1 = flop / b1.best / 1e9;
                double uT = flop / oT.best / 1e9, u1 = flop / o1.best / 1e9;
                if (errb > worst_err) worst_err = errb;
                if (erro > worst_err) worst_err = erro;
                char gv[16] = "-";
                if (M <= 32) snprintf(gv, sizeof gv, "%.1f", gemv);
                printf("%-32s %5d | %7.1f %7.1f %7.1f | %7.1f %7.1f %7s %7.1f | %.1e %.1e\n", wshape[wi].what, M,
                       uT, gT, roofT, u1, g1, gv, roof1, erro, errb);
                bu_json_open(&js, NULL, '{');
                bu_json_str(&js, "weight", wshape[wi].what);
                bu_json_num(&js, "M", M);
                bu_json_num(&js, "N", N);
                bu_json_num(&js, "K", K);
                bu_json_num(&js, "ours_gflops_T", uT);
                bu_json_num(&js, "ours_gflops_1", u1);
                bu_json_num(&js, "blas_gflops_T", gT);
                bu_json_num(&js, "blas_gflops_1", g1);
                bu_json_num(&js, "gemv_gflops_1", gemv);
                bu_json_num(&js, "roofline_T", roofT);
                bu_json_num(&js, "roofline_1", roof1);
                bu_json_num(&js, "us_T", oT.best * 1e6);
                bu_json_num(&js, "us_1", o1.best * 1e6);
                bu_json_close(&js, '}');
            }
        }
    }
    bu_json_close(&js, ']');
    bu_json_num(&js, "max_rel_err", worst_err);
    bu_json_close(&js, '}');
    if (js.f) { fputc('\n', js.f); fclose(js.f); }
    printf("\nlargest relative error against double precision: %.2e%s\n", worst_err,
           worst_err < 1e-4 ? "" : "  <- WRONG RESULTS (ours or this BLAS core)");
    bmc__pool_free(poolT);
    bmc__pool_free(pool1);
    free(pool);
    free(x);
    free(y);
    return worst_err < 1e-4 ? 0 : 1;
}
