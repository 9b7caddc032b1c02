/* cmd_slide.c - `biomedclip embed-slide` and `biomedclip classify-slide`: whole-slide images cut
 * into tiles, every tissue tile embedded, the slide classified zero-shot as MI-Zero does
 * (docs/SLIDES.md).
 *
 * One slide runs as a pipeline: a reader thread reads and preprocesses batch b + 1 (OpenSlide
 * decode, bicubic resize, normalisation) while the model encodes batch b, so the towers do not
 * wait for tiles. Each encoded batch is written at its fixed place in OUTDIR/<slide>.partial
 * (the tile list, then the feature rows); a rerun after a kill finds the batches already there,
 * encodes the rest with the same batch boundaries (a batch's rows depend on what shares the batch
 * only at the 1e-6 level, but the file must be the same bytes), and the final file is written
 * from the complete list at the end, through a temporary name and a rename. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "prefetch.h"
#include "slide_store.h"

#define DEFAULT_TEMPLATE "this is a photo of "
#define PART_MAGIC "BMCSLIDEPART1\n"

typedef struct slide_opts {
    const char *cmd;
    const char *model_path, *outdir;
    int threads, batch, tile_px, overlap, threshold, all_tiles, npy, stats;
    double mpp, slide_mpp, min_tissue;
} slide_opts;

typedef struct slide_result {
    float *features;   /* [n, dim] */
    int64_t *coords;   /* [n, 2] */
    int64_t n, size0;
    int dim, skipped;
} slide_result;

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
static double now(void) { return clock_s(CLOCK_MONOTONIC); }

/* A number in [lo, hi] for a CLI_CALL option: CLI_GO_ON, or CLI_EXIT_USAGE after saying why. */
static int number(const char *opt, const char *v, double lo, double hi, double *out) {
    char *end = NULL;
    double d = strtod(v, &end);
    if (end == v || *end || !(d >= lo && d <= hi)) {
        fprintf(stderr, "biomedclip: %s wants a number in [%g, %g], got '%s'\n", opt, lo, hi, v);
        return CLI_EXIT_USAGE;
    }
    *out = d;
    return CLI_GO_ON;
}
static int opt_mpp(void *dest, const char *v) { return number("--mpp", v, 1e-3, 1e3, dest); }
static int opt_slide_mpp(void *dest, const char *v) { return number("--slide-mpp", v, 1e-3, 1e3, dest); }
static int opt_min_tissue(void *dest, const char *v) { return number("--min-tissue", v, 0, 1, dest); }
static int opt_threshold(void *dest, const char *v) {
    double d;
    int rc = number("--tissue-threshold", v, 0, 255, &d);
    if (rc == CLI_GO_ON) *(int *)dest = (int)d;
    return rc;
}
static int opt_overlap(void *dest, const char *v) {
    double d;
    int rc = number("--overlap", v, 0, 4095, &d);
    if (rc == CLI_GO_ON) *(int *)dest = (int)d;
    return rc;
}

/* The options embed-slide and classify-slide share; the table ends with {0} at [N_TILING_OPTS]. */
#define N_TILING_OPTS 12
static void tiling_opts(slide_opts *o, cli_option *t) {
    const cli_option common[N_TILING_OPTS] = {
        CLI_OPT_MODEL(&o->model_path),
        CLI_OPT_THREADS(&o->threads),
        CLI_OPT_BATCH(&o->batch),
        {"--tile-px", NULL, CLI_INT, &o->tile_px, 0, NULL, NULL},
        {"--overlap", NULL, CLI_CALL, &o->overlap, 0, NULL, opt_overlap},
        {"--mpp", NULL, CLI_CALL, &o->mpp, 0, NULL, opt_mpp},
        {"--slide-mpp", NULL, CLI_CALL, &o->slide_mpp, 0, NULL, opt_slide_mpp},
        {"--min-tissue", NULL, CLI_CALL, &o->min_tissue, 0, NULL, opt_min_tissue},
        {"--tissue-threshold", NULL, CLI_CALL, &o->threshold, 0, NULL, opt_threshold},
        {"--all-tiles", NULL, CLI_SET, &o->all_tiles, 1, NULL, NULL},
        {"--stats", NULL, CLI_SET, &o->stats, 1, NULL, NULL},
        {0},
    };
    memcpy(t, common, sizeof common);
}

static void opts_default(slide_opts *o, const char *cmd) {
    memset(o, 0, sizeof *o);
    o->cmd = cmd;
    o->batch = 8, o->tile_px = 224, o->threshold = -1;
    o->mpp = 0.5, o->min_tissue = 0.5;
}

/* "dir/name.svs" -> "name" (malloc'd). */
static char *slide_stem(const char *path) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    const char *dot = strrchr(b, '.');
    size_t n = dot && dot != b ? (size_t)(dot - b) : strlen(b);
    char *s = malloc(n + 1);
    if (s) memcpy(s, b, n), s[n] = '\0';
    return s;
}

static char *join(const char *dir, const char *stem, const char *suffix) {
    size_t n = strlen(dir) + strlen(stem) + strlen(suffix) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s%s", dir, stem, suffix);
    return p;
}

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* ---- the reader (prefetch.h) ---------------------------------------------------------------- */

typedef struct reader {
    bmc_slide *slide;
    const bmc_slide_tiling *t;
    const bmc_model *model;
    const int64_t *coords;
    int64_t n;
    int batch;
    size_t in;               /* floats of one model input */
    float *chw[2];           /* [batch, in] per slot */
    char err[1024];
    unsigned char *rgb;      /* [tile_px^2 * 3] */
} reader;

