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
    "jpg jpeg png bmp tga gif ppm pgm pnm dcm dicom, any case, and DICOM files without an\n"
    "extension; names starting with '.' and symbolic links to directories are skipped) into\n"
    "INDEX, a directory holding embeddings.npy (float32 [N, D], unit rows), paths.txt (line i =\n"
    "row i: the path, or PATH#N for frame N) and index.json. Images already in INDEX are skipped,\n"
    "new ones appended; work is committed every batch, so an interrupted run can be resumed.\n"
    "\n"
    "  -m, --model MODEL   .bmc model file (default: $BIOMEDCLIP_MODEL)\n"
    "  -o, --output INDEX  the index directory (created if absent)\n"
    "  --threads N         threads (default: OpenBLAS's thread count)\n"
    "  --batch N           images encoded together (default 8)\n"
    "  --progress          show progress on stderr even when it is not a terminal\n"
    "  --quiet             no progress (the default when stderr is not a terminal)\n"
    CLI_IMAGE_OPTS_HELP
    "\n"
    "Exit status: 0 every image indexed, 1 some image failed (the others are indexed),\n"
    "2 bad command line, 3 model not loadable.\n";

static const char *const image_ext[] = {"jpg", "jpeg", "png", "bmp", "tga", "gif", "ppm", "pgm", "pnm", "dcm",
                                        "dicom"};

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

/* DICOM files often have no extension (IM000001): those are recognised by their content, the
 * Part 10 marker "DICM" at byte 128. */
static int is_dicom_part10(const char *path) {
    FILE *f = fopen(path, "rb");
    unsigned char b[132];
    int yes = f && fread(b, 1, sizeof b, f) == sizeof b && !memcmp(b + 128, "DICM", 4);
    if (f) fclose(f);
    return yes;
}

static int is_image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    for (size_t i = 0; i < sizeof image_ext / sizeof *image_ext; i++)
        if (!strcasecmp(dot + 1, image_ext[i])) return 1;
    return 0;
}

