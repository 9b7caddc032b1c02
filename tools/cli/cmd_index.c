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
#include "index_store.h"

static const char usage_text[] =
    "usage: biomedclip index [-m MODEL] -o INDEX [--threads N] [--batch N] [--progress | --quiet]\n"
    "                        DIR|IMAGE...\n"
    "\n"
    "Embed every image under the directories (recursively, in sorted path order; extensions\n"
    "jpg jpeg png bmp tga gif ppm pgm pnm, any case; names starting with '.' and symbolic links\n"
    "to directories are skipped) into INDEX, a directory holding embeddings.npy (float32 [N, D],\n"
    "unit rows), paths.txt (line i = row i) and index.json. Images already in INDEX are skipped,\n"
    "new ones appended; work is committed every batch, so an interrupted run can be resumed.\n"
    "\n"
    "  -m, --model MODEL   .bmc model file (default: $BIOMEDCLIP_MODEL)\n"
    "  -o, --output INDEX  the index directory (created if absent)\n"
    "  --threads N         threads (default: OpenBLAS's thread count)\n"
    "  --batch N           images encoded together (default 8)\n"
    "  --progress          show progress on stderr even when it is not a terminal\n"
    "  --quiet             no progress (the default when stderr is not a terminal)\n"
    "\n"
    "Exit status: 0 every image indexed, 1 some image failed (the others are indexed),\n"
    "2 bad command line, 3 model not loadable.\n";

static const char *const image_ext[] = {"jpg", "jpeg", "png", "bmp", "tga", "gif", "ppm", "pgm", "pnm"};

typedef struct strlist {
    char **v;
    int n, cap;
} strlist;

static int strlist_push(strlist *l, char *s) {
    if (!s) return -1;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 256;
        char **p = realloc(l->v, (size_t)cap * sizeof *p);
        if (!p) {
            free(s);
            return -1;
        }
        l->v = p, l->cap = cap;
    }
    l->v[l->n++] = s;
    return 0;
}

static int is_image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    for (size_t i = 0; i < sizeof image_ext / sizeof *image_ext; i++)
        if (!strcasecmp(dot + 1, image_ext[i])) return 1;
    return 0;
}

/* Collect image files under dir into out; unreadable directories are reported and counted. */
static int walk(const char *dir, strlist *out, int *errors) {
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "biomedclip index: %s: cannot open directory\n", dir);
        (*errors)++;
        return 0;
    }
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *p = cli_join_path(dir, e->d_name);
        struct stat lst, st;
        if (!p) {
            rc = -1;
        } else if (lstat(p, &lst) != 0) {
            free(p);
        } else if (S_ISDIR(lst.st_mode)) {
            rc = walk(p, out, errors);
            free(p);
        } else if (is_image_name(e->d_name) && stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
            if (strchr(p, '\n')) {
                fprintf(stderr, "biomedclip index: skipping a file with a newline in its name: %s\n", p);
                free(p);
            } else {
                rc = strlist_push(out, p);
            }
        } else {
            free(p);
        }
    }
    closedir(d);
    return rc;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct run {
    idx_store *index;
    const char *const *files;
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
    } else if (idx_append(r->index, r->files[index], emb)) {
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

int cli_index(int argc, char **argv) {
    const char *model_opt = NULL, *output = NULL;
    int threads = 0, batch = 8, progress = isatty(2), rc = CLI_EXIT_FAILURE;
    cli_list roots;
    int walk_errors = 0;
    strlist found = {0};
    const char **todo = NULL;
    bmc_model *model = NULL;
    bmc_ctx *ctx = NULL;
    idx_store ix;
    memset(&ix, 0, sizeof ix);
    if (cli_list_init(&roots, argc)) goto oom;
    const cli_option opts[] = {
        CLI_OPT_MODEL(&model_opt),
        {"--output", "-o", CLI_STRING, &output, 0, NULL, NULL},
        CLI_OPT_THREADS(&threads),
        CLI_OPT_BATCH(&batch),
        {"--progress", NULL, CLI_SET, &progress, 1, NULL, NULL},
        {"--quiet", "-q", CLI_SET, &progress, 0, NULL, NULL},
        CLI_ARGS(&roots),
        {0},
    };
    if ((rc = cli_parse("index", usage_text, opts, argc, argv)) != CLI_GO_ON) goto done;
    rc = CLI_EXIT_USAGE;
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
            if (walk(roots.v[i], &found, &walk_errors)) goto oom;
        } else if (strlist_push(&found, strdup(roots.v[i]))) {
            goto oom;
        }
    }
    if (found.n) qsort(found.v, (size_t)found.n, sizeof *found.v, cmp_str);

    rc = CLI_EXIT_MODEL;
    const char *model_path = cli_model_path(model_opt);
    if (!(model = cli_load_model(model_path))) goto done;
    rc = CLI_EXIT_FAILURE;
    if (idx_open_append(&ix, output, bmc_model_embed_dim(model), model_path)) goto done;

    /* what is not in the index yet (duplicates from overlapping arguments only once) */
    int n_todo = 0, skipped = 0;
    if (!(todo = calloc((size_t)found.n + 1, sizeof *todo))) goto oom;
    for (int i = 0; i < found.n; i++) {
        if (i > 0 && !strcmp(found.v[i], found.v[i - 1])) continue;
        if (idx_contains(&ix, found.v[i])) skipped++;
        else todo[n_todo++] = found.v[i];
    }

    if (cli_new_ctx("index", model, threads, batch > 8 ? batch : 0, &ctx)) goto done;
    run r = {&ix, todo, n_todo, batch, progress, 0, 0, 0, now()};
    if (progress) show_progress(&r);
    int failed = cli_encode_image_files(ctx, todo, n_todo, batch, on_image, &r);
    if (progress) {
        show_progress(&r);
        fprintf(stderr, "\n%s: %d new, %d already indexed, %d failed, %ld in all\n", output,
                n_todo - r.failed, skipped, r.failed, ix.n);
    }
    rc = (failed == 0 && walk_errors == 0 && !r.write_error) ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
    goto done;

oom:
    rc = cli_oom("index");
done:
    idx_close(&ix);
    for (int i = 0; i < found.n; i++) free(found.v[i]);
    free(found.v), free(todo);
    cli_list_free(&roots);
    bmc_ctx_free(ctx);
    bmc_model_free(model);
    return rc;
}