/* Batch b's tiles, read and preprocessed into slot s (cli_prefetch_fill). */
static int read_batch(void *arg, long long b, int s) {
    reader *r = arg;
    int px = r->t->tile_px;
    int64_t first = b * r->batch, count = r->n - first < r->batch ? r->n - first : r->batch;
    for (int64_t k = 0; k < count; k++) {
        const int64_t *c = r->coords + 2 * (first + k);
        bmc_image view = {px, px, BMC_PIXEL_RGB, px * 3, r->rgb, NULL};
        if (bmc_slide_read_tile(r->slide, r->t, c[0], c[1], r->rgb) != BMC_OK ||
            bmc_image_preprocess(r->model, &view, r->chw[s] + (size_t)k * r->in) != BMC_OK) {
            snprintf(r->err, sizeof r->err, "tile at (%lld, %lld): %s", (long long)c[0], (long long)c[1],
                     bmc_last_error());
            return -1;
        }
    }
    return 0;
}

/* ---- resumable output --------------------------------------------------------------------- */

/* Everything the feature rows depend on, so that a .partial of other settings is not resumed. */
static char *fingerprint(const slide_opts *o, const char *slide_path, const bmc_model *model,
                         const bmc_slide_tiling *t, int used_threshold, size_t *len) {
    struct stat st;
    memset(&st, 0, sizeof st);
    stat(slide_path, &st);
    char *p = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&p, &n);
    if (!f) return NULL;
    fprintf(f, PART_MAGIC "libbiomedclip %s\nslide %s %lld %lld\nmodel %s %llu %d %.9g\n", bmc_version_string(),
            slide_path, (long long)st.st_size, (long long)st.st_mtime, o->model_path ? o->model_path : "",
            (unsigned long long)bmc_model_file_size(model), bmc_model_embed_dim(model),
            (double)bmc_model_logit_scale(model));
    fprintf(f, "tiling %d %.17g %d %.17g level %d region %d size0 %lld step0 %lld\n", t->tile_px, t->mpp,
            t->overlap, t->level0_mpp, t->level, t->region_px, (long long)t->size0, (long long)t->step0);
    fprintf(f, "tissue %d %d %.17g threads %d batch %d\n", o->all_tiles, used_threshold, o->min_tissue, o->threads,
            o->batch);
    fclose(f);
    *len = n;
    return p;
}

static int write_all(int fd, const void *buf, size_t n, off_t at) {
    const char *p = buf;
    while (n) {
        ssize_t w = pwrite(fd, p, n, at);
        if (w <= 0) return -1;
        p += w, n -= (size_t)w, at += w;
    }
    return 0;
}

static int read_all(int fd, void *buf, size_t n, off_t at) {
    char *p = buf;
    while (n) {
        ssize_t r = pread(fd, p, n, at);
        if (r <= 0) return -1;
        p += r, n -= (size_t)r, at += r;
    }
    return 0;
}

/* Open OUTDIR/<slide>.partial, keep the whole batches a matching one holds (read into
 * features), start it afresh otherwise. Returns the fd and sets *rows_done, or -1. */
static int partial_open(const char *path, const char *fp, size_t fp_len, const int64_t *coords, int64_t n, int dim,
                        int batch, float *features, int64_t *rows_done, off_t *data_at) {
    size_t prefix = fp_len + sizeof(int64_t) + (size_t)n * 2 * sizeof(int64_t);
    size_t row = (size_t)dim * sizeof(float);
    char *want = malloc(prefix), *have = malloc(prefix);
    int fd = open(path, O_RDWR | O_CREAT, 0666);
    *rows_done = 0;
    *data_at = (off_t)prefix;
    if (!want || !have || fd < 0) goto fail;
    memcpy(want, fp, fp_len);
    memcpy(want + fp_len, &n, sizeof n);
    memcpy(want + fp_len + sizeof n, coords, (size_t)n * 2 * sizeof(int64_t));
    struct stat st;
    if (fstat(fd, &st) != 0) goto fail;
    if ((size_t)st.st_size >= prefix && read_all(fd, have, prefix, 0) == 0 && !memcmp(want, have, prefix)) {
        int64_t rows = (int64_t)(((size_t)st.st_size - prefix) / row);
        if (rows > n) rows = n;
        if (rows < n) rows -= rows % batch; /* only whole batches count */
        if (rows > 0 && read_all(fd, features, (size_t)rows * row, (off_t)prefix) != 0) rows = 0;
        *rows_done = rows;
    } else if (ftruncate(fd, 0) != 0 || write_all(fd, want, prefix, 0) != 0) {
        goto fail;
    }
    if (ftruncate(fd, (off_t)(prefix + (size_t)*rows_done * row)) != 0) goto fail;
    free(want), free(have);
    return fd;
fail:
    free(want), free(have);
    if (fd >= 0) close(fd);
    return -1;
}

/* ---- one slide ---------------------------------------------------------------------------- */

static void progress(const char *stem, int64_t done, int64_t n, double t0, int64_t done0) {
    double dt = now() - t0, rate = dt > 0 ? (double)(done - done0) / dt : 0;
    int width = 30, fill = n ? (int)(width * done / n) : width;
    double left = rate > 0 ? (double)(n - done) / rate : 0;
    fprintf(stderr, "\r%s [", stem);
    for (int i = 0; i < width; i++) fputc(i < fill ? '#' : '.', stderr);
    fprintf(stderr, "] %lld/%lld tiles %.1f tiles/s ETA %dm%02ds ", (long long)done, (long long)n, rate,
            (int)left / 60, (int)left % 60);
    fflush(stderr);
}

/* Embed one slide. outdir NULL: only into *res. Returns 0 (res filled; res->skipped when the
 * output was already there), or -1 after a message on stderr. */
