/* cmd_compare.c - `biomedclip compare A.bmc B.bmc`: two models' embeddings of the same inputs
 * side by side, to check a fine-tune (or a converted / reduced-precision file) against its
 * base: the cosine between A's and B's embedding of each input, zero-shot top-1 agreement over
 * labels, and whether retrieval ranks the same items first and in the same order. */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli.h"
#include "image_walk.h"
#include "image_batch.h"

#define DEFAULT_TEMPLATE "this is a photo of "

static const char usage_text[] =
    "usage: biomedclip compare A.bmc B.bmc [--images DIR|FILE]... [IMAGE...] [--texts FILE]\n"
    "                          [--text TEXT] [--labels \"a,b,c\"] [--labels-file FILE]\n"
    "                          [--template TEXT] [--json] [--threads N] [--batch N]\n"
    "\n"
    "Embed the same inputs with two models and compare:\n"
    "  * per input, the cosine between model A's and model B's embedding (needs equal\n"
    "    embedding sizes; 1 = the same direction);\n"
    "  * zero-shot (with --labels and images): how often both models pick the same top-1\n"
    "    label, and the largest difference of a probability;\n"
    "  * retrieval: text -> image and image -> text (with both), else image -> image or\n"
    "    text -> text (each query against the others): how often both models rank the same\n"
    "    item first, and the Spearman correlation of the two rankings (mean over queries).\n"
    "\n"
    "  --images DIR|FILE    an image, or every image under a directory (recursive, sorted;\n"
    "                       by extension); may be repeated. Other arguments are images too.\n"
    "  --texts FILE         one text per line (blank lines ignored); --text TEXT adds one\n"
    "  --labels LIST        comma-separated zero-shot labels (may be repeated)\n"
    "  --labels-file FILE   one label per line\n"
    "  --template TEXT      prefix of every label (default \"" DEFAULT_TEMPLATE "\")\n"
    "  --json               one JSON object instead of the table (docs/CLI.md)\n"
    "  --threads N          threads of each model (default: OpenBLAS's thread count)\n"
    "  --batch N            images encoded together (default 8)\n"
    "\n"
    "Exit status: 0 every input compared, 1 some input failed (named on stderr; the others\n"
    "are compared), 2 bad command line, 3 a model not loadable.\n";

typedef cli_paths strlist;

/* Append a copy of s[0..len); trim: drop surrounding blanks; empty items are skipped. */
static int strlist_add(strlist *l, const char *s, size_t len, int trim) {
    while (len && (s[len - 1] == '\r' || s[len - 1] == '\n')) len--;
    if (trim) {
        while (len && (*s == ' ' || *s == '\t')) s++, len--;
        while (len && (s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
    }
    if (!len) return 0;
    return cli_paths_push(l, strndup(s, len));
}

static void strlist_free(strlist *l) { cli_paths_free(l); }

/* A directory gives its images in sorted order; anything else is taken as an image file. */
static int add_images(strlist *out, const char *arg, int *errors) {
    struct stat st;
    if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode)) {
        int first = out->n;
        if (cli_walk_images("compare", arg, out, errors)) return -1;
        qsort(out->v + first, (size_t)(out->n - first), sizeof *out->v, cli_paths_cmp);
        if (out->n == first) fprintf(stderr, "biomedclip compare: %s: no images found\n", arg);
        return 0;
    }
    return strlist_add(out, arg, strlen(arg), 0);
}

/* ---- the command line (cli_parse's table) ------------------------------------------------- */

typedef struct inputs {
    const char *paths[2]; /* the two models: the first two arguments */
    int n_paths;
    strlist images, texts, labels;
    int errors;           /* directories that could not be read */
} inputs;

static int oom(void) {
    fprintf(stderr, "biomedclip compare: out of memory\n");
    return CLI_EXIT_FAILURE;
}

static int add_arg(void *p, const char *a) {
    inputs *in = p;
    if (in->n_paths < 2) {
        in->paths[in->n_paths++] = a;
        return CLI_GO_ON;
    }
    return add_images(&in->images, a, &in->errors) ? oom() : CLI_GO_ON;
}

