/* index_store.c - read and append the image index (format in index_store.h and docs/CLI.md).
 * Our .npy header is always 128 bytes, so its row count can be rewritten in place after rows
 * were appended behind it; any NumPy-written v1/v2/v3 '<f4' (N, D) file is read as well. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "index_store.h"

#define NPY_HEADER_BYTES 128

static int host_is_little_endian(void) {
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

int idx_npy_header(char *h, long n, int dim) {
    memset(h, ' ', NPY_HEADER_BYTES);
    memcpy(h, "\x93NUMPY\x01\x00", 8);
    h[8] = (char)((NPY_HEADER_BYTES - 10) & 0xff);
    h[9] = (char)((NPY_HEADER_BYTES - 10) >> 8);
    int len = snprintf(h + 10, NPY_HEADER_BYTES - 10,
                       "{'descr': '<f4', 'fortran_order': False, 'shape': (%ld, %d), }", n, dim);
    if (len < 0 || len >= NPY_HEADER_BYTES - 11) return -1;
    h[10 + len] = ' '; /* snprintf's NUL */
    h[NPY_HEADER_BYTES - 1] = '\n';
    return 0;
}

static int npy_write_header(FILE *f, long n, int dim) {
    char h[NPY_HEADER_BYTES];
    if (idx_npy_header(h, n, dim) || fseek(f, 0, SEEK_SET) || fwrite(h, 1, sizeof h, f) != sizeof h ||
        fflush(f))
        return -1;
    return 0;
}

/* Parse an .npy header: on success *n, *dim and *data_offset are set. Returns an error text or NULL. */
static const char *npy_read_header(FILE *f, long *n, int *dim, long *data_offset) {
    unsigned char pre[12];
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6)) return "not a .npy file";
    size_t hlen, start;
    if (pre[6] == 1) {
        hlen = pre[8] | (size_t)pre[9] << 8;
        start = 10;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (fread(pre + 10, 1, 2, f) != 2) return "truncated .npy header";
        hlen = pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
        start = 12;
    } else {
        return "unsupported .npy version";
    }
    if (hlen > 65536) return "oversized .npy header";
    char *h = malloc(hlen + 1);
    if (!h) return "out of memory";
    const char *err = NULL;
    if (fread(h, 1, hlen, f) != hlen) err = "truncated .npy header";
    h[hlen] = '\0';
    const char *d = err ? NULL : strstr(h, "'descr'"), *fo = strstr(h, "'fortran_order'"),
               *sh = strstr(h, "'shape'");
    long rows = -1, cols = -1;
    if (!err && (!d || !fo || !sh)) err = "malformed .npy header";
    if (!err) {
        d = strchr(d + 7, ':');
        while (d && (*++d == ' ')) {}
        if (!d || strncmp(d, "'<f4'", 5)) err = "embeddings are not little-endian float32 ('<f4')";
    }
    if (!err) {
        fo = strchr(fo + 15, ':');
        while (fo && (*++fo == ' ')) {}
        if (!fo || strncmp(fo, "False", 5)) err = "embeddings are in Fortran order";
    }
    if (!err) {
        sh = strchr(sh + 7, '(');
        if (!sh || sscanf(sh, "(%ld ,%ld )", &rows, &cols) != 2 || rows < 0 || cols <= 0 ||
            cols > 1 << 20)
            err = "embeddings are not a 2-D (N, D) array";
    }
    free(h);
    if (err) return err;
    *n = rows;
    *dim = (int)cols;
    *data_offset = (long)(start + hlen);
    return NULL;
}

static int push_path(idx_store *ix, const char *s, size_t len) {
    long count = ix->n + ix->pending;
    if (count == ix->paths_cap) {
        long cap = ix->paths_cap ? 2 * ix->paths_cap : 256;
        char **p = realloc(ix->paths, (size_t)cap * sizeof *p);
        if (!p) return -1;
        ix->paths = p, ix->paths_cap = cap;
    }
    char *c = malloc(len + 1);
    if (!c) return -1;
    memcpy(c, s, len);
    c[len] = '\0';
    ix->paths[count] = c;
    return 0;
}