static int run_slide(const slide_opts *o, bmc_ctx *ctx, const char *path, const char *outdir, slide_result *res) {
    const bmc_model *model = bmc_ctx_model(ctx);
    memset(res, 0, sizeof *res);
    res->dim = bmc_model_embed_dim(model);
    int rc = -1, part_fd = -1, tty = isatty(STDERR_FILENO);
    char *stem = slide_stem(path), *final = NULL, *part = NULL, *maskp = NULL, *fp = NULL;
    bmc_slide *slide = NULL;
    bmc_image mask;
    memset(&mask, 0, sizeof mask);
    reader r;
    memset(&r, 0, sizeof r);
    cli_prefetch pf;
    memset(&pf, 0, sizeof pf);
    char err[1024];
    if (!stem) goto oom;
    if (outdir) {
        final = join(outdir, stem, o->npy ? "" : ".h5");
        part = join(outdir, stem, ".partial");
        maskp = join(outdir, stem, "_mask.png");
        if (!final || !part || !maskp) goto oom;
        if (exists(final)) {
            res->skipped = 1;
            rc = 0;
            goto done;
        }
    }
    if (bmc_slide_open(path, &slide) != BMC_OK) {
        fprintf(stderr, "biomedclip %s: %s\n", o->cmd, bmc_last_error());
        goto done;
    }
    bmc_slide_tiling t;
    memset(&t, 0, sizeof t);
    t.tile_px = o->tile_px, t.mpp = o->mpp, t.overlap = o->overlap, t.slide_mpp = o->slide_mpp;
    if (bmc_slide_tiling_init(slide, &t) != BMC_OK) {
        fprintf(stderr, "biomedclip %s: %s: %s\n", o->cmd, path, bmc_last_error());
        goto done;
    }
    res->size0 = t.size0;
    double dsx = 0, dsy = 0;
    int used_threshold = -1;
    if (!o->all_tiles) {
        if (bmc_slide_tissue_mask(slide, o->threshold, &mask, NULL, &dsx, &dsy, &used_threshold) != BMC_OK) {
            fprintf(stderr, "biomedclip %s: %s: %s\n", o->cmd, path, bmc_last_error());
            goto done;
        }
        if (maskp && slide_write_png(maskp, mask.pixels, mask.width, mask.height, 1, err, sizeof err) != 0) {
            fprintf(stderr, "biomedclip %s: %s\n", o->cmd, err);
            goto done;
        }
    }
    int64_t n = 0;
    const bmc_image *m = o->all_tiles ? NULL : &mask;
    if (bmc_slide_tile_coords(&t, m, dsx, dsy, o->min_tissue, NULL, 0, &n) != BMC_OK) goto lib_error;
    res->coords = malloc((size_t)n * 2 * sizeof *res->coords + 1);
    res->features = malloc((size_t)n * res->dim * sizeof *res->features + 1);
    if (!res->coords || !res->features) goto oom;
    if (bmc_slide_tile_coords(&t, m, dsx, dsy, o->min_tissue, res->coords, n, &n) != BMC_OK) goto lib_error;
    res->n = n;
    if (n == 0)
        fprintf(stderr, "biomedclip %s: warning: %s: no tissue found (no tile has %g%% tissue); empty result\n",
                o->cmd, path, 100 * o->min_tissue);

    /* resume */
    int64_t done_rows = 0;
    off_t data_at = 0;
    size_t row = (size_t)res->dim * sizeof(float);
    if (outdir) {
        size_t fp_len = 0;
        if (!(fp = fingerprint(o, path, model, &t, used_threshold, &fp_len))) goto oom;
        part_fd = partial_open(part, fp, fp_len, res->coords, n, res->dim, o->batch, res->features, &done_rows,
                               &data_at);
        if (part_fd < 0) {
            fprintf(stderr, "biomedclip %s: %s: cannot write: %s\n", o->cmd, part, strerror(errno));
            goto done;
        }
    }

    /* the pipeline */
    int side = bmc_model_image_size(model);
    r.slide = slide, r.t = &t, r.model = model, r.coords = res->coords, r.n = n, r.batch = o->batch;
    int64_t first_batch = done_rows / o->batch, n_batches = (n + o->batch - 1) / o->batch;
    r.in = 3 * (size_t)side * side;
    r.chw[0] = malloc((size_t)o->batch * r.in * sizeof(float));
    r.chw[1] = malloc((size_t)o->batch * r.in * sizeof(float));
    r.rgb = malloc((size_t)t.tile_px * t.tile_px * 3);
    if (!r.chw[0] || !r.chw[1] || !r.rgb) goto oom;
    if (cli_prefetch_start(&pf, first_batch, n_batches, read_batch, &r) != 0) {
        fprintf(stderr, "biomedclip %s: cannot start the reader thread\n", o->cmd);
        goto done;
    }
    double t0 = now(), cpu0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), model_s = 0, wait_s = 0;
    int failed = 0;
    for (int64_t b = first_batch; b < n_batches; b++) {
        int s = (int)(b & 1);
        double w0 = now();
        int state = cli_prefetch_wait(&pf, b);
        wait_s += now() - w0;
        if (state != 0) {
            fprintf(stderr, "%sbiomedclip %s: %s: %s\n", tty ? "\n" : "", o->cmd, path, r.err);
            failed = 1;
            break;
        }
        int64_t first = b * o->batch;
        int count = (int)(n - first < o->batch ? n - first : o->batch);
        double m0 = now();
        bmc_status st = bmc_encode_pixels(ctx, r.chw[s], count, res->features + (size_t)first * res->dim, 1);
        model_s += now() - m0;
        if (st != BMC_OK) {
            fprintf(stderr, "%sbiomedclip %s: %s: %s\n", tty ? "\n" : "", o->cmd, path, bmc_last_error());
            failed = 1;
            break;
        }
        cli_prefetch_release(&pf, b);
        if (part_fd >= 0 && write_all(part_fd, res->features + (size_t)first * res->dim, (size_t)count * row,
                                      data_at + (off_t)((size_t)first * row)) != 0) {
            fprintf(stderr, "biomedclip %s: %s: cannot write: %s\n", o->cmd, part, strerror(errno));
            failed = 1;
            break;
        }
        if (tty) progress(stem, first + count, n, t0, done_rows);
    }
    if (tty && first_batch < n_batches) fputc('\n', stderr);
    cli_prefetch_stop(&pf);
    if (failed) goto done;
    double total = now() - t0, cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    if (o->stats && n > done_rows) {
        /* CPU time per tile says what the tiles cost when other programs share the cores */
        double k = (double)(n - done_rows);
        fprintf(stderr, "%s: %lld tiles in %.2f s: %.2f tiles/s, model %.1f%% of the time, waiting for tiles %.1f%%; "
                "CPU per tile: reader %.1f ms, all threads %.1f ms\n", stem, (long long)(n - done_rows), total,
                k / total, 100 * model_s / total, 100 * wait_s / total, 1e3 * pf.cpu_s / k, 1e3 * cpu / k);
    }

    if (outdir) {
        int64_t w0 = 0, h0 = 0;
        bmc_slide_level_size(slide, 0, &w0, &h0);
        slide_meta meta = {stem, t.tile_px, t.size0, t.overlap, t.level, t.mpp, t.level0_mpp, w0, h0};
        int wrc = o->npy ? slide_write_npy(final, res->features, res->coords, n, res->dim, err, sizeof err)
                         : slide_write_h5(final, &meta, res->features, res->coords, n, res->dim, err, sizeof err);
        if (wrc != 0) {
            fprintf(stderr, "biomedclip %s: %s\n", o->cmd, err);
            goto done;
        }
        close(part_fd);
        part_fd = -1;
        unlink(part);
    }
    rc = 0;
    goto done;

