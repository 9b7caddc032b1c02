/* cmd_index.c - `biomedclip index`: embed every image under some directories into an index
 * (index_store.h), skipping images already in it, so an interrupted or repeated run only does
 * the new work. Files are visited in sorted order so that the same tree gives the same index. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "image_batch.h"
#include "image_walk.h"
#include "index_store.h"
#include "shard.h"

static const char usage_text[] =
    "usage: biomedclip index [-m MODEL] -o INDEX [--shard K/N] [--threads N] [--batch N]\n"
    "                        [--progress | --quiet] DIR|IMAGE...\n"
    "\n"
    "Embed every image under the directories (recursively, in sorted path order; extensions\n"
    "jpg jpeg png bmp tga gif ppm pgm pnm tif tiff dcm dicom, any case, and DICOM files without\n"
    "an extension; names starting with '.' and symbolic links to directories are skipped) into\n"
    "INDEX, a directory holding embeddings.npy (float32 [N, D], unit rows), paths.txt (line i =\n"
    "row i: the path, or PATH#N for frame N) and index.json. Images already in INDEX are skipped,\n"
    "new ones appended; work is committed every batch, so an interrupted run can be resumed.\n"
    "INDEX also gets clip-retrieval's layout of the rows (img_emb/, metadata/).\n"
    "\n"
    "With --shard K/N, INDEX is a shard: part K of the N equal slices of the sorted list of\n"
    "every input (the same on every node), with shard.txt naming K, N, the listing and the\n"
    "model. Files that fail to decode are listed in INDEX/failed.tsv and not retried; the exit\n"
    "status is then still 0. `biomedclip index-merge` joins the N shards (docs/SCALE.md).\n"
    "\n"
    "  -m, --model MODEL   .bmc model file (default: $BIOMEDCLIP_MODEL)\n"
    "  -o, --output INDEX  the index directory (created if absent)\n"
    "  --shard K/N         process part K of N of the inputs (1 <= K <= N)\n"
    "  --threads N         threads (default: OpenBLAS's thread count)\n"
    "  --batch N           images encoded together (default 8)\n"
    "  --progress          show progress on stderr even when it is not a terminal\n"
    "  --quiet             no progress (the default when stderr is not a terminal)\n"
    CLI_IMAGE_OPTS_HELP
    "\n"
    "Exit status: 0 every image indexed, 1 some image failed (the others are indexed),\n"
    "2 bad command line, 3 model not loadable.\n";

typedef struct run {
    idx_store *index;
    const cli_item *items;
    int n, batch, progress, done, failed, write_error;
    double t0;
} run;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void show_progress(const run *r) {
    double dt = now() - r->t0, rate = dt > 0 ? r->done / dt : 0;
    int width = 30, fill = r->n ? (int)((long)width * r->done / r->n) : width;
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\r[%s] %d/%d  %.1f img/s", bar, r->done, r->n, rate);
    if (rate > 0 && r->done < r->n) {
        long eta = (long)((r->n - r->done) / rate + 0.5);
        fprintf(stderr, "  ETA %ld:%02ld:%02ld ", eta / 3600, eta / 60 % 60, eta % 60);
    } else {
        fputs("                ", stderr);
    }
}

static int on_image(void *user, int index, const float *emb, const char *error) {
    run *r = user;
    r->done++;
    if (!emb) {
        r->failed++;
        if (r->progress) fputs("\r\033[K", stderr);
        fprintf(stderr, "biomedclip index: %s\n", error);
        if (idx_fail(r->index, r->items[index].name, error)) {
            r->write_error = 1;
            return 1;
        }
    } else if (idx_append(r->index, r->items[index].name, emb)) {
        r->write_error = 1;
        return 1;
    }
    if ((r->done % r->batch == 0 || r->done == r->n) && idx_commit(r->index)) {
        r->write_error = 1;
        return 1;
    }
    if (r->progress) show_progress(r);
    return 0;
}

/* A shard directory may be resumed only by the same shard of the same listing and model. */
static int check_shard(const char *dir, const shard_info *want) {
    shard_info have;
    const char *why;
    char path[4200];
    snprintf(path, sizeof path, "%s/shard.txt", dir);
    if (access(path, F_OK) != 0) {
        snprintf(path, sizeof path, "%s/embeddings.npy", dir);
        if (access(path, F_OK) == 0) {
            fprintf(stderr, "biomedclip index: %s holds an index that is not a shard\n", dir);
            return -1;
        }
        return 0;
    }
    if (shard_read(dir, &have, &why)) {
        fprintf(stderr, "biomedclip index: %s: %s\n", dir, why);
        return -1;
    }
    if (have.k != want->k || have.n != want->n) {
        fprintf(stderr, "biomedclip index: %s holds shard %d/%d, not %d/%d\n", dir, have.k, have.n, want->k,
                want->n);
        return -1;
    }
    if (have.listing_count != want->listing_count || have.listing_hash != want->listing_hash) {
        fprintf(stderr, "biomedclip index: %s was made from another input listing (%ld files then, %ld now, or "
                "other names): give the same inputs, or use a new directory\n", dir, have.listing_count,
                want->listing_count);
        return -1;
    }
    if (strcmp(have.model, want->model)) {
        fprintf(stderr, "biomedclip index: %s was made with another model file (%s, now %s)\n", dir, have.model,
                want->model);
        return -1;
    }
    return 0;
}

