/* test_bert_parity.c - the text tower against the PyTorch reference (tests/reference/text.py,
 * goldens made by tests/prep/40_text_golden.sh in $BMC_TESTDATA/text_golden/{tiny,full}/).
 *
 * For every case (random ids of lengths 2..256 and the tokenizer test prompts) it compares, stage
 * by stage, the embedding LayerNorm, every layer's output at the real positions, the [CLS] row of
 * the last layer computed for [CLS] only, the projection, and the public bmc_encode_ids output;
 * then all cases packed into one call (mixed lengths), also with a context whose max_batch forces
 * several chunks, against the goldens and against the one-at-a-time results; then bmc_encode_text
 * on the prompt texts; then argument validation. Prints max abs and relative L2 per stage. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bert.h"
#include "panels.h"
#include "biomedclip.h"
#include "context.h"
#include "cpu.h"
#include "model.h"

#define FINAL_TOL 1e-5  /* relative L2 of the final embedding (spec target) */
#define STAGE_TOL 1e-4  /* relative L2 of any intermediate (catches a wrong stage early) */
#define PACK_TOL 5e-6   /* packed vs one at a time: same math, other GEMM blocking */
#define MAX_CASES 64

typedef struct {
    char name[32];
    int n;
    int *ids;
} tcase;

typedef struct {
    const char *tag;
    bmc_model *model;
    char dir[1024];
    tcase cases[MAX_CASES];
    int n_cases;
} suite;

static const char *testdata(void) {
    const char *d = getenv("BMC_TESTDATA");
    return (d && *d) ? d : "build/testdata";
}

static float *read_f32(const char *dir, const char *name, const char *ext, size_t n) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.%s.f32", dir, name, ext);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s (run tests/prep/40_text_golden.sh)", path);
    float *v = malloc(n * sizeof(float) + 1);
    assert_non_null(v);
    size_t got = fread(v, sizeof(float), n, f);
    int extra = fgetc(f);
    fclose(f);
    if (got != n || extra != EOF) fail_msg("%s: expected exactly %zu floats", path, n);
    return v;
}

/* relative L2 error |a - b| / |b| and max abs error, in double */
static double rel_l2(const float *a, const float *b, size_t n, double *max_abs) {
    double num = 0, den = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
        if (fabs(d) > mx || isnan(d)) mx = isnan(d) ? INFINITY : fabs(d);
    }
    if (max_abs) *max_abs = mx;
    double r = sqrt(num) / (sqrt(den) > 0 ? sqrt(den) : 1.0);
    return isnan(r) ? INFINITY : r;
}

static double check(const char *what, const char *tag, const char *name, const float *a,
                    const float *b, size_t n, double tol) {
    double mx;
    double r = rel_l2(a, b, n, &mx);
    printf("  %-5s %-9s %-16s max_abs %.3e  rel_l2 %.3e%s\n", tag, name, what, mx, r,
           r <= tol ? "" : "  <-- FAIL");
    if (!(r <= tol)) fail_msg("%s %s %s: rel_l2 %.3e > %.1e", tag, name, what, r, tol);
    return r;
}

static int cfg_value(const char *dir, const char *key, double *v) {
    char path[1200], k[64];
    snprintf(path, sizeof path, "%s/config.txt", dir);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    double x;
    int found = 0;
    while (fscanf(f, "%63s %lf", k, &x) == 2)
        if (!strcmp(k, key)) {
            *v = x;
            found = 1;
        }
    fclose(f);
    return found;
}