lib_error:
    fprintf(stderr, "biomedclip %s: %s: %s\n", o->cmd, path, bmc_last_error());
    goto done;
oom:
    fprintf(stderr, "biomedclip %s: out of memory\n", o->cmd);
done:
    if (part_fd >= 0) close(part_fd);
    cli_prefetch_stop(&pf);
    free(r.chw[0]), free(r.chw[1]), free(r.rgb);
    bmc_image_free(&mask);
    bmc_slide_close(slide);
    free(stem), free(final), free(part), free(maskp), free(fp);
    if (rc != 0) {
        free(res->features), free(res->coords);
        res->features = NULL, res->coords = NULL;
    }
    return rc;
}

/* ---- embed-slide -------------------------------------------------------------------------- */

#define TILING_HELP                                                                                \
    "  -m, --model MODEL        .bmc model file (default: $BIOMEDCLIP_MODEL)\n"                    \
    "  --tile-px N              tile side in pixels (default 224)\n"                               \
    "  --mpp X                  tile resolution in microns per pixel (default 0.5, \"20x\")\n"      \
    "  --overlap N              pixels shared by neighbouring tiles (default 0)\n"                 \
    "  --slide-mpp X            microns per level-0 pixel, for slides that do not say it\n"        \
    "                           (overrides the slide's own value)\n"                              \
    "  --tissue-threshold T     saturation threshold 0..255 (default: Otsu's)\n"                   \
    "  --min-tissue F           keep a tile with at least this fraction of tissue (default 0.5)\n" \
    "  --all-tiles              no tissue detection: every tile of the grid\n"                     \
    "  --threads N              threads of the model (default: OpenBLAS's thread count)\n"         \
    "  --batch N                tiles encoded together (default 8)\n"                              \
    "  --stats                  print tiles/s and the model's share of the time on stderr\n"

static const char embed_usage[] =
    "usage: biomedclip embed-slide [options] SLIDE... -o OUTDIR\n"
    "\n"
    "Cut each whole-slide image (OpenSlide: SVS, NDPI, MRXS, SCN, generic tiled TIFF, ...)\n"
    "into tiles, keep the tissue tiles and embed them. Per slide, OUTDIR/<slide>.h5 holds\n"
    "`features` [N, 512] float32 (L2-normalised) and `coords` [N, 2] int64 (level-0 top-left\n"
    "of each tile) with TRIDENT's attributes; OUTDIR/<slide>_mask.png is the tissue mask.\n"
    "A slide whose output exists is skipped; an interrupted run resumes (docs/SLIDES.md).\n"
    "\n"
    "  -o, --output OUTDIR      output directory (created if missing)\n"
    "  --format h5|npy          h5 (default), or OUTDIR/<slide>/features.npy + coords.npy\n" TILING_HELP
    "\n"
    "Exit status: 0 every slide embedded (or skipped), 1 some slide failed, 2 bad command line,\n"
    "3 model not loadable.\n";

