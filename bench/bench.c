/* bench.c - speed and memory of libbiomedclip on one model file (by default the full-size
 * random-weight test model), printed as a table and optionally written as JSON for
 * bench/report.py, which puts it side by side with the PyTorch and ONNX Runtime peers.
 *
 * usage: bench [MODEL] [--threads N] [--min-time S] [--quick] [--json-out FILE] [--image FILE]
 *              [--profile | --profile-only] [--no-throughput] [--no-load] [--workloads LIST] [--help]
 *   MODEL      default $BIOMEDCLIP_MODEL, else $BMC_TESTDATA/full.bmc, else build/testdata/full.bmc
 *   --threads  bmc_ctx_params.n_threads in latency mode (default: online CPUs); throughput mode
 *              runs that many contexts on as many threads with 1 thread each
 *   --image    the zero-shot image (default $SHARED_DATA/images/chest_X-ray.jpg)
 *   --profile  split the time of a pass between GEMM, attention, LayerNorm/GELU/softmax and
 *              the rest; needs a library built with -DBMC_PROFILE (see lib/profile.h);
 *              --profile-only skips the timing table (bench/run.sh runs it on a profiling build)
 *   --workloads  time only these comma-separated keys (image_b1,text24_b8,...; --help lists
 *              them), for bench/matrix.sh; the JSON lists them so that the peers run them alone
 *
 * Every timing is the median (and best) of repeated calls after one warm-up call: at least
 * 3 calls and --min-time seconds per workload. Inputs are deterministic (bench_util.h), the same
 * the peers build, and the embeddings of one image and one text are written to the JSON so that
 * report.py can check that every implementation computed the same thing. */
#include <math.h>
#include <pthread.h>
#include <sys/resource.h>

#include "bench_util.h"
#include "biomedclip.h"
#include "model.h"   /* configuration, for FLOP counts */
#include "profile.h" /* --profile counters (lib/profile.h) */

#define MAX_ROWS 64
#define N_PROMPTS 9
static const int TEXT_LENS[] = {8, 24, 64, 256};
#define N_LENS 4

/* The notebook's zero-shot labels (spec section 8c), with its template. */
static const char *const LABELS[N_PROMPTS] = {
    "adenocarcinoma histopathology", "brain MRI", "covid line chart",
    "squamous cell carcinoma histopathology", "immunohistochemistry histopathology", "bone X-ray",
    "chest X-ray", "pie chart", "hematoxylin and eosin histopathology"};

typedef struct row {
    char key[32];      /* stable name shared with the peers: image_b1, text24_b8, ... */
    char what[64];
    int items;         /* images or texts per call */
    double gflop;      /* per call, 0 if not meaningful */
    bu_timing t;
} row;

static row rows[MAX_ROWS];
static int n_rows;
static int cfg_threads, cfg_quick;
static double cfg_min_time = 1.0;

static void add_row(const char *key, const char *what, int items, double gflop, bu_timing t) {
    if (n_rows >= MAX_ROWS) return;
    row *r = &rows[n_rows++];
    snprintf(r->key, sizeof r->key, "%s", key);
    snprintf(r->what, sizeof r->what, "%s", what);
    r->items = items;
    r->gflop = gflop;
    r->t = t;
    if (t.n == 0) {
        printf("  %-34s FAILED: %s\n", what, bmc_last_error());
        return;
    }
    printf("  %-34s %9.2f ms/call (best %8.2f, n=%3d)  %8.2f ms/item  %8.2f items/s", what, t.median * 1e3,
           t.best * 1e3, t.n, t.median * 1e3 / items, items / t.median);
    if (gflop > 0) printf("  %6.1f GFLOP/s", gflop / t.median);
    printf("\n");
    fflush(stdout);
}

static bu_timing timeit(int (*fn)(void *), void *arg) {
    return bu_time(fn, arg, 3, cfg_quick ? 0.05 : cfg_min_time, cfg_quick ? 2 : 30);
}

/* --workloads: the comma-separated keys to time (NULL: all). bench/matrix.sh times a few
 * workloads at many levels and weight types, where the rest would cost most of its run. */
static const char *cfg_workloads;
static const char *const KNOWN_KEYS[] = {"load", "first_image", "first_text24", "image_b1", "image_b8",
                                         "text8_b1", "text24_b1", "text64_b1", "text256_b1", "text8_b8",
                                         "text24_b8", "text64_b8", "text256_b8", "tokenize9", "zeroshot9",
                                         "preprocess_file", "zeroshot9_file", "throughput"};
static int in_list(const char *list, const char *key) {
    size_t n = strlen(key);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && !strncmp(p, key, n)) return 1;
        if (!end) break;
        p = end + 1;
    }
    return 0;
}
static int wanted(const char *key) { return !cfg_workloads || in_list(cfg_workloads, key); }
/* Times fn as workload `key` unless --workloads leaves it out. */
static void time_row(const char *key, const char *what, int items, double gflop, int (*fn)(void *), void *arg) {
    if (wanted(key)) add_row(key, what, items, gflop, timeit(fn, arg));
}