static void suite_load(suite *s, const char *tag) {
    memset(s, 0, sizeof *s);
    s->tag = tag;
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.bmc", testdata(), tag);
    bmc_status st = bmc_model_load(path, NULL, &s->model);
    if (st != BMC_OK) fail_msg("load %s: %s", path, bmc_last_error());
    snprintf(s->dir, sizeof s->dir, "%s/text_golden/%s", testdata(), tag);

    /* the goldens must come from this model's configuration */
    const bmc__config *c = &s->model->config;
    const char *keys[] = {"width", "layers", "heads", "ffn", "embed", "context_length"};
    double want[] = {c->text_width, c->text_layers, c->text_heads, c->text_ffn, c->embed_dim,
                     c->context_length};
    for (int i = 0; i < 6; i++) {
        double v = 0;
        if (!cfg_value(s->dir, keys[i], &v)) fail_msg("%s/config.txt: no %s", s->dir, keys[i]);
        if (v != want[i]) fail_msg("%s: golden %s %g != model %g", tag, keys[i], v, want[i]);
    }

    snprintf(path, sizeof path, "%s/cases.txt", s->dir);
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("cannot open %s (run tests/prep/40_text_golden.sh)", path);
    tcase tc;
    while (fscanf(f, "%31s %d", tc.name, &tc.n) == 2) {
        assert_true(s->n_cases < MAX_CASES);
        assert_true(tc.n >= 1 && tc.n <= 4096);
        tc.ids = malloc(sizeof(int) * (size_t)tc.n);
        for (int j = 0; j < tc.n; j++) assert_int_equal(fscanf(f, "%d", &tc.ids[j]), 1);
        s->cases[s->n_cases++] = tc;
    }
    fclose(f);
    assert_true(s->n_cases >= 7);
    printf("%s: %d cases from %s\n", tag, s->n_cases, s->dir);
}

static void suite_free(suite *s) {
    for (int i = 0; i < s->n_cases; i++) free(s->cases[i].ids);
    bmc_model_free(s->model);
}

/* Stage by stage for one case, with the test's own scratch. Returns the relative L2 error of the
 * public bmc_encode_ids output; writes it to emb[E]. */
static double run_case_stages(suite *s, bmc_ctx *ctx, const tcase *tc, float *emb) {
    const bmc_model *m = s->model;
    const bmc__config *c = &m->config;
    int W = (int)c->text_width, NL = (int)c->text_layers, E = (int)c->embed_dim, n = tc->n;
    bmc__bert_plan plan = bmc__bert_plan_for(c, n, 1, n);
    float *scratch = malloc(sizeof(float) * plan.total);
    float *h = malloc(sizeof(float) * (size_t)n * W);
    float *cls = malloc(sizeof(float) * (size_t)W);
    float *proj = malloc(sizeof(float) * (size_t)E);
    float *hidden = read_f32(s->dir, tc->name, "hidden", (size_t)(NL + 1) * n * W);
    float *g_cls = read_f32(s->dir, tc->name, "cls", (size_t)W);
    float *g_proj = read_f32(s->dir, tc->name, "proj", (size_t)E);
    float *g_norm = read_f32(s->dir, tc->name, "norm", (size_t)E);
    int lens[1] = {n};
    char what[32];

    printf(" %s %s (n=%d)\n", s->tag, tc->name, n);
    bmc__bert_embed(m, tc->ids, lens, 1, h);
    check("embeddings", s->tag, tc->name, h, hidden, (size_t)n * W, STAGE_TOL);
    for (int l = 0; l < NL; l++) {
        if (l == NL - 1) { /* the [CLS]-only last layer from the same input */
            bmc__bert_run_layer_cls(m, l, h, lens, 1, cls, scratch, &plan);
            check("last layer [CLS]", s->tag, tc->name, cls, g_cls, (size_t)W, STAGE_TOL);
        }
        bmc__bert_run_layer(m, l, h, lens, 1, scratch, &plan);
        snprintf(what, sizeof what, "layer %d", l);
        check(what, s->tag, tc->name, h, hidden + (size_t)(l + 1) * n * W, (size_t)n * W,
              STAGE_TOL);
    }
    /* the full last layer's row 0 and the [CLS]-only path agree closely */
    check("cls: full vs only", s->tag, tc->name, cls, h, (size_t)W, PACK_TOL);
    bmc__bert_project(m, cls, 1, proj, scratch, &plan);
    check("projection", s->tag, tc->name, proj, g_proj, (size_t)E, FINAL_TOL);

    assert_int_equal(bmc_encode_ids(ctx, tc->ids, lens, 1, emb, 0), BMC_OK);
    check("encode_ids raw", s->tag, tc->name, emb, g_proj, (size_t)E, FINAL_TOL);
    assert_int_equal(bmc_encode_ids(ctx, tc->ids, lens, 1, emb, 1), BMC_OK);
    double r = check("encode_ids norm", s->tag, tc->name, emb, g_norm, (size_t)E, FINAL_TOL);
    free(scratch); free(h); free(cls); free(proj);
    free(hidden); free(g_cls); free(g_proj); free(g_norm);
    return r;
}

