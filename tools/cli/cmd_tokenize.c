/* cmd_tokenize.c - `biomedclip tokenize`: print the token ids of texts, as the model sees them
 * (open_clip cleaning + BiomedBERT WordPiece, [CLS] ... [SEP], truncated, not padded). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
    "usage: biomedclip tokenize [-m MODEL] [--json] [--file F] [--] TEXT...\n"
    "\n"
    "Print the token ids of each text, in input order: one line of space-separated ids per\n"
    "text, or with --json one line {\"text\": TEXT, \"ids\": [2, ..., 3]} per text. The ids are\n"
    "what the text tower receives: open_clip's cleaning, BiomedBERT WordPiece, [CLS] first and\n"
    "[SEP] last, truncated to the context length (256), without padding (docs/TOKENIZER.md).\n"
    "\n"
    "  -m, --model MODEL    .bmc model file (default: $BIOMEDCLIP_MODEL); only its vocabulary\n"
    "                       and configuration are used\n"
    "  --json               JSON lines instead of plain ids\n"
    "  --file F             read texts from F, one per line without its \\n or \\r\\n ('-':\n"
    "                       standard input); may be repeated and mixed with TEXT arguments\n"
    "  --                   end of options: later arguments are texts even if they start\n"
    "                       with '-'\n"
    "\n"
    "An empty text is valid (its ids are [CLS] [SEP]). A NUL byte ends a text. Exit status: 0\n"
    "all texts tokenized, 1 some text or file failed, 2 bad command line, 3 model not loadable.\n";

typedef struct job {
    const bmc_model *model;
    int json;
    int *ids;   /* [cap] */
    int cap;
    int failed; /* texts that could not be tokenized */
} job;

static void tokenize_one(job *j, const char *text) {
    int n = 0;
    if (bmc_tokenize(j->model, text, j->ids, j->cap, &n) != BMC_OK) {
        fflush(stdout);
        fprintf(stderr, "biomedclip tokenize: text %.60s: %s\n", text, bmc_last_error());
        j->failed++;
        return;
    }
    if (j->json) {
        fputs("{\"text\": ", stdout);
        cli_json_string(stdout, text);
        fputs(", \"ids\": [", stdout);
        for (int k = 0; k < n; k++) printf(k ? ", %d" : "%d", j->ids[k]);
        fputs("]}\n", stdout);
    } else {
        for (int k = 0; k < n; k++) printf(k ? " %d" : "%d", j->ids[k]);
        putchar('\n');
    }
}

static int tokenize_text(void *user, const char *text, size_t len) {
    tokenize_one(user, text);
    return 0;
}

int cli_tokenize(int argc, char **argv) {
    job j;
    memset(&j, 0, sizeof j);
    const char *model_opt = NULL;
    bmc_model *model = NULL;
    cli_list in; /* texts, and files of texts, in order */
    int json = 0, rc = CLI_EXIT_FAILURE;
    if (cli_list_init(&in, argc)) goto oom;
    const cli_option opts[] = {CLI_OPT_MODEL(&model_opt), CLI_OPT_JSON(&json), CLI_OPT_FILE(&in),
                               CLI_ARGS(&in), {0}};
    if ((rc = cli_parse("tokenize", usage_text, opts, argc, argv)) != CLI_GO_ON) goto done;
    if ((rc = cli_require("tokenize", in.n > 0, "texts")) != CLI_GO_ON) goto done;

    rc = CLI_EXIT_MODEL;
    if (!(model = cli_load_model(cli_model_path(model_opt)))) goto done;
    j.model = model;
    j.json = json;
    j.cap = bmc_model_context_length(model);
    if (j.cap < 2) j.cap = 2;
    if (!(j.ids = malloc((size_t)j.cap * sizeof *j.ids))) goto oom;

    int bad_input = cli_each_input("tokenize", &in, tokenize_text, &j);
    fflush(stdout);
    rc = (j.failed || bad_input) ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
    goto done;

oom:
    rc = cli_oom("tokenize");
done:
    free(j.ids);
    bmc_model_free(model);
    cli_list_free(&in);
    return rc;
}