/* Read the first ix->n lines of paths.txt into ix->paths; *end receives the byte offset after them. */
static int read_paths(idx_store *ix, const char *file, long *end) {
    FILE *f = fopen(file, "rb");
    if (!f) {
        fprintf(stderr, "biomedclip: %s: %s\n", file, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long got = 0, pos = 0, want = ix->n;
    ix->n = 0; /* push_path appends at n + pending */
    while (got < want && (len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] != '\n') break; /* an unterminated last line was never committed */
        pos += len;
        if (push_path(ix, line, (size_t)len - 1)) break;
        ix->n = ++got;
    }
    free(line);
    fclose(f);
    if (got < want) {
        fprintf(stderr, "biomedclip: %s: %ld paths for %ld embeddings: the index is damaged\n", file,
                got, want);
        return -1;
    }
    *end = pos;
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Read the complete lines of failed.tsv (path TAB reason) into ix->failed, sorted, and cut an
 * unterminated last line (a failure whose write was interrupted: it will be met again). */
static int read_failed(idx_store *ix, const char *file) {
    FILE *f = fopen(file, "rb");
    if (!f) return errno == ENOENT ? 0 : -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long pos = 0, cap_list = 0;
    int rc = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] != '\n') break;
        pos += len;
        char *tab = memchr(line, '\t', (size_t)len);
        size_t plen = tab ? (size_t)(tab - line) : (size_t)len - 1;
        if (ix->n_failed == cap_list) {
            cap_list = cap_list ? 2 * cap_list : 64;
            char **p = realloc(ix->failed, (size_t)cap_list * sizeof *p);
            if (!p) { rc = -1; break; }
            ix->failed = p;
        }
        if (!(ix->failed[ix->n_failed] = strndup(line, plen))) { rc = -1; break; }
        ix->n_failed++;
    }
    free(line);
    fclose(f);
    if (rc == 0 && truncate(file, pos)) rc = -1;
    if (rc == 0 && ix->n_failed) qsort(ix->failed, (size_t)ix->n_failed, sizeof *ix->failed, cmp_str);
    return rc;
}

static int build_sorted(idx_store *ix) {
    ix->n_sorted = ix->n;
    ix->sorted = malloc((size_t)(ix->n ? ix->n : 1) * sizeof *ix->sorted);
    if (!ix->sorted) return -1;
    if (ix->n == 0) return 0; /* paths may be NULL: no memcpy/qsort on it */
    memcpy(ix->sorted, ix->paths, (size_t)ix->n * sizeof *ix->sorted);
    qsort(ix->sorted, (size_t)ix->n, sizeof *ix->sorted, cmp_str);
    return 0;
}

int idx_contains(const idx_store *ix, const char *path) {
    return (ix->n_sorted &&
            bsearch(&path, ix->sorted, (size_t)ix->n_sorted, sizeof *ix->sorted, cmp_str) != NULL) ||
           (ix->n_failed &&
            bsearch(&path, ix->failed, (size_t)ix->n_failed, sizeof *ix->failed, cmp_str) != NULL);
}

int idx_write_meta(const char *dir, int dim, const char *model) {
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    if (!f) return -1;
    fprintf(f, "{\"format\": \"biomedclip-index\", \"version\": 1, \"dim\": %d, \"model\": ", dim);
    cli_json_string(f, model ? model : "");
    fputs("}\n", f);
    int rc = fclose(f) ? -1 : idx_write_atomic(dir, "index.json", text, size);
    free(text);
    return rc;
}

