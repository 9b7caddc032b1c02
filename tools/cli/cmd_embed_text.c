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

/* Encode and print the pending texts. A failing batch is retried one text at a time, so that
 * only the bad text is reported and the others are still printed in order. */
static void flush_batch(job *j) {
    if (j->n == 0) return;
    const char *const *t = (const char *const *)j->texts;
    if (bmc_encode_text(j->ctx, t, j->n, j->emb, j->normalize) == BMC_OK) {
        for (int k = 0; k < j->n; k++)
            cli_print_embedding("text", t[k], j->emb + (size_t)k * j->dim, j->dim, j->json);
    } else {
        for (int k = 0; k < j->n; k++) {
            if (bmc_encode_text(j->ctx, t + k, 1, j->emb, j->normalize) == BMC_OK) {
                cli_print_embedding("text", t[k], j->emb, j->dim, j->json);
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
static int add_text(void *user, const char *text, size_t len) {
    job *j = user;
    char *copy = malloc(len + 1);
    if (!copy) return -1;
    memcpy(copy, text, len);
    copy[len] = '\0';
    j->texts[j->n++] = copy;
    if (j->n == j->batch) flush_batch(j);
    return 0;
}

int cli_embed_text(int argc, char **argv) {
    const char *model_opt = NULL;
    int threads = 0, batch = 32, json = 0, raw = 0;
    cli_list in; /* texts, and files of texts, in order */
    bmc_model *model = NULL;
    job j;
    memset(&j, 0, sizeof j);
    int rc = CLI_EXIT_FAILURE;
    if (cli_list_init(&in, argc)) goto oom;
    const cli_option opts[] = {CLI_OPT_MODEL(&model_opt), CLI_OPT_THREADS(&threads),
                               CLI_OPT_BATCH(&batch), CLI_OPT_JSON(&json), CLI_OPT_RAW(&raw),
                               CLI_OPT_FILE(&in), CLI_ARGS(&in), {0}};
    if ((rc = cli_parse("embed-text", usage_text, opts, argc, argv)) != CLI_GO_ON) goto done;
    if ((rc = cli_require("embed-text", in.n > 0, "texts")) != CLI_GO_ON) goto done;

    rc = CLI_EXIT_MODEL;
    if (!(model = cli_load_model(cli_model_path(model_opt)))) goto done;
    rc = CLI_EXIT_FAILURE;
    int has_file = 0;
    for (int k = 0; k < in.n; k++) has_file |= in.is_file[k];
    if (!has_file && batch > in.n) batch = in.n;
    /* scratch for 8 full-length texts; grows if needed */
    if (cli_new_ctx("embed-text", model, threads, batch < 8 ? batch : 8, &j.ctx)) goto done;
    j.json = json, j.normalize = !raw, j.batch = batch;
    j.dim = bmc_model_embed_dim(model);
    j.texts = calloc((size_t)batch, sizeof *j.texts);
    j.emb = malloc((size_t)batch * j.dim * sizeof *j.emb);
    if (!j.texts || !j.emb) goto oom;

    int bad_input = cli_each_input("embed-text", &in, add_text, &j);
    if (bad_input < 0) goto oom;
    flush_batch(&j);
    rc = (j.failed || bad_input) ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
    goto done;

oom:
    rc = cli_oom("embed-text");
done:
    if (j.texts)
        for (int k = 0; k < j.n; k++) free(j.texts[k]);
    free(j.texts);
    free(j.emb);
    bmc_ctx_free(j.ctx);
    bmc_model_free(model);
    cli_list_free(&in);
    return rc;
}
