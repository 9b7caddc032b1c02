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

/* Every line of a file as a text; -1 if the file cannot be read. */
static int tokenize_file(job *j, const char *path) {
    int is_stdin = !strcmp(path, "-");
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        fflush(stdout);
        fprintf(stderr, "biomedclip tokenize: cannot open %s\n", path);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, f)) >= 0) {
        size_t len = (size_t)got;
        if (len && line[len - 1] == '\n') len--;
        if (len && line[len - 1] == '\r') len--;
        line[len] = '\0';
        tokenize_one(j, line);
    }
    int rc = 0;
    if (ferror(f)) {
        fflush(stdout);
        fprintf(stderr, "biomedclip tokenize: error reading %s\n", path);
        rc = -1;
    }
    free(line);
    if (!is_stdin) fclose(f);
    return rc;
}

int cli_tokenize(int argc, char **argv) {
    const char *model_opt = NULL, *v;
    int json = 0, n_inputs = 0, only_texts = 0, rc = CLI_EXIT_USAGE;
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
                fprintf(stderr, "biomedclip tokenize: %s needs a value\n", a);
                goto done;
            }
            if (!strncmp(a, "--file", 6)) {
                is_file[n_inputs] = 1;
                inputs[n_inputs++] = v;
            } else {
                model_opt = v;
            }
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else {
            fprintf(stderr, "biomedclip tokenize: unknown option '%s' (see --help)\n", a);
            goto done;
        }
    }
    if (n_inputs == 0) {
        fprintf(stderr, "biomedclip tokenize: no texts (see --help)\n");
        goto done;
    }

    rc = CLI_EXIT_MODEL;
    if (!(model = cli_load_model(cli_model_path(model_opt)))) goto done;
    j.model = model;
    j.json = json;
    j.cap = bmc_model_context_length(model);
    if (j.cap < 2) j.cap = 2;
    if (!(j.ids = malloc((size_t)j.cap * sizeof *j.ids))) goto oom;

    int bad_input = 0;
    for (int k = 0; k < n_inputs; k++) {
        if (is_file[k]) {
            if (tokenize_file(&j, inputs[k])) bad_input = 1;
        } else {
            tokenize_one(&j, inputs[k]);
        }
    }
    fflush(stdout);
    rc = (j.failed || bad_input) ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
    goto done;

oom:
    fprintf(stderr, "biomedclip tokenize: out of memory\n");
    rc = CLI_EXIT_FAILURE;
done:
    free(j.ids);
    bmc_model_free(model);
    free(inputs);
    free(is_file);
    return rc;
}
