/* cmd_embed_text.c - `biomedclip embed-text`: print the embedding of each text.
 *
 * Texts come from the command line and from --file (one per line), in the order given; they are
 * encoded `--batch` at a time with bmc_encode_text (packed: one GEMM per weight for the batch)
 * and printed as each batch finishes, so a long file streams in constant memory. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
    "usage: biomedclip embed-text [-m MODEL] [--json] [--raw] [--threads N] [--batch N]\n"
    "                             [--file F] [--] TEXT...\n"
    "\n"
    "Print the embedding of each text, in input order: `text<TAB>v1 v2 ...`, or with --json\n"
    "one line per text {\"text\": TEXT, \"embedding\": [v1, ...]}. Numbers use %.9g, which gives\n"
    "back the exact float. Use --json for texts that contain tabs or newlines.\n"
    "\n"
    "  -m, --model MODEL    .bmc model file (default: $BIOMEDCLIP_MODEL)\n"
    "  --json               JSON lines instead of tab-separated text\n"
    "  --raw                the projection as it is (default: L2-normalised, as open_clip's\n"
    "                       encode_text(normalize=True))\n"
    "  --threads N          threads (default: OpenBLAS's thread count)\n"
    "  --batch N            texts encoded together (default 32)\n"
    "  --file F             read texts from F, one per line ('-': standard input); may be\n"
    "                       repeated and mixed with TEXT arguments (input order is kept)\n"
    "  --                   end of options: later arguments are texts even if they start\n"
    "                       with '-'\n"
    "\n"
    "An empty text is valid ([CLS] [SEP]). Texts longer than the context length (256 tokens)\n"
    "are truncated, as open_clip does. Exit status: 0 all texts embedded, 1 some text or file\n"
    "failed, 2 bad command line, 3 model not loadable.\n";

typedef struct job {
    bmc_ctx *ctx;
    int json, normalize, batch, dim;
    char **texts;   /* [batch] owned copies of the pending texts */
    int n;          /* pending texts */
    float *emb;     /* [batch, dim] */
    int failed;     /* texts that could not be embedded */
} job;

static void print_embedding(const job *j, const char *text, const float *e) {
    if (j->json) {
        fputs("{\"text\": ", stdout);
        cli_json_string(stdout, text);
        fputs(", \"embedding\": ", stdout);
        cli_json_floats(stdout, e, j->dim);
        fputs("}\n", stdout);
    } else {
        fputs(text, stdout);
        for (int k = 0; k < j->dim; k++) printf(k ? " %.9g" : "\t%.9g", (double)e[k]);
        putchar('\n');
    }
}

/* Encode and print the pending texts. A failing batch is retried one text at a time, so that
 * only the bad text is reported and the others are still printed in order. */
static void flush_batch(job *j) {
    if (j->n == 0) return;
    const char *const *t = (const char *const *)j->texts;
    if (bmc_encode_text(j->ctx, t, j->n, j->emb, j->normalize) == BMC_OK) {
        for (int k = 0; k < j->n; k++) print_embedding(j, t[k], j->emb + (size_t)k * j->dim);
    } else {
        for (int k = 0; k < j->n; k++) {
            if (bmc_encode_text(j->ctx, t + k, 1, j->emb, j->normalize) == BMC_OK) {
                print_embedding(j, t[k], j->emb);
            } else {
                fflush(stdout);
                fprintf(stderr, "biomedclip embed-text: text %.60s: %s\n", t[k], bmc_last_error());
                j->failed++;
            }
        }
    }
    fflush(stdout);
    for (int k = 0; k < j->n; k++) free(j->texts[k]);
    j->n = 0;
}

/* Queue a copy of text (len bytes); 0 on success, -1 when out of memory. */
static int add_text(job *j, const char *text, size_t len) {
    char *copy = malloc(len + 1);
    if (!copy) return -1;
    memcpy(copy, text, len);
    copy[len] = '\0';
    j->texts[j->n++] = copy;
    if (j->n == j->batch) flush_batch(j);
    return 0;
}

