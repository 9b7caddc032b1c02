/* shard.h - one part of an index built on many machines (`index --shard K/N`, `index-merge`,
 * docs/SCALE.md). Every node lists and sorts the same inputs, so part K of N is the same slice
 * everywhere and the N parts, concatenated in K order, are the rows of a single-node index.
 * A shard directory is an index directory (index_store.h) plus shard.txt:
 *   biomedclip-shard 1
 *   shard K N
 *   listing M HASH        M inputs in the whole listing; HASH: FNV-1a 64 of "path\n" for each
 *   range LO HI           this part: listing entries [LO, HI)
 *   model FINGERPRINT     bmc_model_fingerprint of the model file
 *   model_path PATH       the -m path (written to the merged index.json)
 *   complete 0|1          1 once every entry of the range is embedded or listed in failed.tsv
 *   rows R                rows in embeddings.npy when complete
 *   failed F              lines in failed.tsv when complete */
#ifndef BMC_CLI_SHARD_H
#define BMC_CLI_SHARD_H

#include <stdint.h>

typedef struct shard_info {
    int k, n;
    long listing_count;
    uint64_t listing_hash;
    long lo, hi;
    char model[128];
    char model_path[4096];
    int complete;
    long rows, failed;
} shard_info;

/* Parse "K/N" with 1 <= K <= N; prints why and returns -1 when it is not that. */
int shard_parse_spec(const char *cmd, const char *s, int *k, int *n);
/* FNV-1a 64 over the n paths, each followed by '\n'. */
uint64_t shard_listing_hash(const char *const *paths, long n);
/* Part k of n (1-based) of m entries: [m (k-1) / n, m k / n), so parts differ by at most one. */
void shard_range(long m, int k, int n, long *lo, long *hi);
/* Write dir/shard.txt atomically. */
int shard_write(const char *dir, const shard_info *s);
/* Read dir/shard.txt; returns 0, or -1 with *why set to a static reason. */
int shard_read(const char *dir, shard_info *s, const char **why);

#endif /* BMC_CLI_SHARD_H */