int cli_embed_slide(int argc, char **argv) {
    slide_opts o;
    opts_default(&o, "embed-slide");
    cli_list args;
    int rc = CLI_EXIT_USAGE;
    bmc_model *model = NULL;
    bmc_ctx *ctx = NULL;
    if (cli_list_init(&args, argc)) {
        fprintf(stderr, "biomedclip embed-slide: out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    cli_option opts[N_TILING_OPTS + 3];
    tiling_opts(&o, opts);
    opts[N_TILING_OPTS - 1] = (cli_option){"--output", "-o", CLI_STRING, &o.outdir, 0, NULL, NULL};
    opts[N_TILING_OPTS] = (cli_option){"--format", NULL, CLI_CHOICE, &o.npy, 0, "h5|npy", NULL};
    opts[N_TILING_OPTS + 1] = (cli_option)CLI_ARGS(&args);
    opts[N_TILING_OPTS + 2] = (cli_option){0};
    if ((rc = cli_parse("embed-slide", embed_usage, opts, argc, argv)) != CLI_GO_ON) goto done;
    rc = CLI_EXIT_USAGE;
    const char **slides = args.v;
    int n_slides = args.n;
    if (!n_slides || !o.outdir) {
        fprintf(stderr, "biomedclip embed-slide: %s (see --help)\n", n_slides ? "no -o OUTDIR" : "no slides");
        goto done;
    }
    if (o.overlap >= o.tile_px) {
        fprintf(stderr, "biomedclip embed-slide: --overlap must be smaller than --tile-px\n");
        goto done;
    }
    if (!o.npy && !slide_have_h5()) {
        fprintf(stderr, "biomedclip embed-slide: built without HDF5: use --format npy\n");
        goto done;
    }
    for (int a = 0; a < n_slides; a++) /* two slides of one name would write one file */
        for (int b = 0; b < a; b++) {
            char *sa = slide_stem(slides[a]), *sb = slide_stem(slides[b]);
            int same = sa && sb && !strcmp(sa, sb);
            free(sa), free(sb);
            if (same) {
                fprintf(stderr, "biomedclip embed-slide: %s and %s would both write %s/%s\n", slides[b], slides[a],
                        o.outdir, "<same name>");
                goto done;
            }
        }
    if (mkdir(o.outdir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "biomedclip embed-slide: %s: cannot create: %s\n", o.outdir, strerror(errno));
        rc = CLI_EXIT_FAILURE;
        goto done;
    }
    rc = CLI_EXIT_MODEL;
    o.model_path = cli_model_path(o.model_path);
    if (!(model = cli_load_model(o.model_path))) goto done;
    rc = CLI_EXIT_FAILURE;
    if (cli_new_ctx("embed-slide", model, o.threads, o.batch, &ctx)) goto done;
    int failed = 0;
    for (int s = 0; s < n_slides; s++) {
        slide_result res;
        if (run_slide(&o, ctx, slides[s], o.outdir, &res) != 0) {
            failed++;
            continue;
        }
        if (res.skipped) fprintf(stderr, "biomedclip embed-slide: %s: already done, skipped\n", slides[s]);
        free(res.features), free(res.coords);
    }
    rc = failed ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
done:
    bmc_ctx_free(ctx);
    bmc_model_free(model);
    cli_list_free(&args);
    return rc;
}

/* ---- classify-slide ----------------------------------------------------------------------- */

static const char classify_usage[] =
    "usage: biomedclip classify-slide [options] SLIDE --labels \"a,b,c\"\n"
    "\n"
    "MI-Zero slide-level zero-shot classification: each tissue tile's cosine similarity to\n"
    "each label (TEMPLATE + label), pooled per label over the tiles (mean of the top K), then\n"
    "softmax over labels of exp(logit_scale) * pooled score.\n"
    "\n"
    "  --labels LIST            comma-separated labels (may be repeated)\n"
    "  --template TEXT          prefix of every label (default \"" DEFAULT_TEMPLATE "\")\n"
    "  --topk K                 tiles pooled per label (default 50; fewer tiles: all of them)\n"
    "  --pool topk|mean         top-K mean (default) or the mean over all tiles\n"
    "  --features OUTDIR        reuse embed-slide's OUTDIR/<slide>.h5 (or OUTDIR/<slide>/*.npy);\n"
    "                           when absent, the slide is embedded and OUTDIR/<slide>.h5 written\n"
    "  --heatmap OUT.png        the thumbnail with each tile coloured by its probability\n"
    "  --heatmap-label LABEL    colour by this label's probability (default: the argmax label,\n"
    "                           one colour per label, with a legend)\n"
    "  --json                   one JSON object {\"file\", \"labels\", \"probs\", \"tiles\",\n"
    "                           \"top_tiles\": {label: [[x, y, score], ...]}}\n" TILING_HELP
    "\n"
    "Exit status: 0 classified, 1 the slide failed, 2 bad command line, 3 model not loadable.\n";

static int opt_labels(void *dest, const char *v) {
    if (cli_labels_split(dest, v) == 0) return CLI_GO_ON;
    fprintf(stderr, "biomedclip classify-slide: out of memory\n");
    return CLI_EXIT_FAILURE;
}

/* Blue -> cyan -> green -> yellow -> red for v in [0, 1]. */
static void colormap(double v, unsigned char *rgb) {
    static const unsigned char stops[5][3] = {{0, 0, 255}, {0, 255, 255}, {0, 255, 0}, {255, 255, 0}, {255, 0, 0}};
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    double x = v * 4;
    int i = (int)x < 4 ? (int)x : 3;
    double f = x - i;
    for (int c = 0; c < 3; c++) rgb[c] = (unsigned char)lrint(stops[i][c] + f * (stops[i + 1][c] - stops[i][c]));
}

static const unsigned char label_colors[10][3] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},
                                                  {148, 103, 189}, {140, 86, 75},  {227, 119, 194}, {127, 127, 127},
                                                  {188, 189, 34},  {23, 190, 207}};

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#endif
#include <stb/stb_easy_font.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

/* Black text at (x, y), `scale` pixels per font unit: stb_easy_font's quads are axis-aligned
 * rectangles, filled here. */