/* All cases in one call (texts of mixed lengths), against goldens and the single results. */
static void run_packed(suite *s, bmc_ctx *ctx, const float *single, const char *label) {
    int E = (int)s->model->config.embed_dim, total = 0;
    for (int i = 0; i < s->n_cases; i++) total += s->cases[i].n;
    int *ids = malloc(sizeof(int) * (size_t)total), *lens = malloc(sizeof(int) * s->n_cases);
    float *out = malloc(sizeof(float) * (size_t)s->n_cases * E);
    int at = 0;
    /* reversed order, so that a text's position in the batch differs from the single runs */
    for (int k = 0; k < s->n_cases; k++) {
        const tcase *tc = &s->cases[s->n_cases - 1 - k];
        memcpy(ids + at, tc->ids, sizeof(int) * (size_t)tc->n);
        lens[k] = tc->n;
        at += tc->n;
    }
    printf(" %s packed (%s): %d texts, %d ids in one call\n", s->tag, label, s->n_cases, total);
    assert_int_equal(bmc_encode_ids(ctx, ids, lens, s->n_cases, out, 1), BMC_OK);
    double worst_g = 0, worst_s = 0;
    for (int k = 0; k < s->n_cases; k++) {
        int i = s->n_cases - 1 - k;
        const tcase *tc = &s->cases[i];
        float *g_norm = read_f32(s->dir, tc->name, "norm", (size_t)E);
        double rg = rel_l2(out + (size_t)k * E, g_norm, (size_t)E, NULL);
        double rs = rel_l2(out + (size_t)k * E, single + (size_t)i * E, (size_t)E, NULL);
        if (rg > worst_g) worst_g = rg;
        if (rs > worst_s) worst_s = rs;
        if (!(rg <= FINAL_TOL))
            fail_msg("%s packed %s: rel_l2 vs golden %.3e", s->tag, tc->name, rg);
        if (!(rs <= PACK_TOL))
            fail_msg("%s packed %s: rel_l2 vs single %.3e", s->tag, tc->name, rs);
        free(g_norm);
    }
    printf("  %-5s packed (%s): worst rel_l2 vs golden %.3e, vs one-at-a-time %.3e\n", s->tag,
           label, worst_g, worst_s);
    free(ids); free(lens); free(out);
}

static int is_ligature_case(const char *text) { return strstr(text, "\xef\xac\x81") != NULL; }

/* bmc_encode_text on the prompt texts (tokenized by the library), all in one call. The golden ids
 * are the raw tokenizer's; open_clip's ftfy cleaning changes only the ligature prompt (see
 * tokenizer_test_vectors.json), which is left out. */
