/* cmd_embed_image.c - `biomedclip embed-image`: print the embedding of each image file.
 *
 * Files go through image_batch.c as for classify and index: decoded one by one (a bad file only
 * costs its own line) by a reader thread ahead of the model, encoded `--batch` at a time. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "image_batch.h"
#include "image_items.h"

static const char usage_text[] =
    "usage: biomedclip embed-image [-m MODEL] [--json] [--raw] [--threads N] [--batch N]\n"
    "                              IMAGE...\n"
    "\n"
    "Print the embedding of each image, in the order given: `path<TAB>v1 v2 ...`, or with\n"
    "--json one line per image {\"file\": PATH, \"embedding\": [v1, ...]} (with --frame or\n"
    "--frames: PATH#N<TAB>..., {\"file\": PATH, \"frame\": N, ...}). Numbers use %.9g,\n"
    "which gives back the exact float.\n"
    "\n"
    "  -m, --model MODEL    .bmc model file (default: $BIOMEDCLIP_MODEL)\n"
    "  --json               JSON lines instead of tab-separated text\n"
    "  --raw                the projection as it is (default: L2-normalised, as open_clip's\n"
    "                       encode_image(normalize=True))\n"
    "  --threads N          threads (default: OpenBLAS's thread count)\n"
    "  --batch N            images encoded together (default 8)\n"
    CLI_IMAGE_OPTS_HELP
    "\n"
    "A file that cannot be read or decoded gets a message on stderr; the others are still\n"
    "printed. Exit status: 0 all images embedded, 1 some image failed, 2 bad command line,\n"
    "3 model not loadable.\n";

typedef struct job {
    const cli_image_opts *img;
    const cli_item *items;
    int json, dim;
} job;

/* One file's line, or its message on stderr (cli_image_fn, called in file order). */
static int print_one(void *user, int index, const float *e, const char *error) {
    const job *j = user;
    const cli_item *it = &j->items[index];
    if (!e) {
        fflush(stdout); /* keep stdout and stderr in file order on a terminal */
        fprintf(stderr, "biomedclip embed-image: %s\n", error);
    } else if (j->json && j->img->name_frames) { /* {"file": PATH, "frame": N, "embedding": [...]} */
        fputc('{', stdout);
        cli_json_item(stdout, j->img, it);
        fputs(", \"embedding\": ", stdout);
        cli_json_floats(stdout, e, j->dim);
        fputs("}\n", stdout);
    } else {
        cli_print_embedding("file", it->name, e, j->dim, j->json);
    }
    fflush(stdout);
    return 0;
}

int cli_embed_image(int argc, char **argv) {
    const char *model_opt = NULL;
    int threads = 0, batch = 8, json = 0, raw = 0;
    cli_list files;
    bmc_model *model = NULL;
    bmc_ctx *ctx = NULL;
    cli_image_opts img;
    cli_image_opts_init(&img, "embed-image");
    cli_item *items = NULL;
    int n_items = 0;
    int rc = CLI_EXIT_FAILURE;
    if (cli_list_init(&files, argc)) goto oom;
    const cli_option opts[] = {CLI_OPT_MODEL(&model_opt), CLI_OPT_THREADS(&threads),
                               CLI_OPT_BATCH(&batch), CLI_OPT_JSON(&json),
                               CLI_OPT_RAW(&raw), CLI_IMAGE_OPTS(&img),
                               CLI_ARGS(&files), {0}};
    if ((rc = cli_parse("embed-image", usage_text, opts, argc, argv)) != CLI_GO_ON) goto done;
    int n_files = files.n;
    if ((rc = cli_require("embed-image", n_files > 0, "images")) != CLI_GO_ON) goto done;

    rc = CLI_EXIT_MODEL;
    if (!(model = cli_load_model(cli_model_path(model_opt)))) goto done;
    rc = CLI_EXIT_FAILURE;
    if ((n_items = cli_image_items(&img, files.v, n_files, &items)) < 0) goto done;
    if (batch > n_items) batch = n_items > 0 ? n_items : 1;
    if (cli_new_ctx("embed-image", model, threads, batch, &ctx)) goto done;
    job j = {&img, items, json, bmc_model_embed_dim(model)};
    int failed = cli_encode_image_files(ctx, &img, items, n_items, batch, !raw, print_one, &j);
    rc = failed == 0 ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
    goto done;

oom:
    rc = cli_oom("embed-image");
done:
    cli_image_items_free(items, n_items);
    cli_list_free(&files);
    bmc_ctx_free(ctx);
    bmc_model_free(model);
    return rc;
}