static void font_text(unsigned char *img, int W, int H, int x, int y, const char *s, int scale) {
    size_t cap = 270 * (strlen(s) + 1); /* stb_easy_font: ~270 bytes of quads per character */
    float *q = malloc(cap);
    if (!q) return;
    int quads = stb_easy_font_print(0, 0, (char *)s, NULL, q, (int)cap);
    for (int i = 0; i < quads; i++) {
        const float *v = q + 16 * i; /* 4 vertices of x, y, z, colour */
        float x0 = v[0], y0 = v[1], x1 = v[0], y1 = v[1];
        for (int k = 1; k < 4; k++) {
            x0 = fminf(x0, v[4 * k]), x1 = fmaxf(x1, v[4 * k]);
            y0 = fminf(y0, v[4 * k + 1]), y1 = fmaxf(y1, v[4 * k + 1]);
        }
        for (int yy = y + (int)(y0 * scale); yy < y + (int)(y1 * scale); yy++)
            for (int xx = x + (int)(x0 * scale); xx < x + (int)(x1 * scale); xx++)
                if (xx >= 0 && yy >= 0 && xx < W && yy < H) memset(img + 3 * ((size_t)yy * W + xx), 0, 3);
    }
    free(q);
}

/* The heatmap: the thumbnail, each tile blended half-and-half with its colour, a legend strip
 * below (the labels and their colours, or a colour bar). */