static void run_encode_text(suite *s, bmc_ctx *ctx) {
    int E = (int)s->model->config.embed_dim, n = 0;
    char *texts[MAX_CASES];
    const tcase *which[MAX_CASES];
    for (int i = 0; i < s->n_cases; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s.txt", s->dir, s->cases[i].name);
        FILE *f = fopen(path, "rb");
        if (!f) continue; /* random-id cases have no text */
        char *t = calloc(1, 65536);
        size_t got = fread(t, 1, 65535, f);
        fclose(f);
        t[got] = 0;
        if (is_ligature_case(t)) {
            free(t);
            continue;
        }
        texts[n] = t;
        which[n++] = &s->cases[i];
    }
    assert_true(n >= 9);
    float *out = malloc(sizeof(float) * (size_t)n * E);
    assert_int_equal(bmc_encode_text(ctx, (const char *const *)texts, n, out, 1), BMC_OK);
    double worst = 0;
    for (int k = 0; k < n; k++) {
        float *g = read_f32(s->dir, which[k]->name, "norm", (size_t)E);
        double r = rel_l2(out + (size_t)k * E, g, (size_t)E, NULL);
        if (r > worst) worst = r;
        if (!(r <= FINAL_TOL))
            fail_msg("%s encode_text %s: rel_l2 %.3e (text \"%.60s\")", s->tag, which[k]->name, r,
                     texts[k]);
        free(g);
        free(texts[k]);
    }
    printf("  %-5s encode_text: %d prompts in one call, worst rel_l2 %.3e\n", s->tag, n, worst);
    free(out);
}

static void parity(const char *tag) {
    suite s;
    suite_load(&s, tag);
    bmc_ctx *ctx = NULL;
    assert_int_equal(bmc_ctx_new(s.model, NULL, &ctx), BMC_OK);
    int E = (int)s.model->config.embed_dim;
    float *single = malloc(sizeof(float) * (size_t)s.n_cases * E);
    double worst = 0;
    for (int i = 0; i < s.n_cases; i++) {
        double r = run_case_stages(&s, ctx, &s.cases[i], single + (size_t)i * E);
        if (r > worst) worst = r;
    }
    printf("  %-5s one at a time: worst final rel_l2 %.3e over %d cases\n", tag, worst, s.n_cases);
    run_packed(&s, ctx, single, "default context");

    /* max_batch 1: the packed call is split into chunks of at most one context length of ids */
    bmc_ctx_params p = bmc_ctx_default_params();
    p.max_batch = 1;
    bmc_ctx *small = NULL;
    assert_int_equal(bmc_ctx_new(s.model, &p, &small), BMC_OK);
    run_packed(&s, small, single, "max_batch 1, chunked");
    bmc_ctx_free(small);

    run_encode_text(&s, ctx);
    free(single);
    bmc_ctx_free(ctx);
    suite_free(&s);
}

static void test_tiny(void **state) { (void)state; parity("tiny"); }
static void test_full(void **state) { (void)state; parity("full"); }

static void expect_invalid(bmc_ctx *ctx, const int *ids, const int *lens, int n,
                           const char *needle) {
    float out[2 * 512];
    bmc_status st = bmc_encode_ids(ctx, ids, lens, n, out, 1);
    printf("  invalid input -> %s: %s\n", bmc_status_str(st), bmc_last_error());
    assert_int_equal(st, BMC_E_INVALID_ARG);
    if (needle && !strstr(bmc_last_error(), needle))
        fail_msg("message \"%s\" does not name \"%s\"", bmc_last_error(), needle);
}

