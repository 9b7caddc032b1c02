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

static int npy_write_header(FILE *f, long n, int dim) {
    char h[NPY_HEADER_BYTES];
    memset(h, ' ', sizeof h);
    memcpy(h, "\x93NUMPY\x01\x00", 8);
    h[8] = (char)((NPY_HEADER_BYTES - 10) & 0xff);
    h[9] = (char)((NPY_HEADER_BYTES - 10) >> 8);
    int len = snprintf(h + 10, sizeof h - 10, "{'descr': '<f4', 'fortran_order': False, 'shape': (%ld, %d), }",
                       n, dim);
    if (len < 0 || len >= NPY_HEADER_BYTES - 11) return -1;
    h[10 + len] = ' '; /* snprintf's NUL */
    h[NPY_HEADER_BYTES - 1] = '\n';
    if (fseek(f, 0, SEEK_SET) || fwrite(h, 1, sizeof h, f) != sizeof h || fflush(f)) return -1;
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
    return ix->n_sorted &&
           bsearch(&path, ix->sorted, (size_t)ix->n_sorted, sizeof *ix->sorted, cmp_str) != NULL;
}

static int write_meta(const char *dir, int dim, const char *model) {
    char *file = cli_join_path(dir, "index.json");
    FILE *f = file ? fopen(file, "wb") : NULL;
    free(file);
    if (!f) return -1;
    fprintf(f, "{\"format\": \"biomedclip-index\", \"version\": 1, \"dim\": %d, \"model\": ", dim);
    cli_json_string(f, model ? model : "");
    fputs("}\n", f);
    return fclose(f) ? -1 : 0;
}

int idx_open_append(idx_store *ix, const char *dir, int dim, const char *model) {
    memset(ix, 0, sizeof *ix);
    if (!host_is_little_endian()) {
        fprintf(stderr, "biomedclip: the index format is little-endian; this host is not\n");
        return -1;
    }
    char *npy = NULL, *txt = NULL;
    int rc = -1;
    if (!(ix->dir = strdup(dir)) || !(npy = cli_join_path(dir, "embeddings.npy")) ||
        !(txt = cli_join_path(dir, "paths.txt")))
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
            write_meta(dir, dim, model)) {
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
    if (build_sorted(ix)) goto oom;
    rc = 0;
    goto out;
oom:
    fprintf(stderr, "biomedclip: out of memory\n");
out:
    free(npy), free(txt);
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

int idx_commit(idx_store *ix) {
    if (!ix->pending) return 0;
    /* rows and paths reach the files before the header counts them */
    if (fflush(ix->npy) || fflush(ix->txt) || npy_write_header(ix->npy, ix->n + ix->pending, ix->dim) ||
        fseek(ix->npy, 0, SEEK_END)) {
        fprintf(stderr, "biomedclip: writing to the index %s failed: %s\n", ix->dir, strerror(errno));
        return -1;
    }
    ix->n += ix->pending;
    ix->pending = 0;
    return 0;
}

void idx_close(idx_store *ix) {
    if (ix->npy) fclose(ix->npy);
    if (ix->txt) fclose(ix->txt);
    /* paths holds n + pending strings once read_paths ran; before that n is only the header's */
    if (ix->paths)
        for (long i = 0; i < ix->n + ix->pending; i++) free(ix->paths[i]);
    free(ix->paths), free(ix->sorted), free(ix->emb), free(ix->dir);
    memset(ix, 0, sizeof *ix);
}