/* ---- FLOPs (a multiply-add is 2) from the configuration ---- */
static double vit_gflop(const bmc__config *c) {
    double D = c->vision_width, F = c->vision_mlp, g = c->image_size / c->patch_size, T = g * g + 1;
    double patch = 2.0 * (T - 1) * D * (3.0 * c->patch_size * c->patch_size);
    double block = 2.0 * T * D * 3 * D + 2.0 * 2 * T * T * D + 2.0 * T * D * D + 2.0 * 2 * T * D * F;
    return (patch + c->vision_layers * block + 2.0 * D * c->embed_dim) / 1e9;
}
static double bert_gflop(const bmc__config *c, int L) {
    double D = c->text_width, F = c->text_ffn;
    double layer = 2.0 * L * D * 3 * D + 2.0 * 2 * (double)L * L * D + 2.0 * L * D * D + 2.0 * 2 * L * D * F;
    double H = c->text_proj_hidden ? c->text_proj_hidden : c->embed_dim;
    double proj = 2.0 * D * H + (c->text_proj_hidden ? 2.0 * H * c->embed_dim : 0);
    return (c->text_layers * layer + proj) / 1e9;
}

/* ---- inputs ---- */
static int vocab_mod(const bmc__config *c) {
    int m = (int)c->vocab_rows - 5;
    return m < 28000 ? m : 28000;
}
/* Text j of a batch of length-L texts: [CLS] deterministic ids [SEP]. */
static void make_ids(const bmc__config *c, int L, int j, int *ids) {
    ids[0] = (int)c->cls_id;
    for (int i = 1; i < L - 1; i++)
        ids[i] = 5 + (int)((bu_hash((unsigned)i + 7919u * (unsigned)(L * 100 + j)) >> 8) % (unsigned)vocab_mod(c));
    ids[L - 1] = (int)c->sep_id;
}

typedef struct enc {
    bmc_ctx *ctx;
    const float *chw;  /* images */
    const int *ids;    /* texts, packed */
    const int *lens;
    int n;
    float *out;
    const bmc_model *model;
    const char *path;  /* zero-shot file */
    const char *const *texts;
    float *probs;
    int tok_ids[N_PROMPTS * BMC_MAX_TOKENS];
    int tok_lens[N_PROMPTS];
} enc;

static int do_pixels(void *p) {
    enc *e = p;
    return bmc_encode_pixels(e->ctx, e->chw, e->n, e->out, 1) != BMC_OK;
}
static int do_ids(void *p) {
    enc *e = p;
    return bmc_encode_ids(e->ctx, e->ids, e->lens, e->n, e->out, 1) != BMC_OK;
}
static int do_zero_shot_file(void *p) {
    enc *e = p;
    return bmc_zero_shot_file(e->ctx, e->path, e->texts, e->n, e->probs) != BMC_OK;
}
/* The same from model inputs (pixels + ids): what the ONNX Runtime peer can do too. */
static int do_zero_shot_towers(void *p) {
    enc *e = p;
    if (bmc_encode_pixels(e->ctx, e->chw, 1, e->out, 1) != BMC_OK) return 1;
    if (bmc_encode_ids(e->ctx, e->tok_ids, e->tok_lens, N_PROMPTS, e->out + bmc_model_embed_dim(e->model), 1))
        return 1;
    return bmc_zero_shot_probs(e->model, e->out, 1, e->out + bmc_model_embed_dim(e->model), N_PROMPTS,
                               e->probs) != BMC_OK;
}
static int do_preprocess_file(void *p) {
    enc *e = p;
    bmc_image img;
    if (bmc_image_load(e->path, BMC_DECODE_DEFAULT, &img) != BMC_OK) return 1;
    bmc_status st = bmc_image_preprocess(e->model, &img, e->out);
    bmc_image_free(&img);
    return st != BMC_OK;
}
static int do_tokenize(void *p) {
    enc *e = p;
    int tmp[BMC_MAX_TOKENS];
    for (int i = 0; i < N_PROMPTS; i++) {
        int n;
        if (bmc_tokenize(e->model, e->texts[i], tmp, BMC_MAX_TOKENS, &n) != BMC_OK) return 1;
    }
    return 0;
}

/* ---- load and time to first embedding ---- */
typedef struct first_arg {
    const char *path;
    const float *chw;
    int text;       /* 0: first image embedding, 1: first text embedding */
    const int *ids;
    int len;
    float *out;
} first_arg;
static int do_load(void *p) {
    first_arg *a = p;
    bmc_model *m = NULL;
    if (bmc_model_load(a->path, NULL, &m) != BMC_OK) return 1;
    bmc_model_free(m);
    return 0;
}
static int do_first(void *p) {
    first_arg *a = p;
    bmc_model *m = NULL;
    bmc_ctx *ctx = NULL;
    bmc_ctx_params cp = bmc_ctx_default_params();
    cp.max_batch = 1;
    cp.n_threads = cfg_threads;
    int bad = bmc_model_load(a->path, NULL, &m) != BMC_OK || bmc_ctx_new(m, &cp, &ctx) != BMC_OK;
    if (!bad)
        bad = a->text ? bmc_encode_ids(ctx, a->ids, &a->len, 1, a->out, 1) != BMC_OK
                      : bmc_encode_pixels(ctx, a->chw, 1, a->out, 1) != BMC_OK;
    bmc_ctx_free(ctx);
    bmc_model_free(m);
    return bad;
}

