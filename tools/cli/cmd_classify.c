/* cmd_classify.c - `biomedclip classify`: zero-shot classification of images over labels,
 * softmax(exp(logit_scale) * cosine(image, template + label)) as in the BiomedCLIP notebook. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "image_batch.h"

#define DEFAULT_TEMPLATE "this is a photo of "

static const char usage_text[] =
    "usage: biomedclip classify [-m MODEL] --labels \"a,b,c\" [--labels-file FILE]\n"
    "                           [--template TEXT] [--top K] [--json | --format table|json|tsv]\n"
    "                           [--threads N] [--batch N] IMAGE...\n"
    "\n"
    "Zero-shot classification: for each image, the probability of each label is\n"
    "softmax over labels of exp(logit_scale) * cosine(image, TEXT + label).\n"
    "\n"
    "  -m, --model MODEL    .bmc model file (default: $BIOMEDCLIP_MODEL)\n"
    "  --labels LIST        comma-separated labels (may be repeated)\n"
    "  --labels-file FILE   one label per line (blank lines ignored; may be repeated)\n"
    "  --template TEXT      prefix of every label (default \"" DEFAULT_TEMPLATE "\")\n"
    "  --top K              table/tsv: show the K most probable labels (default: all)\n"
    "  --format F           table (default): labels by decreasing probability, per image;\n"
    "                       json: one line per image {\"file\", \"labels\", \"probs\"} with the\n"
    "                       probabilities in label order; tsv: file<TAB>label<TAB>prob lines\n"
    "  --json               same as --format json\n"
    "  --threads N          threads (default: OpenBLAS's thread count)\n"
    "  --batch N            images encoded together (default 8)\n"
    CLI_IMAGE_OPTS_HELP
    "\n"
    "Exit status: 0 all images classified, 1 some image failed (the others are still printed),\n"
    "2 bad command line, 3 model not loadable.\n";

enum { FMT_TABLE, FMT_JSON, FMT_TSV };

static int labels_file(cli_paths *l, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
        rc = cli_labels_add(l, line, (size_t)len);
    }
    free(line);
    fclose(f);
    return rc;
}

typedef struct run {
    const cli_image_opts *img;
    const cli_item *items;
    cli_paths *labels;
    const float *text_emb; /* [n labels, dim] */
    const bmc_model *model;
    float *probs;          /* [n labels] */
    int *order;            /* [n labels] */
    int format, top, width;
} run;

static const float *sort_probs; /* qsort has no user pointer; the CLI is single-threaded */
static int by_prob_desc(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    if (sort_probs[i] != sort_probs[j]) return sort_probs[i] < sort_probs[j] ? 1 : -1;
    return i - j;
}

static int print_one(void *user, int index, const float *emb, const char *error) {
    run *r = user;
    const char *file = r->items[index].name;
    int n = r->labels->n;
    if (!emb) {
        fflush(stdout);
        fprintf(stderr, "biomedclip classify: %s\n", error);
        return 0;
    }
    if (bmc_zero_shot_probs(r->model, emb, 1, r->text_emb, n, r->probs) != BMC_OK) {
        fprintf(stderr, "biomedclip classify: %s: %s\n", file, bmc_last_error());
        return 0;
    }
    if (r->format == FMT_JSON) {
        fputc('{', stdout);
        cli_json_item(stdout, r->img, &r->items[index]);
        fputs(", \"labels\": [", stdout);
        for (int j = 0; j < n; j++) {
            if (j) fputs(", ", stdout);
            cli_json_string(stdout, r->labels->v[j]);
        }
        fputs("], \"probs\": ", stdout);
        cli_json_floats(stdout, r->probs, n);
        fputs("}\n", stdout);
    } else {
        for (int j = 0; j < n; j++) r->order[j] = j;
        sort_probs = r->probs;
        qsort(r->order, (size_t)n, sizeof *r->order, by_prob_desc);
        int k = r->top > 0 && r->top < n ? r->top : n;
        if (r->format == FMT_TABLE) printf("%s:\n", file);
        for (int t = 0; t < k; t++) {
            int j = r->order[t];
            if (r->format == FMT_TABLE)
                printf("  %-*s  %.6g\n", r->width, r->labels->v[j], (double)r->probs[j]);
            else
                printf("%s\t%s\t%.9g\n", file, r->labels->v[j], (double)r->probs[j]);
        }
        if (r->format == FMT_TABLE) putchar('\n');
    }
    fflush(stdout);
    return 0;
}