static void test_validation(void **state) {
    (void)state;
    char path[1200];
    snprintf(path, sizeof path, "%s/tiny.bmc", testdata());
    bmc_model *m = NULL;
    assert_int_equal(bmc_model_load(path, NULL, &m), BMC_OK);
    bmc_ctx *ctx = NULL;
    assert_int_equal(bmc_ctx_new(m, NULL, &ctx), BMC_OK);
    int V = (int)m->config.vocab_rows, C = (int)m->config.context_length;
    int ids[600];
    for (int i = 0; i < 600; i++) ids[i] = 5 + i;
    int lens0[2] = {3, 0}, lens_long[2] = {3, C + 1}, lens_ok[2] = {3, 4};
    expect_invalid(ctx, ids, lens0, 2, "text 1");
    expect_invalid(ctx, ids, lens_long, 2, "text 1");
    ids[3 + 2] = -1;
    expect_invalid(ctx, ids, lens_ok, 2, "text 1 position 2: id -1");
    ids[3 + 2] = V;
    char want[64];
    snprintf(want, sizeof want, "text 1 position 2: id %d", V);
    expect_invalid(ctx, ids, lens_ok, 2, want);
    ids[3 + 2] = V - 1; /* the last row is valid */
    float out[2 * 512];
    assert_int_equal(bmc_encode_ids(ctx, ids, lens_ok, 2, out, 1), BMC_OK);
    assert_int_equal(bmc_encode_ids(NULL, ids, lens_ok, 2, out, 1), BMC_E_INVALID_ARG);
    assert_int_equal(bmc_encode_ids(ctx, ids, lens_ok, -1, out, 1), BMC_E_INVALID_ARG);
    assert_int_equal(bmc_encode_ids(ctx, NULL, lens_ok, 2, out, 1), BMC_E_INVALID_ARG);
    assert_int_equal(bmc_encode_ids(ctx, ids, lens_ok, 2, NULL, 1), BMC_E_INVALID_ARG);
    assert_int_equal(bmc_encode_ids(ctx, NULL, NULL, 0, NULL, 1), BMC_OK); /* nothing to do */
    const char *texts[2] = {"chest x-ray", NULL};
    assert_int_equal(bmc_encode_text(ctx, texts, 2, out, 1), BMC_E_INVALID_ARG);
    assert_int_equal(bmc_encode_text(ctx, NULL, 1, out, 1), BMC_E_INVALID_ARG);
    assert_int_equal(bmc_encode_text(ctx, texts, 0, NULL, 1), BMC_OK);
    /* an empty text is [CLS] [SEP] */
    const char *empty[1] = {""};
    float a[512], b[512];
    int cs[2] = {(int)m->config.cls_id, (int)m->config.sep_id}, two = 2;
    assert_int_equal(bmc_encode_text(ctx, empty, 1, a, 1), BMC_OK);
    assert_int_equal(bmc_encode_ids(ctx, cs, &two, 1, b, 1), BMC_OK);
    assert_memory_equal(a, b, sizeof(float) * m->config.embed_dim);
    bmc_ctx_free(ctx);
    bmc_model_free(m);
}

/* The arena the scheduler sizes at bmc_ctx_new (lib/run.c) holds max_batch full-length texts,
 * however the chunk is split into groups per thread: encoding them, or twice as many (two
 * chunks), does not grow it. The embeddings are the same on 1, 2 and 3 threads. */
static void test_arena_covers_max_batch(void **state) {
    (void)state;
    char path[1200];
    snprintf(path, sizeof path, "%s/tiny.bmc", testdata());
    bmc_model *m = NULL;
    assert_int_equal(bmc_model_load(path, NULL, &m), BMC_OK);
    int C = (int)m->config.context_length, V = (int)m->config.vocab_size, E = (int)m->config.embed_dim;
    enum { MAXB = 6 };
    double worst_portable = 0;
    int *ids = malloc(sizeof(int) * 2 * MAXB * C), lens[2 * MAXB];
    float *out = malloc(sizeof(float) * 2 * MAXB * E), *ref = malloc(sizeof(float) * 2 * MAXB * E);
    assert_true(ids && out && ref);
    for (int i = 0; i < 2 * MAXB * C; i++) ids[i] = 5 + (i * 7919) % (V - 5);
    for (int i = 0; i < 2 * MAXB; i++) lens[i] = C;
    for (int b = 1; b <= MAXB; b += 2) {
        for (int threads = 1; threads <= 3; threads++) {
            bmc_ctx_params p = bmc_ctx_default_params();
            p.n_threads = threads, p.max_batch = b;
            bmc_ctx *ctx = NULL;
            assert_int_equal(bmc_ctx_new(m, &p, &ctx), BMC_OK);
            const float *arena = ctx->scratch;
            size_t floats = ctx->scratch_floats;
            assert_int_equal(bmc_encode_ids(ctx, ids, lens, b, out, 0), BMC_OK);
            assert_int_equal(bmc_encode_ids(ctx, ids, lens, 2 * b, out, 0), BMC_OK);
            assert_ptr_equal(ctx->scratch, arena);
            assert_int_equal(ctx->scratch_floats, floats);
            if (threads == 1) memcpy(ref, out, sizeof(float) * 2 * b * E);
            else if (bmc__kern()->outer) assert_memory_equal(out, ref, sizeof(float) * 2 * b * E);
            else {
                /* the portable level's products are OpenBLAS's on its own threads, whose
                 * micro-kernels (e.g. Haswell's) may follow the thread partition: close, not
                 * always the same bits (biomedclip.h, Determinism) */
                for (int i = 0; i < 2 * b; i++) {
                    double mx, d = rel_l2(out + (size_t)i * E, ref + (size_t)i * E, (size_t)E, &mx);
                    if (d > worst_portable) worst_portable = d;
                    assert_true(d <= 1e-5);
                }
            }
            bmc_ctx_free(ctx);
        }
    }
    if (bmc__kern()->outer)
        printf("  max_batch 1, 3, 5 of %d-id texts on 1-3 threads: no arena growth, same bits\n", C);
    else
        printf("  max_batch 1, 3, 5 of %d-id texts on 1-3 threads: no arena growth; portable level, "
               "worst rel_l2 across thread counts %.3e\n", C, worst_portable);
    free(ids), free(out), free(ref);
    bmc_model_free(m);
}