/* Every line of a file (without its "\n" or "\r\n") as a text; -1 if it cannot be read. */
static int add_file(job *j, const char *path) {
    int is_stdin = !strcmp(path, "-");
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        fflush(stdout);
        fprintf(stderr, "biomedclip embed-text: cannot open %s\n", path);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int rc = 0;
    while ((got = getline(&line, &cap, f)) >= 0) {
        size_t len = (size_t)got;
        if (len && line[len - 1] == '\n') len--;
        if (len && line[len - 1] == '\r') len--;
        if (add_text(j, line, len)) {
            rc = -1;
            break;
        }
    }
    if (ferror(f)) {
        fflush(stdout);
        fprintf(stderr, "biomedclip embed-text: error reading %s\n", path);
        rc = -1;
    }
    free(line);
    if (!is_stdin) fclose(f);
    return rc;
}

int cli_embed_text(int argc, char **argv) {
    const char *model_opt = NULL, *v;
    int threads = 0, batch = 32, json = 0, raw = 0, n_inputs = 0, only_texts = 0;
    int rc = CLI_EXIT_USAGE;
    /* inputs in order: a text, or a file name when is_file[k] */
    const char **inputs = calloc((size_t)argc, sizeof *inputs);
    char *is_file = calloc((size_t)argc, 1);
    bmc_model *model = NULL;
    job j;
    memset(&j, 0, sizeof j);
    if (!inputs || !is_file) goto oom;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_texts || a[0] != '-' || !a[1]) {
            inputs[n_inputs++] = a;
        } else if (!strcmp(a, "--")) {
            only_texts = 1;
        } else if (cli_is_help(a)) {
            fputs(usage_text, stdout);
            rc = CLI_EXIT_OK;
            goto done;
        } else if (cli_opt(argc, argv, &i, "-m", &v) || cli_opt(argc, argv, &i, "--model", &v) ||
                   cli_opt(argc, argv, &i, "--file", &v)) {
            if (!v) {
                fprintf(stderr, "biomedclip embed-text: %s needs a value\n", a);
                goto done;
            }
            if (!strncmp(a, "--file", 6)) {
                is_file[n_inputs] = 1;
                inputs[n_inputs++] = v;
            } else {
                model_opt = v;
            }
        } else if (cli_opt(argc, argv, &i, "--threads", &v)) {
            if (cli_parse_int("embed-text", "--threads", v, &threads)) goto done;
        } else if (cli_opt(argc, argv, &i, "--batch", &v)) {
            if (cli_parse_int("embed-text", "--batch", v, &batch)) goto done;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--raw")) {
            raw = 1;
        } else {
            fprintf(stderr, "biomedclip embed-text: unknown option '%s' (see --help)\n", a);
            goto done;
        }
    }
    if (n_inputs == 0) {
        fprintf(stderr, "biomedclip embed-text: no texts (see --help)\n");
        goto done;
    }

    rc = CLI_EXIT_MODEL;
    if (!(model = cli_load_model(cli_model_path(model_opt)))) goto done;
    rc = CLI_EXIT_FAILURE;
    int has_file = 0;
    for (int k = 0; k < n_inputs; k++) has_file |= is_file[k];
    if (!has_file && batch > n_inputs) batch = n_inputs;
    bmc_ctx_params cp = bmc_ctx_default_params();
    cp.n_threads = threads;
    cp.max_batch = batch < 8 ? batch : 8; /* scratch for 8 full-length texts; grows if needed */
    if (bmc_ctx_new(model, &cp, &j.ctx) != BMC_OK) {
        fprintf(stderr, "biomedclip embed-text: %s\n", bmc_last_error());
        goto done;
    }
    j.json = json, j.normalize = !raw, j.batch = batch;
    j.dim = bmc_model_embed_dim(model);
    j.texts = calloc((size_t)batch, sizeof *j.texts);
    j.emb = malloc((size_t)batch * j.dim * sizeof *j.emb);
    if (!j.texts || !j.emb) goto oom;

    int bad_input = 0;
    for (int k = 0; k < n_inputs; k++) {
        if (is_file[k]) {
            if (add_file(&j, inputs[k])) bad_input = 1;
        } else if (add_text(&j, inputs[k], strlen(inputs[k]))) {
            goto oom;
        }
    }
    flush_batch(&j);
    rc = (j.failed || bad_input) ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
    goto done;

oom:
    fprintf(stderr, "biomedclip embed-text: out of memory\n");
    rc = CLI_EXIT_FAILURE;
done:
    if (j.texts)
        for (int k = 0; k < j.n; k++) free(j.texts[k]);
    free(j.texts);
    free(j.emb);
    bmc_ctx_free(j.ctx);
    bmc_model_free(model);
    free(inputs);
    free(is_file);
    return rc;
}