static int add_labels(void *l, const char *list) {
    if (cli_labels_split(l, list) == 0) return CLI_GO_ON;
    fprintf(stderr, "biomedclip classify: out of memory\n");
    return CLI_EXIT_FAILURE;
}

static int add_labels_file(void *l, const char *path) {
    return labels_file(l, path) ? CLI_EXIT_USAGE : CLI_GO_ON;
}

int cli_classify(int argc, char **argv) {
    const char *model_opt = NULL, *template = DEFAULT_TEMPLATE;
    int top = 0, threads = 0, batch = 8, format = FMT_TABLE, rc = CLI_EXIT_FAILURE;
    cli_paths lab = {0};
    cli_list files;
    bmc_model *model = NULL;
    bmc_ctx *ctx = NULL;
    char **texts = NULL;
    float *text_emb = NULL, *probs = NULL;
    int *order = NULL;
    cli_image_opts img;
    cli_image_opts_init(&img, "classify");
    cli_item *items = NULL;
    int n_items = 0;
    if (cli_list_init(&files, argc)) goto oom;
    const cli_option opts[] = {
        CLI_OPT_MODEL(&model_opt),
        CLI_OPT_LABELS(&lab, add_labels, add_labels_file),
        {"--template", NULL, CLI_STRING, &template, 0, NULL, NULL},
        {"--top", NULL, CLI_INT, &top, 0, NULL, NULL},
        CLI_OPT_THREADS(&threads),
        CLI_OPT_BATCH(&batch),
        {"--json", NULL, CLI_SET, &format, FMT_JSON, NULL, NULL},
        CLI_OPT_FORMAT(&format),
        CLI_IMAGE_OPTS(&img),
        CLI_ARGS(&files),
        {0},
    };
    if ((rc = cli_parse("classify", usage_text, opts, argc, argv)) != CLI_GO_ON) goto done;
    rc = CLI_EXIT_USAGE;
    int n_files = files.n;
    if (lab.n == 0) {
        fprintf(stderr, "biomedclip classify: no labels: pass --labels \"a,b,c\" or --labels-file FILE\n");
        goto done;
    }
    if ((rc = cli_require("classify", n_files > 0, "images")) != CLI_GO_ON) goto done;

    rc = CLI_EXIT_MODEL;
    if (!(model = cli_load_model(cli_model_path(model_opt)))) goto done;
    rc = CLI_EXIT_FAILURE;
    if (cli_new_ctx("classify", model, threads, batch > 8 ? batch : 0, &ctx)) goto done;
    int dim = bmc_model_embed_dim(model), n = lab.n, width = 0;
    texts = cli_prompts(template, &lab);
    text_emb = malloc((size_t)n * dim * sizeof *text_emb);
    probs = malloc((size_t)n * sizeof *probs);
    order = malloc((size_t)n * sizeof *order);
    if (!texts || !text_emb || !probs || !order) goto oom;
    for (int j = 0; j < n; j++) {
        int ll = (int)strlen(lab.v[j]);
        if (ll > width) width = ll;
    }
    if (bmc_encode_text(ctx, (const char *const *)texts, n, text_emb, 1) != BMC_OK) {
        fprintf(stderr, "biomedclip classify: encoding the labels: %s\n", bmc_last_error());
        goto done;
    }
    if ((n_items = cli_image_items(&img, files.v, n_files, &items)) < 0) goto done;
    run r = {&img, items, &lab, text_emb, model, probs, order, format, top, width};
    int failed = cli_encode_image_files(ctx, &img, items, n_items, batch, 1, print_one, &r);
    rc = failed == 0 ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
    goto done;

oom:
    rc = cli_oom("classify");
done:
    cli_prompts_free(texts, lab.n);
    cli_paths_free(&lab);
    free(text_emb), free(probs), free(order);
    cli_image_items_free(items, n_items);
    cli_list_free(&files);
    bmc_ctx_free(ctx);
    bmc_model_free(model);
    return rc;
}
