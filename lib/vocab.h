/* vocab.h - the tokenizer's vocabulary: token bytes as the model file stores them, and the hash
 * index from bytes to id that WordPiece looks words up in (vocab.c). */
#ifndef BMC_VOCAB_H
#define BMC_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#include "biomedclip.h"

/* The tokenizer's vocabulary, as stored in the file: token i is bytes[offsets[i] .. offsets[i+1]). */
typedef struct bmc__vocab {
    const uint32_t *offsets;        /* [n + 1] */
    const uint8_t *bytes;           /* [offsets[n]] UTF-8 */
    uint32_t n;
    /* open-addressing hash of token -> id, built at load (the only allocation besides the struct) */
    int32_t *slots;                 /* [n_slots], -1 empty */
    uint32_t n_slots;               /* power of two */
} bmc__vocab;

/* Point vocab at n tokens (offsets[n + 1], bytes) and build its hash index. Checks that the
 * offsets are non-decreasing and inside the byte blob (BMC_E_FORMAT otherwise). */
bmc_status bmc__vocab_init(bmc__vocab *vocab, const uint32_t *offsets, const uint8_t *bytes,
                           uint32_t n, size_t n_bytes);
void bmc__vocab_free(bmc__vocab *vocab); /* frees the index only; NULL-safe */
/* Id of a token (exact bytes); -1 when absent. */
int32_t bmc__vocab_find(const bmc__vocab *vocab, const char *s, size_t len);

#endif /* BMC_VOCAB_H */