/* After the last commit: clip-retrieval's layout of the rows, and a shard's completion. */
static int finish(const char *dir, shard_info *shard, long n_failed) {
    idx_store ix;
    if (idx_open_read(&ix, dir)) return -1;
    int part = shard->n ? shard->k - 1 : 0, parts = shard->n ? shard->n : 1;
    int rc = idx_write_clip_part(dir, part, parts, ix.emb, ix.n, ix.dim, ix.paths);
    if (rc == 0 && shard->n) {
        shard->complete = 1;
        shard->rows = ix.n;
        shard->failed = n_failed;
        rc = shard_write(dir, shard);
    }
    idx_close(&ix);
    return rc;
}

int cli_index(int argc, char **argv) {
    const char *model_opt = NULL, *output = NULL;
    int threads = 0, batch = 8, progress = isatty(2), rc = CLI_EXIT_FAILURE;
    cli_list roots;
    const char *shard_spec = NULL;
    int shard_k = 0, shard_n = 0;
    int walk_errors = 0;
    cli_paths found = {0};
    cli_item *todo = NULL, *items = NULL;
    int n_items = 0;
    cli_image_opts img;
    cli_image_opts_init(&img, "index");
    bmc_model *model = NULL;
    bmc_ctx *ctx = NULL;
    idx_store ix;
    memset(&ix, 0, sizeof ix);
    if (cli_list_init(&roots, argc)) goto oom;
    const cli_option opts[] = {
        CLI_OPT_MODEL(&model_opt),
        {"--output", "-o", CLI_STRING, &output, 0, NULL, NULL},
        {"--shard", NULL, CLI_STRING, &shard_spec, 0, NULL, NULL},
        CLI_OPT_THREADS(&threads),
        CLI_OPT_BATCH(&batch),
        {"--progress", NULL, CLI_SET, &progress, 1, NULL, NULL},
        {"--quiet", "-q", CLI_SET, &progress, 0, NULL, NULL},
        CLI_IMAGE_OPTS(&img),
        CLI_ARGS(&roots),
        {0},
    };
    if ((rc = cli_parse("index", usage_text, opts, argc, argv)) != CLI_GO_ON) goto done;
    rc = CLI_EXIT_USAGE;
    if (shard_spec && shard_parse_spec("index", shard_spec, &shard_k, &shard_n)) goto done;
    int n_roots = roots.n;
    if (!output || !*output) {
        fprintf(stderr, "biomedclip index: no index: pass -o INDEX (see --help)\n");
        goto done;
    }
    if ((rc = cli_require("index", n_roots > 0, "directories to index")) != CLI_GO_ON) goto done;

    /* the file list first: a typo in a directory name should not cost a model load */
    rc = CLI_EXIT_FAILURE;
    for (int i = 0; i < n_roots; i++) {
        struct stat st;
        if (stat(roots.v[i], &st) != 0) {
            fprintf(stderr, "biomedclip index: %s: no such file or directory\n", roots.v[i]);
            walk_errors++;
        } else if (S_ISDIR(st.st_mode)) {
            if (cli_walk_images("index", roots.v[i], &found, &walk_errors)) goto oom;
        } else if (cli_paths_push(&found, strdup(roots.v[i]))) {
            goto oom;
        }
    }
    if (found.n) qsort(found.v, (size_t)found.n, sizeof *found.v, cli_paths_cmp);
    /* duplicates from overlapping arguments only once */
    int n_unique = 0;
    for (int i = 0; i < found.n; i++) {
        if (n_unique > 0 && !strcmp(found.v[i], found.v[n_unique - 1])) free(found.v[i]);
        else found.v[n_unique++] = found.v[i];
    }
    found.n = n_unique;
    /* this node's slice: the listing is the same everywhere, so the slices are disjoint */
    shard_info shard = {.k = shard_k, .n = shard_n, .listing_count = found.n, .hi = found.n};
    if (shard_n) {
        shard.listing_hash = shard_listing_hash((const char *const *)found.v, found.n);
        shard_range(found.n, shard_k, shard_n, &shard.lo, &shard.hi);
    }

    rc = CLI_EXIT_MODEL;
    const char *model_path = cli_model_path(model_opt);
    if (!(model = cli_load_model(model_path))) goto done;
    rc = CLI_EXIT_FAILURE;
    if (shard_n) {
        bmc_model_fingerprint(model, shard.model, sizeof shard.model);
        snprintf(shard.model_path, sizeof shard.model_path, "%s", model_path);
        if (check_shard(output, &shard)) goto done;
    }
    if (idx_open_append(&ix, output, bmc_model_embed_dim(model), model_path, shard_n ? IDX_KEEP_FAILURES : 0))
        goto done;
    if (shard_n && shard_write(output, &shard)) goto done;

    /* the items of this node's slice (files, or their frames with --frames all: FILE#N), and
     * those not in the index yet */
    int n_todo = 0, skipped = 0;
    const char *const *slice = found.v ? (const char *const *)found.v + shard.lo : NULL; /* none found: NULL */
    if ((n_items = cli_image_items(&img, slice, (int)(shard.hi - shard.lo), &items)) < 0) goto done;
    if (!(todo = calloc((size_t)n_items + 1, sizeof *todo))) goto oom;
    for (int i = 0; i < n_items; i++) {
        if (idx_contains(&ix, items[i].name)) skipped++;
        else todo[n_todo++] = items[i];
    }

    if (cli_new_ctx("index", model, threads, batch > 8 ? batch : 0, &ctx)) goto done;
    run r = {&ix, todo, n_todo, batch, progress, 0, 0, 0, now()};
    if (progress) show_progress(&r);
    int failed = cli_encode_image_files(ctx, &img, todo, n_todo, batch, 1, on_image, &r);
    if (progress) {
        show_progress(&r);
        fprintf(stderr, "\n%s: %d new, %d already indexed, %d failed, %ld in all\n", output,
                n_todo - r.failed, skipped, r.failed, ix.n);
    }
    if (failed < 0 || r.write_error || idx_commit(&ix)) goto done;
    long n_failed = ix.n_failed + r.failed;
    idx_close(&ix);
    if (finish(output, &shard, n_failed)) goto done;
    if (shard_n) {
        /* a decode failure is recorded in the shard, not a failure of the shard's job */
        if (n_failed)
            fprintf(stderr, "biomedclip index: %s: %ld files failed to decode, listed in failed.tsv\n",
                    output, n_failed);
        rc = walk_errors == 0 ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
    } else {
        rc = (failed == 0 && walk_errors == 0) ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
    }
    goto done;

oom:
    rc = cli_oom("index");
done:
    idx_close(&ix);
    for (int i = 0; i < found.n; i++) free(found.v[i]);
    free(found.v), free(todo);
    cli_image_items_free(items, n_items);
    cli_list_free(&roots);
    bmc_ctx_free(ctx);
    bmc_model_free(model);
    return rc;
}