/* Peak resident set size in MB (10^6 bytes; ru_maxrss is in KiB on Linux). */
static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss * 1024.0 / 1e6;
}

/* ---- throughput mode: P contexts on P threads, each context single-threaded ---- */
typedef struct worker {
    const bmc_model *model;
    const float *chw;
    const int *ids, *lens;
    int images;        /* 1: images, 0: texts */
    int n, calls;
    pthread_barrier_t *barrier;
    double done;       /* time when the worker finished */
    int failed;
} worker;
static void *worker_main(void *p) {
    worker *w = p;
    bmc_ctx *ctx = NULL;
    bmc_ctx_params cp = bmc_ctx_default_params();
    cp.max_batch = w->n;
    cp.n_threads = 0; /* 0: take the 1 thread that throughput() gave OpenBLAS (no racing setters) */
    float *out = malloc(sizeof(float) * (size_t)w->n * (size_t)bmc_model_embed_dim(w->model));
    w->failed = !out || bmc_ctx_new(w->model, &cp, &ctx) != BMC_OK;
    /* one warm-up call each, so that scratch growth and page faults are not timed */
    if (!w->failed)
        w->failed = w->images ? bmc_encode_pixels(ctx, w->chw, w->n, out, 1) != BMC_OK
                              : bmc_encode_ids(ctx, w->ids, w->lens, w->n, out, 1) != BMC_OK;
    pthread_barrier_wait(w->barrier);
    for (int i = 0; i < w->calls && !w->failed; i++)
        w->failed = w->images ? bmc_encode_pixels(ctx, w->chw, w->n, out, 1) != BMC_OK
                              : bmc_encode_ids(ctx, w->ids, w->lens, w->n, out, 1) != BMC_OK;
    w->done = bu_now();
    bmc_ctx_free(ctx);
    free(out);
    return NULL;
}
/* Items per second of P workers doing `calls` calls each; 0 on failure. */
static double throughput(const bmc_model *model, int P, int images, const float *chw, const int *ids,
                         const int *lens, int n, int calls) {
    worker w[16];
    pthread_t th[16];
    pthread_barrier_t barrier;
    /* OpenBLAS's thread count is process-wide: set it once here rather than racing from the workers */
    openblas_set_num_threads(1);
    pthread_barrier_init(&barrier, NULL, (unsigned)P + 1);
    for (int i = 0; i < P; i++) {
        w[i] = (worker){model, chw, ids, lens, images, n, calls, &barrier, 0, 0};
        pthread_create(&th[i], NULL, worker_main, &w[i]);
    }
    pthread_barrier_wait(&barrier);
    double t0 = bu_now(), t1 = t0;
    int failed = 0;
    for (int i = 0; i < P; i++) {
        pthread_join(th[i], NULL);
        if (w[i].done > t1) t1 = w[i].done;
        failed |= w[i].failed;
    }
    pthread_barrier_destroy(&barrier);
    return failed ? 0 : (double)P * calls * n / (t1 - t0);
}

static const row *find_row(const char *key) {
    for (int i = 0; i < n_rows; i++)
        if (!strcmp(rows[i].key, key) && rows[i].t.n > 0) return &rows[i];
    return NULL;
}

static void usage(FILE *f) {
    fprintf(f, "usage: bench [MODEL] [--threads N] [--min-time S] [--quick] [--json-out FILE] [--image FILE]\n"
               "             [--profile | --profile-only] [--no-throughput] [--no-load] [--workloads LIST]\n");
}

static void help(void) {
    usage(stdout);
    printf("  MODEL            default $BIOMEDCLIP_MODEL, else $BMC_TESTDATA/full.bmc\n"
           "  --threads N      threads of the latency-mode context (default: online CPUs; 1..16)\n"
           "  --min-time S     seconds per workload, at least 3 calls after a warm-up (default 1)\n"
           "  --quick          short timings (a smoke test)\n"
           "  --json-out FILE  the results as JSON, for bench/report.py and the peers' --workload\n"
           "  --image FILE     the zero-shot image (default $SHARED_DATA/images/chest_X-ray.jpg)\n"
           "  --profile        time split per pass (a library built with -DBMC_PROFILE);\n"
           "  --profile-only   ... without the timing table\n"
           "  --no-throughput  skip throughput mode;  --no-load  skip the load rows\n"
           "  --workloads LIST time only these comma-separated workloads, e.g. image_b1,image_b8,text24_b1;\n"
           "                   also skips the SGEMM reference, and throughput mode unless LIST has\n"
           "                   'throughput'; the JSON still holds the check embeddings and the zero-shot ids\n"
           "                   and lists LIST as \"workloads\", which the peers then run alone. Keys:\n"
           "                  ");
    for (size_t i = 0; i < sizeof KNOWN_KEYS / sizeof KNOWN_KEYS[0]; i++) printf(" %s", KNOWN_KEYS[i]);
    printf("\n");
}