static int write_heatmap(const char *out, const char *slide_path, const slide_result *res, const double *tile_probs,
                         const cli_paths *labels, int label, char *err, size_t err_size) {
    bmc_slide *slide = NULL;
    bmc_image mask, thumb;
    double dsx, dsy;
    if (bmc_slide_open(slide_path, &slide) != BMC_OK ||
        bmc_slide_tissue_mask(slide, -1, &mask, &thumb, &dsx, &dsy, NULL) != BMC_OK) {
        snprintf(err, err_size, "%s", bmc_last_error());
        bmc_slide_close(slide);
        return -1;
    }
    bmc_image_free(&mask);
    bmc_slide_close(slide);
    int w = thumb.width, th = thumb.height, L = labels->n;
    int legend_rows = label >= 0 ? 2 : L, row_h = 18, lh = legend_rows * row_h + 8;
    int W = w < 260 ? 260 : w, H = th + lh;
    unsigned char *img = malloc((size_t)W * H * 3);
    double *acc = calloc((size_t)w * th * 4, sizeof *acc); /* per pixel: r, g, b, weight */
    if (!img || !acc) {
        free(img), free(acc);
        bmc_image_free(&thumb);
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    memset(img, 255, (size_t)W * H * 3);
    for (int64_t i = 0; i < res->n; i++) {
        unsigned char c[3];
        if (label >= 0) {
            colormap(tile_probs[i * L + label], c);
        } else {
            int best = 0;
            for (int j = 1; j < L; j++)
                if (tile_probs[i * L + j] > tile_probs[i * L + best]) best = j;
            memcpy(c, label_colors[best % 10], 3);
        }
        int x0 = (int)floor(res->coords[2 * i] / dsx), y0 = (int)floor(res->coords[2 * i + 1] / dsy);
        int x1 = (int)ceil((res->coords[2 * i] + res->size0) / dsx), y1 = (int)ceil((res->coords[2 * i + 1] + res->size0) / dsy);
        for (int y = y0 < 0 ? 0 : y0; y < (y1 > th ? th : y1); y++)
            for (int x = x0 < 0 ? 0 : x0; x < (x1 > w ? w : x1); x++) {
                double *a = acc + 4 * ((size_t)y * w + x);
                a[0] += c[0], a[1] += c[1], a[2] += c[2], a[3] += 1;
            }
    }
    for (int y = 0; y < th; y++)
        for (int x = 0; x < w; x++) {
            const unsigned char *p = thumb.pixels + (size_t)y * thumb.stride + 3 * x;
            const double *a = acc + 4 * ((size_t)y * w + x);
            unsigned char *q = img + 3 * ((size_t)y * W + x);
            for (int c = 0; c < 3; c++) q[c] = a[3] > 0 ? (unsigned char)lrint(0.5 * p[c] + 0.5 * a[c] / a[3]) : p[c];
        }
    if (label >= 0) {
        for (int x = 0; x < 200; x++) {
            unsigned char c[3];
            colormap(x / 199.0, c);
            for (int y = th + 4; y < th + 4 + row_h - 4; y++) memcpy(img + 3 * ((size_t)y * W + 4 + x), c, 3);
        }
        font_text(img, W, H, 4, th + 4 + row_h + 2, "0", 2);
        font_text(img, W, H, 200 - 8, th + 4 + row_h + 2, "1", 2);
        font_text(img, W, H, 40, th + 4 + row_h + 2, labels->v[label], 2);
    } else {
        for (int j = 0; j < L; j++) {
            int y0 = th + 4 + j * row_h;
            for (int y = y0; y < y0 + row_h - 4; y++)
                for (int x = 4; x < 4 + row_h - 4; x++) memcpy(img + 3 * ((size_t)y * W + x), label_colors[j % 10], 3);
            font_text(img, W, H, 4 + row_h + 2, y0 + 1, labels->v[j], 2);
        }
    }
    int rc = slide_write_png(out, img, W, H, 3, err, err_size);
    free(img), free(acc);
    bmc_image_free(&thumb);
    return rc;
}

static int cmp_desc(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

int cli_classify_slide(int argc, char **argv) {
    slide_opts o;
    opts_default(&o, "classify-slide");
    const char *slide_path = NULL, *template = DEFAULT_TEMPLATE, *features_dir = NULL, *heatmap = NULL;
    const char *heat_label = NULL;
    int topk = 50, pool_mean = 0, json = 0, rc = CLI_EXIT_USAGE, heat_j = -1, args_init = 0;
    cli_paths labels = {0};
    bmc_model *model = NULL;
    bmc_ctx *ctx = NULL;
    slide_result res;
    memset(&res, 0, sizeof res);
    float *text = NULL;
    double *sims = NULL, *tile_probs = NULL, *col = NULL, *pooled = NULL, *probs = NULL;
    float *simf = NULL;
    char **texts = NULL;
    cli_list args;
    if (cli_list_init(&args, argc)) goto oom;
    args_init = 1;
    cli_option opts[N_TILING_OPTS + 10];
    tiling_opts(&o, opts);
    int nopt = N_TILING_OPTS - 1;
    opts[nopt++] = (cli_option){"--labels", NULL, CLI_CALL, &labels, 0, NULL, opt_labels};
    opts[nopt++] = (cli_option){"--template", NULL, CLI_STRING, &template, 0, NULL, NULL};
    opts[nopt++] = (cli_option){"--topk", NULL, CLI_INT, &topk, 0, NULL, NULL};
    opts[nopt++] = (cli_option){"--pool", NULL, CLI_CHOICE, &pool_mean, 0, "topk|mean", NULL};
    opts[nopt++] = (cli_option){"--features", NULL, CLI_STRING, &features_dir, 0, NULL, NULL};
    opts[nopt++] = (cli_option){"--heatmap", NULL, CLI_STRING, &heatmap, 0, NULL, NULL};
    opts[nopt++] = (cli_option){"--heatmap-label", NULL, CLI_STRING, &heat_label, 0, NULL, NULL};
    opts[nopt++] = (cli_option)CLI_OPT_JSON(&json);
    opts[nopt++] = (cli_option)CLI_ARGS(&args);
    opts[nopt++] = (cli_option){0};
    if ((rc = cli_parse("classify-slide", classify_usage, opts, argc, argv)) != CLI_GO_ON) goto done;
    rc = CLI_EXIT_USAGE;
    if (args.n > 1) {
        fprintf(stderr, "biomedclip classify-slide: one slide at a time ('%s' and '%s')\n", args.v[0], args.v[1]);
        goto done;
    }
    slide_path = args.n ? args.v[0] : NULL;
    if ((features_dir && !*features_dir) || (heatmap && !*heatmap)) {
        fprintf(stderr, "biomedclip classify-slide: --features and --heatmap need a name\n");
        goto done;
    }
    if (!slide_path || labels.n == 0) {
        fprintf(stderr, "biomedclip classify-slide: %s (see --help)\n", slide_path ? "no --labels" : "no slide");
        goto done;
    }
    if (o.overlap >= o.tile_px) {
        fprintf(stderr, "biomedclip classify-slide: --overlap must be smaller than --tile-px\n");
        goto done;
    }
    if (heat_label) {
        for (int j = 0; j < labels.n; j++)
            if (!strcmp(labels.v[j], heat_label)) heat_j = j;
        if (heat_j < 0) {
            fprintf(stderr, "biomedclip classify-slide: --heatmap-label '%s' is not one of the labels\n", heat_label);
            goto done;
        }
    }
    rc = CLI_EXIT_MODEL;
    o.model_path = cli_model_path(o.model_path);
    if (!(model = cli_load_model(o.model_path))) goto done;
    rc = CLI_EXIT_FAILURE;
    if (cli_new_ctx("classify-slide", model, o.threads, o.batch, &ctx)) goto done;
    int dim = bmc_model_embed_dim(model);

    /* the tile embeddings: an embed-slide output (.h5, or the .npy pair), or embedded now */
    char *h5 = NULL, *npy = NULL, *stem = slide_stem(slide_path);
    if (features_dir && stem) h5 = join(features_dir, stem, ".h5"), npy = join(features_dir, stem, "");
    free(stem);
    if (features_dir && (!h5 || !npy)) {
        free(h5), free(npy);
        goto oom;
    }
    int have_npy = npy && !(h5 && exists(h5)) && exists(npy);
    if (have_npy) { /* read it as the h5 path below does */
        free(h5);
        h5 = npy;
        npy = NULL;
    }
    free(npy);
    if (h5 && exists(h5)) {
        char err[1024];
        int fdim;
        int rrc = have_npy ? slide_read_npy(h5, &res.features, &res.coords, &res.n, &fdim, err, sizeof err)
                           : slide_read_h5(h5, &res.features, &res.coords, &res.n, &fdim, &res.size0, err, sizeof err);
        if (rrc != 0) {
            fprintf(stderr, "biomedclip classify-slide: %s\n", err);
            free(h5);
            goto done;
        }
        if (fdim != dim) {
            fprintf(stderr, "biomedclip classify-slide: %s: features of %d values, the model's have %d\n", h5, fdim,
                    dim);
            free(h5);
            goto done;
        }
        res.dim = dim;
        if (res.size0 <= 0) { /* not ours: the tile size from the options */
            bmc_slide *s = NULL;
            bmc_slide_tiling t = {o.tile_px, o.mpp, o.overlap, o.slide_mpp, 0, 0, 0, 0, 0, 0, 0};
            if (bmc_slide_open(slide_path, &s) == BMC_OK && bmc_slide_tiling_init(s, &t) == BMC_OK) res.size0 = t.size0;
            bmc_slide_close(s);
        }
    } else {
        if (features_dir && mkdir(features_dir, 0777) != 0 && errno != EEXIST) {
            fprintf(stderr, "biomedclip classify-slide: %s: cannot create: %s\n", features_dir, strerror(errno));
            free(h5);
            goto done;
        }
        if (run_slide(&o, ctx, slide_path, features_dir, &res) != 0) {
            free(h5);
            goto done;
        }
    }
    free(h5);

    /* MI-Zero pooling */
    int L = labels.n;
    int64_t n = res.n;
    texts = cli_prompts(template, &labels);
    text = malloc((size_t)L * dim * sizeof *text);
    simf = malloc(((size_t)n * L + 1) * sizeof *simf);
    sims = malloc(((size_t)n * L + 1) * sizeof *sims);
    tile_probs = malloc(((size_t)n * L + 1) * sizeof *tile_probs);
    col = malloc(((size_t)n + 1) * sizeof *col);
    if (!texts || !text || !simf || !sims || !tile_probs || !col) goto oom;
    if (bmc_encode_text(ctx, (const char *const *)texts, L, text, 1) != BMC_OK ||
        (n > 0 && bmc_similarity(res.features, (int)n, text, L, dim, simf) != BMC_OK)) {
        fprintf(stderr, "biomedclip classify-slide: %s\n", bmc_last_error());
        goto done;
    }
    for (size_t i = 0; i < (size_t)n * L; i++) sims[i] = simf[i];
    double scale = bmc_model_logit_scale(model);
    int k = pool_mean ? (int)n : (topk < n ? topk : (int)n);
    if (!(pooled = malloc((size_t)L * sizeof *pooled)) || !(probs = malloc((size_t)L * sizeof *probs))) goto oom;
    for (int j = 0; j < L; j++) {
        for (int64_t i = 0; i < n; i++) col[i] = sims[i * L + j];
        qsort(col, (size_t)n, sizeof *col, cmp_desc);
        double s = 0;
        for (int i = 0; i < k; i++) s += col[i];
        pooled[j] = k ? s / k : 0;
    }
    double mx = -INFINITY, z = 0;
    for (int j = 0; j < L; j++) mx = fmax(mx, scale * pooled[j]);
    for (int j = 0; j < L; j++) z += (probs[j] = exp(scale * pooled[j] - mx));
    for (int j = 0; j < L; j++) probs[j] /= z;
    for (int64_t i = 0; i < n; i++) { /* per tile, for the heatmap */
        double m = -INFINITY, zz = 0;
        for (int j = 0; j < L; j++) m = fmax(m, scale * sims[i * L + j]);
        for (int j = 0; j < L; j++) zz += (tile_probs[i * L + j] = exp(scale * sims[i * L + j] - m));
        for (int j = 0; j < L; j++) tile_probs[i * L + j] /= zz;
    }

    /* output */
    int shown = topk < n ? topk : (int)n;
    if (json) {
        fputs("{\"file\": ", stdout);
        cli_json_string(stdout, slide_path);
        fputs(", \"labels\": [", stdout);
        for (int j = 0; j < L; j++) {
            if (j) fputs(", ", stdout);
            cli_json_string(stdout, labels.v[j]);
        }
        fputs("], \"probs\": ", stdout);
        if (n == 0) fputs("null", stdout);
        else
            for (int j = 0; j < L; j++) printf(j ? ", %.9g" : "[%.9g", probs[j]);
        printf("%s, \"tiles\": %lld, \"top_tiles\": {", n ? "]" : "", (long long)n);
    }
    int64_t *order = malloc(((size_t)n + 1) * sizeof *order);
    if (!order) {
        fprintf(stderr, "biomedclip classify-slide: out of memory\n");
        goto done;
    }
    if (!json && n > 0) {
        printf("%s\t%lld tiles\n", slide_path, (long long)n);
        for (int j = 0; j < L; j++) printf("  %-30s %.4f\n", labels.v[j], probs[j]);
    }
    for (int j = 0; j < L; j++) {
        /* the top tiles of label j, by score, ties by tile order */
        for (int64_t i = 0; i < n; i++) order[i] = i;
        for (int64_t a = 0; a < shown; a++) { /* partial selection sort: K is small */
            int64_t best = a;
            for (int64_t b = a + 1; b < n; b++)
                if (sims[order[b] * L + j] > sims[order[best] * L + j]) best = b;
            int64_t tmp = order[a];
            order[a] = order[best], order[best] = tmp;
        }
        if (json) {
            if (j) fputs(", ", stdout);
            cli_json_string(stdout, labels.v[j]);
            fputs(": [", stdout);
            for (int a = 0; a < shown; a++)
                printf("%s[%lld, %lld, %.9g]", a ? ", " : "", (long long)res.coords[2 * order[a]],
                       (long long)res.coords[2 * order[a] + 1], sims[order[a] * L + j]);
            fputs("]", stdout);
        }
    }
    free(order);
    if (json) fputs("}}\n", stdout);
    if (n == 0) {
        fprintf(stderr, "biomedclip classify-slide: warning: %s: no tissue tiles, no probabilities\n", slide_path);
        if (!json) printf("%s\t0 tiles\n", slide_path);
    }
    fflush(stdout);
    if (heatmap) {
        char err[1024];
        if (write_heatmap(heatmap, slide_path, &res, tile_probs, &labels, heat_j, err, sizeof err) != 0) {
            fprintf(stderr, "biomedclip classify-slide: %s\n", err);
            goto done;
        }
    }
    rc = CLI_EXIT_OK;
    goto done;
oom:
    fprintf(stderr, "biomedclip classify-slide: out of memory\n");
    rc = CLI_EXIT_FAILURE;
done:
    cli_prompts_free(texts, labels.n);
    cli_paths_free(&labels);
    free(text), free(simf), free(sims), free(tile_probs), free(col), free(pooled), free(probs);
    free(res.features), free(res.coords);
    if (args_init) cli_list_free(&args);
    bmc_ctx_free(ctx);
    bmc_model_free(model);
    return rc;
}
