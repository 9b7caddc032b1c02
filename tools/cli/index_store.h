/* index_store.h - the on-disk image index of `biomedclip index` / `search` (docs/CLI.md):
 * a directory holding
 *   embeddings.npy  NumPy .npy v1.0, '<f4', C order, shape (N, D): unit-norm image embeddings
 *   paths.txt       N lines, UTF-8, '\n'-terminated: line i is the image of row i
 *   index.json      {"format": "biomedclip-index", "version": 1, "dim": D, "model": "..."}
 *   failed.tsv      (IDX_KEEP_FAILURES only) one line per file that failed: path TAB reason
 *   img_emb/img_emb_<P>.npy, metadata/metadata_<P>.jsonl
 *                   clip-retrieval's layout of the same rows (idx_write_clip_part)
 * The row count in the .npy header is the commit point: rows, paths and failures are appended
 * past it and fsync'ed first, the header is rewritten last, and an interrupted run is cut back to
 * it on reopening (failure lines are kept: a failed file is not retried forever). */
#ifndef BMC_CLI_INDEX_STORE_H
#define BMC_CLI_INDEX_STORE_H

#include <stdio.h>

typedef struct idx_store {
    char *dir;
    int dim;           /* D */
    long n;            /* committed rows */
    long pending;      /* rows appended since the last commit */
    long pending_failed; /* failure lines appended since the last commit */
    char **paths;      /* [n + pending] */
    long paths_cap;
    char **sorted;     /* [n_sorted] the paths present at open, sorted (for idx_contains) */
    long n_sorted;
    float *emb;        /* [n, D], only when opened for reading */
    FILE *npy, *txt;   /* only when opened for appending */
    FILE *fail;        /* failed.tsv, with IDX_KEEP_FAILURES */
    char **failed;     /* [n_failed] paths listed in failed.tsv at open, sorted */
    long n_failed;
} idx_store;

/* idx_open_append flags. */
#define IDX_KEEP_FAILURES 1  /* record failures in failed.tsv and count them as done */

/* Open (creating if absent) for appending rows of dimension dim. model names the model file
 * (recorded in index.json). Prints a message and returns -1 on failure. */
int idx_open_append(idx_store *ix, const char *dir, int dim, const char *model, int flags);
/* Open an existing index and read every row and path into memory. */
int idx_open_read(idx_store *ix, const char *dir);
/* Append one row (not visible until idx_commit). */
int idx_append(idx_store *ix, const char *path, const float *emb);
/* Record a file that failed (IDX_KEEP_FAILURES; a no-op otherwise), committed with the rows. */
int idx_fail(idx_store *ix, const char *path, const char *reason);
/* Make the appended rows part of the index (flushes and fsyncs the files, then the header). */
int idx_commit(idx_store *ix);
/* 1 if path is one of the committed paths, or was recorded as failed when the index was opened
 * (binary search: the lists are kept sorted aside). */
int idx_contains(const idx_store *ix, const char *path);
/* Write rows [0, n) of emb (n x dim) and their paths as part `part` of `n_parts` in clip-retrieval's
 * layout under dir: img_emb/img_emb_<P>.npy and metadata/metadata_<P>.jsonl ({"image_path": ...}
 * per row), P zero-padded to floor(log10(n_parts)) + 1 digits as clip-retrieval names them. Each
 * file is written to a temporary name, fsync'ed and renamed. */
int idx_write_clip_part(const char *dir, int part, int n_parts, const float *emb, long n, int dim,
                        char *const *paths);
/* Write dir/index.json ({"format", "version", "dim", "model"}) atomically. */
int idx_write_meta(const char *dir, int dim, const char *model);
/* Write a whole file atomically: dir/name.tmp, fsync, rename to dir/name. */
int idx_write_atomic(const char *dir, const char *name, const void *data, size_t size);
/* The .npy v1.0 header idx writes (128 bytes) for an (n, dim) '<f4' array, into h[128]. */
int idx_npy_header(char *h, long n, int dim);
void idx_close(idx_store *ix); /* commits nothing; frees everything */

#endif /* BMC_CLI_INDEX_STORE_H */
