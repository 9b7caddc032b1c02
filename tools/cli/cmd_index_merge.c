/* cmd_index_merge.c - `biomedclip index-merge -o INDEX SHARD_DIR...`: join the shards of one
 * sharded `index` run (shard.h) into one index, after checking that they belong together, so
 * that the result is the index a single node would have written. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "index_store.h"
#include "shard.h"

static const char usage_text[] =
    "usage: biomedclip index-merge -o INDEX SHARD_DIR...\n"
    "\n"
    "Join the N shards written by `biomedclip index --shard K/N` (K = 1..N) into one index\n"
    "directory whose rows are those of a single-node `biomedclip index` of the same inputs, in\n"
    "the same order. The shards must come from one model and one input listing, each K once and\n"
    "complete. INDEX must not exist yet (or be an empty directory). INDEX also gets failed.tsv\n"
    "(the files that failed in any shard) and clip-retrieval's layout, one part per shard:\n"
    "img_emb/img_emb_<K-1>.npy and metadata/metadata_<K-1>.jsonl.\n"
    "\n"
    "  -o, --output INDEX  the merged index directory\n"
    "\n"
    "Exit status: 0 merged, 1 the shards do not belong together or a file could not be\n"
    "read or written, 2 bad command line.\n";

static int fail(const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "biomedclip index-merge: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return CLI_EXIT_FAILURE;
}

/* Append the whole of file src to f (failed.tsv of one shard). */
static int append_file(FILE *f, const char *src) {
    FILE *in = fopen(src, "rb");
    if (!in) return errno == ENOENT ? 0 : -1;
    char buf[65536];
    size_t got;
    int rc = 0;
    while ((got = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, got, f) != got) rc = -1;
    if (ferror(in)) rc = -1;
    fclose(in);
    return rc;
}

/* Check the set of shards: one listing, one model, each K of 1..N exactly once, all complete. */
static int check_shards(const char *const *dirs, int n_dirs, shard_info *info, int **by_k) {
    const char *why;
    for (int i = 0; i < n_dirs; i++) {
        if (shard_read(dirs[i], &info[i], &why)) return fail("%s: %s", dirs[i], why);
        if (!info[i].complete) {
            char what[64];
            snprintf(what, sizeof what, "%d/%d", info[i].k, info[i].n);
            return fail("%s: shard %s is not complete (rerun its `biomedclip index --shard` command)",
                        dirs[i], what);
        }
        if (i == 0) continue;
        if (info[i].n != info[0].n) return fail("%s and %s: shards of different splits (N differs)", dirs[0], dirs[i]);
        if (info[i].listing_count != info[0].listing_count || info[i].listing_hash != info[0].listing_hash)
            return fail("%s and %s: shards of different input listings (other files or another order)",
                        dirs[0], dirs[i]);
        if (strcmp(info[i].model, info[0].model))
            return fail("%s and %s: shards made with different model files", dirs[0], dirs[i]);
    }
    int n = info[0].n;
    if (!(*by_k = malloc((size_t)n * sizeof **by_k))) return fail("%s%s", "out of memory", "");
    for (int k = 0; k < n; k++) (*by_k)[k] = -1;
    for (int i = 0; i < n_dirs; i++) {
        int k = info[i].k - 1;
        if ((*by_k)[k] >= 0) {
            fprintf(stderr, "biomedclip index-merge: shard %d/%d given twice: %s and %s\n", k + 1, n,
                    dirs[(*by_k)[k]], dirs[i]);
            return CLI_EXIT_FAILURE;
        }
        (*by_k)[k] = i;
    }
    int missing = 0;
    for (int k = 0; k < n; k++)
        if ((*by_k)[k] < 0) {
            if (!missing++) fprintf(stderr, "biomedclip index-merge: missing shards of %d:", n);
            fprintf(stderr, " %d/%d", k + 1, n);
        }
    if (missing) {
        fputc('\n', stderr);
        return CLI_EXIT_FAILURE;
    }
    for (int k = 0; k < n; k++) {
        const shard_info *s = &info[(*by_k)[k]];
        long lo, hi;
        shard_range(s->listing_count, s->k, s->n, &lo, &hi);
        if (s->lo != lo || s->hi != hi)
            return fail("%s: shard.txt's range does not match its K/N%s", dirs[(*by_k)[k]], "");
    }
    return CLI_EXIT_OK;
}