/* The linear projection variant (text_proj_type == BMC__PROJ_LINEAR): out = cls W^T, checked
 * against a double-precision product on a copy of the tiny model with a made-up [E, W] weight. */
static void test_linear_projection(void **state) {
    (void)state;
    char path[1200];
    snprintf(path, sizeof path, "%s/tiny.bmc", testdata());
    bmc_model *m = NULL;
    assert_int_equal(bmc_model_load(path, NULL, &m), BMC_OK);
    bmc_model *lin = malloc(sizeof *lin);
    memcpy(lin, m, sizeof *lin);
    int W = (int)m->config.text_width, E = (int)m->config.embed_dim;
    lin->config.text_proj_type = BMC__PROJ_LINEAR;
    lin->config.text_proj_hidden = 0;
    float *pw = malloc(sizeof(float) * (size_t)E * W), *cls = malloc(sizeof(float) * (size_t)W);
    for (int i = 0; i < E * W; i++) pw[i] = (float)sin(0.37 * i) * 0.1f;
    for (int i = 0; i < W; i++) cls[i] = (float)cos(0.11 * i);
    float *pp = malloc(sizeof(float) * bmc__panel_floats(E, W));
    bmc__panel_pack(pw, E, W, (size_t)W, pp);
    lin->bert.proj0_w = (bmc__panels){pp, E, W, 0, BMC__W_F32};
    lin->bert.proj2_w = (bmc__panels){NULL, 0, 0, 0, BMC__W_F32};
    bmc__bert_plan plan = bmc__bert_plan_for(&lin->config, 1, 1, 1);
    float *scratch = malloc(sizeof(float) * plan.total), *out = malloc(sizeof(float) * (size_t)E);
    bmc__bert_project(lin, cls, 1, out, scratch, &plan);
    double worst = 0;
    for (int e = 0; e < E; e++) {
        double ref = 0;
        for (int d = 0; d < W; d++) ref += (double)cls[d] * pw[(size_t)e * W + d];
        double err = fabs(out[e] - ref);
        if (err > worst) worst = err;
    }
    printf("  linear projection: max abs error %.3e\n", worst);
    assert_true(worst < 1e-5);
    free(pw); free(pp); free(cls); free(scratch); free(out); free(lin);
    bmc_model_free(m);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep the figures in order with cmocka's messages */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_linear_projection),
        cmocka_unit_test(test_arena_covers_max_batch),
        cmocka_unit_test(test_tiny),
        cmocka_unit_test(test_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