static int add_images_opt(void *p, const char *v) {
    inputs *in = p;
    return add_images(&in->images, v, &in->errors) ? oom() : CLI_GO_ON;
}

static int add_text(void *p, const char *v) {
    return strlist_add(&((inputs *)p)->texts, v, strlen(v), 0) ? oom() : CLI_GO_ON;
}

static int text_line(void *l, const char *line, size_t len) { return strlist_add(l, line, len, 0); }
static int label_line(void *l, const char *line, size_t len) { return strlist_add(l, line, len, 1); }

static int add_texts_file(void *p, const char *path) {
    return cli_read_lines("compare", path, text_line, &((inputs *)p)->texts) ? CLI_EXIT_USAGE : CLI_GO_ON;
}

static int add_labels(void *p, const char *list) {
    return cli_split_commas(list, label_line, &((inputs *)p)->labels) ? oom() : CLI_GO_ON;
}

static int add_labels_file(void *p, const char *path) {
    return cli_read_lines("compare", path, label_line, &((inputs *)p)->labels) ? CLI_EXIT_USAGE : CLI_GO_ON;
}

/* ---- one model ------------------------------------------------------------------------------ */

typedef struct side {
    const char *path;
    bmc_model *model;
    bmc_ctx *ctx;
    int dim;
    float *img;   /* [n images, dim], unit norm */
    float *txt;   /* [n texts, dim] */
    float *lab;   /* [n labels, dim] */
    float *probs; /* [n images, n labels] */
} side;

typedef struct sink {
    float *emb;
    int dim;
    unsigned char *ok;
    int report; /* print the errors (only on the first model's pass: the same file fails twice) */
} sink;

static int on_image(void *user, int index, const float *emb, const char *error) {
    sink *s = user;
    if (!emb) {
        s->ok[index] = 0;
        if (s->report) fprintf(stderr, "biomedclip compare: %s\n", error);
        return 0;
    }
    memcpy(s->emb + (size_t)index * s->dim, emb, (size_t)s->dim * sizeof *emb);
    return 0;
}

/* Encode texts `batch` at a time into out[n, dim] (unit norm). */
static int encode_texts(side *m, char *const *texts, int n, int batch, float *out) {
    for (int i = 0; i < n; i += batch) {
        int k = n - i < batch ? n - i : batch;
        if (bmc_encode_text(m->ctx, (const char *const *)texts + i, k, out + (size_t)i * m->dim, 1) != BMC_OK) {
            fprintf(stderr, "biomedclip compare: %s: encoding texts: %s\n", m->path, bmc_last_error());
            return -1;
        }
    }
    return 0;
}

/* ---- statistics ----------------------------------------------------------------------------- */

static double cosine(const float *a, const float *b, int dim) {
    double ab = 0, aa = 0, bb = 0;
    for (int k = 0; k < dim; k++) ab += (double)a[k] * b[k], aa += (double)a[k] * a[k], bb += (double)b[k] * b[k];
    return ab / (fmax(sqrt(aa), 1e-12) * fmax(sqrt(bb), 1e-12));
}

static int argmax(const float *v, int n, int skip) {
    int best = -1;
    for (int i = 0; i < n; i++)
        if (i != skip && (best < 0 || v[i] > v[best])) best = i;
    return best;
}

static const float *rank_values; /* qsort has no user pointer; the CLI is single-threaded */
static int by_value_desc(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    if (rank_values[i] != rank_values[j]) return rank_values[i] < rank_values[j] ? 1 : -1;
    return i - j;
}

/* rank[i] of v[0..n) (1 = largest), ties getting their mean rank; order is scratch[n]. */
static void ranks(const float *v, int n, int *order, double *rank) {
    for (int i = 0; i < n; i++) order[i] = i;
    rank_values = v;
    qsort(order, (size_t)n, sizeof *order, by_value_desc);
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && v[order[j + 1]] == v[order[i]]) j++;
        for (int k = i; k <= j; k++) rank[order[k]] = (i + j) / 2.0 + 1;
        i = j + 1;
    }
}