/* 1 if every key of LIST is known; else names the first unknown one. */
static int check_workloads(const char *list) {
    for (const char *p = list;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        int ok = 0;
        for (size_t i = 0; i < sizeof KNOWN_KEYS / sizeof KNOWN_KEYS[0] && !ok; i++)
            ok = strlen(KNOWN_KEYS[i]) == len && !strncmp(p, KNOWN_KEYS[i], len);
        if (!ok) {
            fprintf(stderr, "bench: --workloads: unknown workload '%.*s' (--help lists them)\n", (int)len, p);
            return 0;
        }
        if (!end) return 1;
        p = end + 1;
    }
}

int main(int argc, char **argv) {
    const char *model_path = NULL, *json_path = NULL, *image_path = NULL;
    int profile = 0, profile_only = 0, no_tp = 0, no_load = 0;
    cfg_threads = (int)bu_online_cpus();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) cfg_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--min-time") && i + 1 < argc) cfg_min_time = atof(argv[++i]);
        else if (!strcmp(argv[i], "--quick")) cfg_quick = 1;
        else if (!strcmp(argv[i], "--json-out") && i + 1 < argc) json_path = argv[++i];
        else if (!strcmp(argv[i], "--image") && i + 1 < argc) image_path = argv[++i];
        else if (!strcmp(argv[i], "--profile")) profile = 1;
        else if (!strcmp(argv[i], "--profile-only")) profile = profile_only = no_tp = no_load = 1;
        else if (!strcmp(argv[i], "--no-throughput")) no_tp = 1;
        else if (!strcmp(argv[i], "--no-load")) no_load = 1;
        else if (!strcmp(argv[i], "--workloads") && i + 1 < argc) cfg_workloads = argv[++i];
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { help(); return 0; }
        else if (argv[i][0] != '-' && !model_path) model_path = argv[i];
        else { usage(stderr); return 2; }
    }
    if (cfg_workloads && !check_workloads(cfg_workloads)) return 2;
    if (cfg_workloads && !wanted("throughput")) no_tp = 1;
    if (cfg_threads < 1 || cfg_threads > 16) { fprintf(stderr, "bench: --threads must be 1..16\n"); return 2; }
    char buf[1024], buf2[1024];
    if (!model_path) model_path = getenv("BIOMEDCLIP_MODEL");
    if (!model_path) {
        const char *td = getenv("BMC_TESTDATA");
        snprintf(buf, sizeof buf, "%s/full.bmc", td ? td : "build/testdata");
        model_path = buf;
    }
    if (!image_path) {
        const char *sd = getenv("SHARED_DATA");
        snprintf(buf2, sizeof buf2, "%s/images/chest_X-ray.jpg", sd ? sd : "../shared/data");
        image_path = buf2;
    }
    FILE *probe = fopen(image_path, "rb");
    if (probe) fclose(probe);
    else image_path = NULL;

    /* ---- machine ---- */
    char cpu[256];
    bu_cpu_model(cpu, sizeof cpu);
    const char *coretype = getenv("OPENBLAS_CORETYPE");
    printf("libbiomedclip %s bench\n", bmc_version_string());
    printf("machine: %s, %ld online CPUs\n", cpu, bu_online_cpus());
    printf("library: %s\n", bmc_system_info());
    printf("OpenBLAS: %s (core %s, OPENBLAS_CORETYPE=%s)\n", bu_blas_config(), bu_blas_core(),
           coretype ? coretype : "(unset)");
    double load_start = bu_loadavg();
    printf("model: %s\nthreads: %d (latency mode)\nload average: %.2f%s\n\n", model_path, cfg_threads, load_start,
           load_start > 0.5 * bu_online_cpus() ? "  (busy machine: timings will be noisy)" : "");

    bmc_model *model = NULL;
    if (bmc_model_load(model_path, NULL, &model) != BMC_OK) {
        fprintf(stderr, "bench: %s\n", bmc_last_error());
        return 1;
    }
    const bmc__config *c = &model->config;
    int E = bmc_model_embed_dim(model), S = bmc_model_image_size(model), ctxlen = bmc_model_context_length(model);
    size_t img_floats = (size_t)3 * S * S;
    double g_img = vit_gflop(c);
    printf("model: %lld parameters, %.1f MB file, image %d, embed %d; %.2f GFLOP per image\n\n",
           (long long)bmc_model_n_params(model), bmc_model_file_size(model) / 1e6, S, E, g_img);

    /* inputs: 8 deterministic images, 8 texts of each length */
    float *chw = malloc(sizeof(float) * img_floats * 8);
    float *out = malloc(sizeof(float) * (size_t)E * 16 + sizeof(float) * img_floats);
    int *ids[N_LENS], lens[N_LENS][8];
    if (!chw || !out) return 1;
    for (size_t i = 0; i < img_floats * 8; i++) chw[i] = bu_pixel((unsigned)i);
    for (int li = 0; li < N_LENS; li++) {
        int L = TEXT_LENS[li] < ctxlen ? TEXT_LENS[li] : ctxlen;
        ids[li] = malloc(sizeof(int) * (size_t)L * 8);
        for (int j = 0; j < 8; j++) {
            lens[li][j] = L;
            make_ids(c, L, j, ids[li] + (size_t)L * j);
        }
    }

    /* ---- load and first embedding (each repetition maps the file afresh) ---- */
    if (!no_load && (wanted("load") || wanted("first_image") || wanted("first_text24"))) {
        printf("load\n");
        first_arg fa = {model_path, chw, 0, ids[1], lens[1][0], out};
        time_row("load", "model load (mmap + checks)", 1, 0, do_load, &fa);
        time_row("first_image", "load -> first image embedding", 1, 0, do_first, &fa);
        fa.text = 1;
        time_row("first_text24", "load -> first text embedding (24)", 1, 0, do_first, &fa);
    }

    /* ---- batch 1, in a context sized for batch 1; peak RSS measured after this phase ---- */
    bmc_ctx_params cp = bmc_ctx_default_params();
    cp.n_threads = cfg_threads;
    cp.max_batch = 1;
    bmc_ctx *ctx = NULL;
    if (bmc_ctx_new(model, &cp, &ctx) != BMC_OK) { fprintf(stderr, "bench: %s\n", bmc_last_error()); return 1; }
    enc e = {ctx, chw, NULL, NULL, 1, out, model, image_path, LABELS, NULL, {0}, {0}};
    if (!profile_only) printf("batch 1 (latency mode: one context, n_threads = %d)\n", cfg_threads);
    for (int li = -1; li < N_LENS && !profile_only; li++) {
        if (li < 0) {
            time_row("image_b1", "image, batch 1", 1, g_img, do_pixels, &e);
            continue;
        }
        char key[32], what[64];
        int L = lens[li][0];
        snprintf(key, sizeof key, "text%d_b1", TEXT_LENS[li]);
        snprintf(what, sizeof what, "text %d tokens, batch 1", L);
        e.ids = ids[li];
        e.lens = lens[li];
        time_row(key, what, 1, bert_gflop(c, L), do_ids, &e);
    }
    double rss_b1 = peak_rss_mb(), file_mb = bmc_model_file_size(model) / 1e6;
    if (!profile_only)
        printf("  peak RSS after batch 1: %.1f MB (model file %.1f MB; target <= file + 100 MB: %s)\n", rss_b1,
               file_mb, rss_b1 <= file_mb + 100 ? "met" : "NOT met");
    bmc_ctx_free(ctx);

    /* ---- batch 8 ---- */
    cp.max_batch = 8;
    if (bmc_ctx_new(model, &cp, &ctx) != BMC_OK) { fprintf(stderr, "bench: %s\n", bmc_last_error()); return 1; }
    e.ctx = ctx;
    e.n = 8;
    if (!profile_only) {
        printf("batch 8\n");
        time_row("image_b8", "images, batch 8", 8, 8 * g_img, do_pixels, &e);
    }
    for (int li = 0; li < N_LENS && !profile_only; li++) {
        char key[32], what[64];
        int L = lens[li][0];
        snprintf(key, sizeof key, "text%d_b8", TEXT_LENS[li]);
        snprintf(what, sizeof what, "texts %d tokens, batch 8", L);
        e.ids = ids[li];
        e.lens = lens[li];
        time_row(key, what, 8, 8 * bert_gflop(c, L), do_ids, &e);
    }

    /* ---- zero-shot: 1 image + the notebook's 9 prompts ---- */
    printf("zero-shot (1 image, %d prompts)\n", N_PROMPTS);
    char prompts[N_PROMPTS][128];
    const char *texts[N_PROMPTS];
    for (int i = 0; i < N_PROMPTS; i++) {
        snprintf(prompts[i], sizeof prompts[i], "this is a photo of %s", LABELS[i]);
        texts[i] = prompts[i];
    }
    float probs[N_PROMPTS];
    e.texts = texts;
    e.probs = probs;
    e.n = N_PROMPTS;
    int tok_ok = 1, tok_total = 0;
    for (int i = 0; i < N_PROMPTS && tok_ok; i++) {
        tok_ok = bmc_tokenize(model, texts[i], e.tok_ids + tok_total, BMC_MAX_TOKENS, &e.tok_lens[i]) == BMC_OK;
        if (tok_ok) tok_total += e.tok_lens[i];
    }
    double g_zs = g_img;
    if (tok_ok) {
        for (int i = 0; i < N_PROMPTS; i++) g_zs += bert_gflop(c, e.tok_lens[i]);
        time_row("tokenize9", "tokenize 9 prompts", N_PROMPTS, 0, do_tokenize, &e);
        if (!profile_only) time_row("zeroshot9", "zero-shot from pixels + ids", 1, g_zs, do_zero_shot_towers, &e);
    } else {
        printf("  tokenizer failed (%s): zero-shot rows skipped\n", bmc_last_error());
    }
    if (image_path) {
        bmc_image probe_img;
        char what[64] = "decode + resize + normalize (file)";
        if (bmc_image_load(image_path, BMC_DECODE_DEFAULT, &probe_img) == BMC_OK) {
            snprintf(what, sizeof what, "decode + resize + normalize %dx%d", probe_img.width, probe_img.height);
            bmc_image_free(&probe_img);
        }
        time_row("preprocess_file", what, 1, 0, do_preprocess_file, &e);
        if (tok_ok && !profile_only) time_row("zeroshot9_file", "zero-shot from file + prompts", 1, g_zs, do_zero_shot_file, &e);
    } else {
        printf("  no zero-shot image (set SHARED_DATA or --image): file rows skipped\n");
    }

    /* ---- check embeddings: image 0 and the first 24-token text, normalised ---- */
    float check_img[BMC_EMBED_DIM * 2], check_txt[BMC_EMBED_DIM * 2];
    int check_ok = E <= 2 * BMC_EMBED_DIM && bmc_encode_pixels(ctx, chw, 1, check_img, 1) == BMC_OK &&
                   bmc_encode_ids(ctx, ids[1], lens[1], 1, check_txt, 1) == BMC_OK;

    /* ---- OpenBLAS reference rate in this run: one large SGEMM (the ViT MLP at batch 8) ---- */
    double sgemm_gflops = 0, fma_gflops = 0;
    if (!profile_only && !cfg_workloads) {
        fma_gflops = bu_fma_peak(cfg_threads); /* the machine's ceiling for these threads */
        int M = 1576, N = 3072, K = 768;
        float *A = malloc(sizeof(float) * (size_t)M * K), *B = malloc(sizeof(float) * (size_t)N * K),
              *C = malloc(sizeof(float) * (size_t)M * N);
        if (A && B && C) {
            for (size_t i = 0; i < (size_t)M * K; i++) A[i] = bu_pixel((unsigned)i);
            for (size_t i = 0; i < (size_t)N * K; i++) B[i] = bu_pixel((unsigned)i + 99u) * 0.05f;
            double best = 1e30;
            for (int r = 0; r < (cfg_quick ? 3 : 10); r++) {
                double t0 = bu_now();
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N);
                double dt = bu_now() - t0;
                if (dt < best) best = dt;
            }
            sgemm_gflops = 2.0 * M * N * K / best / 1e9;
        }
        free(A), free(B), free(C);
        const row *ri = find_row("image_b8");
        printf("FMA peak %.1f GFLOP/s (%s), OpenBLAS SGEMM 1576x768 * 768x3072 %.1f GFLOP/s (%d threads)",
               fma_gflops, bu_fma_desc(), sgemm_gflops, cfg_threads);
        if (ri && sgemm_gflops > 0 && fma_gflops > 0)
            printf("; image encoding at batch 8 reaches %.1f GFLOP/s = %.0f%% of the peak, %.0f%% of OpenBLAS's",
                   ri->gflop / ri->t.median, 100 * ri->gflop / ri->t.median / fma_gflops,
                   100 * ri->gflop / ri->t.median / sgemm_gflops);
        printf("\n");
    }
    bmc_ctx_free(ctx);

    /* ---- throughput mode ---- */
    typedef struct tp { const char *key; double lat, tp; } tp;
    tp tps[4] = {{"image_b1", 0, 0}, {"image_b8", 0, 0}, {"text24_b1", 0, 0}, {"text24_b8", 0, 0}};
    int P = cfg_threads;
    if (!no_tp && P > 1) {
        printf("throughput mode: %d contexts on %d threads, n_threads = 1 each (items/s, all threads)\n", P, P);
        for (int i = 0; i < 4; i++) {
            const row *r = find_row(tps[i].key);
            if (!r) continue;
            tps[i].lat = r->items / r->t.median;
            int images = tps[i].key[0] == 'i';
            /* enough calls for ~max(2 s, min-time) at the latency-mode rate */
            double target = cfg_quick ? 0.3 : (cfg_min_time > 2 ? cfg_min_time : 2);
            int calls = (int)(target / (r->t.median * P)) + 1;
            if (calls < 2) calls = 2;
            tps[i].tp = throughput(model, P, images, chw, ids[1], lens[1], r->items, calls);
            printf("  %-12s latency mode %8.2f items/s   throughput mode %8.2f items/s  (x%.2f)\n", tps[i].key,
                   tps[i].lat, tps[i].tp, tps[i].lat > 0 ? tps[i].tp / tps[i].lat : 0);
        }
        openblas_set_num_threads(cfg_threads);
    }

    /* ---- profile ---- */
    /* the profiled workloads: key, call, items; from_file: decodes and tokenizes too, whose own
     * medians are subtracted as preprocessing */
    static const struct {
        const char *key;
        int (*fn)(void *);
        int n, from_file;
    } PROF[] = {{"image_b1", do_pixels, 1, 0},      {"image_b8", do_pixels, 8, 0},
                {"text24_b1", do_ids, 1, 0},        {"text24_b8", do_ids, 8, 0},
                {"zeroshot9_file", do_zero_shot_file, N_PROMPTS, 1}};
    enum { N_PROF = sizeof PROF / sizeof PROF[0] };
    uint64_t prof_ns[N_PROF][BMC__PROF_N];
    double prof_wall[N_PROF] = {0}, prof_pre[N_PROF] = {0};
    int prof_lanes[N_PROF] = {0};
    int prof_done = 0;
    if (profile && !bmc__prof_enabled()) {
        printf("profile: this library was built without -DBMC_PROFILE; build one with\n"
               "  make BUILD=build-prof OPT=\"-O2 -march=native -DBMC_PROFILE\" build-prof/bench/bench\n"
               "  (BENCH_PROFILE=1 make bench does it and runs build-prof/bench/bench --profile-only)\n");
    } else if (profile) {
        printf("profile (share of wall time x lanes, a lane being a thread that runs a group of the batch\n"
               "on its own (bert.c, vit.c), else the caller; 'other' = the rest: patch/embedding gathers,\n"
               "residual adds, copies)\n");
        cp.max_batch = 8;
        if (bmc_ctx_new(model, &cp, &ctx) != BMC_OK) return 1;
        e.ctx = ctx;
        const row *rp = find_row("preprocess_file"), *rt = find_row("tokenize9");
        for (int k = 0; k < N_PROF; k++) {
            int (*fn)(void *) = PROF[k].fn;
            if (PROF[k].from_file && (!image_path || !tok_ok)) continue;
            e.n = PROF[k].n;
            e.ids = ids[1];
            e.lens = lens[1];
            if (fn(&e)) continue; /* warm-up */
            uint64_t calls[BMC__PROF_N];
            bmc__prof_reset();
            double t0 = bu_now();
            /* bu_time's rule: at least 3 passes and --min-time (3 passes of a 20 ms text are
             * one hiccup of the host away from a wrong wall time) */
            int reps = 0;
            do fn(&e);
            while (++reps < 100 && !cfg_quick && (reps < 3 || bu_now() - t0 < cfg_min_time));
            prof_wall[k] = (bu_now() - t0) / reps;
            bmc__prof_read(prof_ns[k], calls);
            int lanes = bmc__prof_lanes();
            prof_lanes[k] = lanes > 1 ? lanes : 1;
            for (int i = 0; i < BMC__PROF_N; i++) prof_ns[k][i] /= (uint64_t)reps;
            if (PROF[k].from_file) prof_pre[k] = (rp ? rp->t.median : 0) + (rt ? rt->t.median : 0);
            double w = prof_wall[k] * 1e9 * prof_lanes[k], g = (double)prof_ns[k][BMC__PROF_GEMM],
                   a = (double)prof_ns[k][BMC__PROF_ATTENTION], n = (double)prof_ns[k][BMC__PROF_NORM_ACT],
                   pre = prof_pre[k] * 1e9;
            printf("  %-15s %8.2f ms, %d lane%s: GEMM %4.1f%%  attention %4.1f%%  LN/GELU/softmax %4.1f%%  preprocess %4.1f%%  "
                   "other %4.1f%%\n",
                   PROF[k].key, prof_wall[k] * 1e3, prof_lanes[k], prof_lanes[k] > 1 ? "s" : " ", 100 * g / w, 100 * a / w, 100 * n / w, 100 * pre / w,
                   100 * fmax(0, w - g - a - n - pre) / w); /* pre was timed apart: may overshoot */
            prof_done |= 1 << k;
        }
        bmc_ctx_free(ctx);
    }

    /* ---- targets of issue 6 that this program can judge alone ---- */
    const row *rl = find_row("load");
    double rss_all = peak_rss_mb();
    if (!profile_only) {
        printf("\ntargets (ours alone; the peer comparisons are in bench/report.py's table)\n");
        if (rl)
            printf("  load %.2f ms (target < 50 ms): %s\n", rl->t.median * 1e3, rl->t.median < 0.05 ? "met" : "NOT met");
        printf("  peak RSS at batch 1 %.1f MB <= file %.1f MB + 100 MB: %s\n", rss_b1, file_mb,
               rss_b1 <= file_mb + 100 ? "met" : "NOT met");
        printf("  peak RSS over the whole run (batch 8, throughput mode): %.1f MB\n", rss_all);
    }

    /* ---- JSON ---- */
    if (json_path) {
        bu_json js = {0};
        js.f = fopen(json_path, "w");
        if (!js.f) { fprintf(stderr, "bench: cannot write %s\n", json_path); return 1; }
        bu_json_open(&js, NULL, '{');
        bu_json_str(&js, "impl", "ours");
        bu_json_num(&js, "threads", cfg_threads);
        bu_json_open(&js, "machine", '{');
        bu_json_str(&js, "cpu", cpu);
        bu_json_num(&js, "online_cpus", (double)bu_online_cpus());
        bu_json_str(&js, "library", bmc_system_info());
        bu_json_str(&js, "blas", bu_blas_config());
        bu_json_str(&js, "blas_core", bu_blas_core());
        bu_json_str(&js, "openblas_coretype_env", coretype ? coretype : "");
        bu_json_num(&js, "loadavg_start", load_start);
        bu_json_num(&js, "loadavg_end", bu_loadavg());
        bu_json_close(&js, '}');
        bu_json_str(&js, "model", model_path);
        bu_json_num(&js, "model_file_mb", bmc_model_file_size(model) / 1e6);
        bu_json_num(&js, "gflop_per_image", g_img);
        bu_json_num(&js, "sgemm_gflops", sgemm_gflops);
        bu_json_num(&js, "fma_peak_gflops", fma_gflops);
        if (!profile_only) bu_json_num(&js, "peak_rss_batch1_mb", rss_b1);
        bu_json_num(&js, "peak_rss_all_mb", rss_all);
        bu_json_open(&js, "results", '{');
        for (int i = 0; i < n_rows; i++) {
            if (rows[i].t.n == 0) continue;
            bu_json_open(&js, rows[i].key, '{');
            bu_json_str(&js, "what", rows[i].what);
            bu_json_num(&js, "items", rows[i].items);
            bu_json_num(&js, "median_s", rows[i].t.median);
            bu_json_num(&js, "best_s", rows[i].t.best);
            bu_json_num(&js, "n", rows[i].t.n);
            if (rows[i].gflop > 0) bu_json_num(&js, "gflop", rows[i].gflop);
            bu_json_close(&js, '}');
        }
        bu_json_close(&js, '}');
        bu_json_open(&js, "throughput_mode", '{');
        for (int i = 0; i < 4; i++) {
            if (tps[i].tp <= 0) continue;
            bu_json_open(&js, tps[i].key, '{');
            bu_json_num(&js, "contexts", P);
            bu_json_num(&js, "latency_items_per_s", tps[i].lat);
            bu_json_num(&js, "items_per_s", tps[i].tp);
            bu_json_close(&js, '}');
        }
        bu_json_close(&js, '}');
        if (prof_done) {
            bu_json_open(&js, "profile", '{');
            for (int k = 0; k < N_PROF; k++) {
                if (!(prof_done & (1 << k))) continue;
                bu_json_open(&js, PROF[k].key, '{');
                bu_json_num(&js, "wall_s", prof_wall[k]);
                bu_json_num(&js, "lanes", prof_lanes[k]);
                bu_json_num(&js, "gemm_s", prof_ns[k][BMC__PROF_GEMM] / 1e9);
                bu_json_num(&js, "attention_s", prof_ns[k][BMC__PROF_ATTENTION] / 1e9);
                bu_json_num(&js, "norm_act_s", prof_ns[k][BMC__PROF_NORM_ACT] / 1e9);
                bu_json_num(&js, "preprocess_s", prof_pre[k]);
                bu_json_close(&js, '}');
            }
            bu_json_close(&js, '}');
        }
        /* the zero-shot workload, so that the peers run the same token ids */
        if (tok_ok) {
            bu_json_open(&js, "zeroshot_ids", '[');
            for (int i = 0, off = 0; i < N_PROMPTS; i++) {
                bu_json_key(&js, NULL);
                fputc('[', js.f);
                for (int t = 0; t < e.tok_lens[i]; t++) fprintf(js.f, "%s%d", t ? ", " : "", e.tok_ids[off + t]);
                fputc(']', js.f);
                off += e.tok_lens[i];
            }
            bu_json_close(&js, ']');
        }
        if (image_path) bu_json_str(&js, "zeroshot_image", image_path);
        if (cfg_workloads) { /* the peers time these alone (torch_peer.py, ort_peer.js) */
            bu_json_open(&js, "workloads", '[');
            for (size_t i = 0; i < sizeof KNOWN_KEYS / sizeof KNOWN_KEYS[0]; i++)
                if (wanted(KNOWN_KEYS[i])) bu_json_str(&js, NULL, KNOWN_KEYS[i]);
            bu_json_close(&js, ']');
        }
        if (check_ok) {
            const float *cv[2] = {check_img, check_txt};
            const char *ck[2] = {"check_image", "check_text24"};
            for (int k = 0; k < 2; k++) {
                bu_json_key(&js, ck[k]);
                fputc('[', js.f);
                for (int i = 0; i < E; i++) fprintf(js.f, "%s%.7g", i ? ", " : "", cv[k][i]);
                fputc(']', js.f);
            }
        }
        bu_json_close(&js, '}');
        fputc('\n', js.f);
        fclose(js.f);
        printf("wrote %s\n", json_path);
    }

    for (int li = 0; li < N_LENS; li++) free(ids[li]);
    free(chw);
    free(out);
    bmc_model_free(model);
    return 0;
}
