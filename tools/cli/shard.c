/* shard.c - the shard description file (format in shard.h). */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index_store.h"
#include "shard.h"

int shard_parse_spec(const char *cmd, const char *s, int *k, int *n) {
    char *end;
    long a, b;
    errno = 0;
    if (!s || (a = strtol(s, &end, 10), *end != '/') || (b = strtol(end + 1, &end, 10), *end) || errno ||
        a < 1 || b < 1 || a > b || b > INT_MAX) {
        fprintf(stderr, "biomedclip %s: --shard wants K/N with 1 <= K <= N, got '%s'\n", cmd, s ? s : "");
        return -1;
    }
    *k = (int)a, *n = (int)b;
    return 0;
}

uint64_t shard_listing_hash(const char *const *paths, long n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (long i = 0; i < n; i++)
        for (const unsigned char *p = (const unsigned char *)paths[i];; p++) {
            h = (h ^ (*p ? *p : '\n')) * 0x100000001b3ULL;
            if (!*p) break;
        }
    return h;
}

void shard_range(long m, int k, int n, long *lo, long *hi) {
    *lo = (long)((__int128)m * (k - 1) / n);
    *hi = (long)((__int128)m * k / n);
}

int shard_write(const char *dir, const shard_info *s) {
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    if (!f) return -1;
    fprintf(f, "biomedclip-shard 1\nshard %d %d\nlisting %ld %016" PRIx64 "\nrange %ld %ld\nmodel %s\n"
            "model_path %s\ncomplete %d\nrows %ld\nfailed %ld\n", s->k, s->n, s->listing_count,
            s->listing_hash, s->lo, s->hi, s->model, s->model_path, s->complete, s->rows, s->failed);
    if (fclose(f)) {
        free(text);
        return -1;
    }
    int rc = idx_write_atomic(dir, "shard.txt", text, size);
    free(text);
    return rc;
}

int shard_read(const char *dir, shard_info *s, const char **why) {
    memset(s, 0, sizeof *s);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/shard.txt", dir);
    FILE *f = fopen(path, "rb");
    if (!f) {
        *why = "not a shard (no shard.txt: was it made by `biomedclip index --shard K/N`?)";
        return -1;
    }
    char line[4200];
    int seen = 0, version = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (sscanf(line, "biomedclip-shard %d", &version) == 1) seen |= 1;
        else if (sscanf(line, "shard %d %d", &s->k, &s->n) == 2) seen |= 2;
        else if (sscanf(line, "listing %ld %" SCNx64, &s->listing_count, &s->listing_hash) == 2) seen |= 4;
        else if (sscanf(line, "range %ld %ld", &s->lo, &s->hi) == 2) seen |= 8;
        else if (!strncmp(line, "model ", 6)) snprintf(s->model, sizeof s->model, "%.127s", line + 6), seen |= 16;
        else if (!strncmp(line, "model_path ", 11))
            snprintf(s->model_path, sizeof s->model_path, "%.4095s", line + 11), seen |= 32;
        else if (sscanf(line, "complete %d", &s->complete) == 1) seen |= 64;
        else if (sscanf(line, "rows %ld", &s->rows) == 1) seen |= 128;
        else if (sscanf(line, "failed %ld", &s->failed) == 1) seen |= 256;
    }
    fclose(f);
    if (seen != 511 || version != 1 || s->k < 1 || s->k > s->n || s->lo < 0 || s->lo > s->hi ||
        s->hi > s->listing_count || s->rows < 0 || s->failed < 0) {
        *why = "shard.txt is malformed";
        return -1;
    }
    return 0;
}