/* Pearson correlation of two rank vectors; NAN when one is constant. */
static double correlation(const double *x, const double *y, int n) {
    double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < n; i++) mx += x[i], my += y[i];
    mx /= n, my /= n;
    for (int i = 0; i < n; i++)
        sxy += (x[i] - mx) * (y[i] - my), sxx += (x[i] - mx) * (x[i] - mx), syy += (y[i] - my) * (y[i] - my);
    return (sxx > 0 && syy > 0) ? sxy / sqrt(sxx * syy) : NAN;
}

typedef struct ret_plan {
    const char *q, *g;                /* query and gallery kinds */
    int nq, ng, same;                 /* counts; same: the queries are the gallery */
    const float *qa, *ga, *qb, *gb;   /* embeddings under A and under B */
} ret_plan;

typedef struct retrieval {
    const char *query, *gallery;
    int nq, ng;          /* queries, gallery items per query */
    int top1_agree;      /* queries whose best item is the same under both models */
    int n_rho;           /* queries with a defined rank correlation */
    double rho_mean, rho_min;
} retrieval;

/* simA/simB[q * ng_all + g]: the similarities of query q to gallery item g under each model;
 * same_set: the queries are the gallery (query q is left out of its own ranking). */
static int rank_agreement(const float *simA, const float *simB, int nq, int ng_all, int same_set,
                          retrieval *r) {
    int ng = ng_all - (same_set ? 1 : 0);
    float *a = malloc((size_t)ng * sizeof *a), *b = malloc((size_t)ng * sizeof *b);
    int *order = malloc((size_t)ng * sizeof *order);
    double *ra = malloc((size_t)ng * sizeof *ra), *rb = malloc((size_t)ng * sizeof *rb);
    if (!a || !b || !order || !ra || !rb) {
        free(a), free(b), free(order), free(ra), free(rb);
        return -1;
    }
    r->nq = nq, r->ng = ng, r->top1_agree = 0, r->n_rho = 0, r->rho_mean = 0, r->rho_min = 1;
    for (int q = 0; q < nq; q++) {
        const float *ra_row = simA + (size_t)q * ng_all, *rb_row = simB + (size_t)q * ng_all;
        int skip = same_set ? q : -1;
        r->top1_agree += argmax(ra_row, ng_all, skip) == argmax(rb_row, ng_all, skip);
        for (int g = 0, k = 0; g < ng_all; g++)
            if (g != skip) a[k] = ra_row[g], b[k] = rb_row[g], k++;
        ranks(a, ng, order, ra);
        ranks(b, ng, order, rb);
        double rho = ng >= 2 ? correlation(ra, rb, ng) : NAN;
        if (!isnan(rho)) {
            r->n_rho++;
            r->rho_mean += rho;
            if (rho < r->rho_min) r->rho_min = rho;
        }
    }
    if (r->n_rho) r->rho_mean /= r->n_rho;
    free(a), free(b), free(order), free(ra), free(rb);
    return 0;
}

/* ---- output --------------------------------------------------------------------------------- */

typedef struct summary {
    int n;
    double min, mean;
} summary;

static summary summarize(const double *v, int n) {
    summary s = {n, n ? v[0] : NAN, 0};
    for (int i = 0; i < n; i++) {
        s.mean += v[i];
        if (v[i] < s.min) s.min = v[i];
    }
    s.mean = n ? s.mean / n : NAN;
    return s;
}

static void json_num(double v) {
    if (isnan(v)) fputs("null", stdout);
    else printf("%.9g", v);
}

static void json_summary(const char *key, summary s) {
    printf("\"%s\": {\"n\": %d, \"min\": ", key, s.n);
    json_num(s.n ? s.min : NAN);
    fputs(", \"mean\": ", stdout);
    json_num(s.mean);
    fputs("}", stdout);
}