static char *join_path(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    while (a > 1 && dir[a - 1] == '/') a--;
    char *s = malloc(a + b + 2);
    if (!s) return NULL;
    memcpy(s, dir, a);
    s[a] = '/';
    memcpy(s + a + 1, name, b + 1);
    return s;
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
        char *p = join_path(dir, e->d_name);
        struct stat lst, st;
        if (!p) {
            rc = -1;
        } else if (lstat(p, &lst) != 0) {
            free(p);
        } else if (S_ISDIR(lst.st_mode)) {
            rc = walk(p, out, errors);
            free(p);
        } else if (stat(p, &st) == 0 && S_ISREG(st.st_mode) &&
                   (is_image_name(e->d_name) || (!strchr(e->d_name, '.') && is_dicom_part10(p)))) {
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

int cli_index(int argc, char **argv) {
    const char *model_opt = NULL, *output = NULL, *v;
    int threads = 0, batch = 8, progress = isatty(2), rc = CLI_EXIT_USAGE, only_args = 0;
    const char **roots = calloc((size_t)argc, sizeof *roots);
    int n_roots = 0, walk_errors = 0;
    strlist found = {0};
    const char **todo = NULL;
    bmc_model *model = NULL;
    bmc_ctx *ctx = NULL;
    idx_store ix;
    memset(&ix, 0, sizeof ix);
    cli_image_opts img;
    cli_image_opts_init(&img);
    cli_item *items = NULL, *todo_items = NULL;
    int n_items = 0;
    if (!roots) goto oom;

    for (int i = 1, k; i < argc; i++) {
        const char *a = argv[i];
        if (only_args || a[0] != '-' || !a[1]) {
            roots[n_roots++] = a;
        } else if (!strcmp(a, "--")) {
            only_args = 1;
        } else if (cli_is_help(a)) {
            fputs(usage_text, stdout);
            rc = CLI_EXIT_OK;
            goto done;
        } else if (cli_opt(argc, argv, &i, "-m", &v) || cli_opt(argc, argv, &i, "--model", &v)) {
            if (!(model_opt = v)) goto missing;
        } else if (cli_opt(argc, argv, &i, "-o", &v) || cli_opt(argc, argv, &i, "--output", &v)) {
            if (!(output = v)) goto missing;
        } else if (cli_opt(argc, argv, &i, "--threads", &v)) {
            if (cli_parse_int("index", "--threads", v, &threads)) goto done;
        } else if (cli_opt(argc, argv, &i, "--batch", &v)) {
            if (cli_parse_int("index", "--batch", v, &batch)) goto done;
        } else if ((k = cli_image_opt("index", argc, argv, &i, &img)) != 0) {
            if (k < 0) goto done;
        } else if (!strcmp(a, "--progress")) {
            progress = 1;
        } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            progress = 0;
        } else {
            fprintf(stderr, "biomedclip index: unknown option '%s' (see --help)\n", a);
            goto done;
        }
    }
    if (!output || !*output) {
        fprintf(stderr, "biomedclip index: no index: pass -o INDEX (see --help)\n");
        goto done;
    }
    if (n_roots == 0) {
        fprintf(stderr, "biomedclip index: no directories to index (see --help)\n");
        goto done;
    }

    /* the file list first: a typo in a directory name should not cost a model load */
    rc = CLI_EXIT_FAILURE;
    for (int i = 0; i < n_roots; i++) {
        struct stat st;
        if (stat(roots[i], &st) != 0) {
            fprintf(stderr, "biomedclip index: %s: no such file or directory\n", roots[i]);
            walk_errors++;
        } else if (S_ISDIR(st.st_mode)) {
            if (walk(roots[i], &found, &walk_errors)) goto oom;
        } else if (strlist_push(&found, strdup(roots[i]))) {
            goto oom;
        }
    }
    if (found.n) qsort(found.v, (size_t)found.n, sizeof *found.v, cmp_str);

    rc = CLI_EXIT_MODEL;
    const char *model_path = cli_model_path(model_opt);
    if (!(model = cli_load_model(model_path))) goto done;
    rc = CLI_EXIT_FAILURE;
    if (idx_open_append(&ix, output, bmc_model_embed_dim(model), model_path)) goto done;

    /* the items (files, or frames with --frames all; duplicates from overlapping arguments
     * only once), and those not in the index yet */
    int n_files = 0, n_todo = 0, skipped = 0;
    if (!(todo = calloc((size_t)found.n + 1, sizeof *todo))) goto oom;
    for (int i = 0; i < found.n; i++)
        if (i == 0 || strcmp(found.v[i], found.v[i - 1])) todo[n_files++] = found.v[i];
    if ((n_items = cli_image_items("index", &img, todo, n_files, &items)) < 0) goto done;
    if (!(todo_items = calloc((size_t)n_items + 1, sizeof *todo_items))) goto oom;
    for (int i = 0; i < n_items; i++) {
        if (idx_contains(&ix, items[i].name)) skipped++;
        else todo_items[n_todo++] = items[i];
    }

    bmc_ctx_params cp = bmc_ctx_default_params();
    if (threads > 0) cp.n_threads = threads;
    if (batch > cp.max_batch) cp.max_batch = batch;
    if (bmc_ctx_new(model, &cp, &ctx) != BMC_OK) {
        fprintf(stderr, "biomedclip index: %s\n", bmc_last_error());
        goto done;
    }
    run r = {&ix, todo_items, n_todo, batch, progress, 0, 0, 0, now()};
    if (progress) show_progress(&r);
    int failed = cli_encode_image_files(ctx, &img, todo_items, n_todo, batch, on_image, &r);
    if (progress) {
        show_progress(&r);
        fprintf(stderr, "\n%s: %d new, %d already indexed, %d failed, %ld in all\n", output,
                n_todo - r.failed, skipped, r.failed, ix.n);
    }
    rc = (failed == 0 && walk_errors == 0 && !r.write_error) ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
    goto done;

missing:
    fprintf(stderr, "biomedclip index: %s needs a value\n", argv[argc - 1]);
    goto done;
oom:
    fprintf(stderr, "biomedclip index: out of memory\n");
    rc = CLI_EXIT_FAILURE;
done:
    idx_close(&ix);
    for (int i = 0; i < found.n; i++) free(found.v[i]);
    free(found.v), free(todo), free(roots), free(todo_items);
    cli_image_items_free(items, n_items);
    bmc_ctx_free(ctx);
    bmc_model_free(model);
    return rc;
}