int cli_index_merge(int argc, char **argv) {
    const char *output = NULL;
    int rc = CLI_EXIT_FAILURE, *by_k = NULL;
    shard_info *info = calloc((size_t)argc, sizeof *info);
    FILE *npy = NULL, *txt = NULL, *failed = NULL;
    char *prev_copy = NULL; /* the last path of the shards before, kept past their idx_close */
    idx_store part;
    memset(&part, 0, sizeof part);
    cli_list shards;
    if (!info || cli_list_init(&shards, argc)) {
        free(info);
        fprintf(stderr, "biomedclip index-merge: out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    const cli_option opts[] = {
        {"--output", "-o", CLI_STRING, &output, 0, NULL, NULL},
        CLI_ARGS(&shards),
        {0},
    };
    if ((rc = cli_parse("index-merge", usage_text, opts, argc, argv)) != CLI_GO_ON) goto done;
    rc = CLI_EXIT_USAGE;
    const char *const *dirs = shards.v;
    int n_dirs = shards.n;
    if (!output || !*output || n_dirs == 0) {
        fprintf(stderr, "biomedclip index-merge: need -o INDEX and at least one shard directory (see --help)\n");
        goto done;
    }
    if ((rc = check_shards(dirs, n_dirs, info, &by_k)) != CLI_EXIT_OK) goto done;
    rc = CLI_EXIT_FAILURE;

    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/embeddings.npy", output);
    if (mkdir(output, 0777) && errno != EEXIST) {
        fprintf(stderr, "biomedclip index-merge: cannot create %s: %s\n", output, strerror(errno));
        goto done;
    }
    struct stat st;
    if (stat(path, &st) == 0) {
        fprintf(stderr, "biomedclip index-merge: %s already holds an index; merge into a new directory\n", output);
        goto done;
    }
    /* rows and paths shard by shard; the header, written last, counts them */
    const shard_info *s0 = &info[0];
    int n = s0->n, dim = 0;
    long rows = 0;
    const char *prev_last = NULL;
    if (!(npy = fopen(path, "wb"))) goto io;
    snprintf(path, sizeof path, "%s/paths.txt", output);
    if (!(txt = fopen(path, "wb"))) goto io;
    snprintf(path, sizeof path, "%s/failed.tsv", output);
    if (!(failed = fopen(path, "wb"))) goto io;
    char header[128];
    if (idx_npy_header(header, 0, 1) || fwrite(header, 1, sizeof header, npy) != sizeof header) goto io;
    for (int k = 0; k < n; k++) {
        const char *dir = dirs[by_k[k]];
        const shard_info *s = &info[by_k[k]];
        if (idx_open_read(&part, dir)) goto done;
        if (part.n != s->rows) {
            fprintf(stderr, "biomedclip index-merge: %s: %ld rows, shard.txt says %ld\n", dir, part.n, s->rows);
            goto done;
        }
        if (k > 0 && part.dim != dim) {
            fprintf(stderr, "biomedclip index-merge: %s: %d-d rows, the shards before hold %d-d ones\n",
                    dir, part.dim, dim);
            goto done;
        }
        dim = part.dim;
        /* the listing is sorted and each shard keeps its order, so paths rise strictly across all
         * shards: anything else is a file in two shards or shards of different listings */
        for (long i = 0; i < part.n; i++) {
            if (prev_last && strcmp(prev_last, part.paths[i]) >= 0) {
                fprintf(stderr, "biomedclip index-merge: %s: %s is out of order or also in an earlier shard\n",
                        dir, part.paths[i]);
                goto done;
            }
            prev_last = part.paths[i];
            if (fprintf(txt, "%s\n", part.paths[i]) < 0) goto io;
        }
        size_t count = (size_t)part.n * (size_t)part.dim;
        if (count && fwrite(part.emb, sizeof(float), count, npy) != count) goto io;
        snprintf(path, sizeof path, "%s/failed.tsv", dir);
        if (append_file(failed, path)) goto io;
        if (idx_write_clip_part(output, k, n, part.emb, part.n, part.dim, part.paths)) goto done;
        rows += part.n;
        char *keep = prev_last ? strdup(prev_last) : NULL;
        if (prev_last && !keep) goto io;
        free(prev_copy);
        prev_last = prev_copy = keep;
        idx_close(&part);
    }
    if (idx_npy_header(header, rows, dim) || fflush(npy) || fseek(npy, 0, SEEK_SET) ||
        fwrite(header, 1, sizeof header, npy) != sizeof header)
        goto io;
    int bad = fflush(npy) || fsync(fileno(npy)) || fflush(txt) || fsync(fileno(txt)) || fflush(failed) ||
              fsync(fileno(failed));
    bad |= fclose(npy) != 0, npy = NULL;
    bad |= fclose(txt) != 0, txt = NULL;
    bad |= fclose(failed) != 0, failed = NULL;
    if (bad) goto io;
    if (idx_write_meta(output, dim, s0->model_path)) goto io;
    fprintf(stderr, "%s: %ld rows from %d shards\n", output, rows, n);
    rc = CLI_EXIT_OK;
    goto done;
io:
    fprintf(stderr, "biomedclip index-merge: writing %s failed: %s\n", output, strerror(errno));
done:
    idx_close(&part);
    if (npy) fclose(npy);
    if (txt) fclose(txt);
    if (failed) fclose(failed);
    cli_list_free(&shards);
    free(info), free(by_k), free(prev_copy);
    return rc;
}