int idx_open_append(idx_store *ix, const char *dir, int dim, const char *model, int flags) {
    memset(ix, 0, sizeof *ix);
    if (!host_is_little_endian()) {
        fprintf(stderr, "biomedclip: the index format is little-endian; this host is not\n");
        return -1;
    }
    char *npy = NULL, *txt = NULL, *fail = NULL;
    int rc = -1;
    if (!(ix->dir = strdup(dir)) || !(npy = cli_join_path(dir, "embeddings.npy")) ||
        !(txt = cli_join_path(dir, "paths.txt")) || !(fail = cli_join_path(dir, "failed.tsv")))
        goto oom;
    struct stat st;
    if (mkdir(dir, 0777) && errno != EEXIST) {
        fprintf(stderr, "biomedclip: cannot create %s: %s\n", dir, strerror(errno));
        goto out;
    }
    if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "biomedclip: %s exists and is not an index directory\n", dir);
        goto out;
    }
    if (access(npy, F_OK) != 0) { /* a new index */
        ix->dim = dim;
        FILE *t = fopen(txt, "wb");
        if (!t || fclose(t) || !(ix->npy = fopen(npy, "w+b")) || flock(fileno(ix->npy), LOCK_EX | LOCK_NB) ||
            npy_write_header(ix->npy, 0, dim) ||
            idx_write_meta(dir, dim, model)) {
            fprintf(stderr, "biomedclip: cannot create the index in %s: %s\n", dir, strerror(errno));
            goto out;
        }
    } else {
        long data_offset, end;
        const char *err;
        if (!(ix->npy = fopen(npy, "r+b"))) {
            fprintf(stderr, "biomedclip: %s: %s\n", npy, strerror(errno));
            goto out;
        }
        /* before the cut-back below: another writer's uncommitted rows are not debris */
        if (flock(fileno(ix->npy), LOCK_EX | LOCK_NB) != 0) {
            fprintf(stderr, "biomedclip: %s is being written by another process\n", dir);
            goto out;
        }
        if ((err = npy_read_header(ix->npy, &ix->n, &ix->dim, &data_offset))) {
            fprintf(stderr, "biomedclip: %s: %s\n", npy, err);
            goto out;
        }
        if (data_offset != NPY_HEADER_BYTES) {
            fprintf(stderr, "biomedclip: %s was not written by biomedclip index (header of %ld bytes); "
                    "rebuild the index to append to it\n", npy, data_offset);
            goto out;
        }
        if (ix->dim != dim) {
            fprintf(stderr, "biomedclip: %s holds %d-d embeddings but the model makes %d-d ones\n", npy,
                    ix->dim, dim);
            goto out;
        }
        /* cut back anything appended after the last commit */
        if (read_paths(ix, txt, &end)) goto out;
        if (ftruncate(fileno(ix->npy), data_offset + (off_t)ix->n * dim * (off_t)sizeof(float)) ||
            truncate(txt, end)) {
            fprintf(stderr, "biomedclip: %s: %s\n", dir, strerror(errno));
            goto out;
        }
    }
    if (!(ix->txt = fopen(txt, "ab")) || fseek(ix->npy, 0, SEEK_END)) {
        fprintf(stderr, "biomedclip: %s: %s\n", txt, strerror(errno));
        goto out;
    }
    if ((flags & IDX_KEEP_FAILURES) && (read_failed(ix, fail) || !(ix->fail = fopen(fail, "ab")))) {
        fprintf(stderr, "biomedclip: %s: %s\n", fail, strerror(errno));
        goto out;
    }
    if (build_sorted(ix)) goto oom;
    rc = 0;
    goto out;
oom:
    fprintf(stderr, "biomedclip: out of memory\n");
out:
    free(npy), free(txt), free(fail);
    return rc;
}

int idx_open_read(idx_store *ix, const char *dir) {
    memset(ix, 0, sizeof *ix);
    char *npy = cli_join_path(dir, "embeddings.npy"), *txt = cli_join_path(dir, "paths.txt");
    FILE *f = NULL;
    int rc = -1;
    long data_offset, end;
    const char *err;
    if (!npy || !txt || !(ix->dir = strdup(dir))) {
        fprintf(stderr, "biomedclip: out of memory\n");
        goto out;
    }
    if (!(f = fopen(npy, "rb"))) {
        fprintf(stderr, "biomedclip: %s: %s (not an index made by biomedclip index?)\n", npy,
                strerror(errno));
        goto out;
    }
    if ((err = npy_read_header(f, &ix->n, &ix->dim, &data_offset))) {
        fprintf(stderr, "biomedclip: %s: %s\n", npy, err);
        goto out;
    }
    size_t count = (size_t)ix->n * (size_t)ix->dim;
    if (!host_is_little_endian() || !(ix->emb = malloc((count ? count : 1) * sizeof(float))) ||
        fseek(f, data_offset, SEEK_SET) || fread(ix->emb, sizeof(float), count, f) != count) {
        fprintf(stderr, "biomedclip: %s: cannot read %ld x %d embeddings\n", npy, ix->n, ix->dim);
        goto out;
    }
    if (read_paths(ix, txt, &end)) goto out;
    rc = 0;
out:
    if (f) fclose(f);
    free(npy), free(txt);
    return rc;
}

int idx_append(idx_store *ix, const char *path, const float *emb) {
    if (fwrite(emb, sizeof(float), (size_t)ix->dim, ix->npy) != (size_t)ix->dim ||
        fprintf(ix->txt, "%s\n", path) < 0 || push_path(ix, path, strlen(path))) {
        fprintf(stderr, "biomedclip: writing to the index %s failed: %s\n", ix->dir, strerror(errno));
        return -1;
    }
    ix->pending++;
    return 0;
}