int cli_compare(int argc, char **argv) {
    const char *template = DEFAULT_TEMPLATE;
    int threads = 0, batch = 8, json = 0;
    int rc = CLI_EXIT_USAGE;
    inputs in;
    memset(&in, 0, sizeof in);
    strlist label_texts = {0};
    side m[2];
    memset(m, 0, sizeof m);
    unsigned char *ok = NULL;
    int *valid = NULL;
    double *img_cos = NULL, *txt_cos = NULL;
    float *simA = NULL, *simB = NULL;
    retrieval ret[2];
    int n_ret = 0;
    cli_image_opts img_opts; /* the defaults: one item per image file, named by its path */
    cli_image_opts_init(&img_opts, "compare");
    cli_item *items = NULL;
    int n_items = 0;

    const cli_option opts[] = {
        {"--images", NULL, CLI_CALL, &in, 0, NULL, add_images_opt},
        {"--texts", NULL, CLI_CALL, &in, 0, NULL, add_texts_file},
        {"--text", NULL, CLI_CALL, &in, 0, NULL, add_text},
        CLI_OPT_LABELS(&in, add_labels, add_labels_file),
        {"--template", NULL, CLI_STRING, &template, 0, NULL, NULL},
        CLI_OPT_THREADS(&threads),
        CLI_OPT_BATCH(&batch),
        CLI_OPT_JSON(&json),
        {NULL, NULL, CLI_CALL, &in, 0, NULL, add_arg},
        {0},
    };
    if ((rc = cli_parse("compare", usage_text, opts, argc, argv)) != CLI_GO_ON) goto done;
    rc = CLI_EXIT_USAGE;
    const char *const *paths = in.paths;
    int n_paths = in.n_paths, input_errors = in.errors;
    strlist images = in.images, texts = in.texts, labels = in.labels;
    if (n_paths < 2) {
        fprintf(stderr, "biomedclip compare: two model files are needed: compare A.bmc B.bmc ... (see --help)\n");
        goto done;
    }
    if (images.n == 0 && texts.n == 0) {
        fprintf(stderr, "biomedclip compare: nothing to compare: give images (--images DIR) and/or texts "
                        "(--texts FILE, --text TEXT)\n");
        rc = input_errors ? CLI_EXIT_FAILURE : CLI_EXIT_USAGE;
        goto done;
    }
    if (labels.n > 0 && images.n == 0) {
        fprintf(stderr, "biomedclip compare: --labels classifies images: give images too\n");
        goto done;
    }
    for (int j = 0; j < labels.n; j++) {
        size_t lt = strlen(template), ll = strlen(labels.v[j]);
        char *t = malloc(lt + ll + 1);
        if (!t) goto oom;
        memcpy(t, template, lt);
        memcpy(t + lt, labels.v[j], ll + 1);
        if (strlist_add(&label_texts, t, lt + ll, 0)) {
            free(t);
            goto oom;
        }
        free(t);
    }

    /* both models, their contexts and every embedding */
    rc = CLI_EXIT_MODEL;
    for (int s = 0; s < 2; s++) {
        m[s].path = paths[s];
        if (!(m[s].model = cli_load_model(paths[s]))) goto done;
        m[s].dim = bmc_model_embed_dim(m[s].model);
    }
    rc = CLI_EXIT_FAILURE;
    int n_img = images.n, n_txt = texts.n, n_lab = labels.n;
    ok = malloc((size_t)(n_img ? n_img : 1));
    if (!ok) goto oom;
    memset(ok, 1, (size_t)(n_img ? n_img : 1));
    for (int s = 0; s < 2; s++) {
        if (cli_new_ctx("compare", m[s].model, threads, batch, &m[s].ctx)) goto done;
        size_t d = (size_t)m[s].dim;
        m[s].img = calloc((size_t)n_img * d + 1, sizeof(float));
        m[s].txt = calloc((size_t)n_txt * d + 1, sizeof(float));
        m[s].lab = calloc((size_t)n_lab * d + 1, sizeof(float));
        m[s].probs = calloc((size_t)n_img * n_lab + 1, sizeof(float));
        if (!m[s].img || !m[s].txt || !m[s].lab || !m[s].probs) goto oom;
        if (n_img) {
            sink sk = {m[s].img, m[s].dim, ok, s == 0};
            if (!items && (n_items = cli_image_items(&img_opts, (const char *const *)images.v, n_img, &items)) < 0)
                goto done;
            if (cli_encode_image_files(m[s].ctx, &img_opts, items, n_items, batch, 1, on_image, &sk) < 0) goto done;
        }
        if (encode_texts(&m[s], texts.v, n_txt, batch, m[s].txt) ||
            encode_texts(&m[s], label_texts.v, n_lab, batch, m[s].lab))
            goto done;
    }

    /* the images both models embedded, packed */
    valid = malloc((size_t)(n_img ? n_img : 1) * sizeof *valid);
    if (!valid) goto oom;
    int nv = 0;
    for (int i = 0; i < n_img; i++)
        if (ok[i]) valid[nv++] = i;
    input_errors += n_img - nv;
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < nv; k++)
            memmove(m[s].img + (size_t)k * m[s].dim, m[s].img + (size_t)valid[k] * m[s].dim,
                    (size_t)m[s].dim * sizeof(float));

    int same_dim = m[0].dim == m[1].dim;
    img_cos = malloc((size_t)(nv ? nv : 1) * sizeof *img_cos);
    txt_cos = malloc((size_t)(n_txt ? n_txt : 1) * sizeof *txt_cos);
    if (!img_cos || !txt_cos) goto oom;
    for (int k = 0; k < nv; k++)
        img_cos[k] = same_dim ? cosine(m[0].img + (size_t)k * m[0].dim, m[1].img + (size_t)k * m[1].dim, m[0].dim) : NAN;
    for (int k = 0; k < n_txt; k++)
        txt_cos[k] = same_dim ? cosine(m[0].txt + (size_t)k * m[0].dim, m[1].txt + (size_t)k * m[1].dim, m[0].dim) : NAN;
    summary si = summarize(img_cos, same_dim ? nv : 0), st = summarize(txt_cos, same_dim ? n_txt : 0);

    /* zero-shot */
    int zs_agree = 0;
    double zs_maxdiff = 0;
    if (n_lab > 0 && nv > 0) {
        for (int s = 0; s < 2; s++)
            if (bmc_zero_shot_probs(m[s].model, m[s].img, nv, m[s].lab, n_lab, m[s].probs) != BMC_OK) {
                fprintf(stderr, "biomedclip compare: %s: zero-shot: %s\n", m[s].path, bmc_last_error());
                goto done;
            }
        for (int k = 0; k < nv; k++) {
            const float *pa = m[0].probs + (size_t)k * n_lab, *pb = m[1].probs + (size_t)k * n_lab;
            zs_agree += argmax(pa, n_lab, -1) == argmax(pb, n_lab, -1);
            for (int j = 0; j < n_lab; j++) zs_maxdiff = fmax(zs_maxdiff, fabs((double)pa[j] - pb[j]));
        }
    }

    /* retrieval: across kinds when both are given, else within the one kind */
    /* within one kind each query is left out of its own ranking, so 3 items give the smallest
     * ranking (2 candidates) with a rank correlation */
    ret_plan plan[2];
    int n_plan = 0;
    if (nv > 0 && n_txt > 0) {
        plan[n_plan++] = (ret_plan){"text", "image", n_txt, nv, 0, m[0].txt, m[0].img, m[1].txt, m[1].img};
        plan[n_plan++] = (ret_plan){"image", "text", nv, n_txt, 0, m[0].img, m[0].txt, m[1].img, m[1].txt};
    } else if (nv >= 3) {
        plan[n_plan++] = (ret_plan){"image", "image", nv, nv, 1, m[0].img, m[0].img, m[1].img, m[1].img};
    } else if (n_txt >= 3) {
        plan[n_plan++] = (ret_plan){"text", "text", n_txt, n_txt, 1, m[0].txt, m[0].txt, m[1].txt, m[1].txt};
    }
    for (int p = 0; p < n_plan; p++) {
        size_t cells = (size_t)plan[p].nq * plan[p].ng;
        free(simA), free(simB);
        simA = malloc(cells * sizeof *simA), simB = malloc(cells * sizeof *simB);
        if (!simA || !simB) goto oom;
        if (bmc_similarity(plan[p].qa, plan[p].nq, plan[p].ga, plan[p].ng, m[0].dim, simA) != BMC_OK ||
            bmc_similarity(plan[p].qb, plan[p].nq, plan[p].gb, plan[p].ng, m[1].dim, simB) != BMC_OK) {
            fprintf(stderr, "biomedclip compare: similarity: %s\n", bmc_last_error());
            goto done;
        }
        ret[n_ret].query = plan[p].q, ret[n_ret].gallery = plan[p].g;
        if (rank_agreement(simA, simB, plan[p].nq, plan[p].ng, plan[p].same, &ret[n_ret])) goto oom;
        n_ret++;
    }

    if (json) {
        fputs("{", stdout);
        for (int s = 0; s < 2; s++) {
            printf("\"%s\": {\"model\": ", s ? "b" : "a");
            cli_json_string(stdout, m[s].path);
            printf(", \"embed_dim\": %d, \"logit_scale\": %.9g}, ", m[s].dim, (double)bmc_model_logit_scale(m[s].model));
        }
        fputs("\"images\": [", stdout);
        for (int k = 0; k < nv; k++) {
            fputs(k ? ", {\"file\": " : "{\"file\": ", stdout);
            cli_json_string(stdout, images.v[valid[k]]);
            fputs(", \"cosine\": ", stdout);
            json_num(img_cos[k]);
            fputs("}", stdout);
        }
        fputs("], \"texts\": [", stdout);
        for (int k = 0; k < n_txt; k++) {
            fputs(k ? ", {\"text\": " : "{\"text\": ", stdout);
            cli_json_string(stdout, texts.v[k]);
            fputs(", \"cosine\": ", stdout);
            json_num(txt_cos[k]);
            fputs("}", stdout);
        }
        fputs("], \"cosine\": {", stdout);
        json_summary("images", si);
        fputs(", ", stdout);
        json_summary("texts", st);
        fputs("}, \"zero_shot\": ", stdout);
        if (n_lab > 0 && nv > 0) {
            fputs("{\"template\": ", stdout);
            cli_json_string(stdout, template);
            fputs(", \"labels\": [", stdout);
            for (int j = 0; j < n_lab; j++) {
                if (j) fputs(", ", stdout);
                cli_json_string(stdout, labels.v[j]);
            }
            printf("], \"n\": %d, \"top1_agree\": %d, \"top1_agreement\": %.9g, \"max_prob_diff\": %.9g, \"top1\": [",
                   nv, zs_agree, (double)zs_agree / nv, zs_maxdiff);
            for (int k = 0; k < nv; k++) {
                const float *pa = m[0].probs + (size_t)k * n_lab, *pb = m[1].probs + (size_t)k * n_lab;
                int ja = argmax(pa, n_lab, -1), jb = argmax(pb, n_lab, -1);
                fputs(k ? ", {\"file\": " : "{\"file\": ", stdout);
                cli_json_string(stdout, images.v[valid[k]]);
                fputs(", \"a\": ", stdout);
                cli_json_string(stdout, labels.v[ja]);
                fputs(", \"b\": ", stdout);
                cli_json_string(stdout, labels.v[jb]);
                printf(", \"prob_a\": %.9g, \"prob_b\": %.9g}", (double)pa[ja], (double)pb[jb]);
            }
            fputs("]}", stdout);
        } else {
            fputs("null", stdout);
        }
        fputs(", \"retrieval\": [", stdout);
        for (int p = 0; p < n_ret; p++) {
            printf("%s{\"query\": \"%s\", \"gallery\": \"%s\", \"queries\": %d, \"candidates\": %d, "
                   "\"top1_agree\": %d, \"top1_agreement\": %.9g, \"spearman_mean\": ",
                   p ? ", " : "", ret[p].query, ret[p].gallery, ret[p].nq, ret[p].ng, ret[p].top1_agree,
                   (double)ret[p].top1_agree / ret[p].nq);
            json_num(ret[p].n_rho ? ret[p].rho_mean : NAN);
            fputs(", \"spearman_min\": ", stdout);
            json_num(ret[p].n_rho ? ret[p].rho_min : NAN);
            fputs("}", stdout);
        }
        fputs("]}\n", stdout);
    } else {
        for (int s = 0; s < 2; s++)
            printf("%s  %s  (embedding %d, logit scale %.6g)\n", s ? "B" : "A", m[s].path, m[s].dim,
                   (double)bmc_model_logit_scale(m[s].model));
        if (!same_dim) {
            printf("\nThe embedding sizes differ: no per-input cosine; rankings are still compared.\n");
        } else {
            printf("\ncosine between A's and B's embedding of each input (1 = same direction):\n");
            for (int k = 0; k < nv; k++) printf("  image  %.8f  %s\n", img_cos[k], images.v[valid[k]]);
            for (int k = 0; k < n_txt; k++) printf("  text   %.8f  %s\n", txt_cos[k], texts.v[k]);
            if (nv) printf("  images: %d, min %.8f, mean %.8f\n", si.n, si.min, si.mean);
            if (n_txt) printf("  texts: %d, min %.8f, mean %.8f\n", st.n, st.min, st.mean);
        }
        if (n_lab > 0 && nv > 0) {
            printf("\nzero-shot over %d labels (template \"%s\"): top-1 agreement %d/%d (%.1f%%), "
                   "max |prob A - prob B| %.6g\n", n_lab, template, zs_agree, nv, 100.0 * zs_agree / nv, zs_maxdiff);
            for (int k = 0; k < nv; k++) {
                const float *pa = m[0].probs + (size_t)k * n_lab, *pb = m[1].probs + (size_t)k * n_lab;
                int ja = argmax(pa, n_lab, -1), jb = argmax(pb, n_lab, -1);
                if (ja != jb)
                    printf("  differs: %s  A: %s (%.4f)  B: %s (%.4f)\n", images.v[valid[k]], labels.v[ja],
                           (double)pa[ja], labels.v[jb], (double)pb[jb]);
            }
        }
        if (n_ret) printf("\nretrieval (best item the same under A and B; Spearman correlation of the rankings):\n");
        for (int p = 0; p < n_ret; p++) {
            printf("  %s -> %s  %d queries x %d: top-1 agreement %d/%d (%.1f%%)", ret[p].query, ret[p].gallery,
                   ret[p].nq, ret[p].ng, ret[p].top1_agree, ret[p].nq, 100.0 * ret[p].top1_agree / ret[p].nq);
            if (ret[p].n_rho) printf(", Spearman mean %.4f, min %.4f\n", ret[p].rho_mean, ret[p].rho_min);
            else printf(", Spearman undefined (under 2 candidates)\n");
        }
    }
    fflush(stdout);
    rc = input_errors ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
    goto done;

oom:
    fprintf(stderr, "biomedclip compare: out of memory\n");
    rc = CLI_EXIT_FAILURE;
done:
    cli_image_items_free(items, n_items);
    for (int s = 0; s < 2; s++) {
        free(m[s].img), free(m[s].txt), free(m[s].lab), free(m[s].probs);
        bmc_ctx_free(m[s].ctx);
        bmc_model_free(m[s].model);
    }
    strlist_free(&in.images), strlist_free(&in.texts), strlist_free(&in.labels), strlist_free(&label_texts);
    free(ok), free(valid), free(img_cos), free(txt_cos), free(simA), free(simB);
    return rc;
}
