/* index_store.h - the on-disk image index of `biomedclip index` / `search` (docs/CLI.md):
 * a directory holding
 *   embeddings.npy  NumPy .npy v1.0, '<f4', C order, shape (N, D): unit-norm image embeddings
 *   paths.txt       N lines, UTF-8, '\n'-terminated: line i is the image of row i
 *   index.json      {"format": "biomedclip-index", "version": 1, "dim": D, "model": "..."}
 * The row count in the .npy header is the commit point: rows and paths are appended past it
 * first, the header is rewritten last, and an interrupted run is cut back to it on reopening. */
#ifndef BMC_CLI_INDEX_STORE_H
#define BMC_CLI_INDEX_STORE_H

#include <stdio.h>

typedef struct idx_store {
    char *dir;
    int dim;           /* D */
    long n;            /* committed rows */
    long pending;      /* rows appended since the last commit */
    char **paths;      /* [n + pending] */
    long paths_cap;
    char **sorted;     /* [n_sorted] the paths present at open, sorted (for idx_contains) */
    long n_sorted;
    float *emb;        /* [n, D], only when opened for reading */
    FILE *npy, *txt;   /* only when opened for appending */
} idx_store;

/* Open (creating if absent) for appending rows of dimension dim. model names the model file
 * (recorded in index.json). Prints a message and returns -1 on failure. */
int idx_open_append(idx_store *ix, const char *dir, int dim, const char *model);
/* Open an existing index and read every row and path into memory. */
int idx_open_read(idx_store *ix, const char *dir);
/* Append one row (not visible until idx_commit). */
int idx_append(idx_store *ix, const char *path, const float *emb);
/* Make the appended rows part of the index (flushes both files, then the header). */
int idx_commit(idx_store *ix);
/* 1 if path is one of the committed paths (binary search: the list is kept sorted aside). */
int idx_contains(const idx_store *ix, const char *path);
void idx_close(idx_store *ix); /* commits nothing; frees everything */

#endif /* BMC_CLI_INDEX_STORE_H */