int idx_fail(idx_store *ix, const char *path, const char *reason) {
    if (!ix->fail) return 0;
    fprintf(ix->fail, "%s\t", path);
    for (const char *r = reason; *r; r++) fputc(*r == '\n' || *r == '\t' ? ' ' : *r, ix->fail);
    if (fputc('\n', ix->fail) == EOF) {
        fprintf(stderr, "biomedclip: writing to the index %s failed: %s\n", ix->dir, strerror(errno));
        return -1;
    }
    ix->pending_failed++;
    return 0;
}

int idx_commit(idx_store *ix) {
    if (!ix->pending && !ix->pending_failed) return 0;
    /* rows, paths and failures reach the disk before the header counts them */
    if (fflush(ix->npy) || fflush(ix->txt) || (ix->fail && fflush(ix->fail)) || fsync(fileno(ix->npy)) ||
        fsync(fileno(ix->txt)) || (ix->fail && fsync(fileno(ix->fail))) ||
        npy_write_header(ix->npy, ix->n + ix->pending, ix->dim) || fsync(fileno(ix->npy)) ||
        fseek(ix->npy, 0, SEEK_END)) {
        fprintf(stderr, "biomedclip: writing to the index %s failed: %s\n", ix->dir, strerror(errno));
        return -1;
    }
    ix->n += ix->pending;
    ix->pending = 0;
    ix->pending_failed = 0;
    return 0;
}

int idx_write_atomic(const char *dir, const char *name, const void *data, size_t size) {
    char *path = cli_join_path(dir, name), *tmp = path ? malloc(strlen(path) + 5) : NULL;
    int rc = -1;
    if (!tmp) goto out;
    sprintf(tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) goto out;
    int bad = (size && fwrite(data, 1, size, f) != size) || fflush(f) || fsync(fileno(f));
    if (fclose(f) || bad || rename(tmp, path)) goto out;
    rc = 0;
out:
    if (rc) fprintf(stderr, "biomedclip: cannot write %s/%s: %s\n", dir, name, strerror(errno));
    free(path), free(tmp);
    return rc;
}

int idx_write_clip_part(const char *dir, int part, int n_parts, const float *emb, long n, int dim,
                        char *const *paths) {
    int digits = 1;
    for (int p = n_parts; p >= 10; p /= 10) digits++;
    char name[64], sub[2][16] = {"img_emb", "metadata"};
    for (int i = 0; i < 2; i++) {
        char *d = cli_join_path(dir, sub[i]);
        int bad = !d || (mkdir(d, 0777) && errno != EEXIST);
        free(d);
        if (bad) {
            fprintf(stderr, "biomedclip: cannot create %s/%s: %s\n", dir, sub[i], strerror(errno));
            return -1;
        }
    }
    /* embeddings: the header, then the rows as they are in memory */
    size_t bytes = (size_t)n * (size_t)dim * sizeof(float);
    char *buf = malloc(NPY_HEADER_BYTES + bytes);
    if (!buf || idx_npy_header(buf, n, dim)) {
        free(buf);
        fprintf(stderr, "biomedclip: out of memory\n");
        return -1;
    }
    if (bytes) memcpy(buf + NPY_HEADER_BYTES, emb, bytes);
    snprintf(name, sizeof name, "img_emb/img_emb_%0*d.npy", digits, part);
    int rc = idx_write_atomic(dir, name, buf, NPY_HEADER_BYTES + bytes);
    free(buf);
    if (rc) return rc;
    /* metadata: one JSON object per row, in row order */
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    if (!f) return -1;
    for (long i = 0; i < n; i++) {
        fputs("{\"image_path\": ", f);
        cli_json_string(f, paths[i]);
        fputs("}\n", f);
    }
    if (fclose(f)) {
        free(text);
        return -1;
    }
    snprintf(name, sizeof name, "metadata/metadata_%0*d.jsonl", digits, part);
    rc = idx_write_atomic(dir, name, text, size);
    free(text);
    return rc;
}

void idx_close(idx_store *ix) {
    if (ix->npy) fclose(ix->npy);
    if (ix->txt) fclose(ix->txt);
    if (ix->fail) fclose(ix->fail);
    for (long i = 0; i < ix->n_failed; i++) free(ix->failed[i]);
    free(ix->failed);
    /* paths holds n + pending strings once read_paths ran; before that n is only the header's */
    if (ix->paths)
        for (long i = 0; i < ix->n + ix->pending; i++) free(ix->paths[i]);
    free(ix->paths), free(ix->sorted), free(ix->emb), free(ix->dir);
    memset(ix, 0, sizeof *ix);
}
