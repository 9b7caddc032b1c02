/* cmd_search.c - `biomedclip search`: rank the images of an index (cmd_index.c) by cosine
 * similarity to a text or to an image. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "image_batch.h"
#include "index_store.h"

static const char usage_text[] =
    "usage: biomedclip search [-m MODEL] INDEX (--text QUERY | --image FILE) [--top K]\n"
    "                         [--json | --format table|json|tsv] [--threads N]\n"
    "\n"
    "Print the K images of INDEX (made by `biomedclip index`) most similar to the query, best\n"
    "first, by cosine similarity of the embeddings (ties: index order).\n"
    "\n"
    "  -m, --model MODEL   .bmc model file (default: $BIOMEDCLIP_MODEL); must be the index's\n"
    "  --text QUERY        a text query, encoded as given (no template)\n"
    "  --image FILE        an image query\n"
    "  --top K             number of hits (default 10)\n"
    "  --format F          table (default): rank, score, path; json: one line per hit\n"
    "                      {\"file\": PATH, \"score\": S}; tsv: path<TAB>score\n"
    "  --json              same as --format json\n"
    "  --threads N         threads (default: OpenBLAS's thread count)\n"
    "  --window W, --frame N  for the --image query (below; --frames all is not for search)\n"
    CLI_IMAGE_OPTS_HELP
    "\n"
    "Exit status: 0 success, 1 the query or the index failed, 2 bad command line, 3 model not\n"
    "loadable.\n";

enum { FMT_TABLE, FMT_JSON, FMT_TSV };

static const float *sort_scores; /* qsort has no user pointer; the CLI is single-threaded */
static int by_score_desc(const void *a, const void *b) {
    long i = *(const long *)a, j = *(const long *)b;
    if (sort_scores[i] != sort_scores[j]) return sort_scores[i] < sort_scores[j] ? 1 : -1;
    return i < j ? -1 : i > j;
}

typedef struct query {
    float *emb; /* [dim] */
    int dim, ok;
} query;

static int on_query_image(void *user, int index, const float *emb, const char *error) {
    query *q = user;
    if (!emb) {
        fprintf(stderr, "biomedclip search: %s\n", error);
        return 0;
    }
    memcpy(q->emb, emb, (size_t)q->dim * sizeof *q->emb);
    q->ok = 1;
    return 0;
}

/* The one positional argument: the index. */
static int set_index(void *dir, const char *arg) {
    const char **index_dir = dir;
    if (*index_dir) {
        fprintf(stderr, "biomedclip search: one index only ('%s' and '%s')\n", *index_dir, arg);
        return CLI_EXIT_USAGE;
    }
    *index_dir = arg;
    return CLI_GO_ON;
}

int cli_search(int argc, char **argv) {
    const char *model_opt = NULL, *index_dir = NULL, *text = NULL, *image = NULL;
    int top = 10, threads = 0, format = FMT_TABLE, rc;
    bmc_model *model = NULL;
    bmc_ctx *ctx = NULL;
    float *scores = NULL;
    long *order = NULL;
    query q = {0};
    idx_store ix;
    memset(&ix, 0, sizeof ix);
    cli_image_opts img;
    cli_image_opts_init(&img, "search");
    const cli_option opts[] = {
        CLI_OPT_MODEL(&model_opt),
        {"--text", NULL, CLI_STRING, &text, 0, NULL, NULL},
        {"--image", NULL, CLI_STRING, &image, 0, NULL, NULL},
        {"--top", NULL, CLI_INT, &top, 0, NULL, NULL},
        CLI_OPT_THREADS(&threads),
        {"--json", NULL, CLI_SET, &format, FMT_JSON, NULL, NULL},
        CLI_OPT_FORMAT(&format),
        CLI_IMAGE_OPTS(&img),
        {NULL, NULL, CLI_CALL, &index_dir, 0, NULL, set_index},
        {0},
    };
    if ((rc = cli_parse("search", usage_text, opts, argc, argv)) != CLI_GO_ON) goto done;
    if ((rc = cli_require("search", index_dir != NULL, "INDEX")) != CLI_GO_ON) goto done;
    rc = CLI_EXIT_USAGE;
    if (!text == !image) {
        fprintf(stderr, "biomedclip search: give exactly one of --text QUERY and --image FILE\n");
        goto done;
    }
    if (img.all_frames) {
        fprintf(stderr, "biomedclip search: the query is one image: pick a frame with --frame N\n");
        goto done;
    }

    rc = CLI_EXIT_FAILURE;
    if (idx_open_read(&ix, index_dir)) goto done;
    rc = CLI_EXIT_MODEL;
    if (!(model = cli_load_model(cli_model_path(model_opt)))) goto done;
    rc = CLI_EXIT_FAILURE;
    q.dim = bmc_model_embed_dim(model);
    if (q.dim != ix.dim) {
        fprintf(stderr, "biomedclip search: %s holds %d-d embeddings but the model makes %d-d ones\n",
                index_dir, ix.dim, q.dim);
        goto done;
    }
    q.emb = malloc((size_t)q.dim * sizeof *q.emb);
    scores = malloc((size_t)(ix.n ? ix.n : 1) * sizeof *scores);
    order = malloc((size_t)(ix.n ? ix.n : 1) * sizeof *order);
    if (!q.emb || !scores || !order) {
        fprintf(stderr, "biomedclip search: out of memory\n");
        goto done;
    }
    if (cli_new_ctx("search", model, threads, 0, &ctx)) goto done;
    if (text) {
        if (bmc_encode_text(ctx, &text, 1, q.emb, 1) != BMC_OK) {
            fprintf(stderr, "biomedclip search: encoding the query: %s\n", bmc_last_error());
            goto done;
        }
    } else {
        cli_item query_item = {image, img.params.frame, (char *)image};
        if (cli_encode_image_files(ctx, &img, &query_item, 1, 1, 1, on_query_image, &q) != 0 || !q.ok) goto done;
    }
    if (ix.n > 0) {
        if (ix.n > 0x7fffffffL) {
            fprintf(stderr, "biomedclip search: %s: too many rows (%ld)\n", index_dir, ix.n);
            goto done;
        }
        if (bmc_similarity(q.emb, 1, ix.emb, (int)ix.n, q.dim, scores) != BMC_OK) {
            fprintf(stderr, "biomedclip search: %s\n", bmc_last_error());
            goto done;
        }
        for (long i = 0; i < ix.n; i++) order[i] = i;
        sort_scores = scores;
        qsort(order, (size_t)ix.n, sizeof *order, by_score_desc);
    }
    long k = top < ix.n ? top : ix.n;
    for (long t = 0; t < k; t++) {
        long i = order[t];
        if (format == FMT_JSON) {
            fputs("{\"file\": ", stdout);
            cli_json_string(stdout, ix.paths[i]);
            printf(", \"score\": %.9g}\n", (double)scores[i]);
        } else if (format == FMT_TSV) {
            printf("%s\t%.9g\n", ix.paths[i], (double)scores[i]);
        } else {
            printf("%3ld  %.6f  %s\n", t + 1, (double)scores[i], ix.paths[i]);
        }
    }
    rc = CLI_EXIT_OK;
    goto done;

done:
    idx_close(&ix);
    free(q.emb), free(scores), free(order);
    bmc_ctx_free(ctx);
    bmc_model_free(model);
    return rc;
}
