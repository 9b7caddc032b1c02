/* cmd_embed_image.c - `biomedclip embed-image`: print the embedding of each image file.
 *
 * Files are decoded and preprocessed one by one (so that a bad file only costs its own line),
 * then encoded `--batch` at a time with bmc_encode_pixels (one GEMM per weight for the batch). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
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
    const bmc_model *model;
    bmc_ctx *ctx;
    const cli_image_opts *img;
    const cli_item *items;
    int json, normalize, batch;
    size_t in;          /* floats of one model input */
    int dim;            /* embedding length */
    float *chw;         /* [batch, in] */
    float *emb;         /* [batch, dim] */
    int *ok;            /* [batch] row in chw/emb, or -1 */
    char (*err)[512];   /* [batch] why a file failed */
} job;

/* Files [start, start + count): returns how many failed. */
static int run_batch(job *j, int start, int count) {
    int rows = 0, failed = 0;
    for (int k = 0; k < count; k++) {
        bmc_image im;
        memset(&im, 0, sizeof im);
        j->ok[k] = -1;
        if (cli_image_load(j->img, &j->items[start + k], &im) != BMC_OK ||
            bmc_image_preprocess(j->model, &im, j->chw + (size_t)rows * j->in) != BMC_OK) {
            snprintf(j->err[k], sizeof j->err[k], "%s", bmc_last_error());
        } else {
            j->ok[k] = rows++;
        }
        bmc_image_free(&im);
    }
    if (rows > 0 && bmc_encode_pixels(j->ctx, j->chw, rows, j->emb, j->normalize) != BMC_OK) {
        for (int k = 0; k < count; k++) {
            if (j->ok[k] < 0) continue;
            snprintf(j->err[k], sizeof j->err[k], "%s", bmc_last_error());
            j->ok[k] = -1;
        }
    }
    for (int k = 0; k < count; k++) {
        if (j->ok[k] < 0) {
            fflush(stdout); /* keep stdout and stderr in file order on a terminal */
            /* the library's messages usually name the file already */
            if (strstr(j->err[k], j->items[start + k].file))
                fprintf(stderr, "biomedclip embed-image: %s\n", j->err[k]);
            else
                fprintf(stderr, "biomedclip embed-image: %s: %s\n", j->items[start + k].name, j->err[k]);
            failed++;
        } else {
            const cli_item *it = &j->items[start + k];
            const float *e = j->emb + (size_t)j->ok[k] * j->dim;
            if (j->json && j->img->name_frames) { /* {"file": PATH, "frame": N, "embedding": [...]} */
                fputc('{', stdout);
                cli_json_item(stdout, j->img, it);
                fputs(", \"embedding\": ", stdout);
                cli_json_floats(stdout, e, j->dim);
                fputs("}\n", stdout);
            } else {
                cli_print_embedding("file", it->name, e, j->dim, j->json);
            }
        }
    }
    fflush(stdout);
    return failed;
}

int cli_embed_image(int argc, char **argv) {
    const char *model_opt = NULL;
    int threads = 0, batch = 8, json = 0, raw = 0;
    cli_list files;
    bmc_model *model = NULL;
    job j;
    memset(&j, 0, sizeof j);
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
    if (cli_new_ctx("embed-image", model, threads, batch, &j.ctx)) goto done;
    int side = bmc_model_image_size(model);
    j.model = model, j.img = &img, j.items = items, j.json = json, j.normalize = !raw, j.batch = batch;
    j.in = 3 * (size_t)side * side;
    j.dim = bmc_model_embed_dim(model);
    j.chw = malloc((size_t)batch * j.in * sizeof *j.chw);
    j.emb = malloc((size_t)batch * j.dim * sizeof *j.emb);
    j.ok = malloc((size_t)batch * sizeof *j.ok);
    j.err = malloc((size_t)batch * sizeof *j.err);
    if (!j.chw || !j.emb || !j.ok || !j.err) goto oom;
    int failed = 0;
    for (int start = 0; start < n_items; start += batch)
        failed += run_batch(&j, start, n_items - start < batch ? n_items - start : batch);
    rc = failed ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
    goto done;

oom:
    rc = cli_oom("embed-image");
done:
    free(j.chw), free(j.emb), free(j.ok), free(j.err);
    cli_image_items_free(items, n_items);
    cli_list_free(&files);
    bmc_ctx_free(j.ctx);
    bmc_model_free(model);
    return rc;
}
