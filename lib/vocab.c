/* vocab.c - the tokenizer vocabulary: token strings live in the mapping; a small open-addressing
 * hash (FNV-1a) maps a token's bytes to its id for WordPiece's longest-match lookups. */
#include <string.h>

#include "error.h"
#include "vocab.h"

static uint32_t bmc__fnv1a(const uint8_t *s, size_t len) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) h = (h ^ s[i]) * 16777619u;
    return h;
}

bmc_status bmc__vocab_init(bmc__vocab *v, const uint32_t *offsets, const uint8_t *bytes, uint32_t n,
                           size_t n_bytes) {
    memset(v, 0, sizeof *v);
    if (!offsets || (!bytes && n_bytes) || n == 0 || n > (1u << 26))
        return bmc__fail(BMC_E_FORMAT, "vocabulary: %u entries is not a usable size", n);
    if (offsets[0] != 0 || offsets[n] != n_bytes)
        return bmc__fail(BMC_E_FORMAT, "vocabulary: offsets span [%u, %u] but the blob has %zu bytes",
                         offsets[0], offsets[n], n_bytes);
    for (uint32_t i = 0; i < n; i++)
        if (offsets[i + 1] < offsets[i])
            return bmc__fail(BMC_E_FORMAT, "vocabulary: offset %u of token %u is before the previous one",
                             offsets[i + 1], i + 1);
    uint32_t n_slots = 1;
    while (n_slots < 2 * n) n_slots <<= 1;
    int32_t *slots = bmc__malloc(sizeof(int32_t) * n_slots);
    if (!slots) return bmc__fail(BMC_E_NOMEM, "vocabulary: out of memory for a %u-slot index", n_slots);
    memset(slots, 0xFF, sizeof(int32_t) * n_slots);
    v->offsets = offsets;
    v->bytes = bytes;
    v->n = n;
    v->slots = slots;
    v->n_slots = n_slots;
    for (uint32_t id = 0; id < n; id++) {
        const uint8_t *s = bytes + offsets[id];
        size_t len = offsets[id + 1] - offsets[id];
        if (bmc__vocab_find(v, (const char *)s, len) >= 0) continue; /* first occurrence wins */
        uint32_t i = bmc__fnv1a(s, len) & (n_slots - 1);
        while (slots[i] >= 0) i = (i + 1) & (n_slots - 1);
        slots[i] = (int32_t)id;
    }
    return BMC_OK;
}

void bmc__vocab_free(bmc__vocab *v) {
    if (!v) return;
    bmc__free(v->slots);
    v->slots = NULL;
    v->n_slots = 0;
}

int32_t bmc__vocab_find(const bmc__vocab *v, const char *s, size_t len) {
    if (!v->slots) return -1;
    uint32_t mask = v->n_slots - 1;
    for (uint32_t i = bmc__fnv1a((const uint8_t *)s, len) & mask;; i = (i + 1) & mask) {
        int32_t id = v->slots[i];
        if (id < 0) return -1;
        uint32_t a = v->offsets[id], b = v->offsets[id + 1];
        if (b - a == len && memcmp(v->bytes + a, s, len) == 0) return id;
    }
}
