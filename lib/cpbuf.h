/* cpbuf.h - a growable array of Unicode code points, shared by the text cleaning (text_clean.c)
 * and ftfy's encoding repair (ftfy_encoding.c). */
#ifndef BMC_CPBUF_H
#define BMC_CPBUF_H

#include <stddef.h>
#include <stdint.h>

#include "biomedclip.h"

/* A growable array of code points: it starts in caller storage (often on the stack) or empty,
 * and moves to bmc__malloc'd memory when it outgrows that. */
typedef struct bmc__cpbuf {
    uint32_t *p;
    size_t n, cap;
    int heap; /* p was allocated here */
} bmc__cpbuf;

static inline void bmc__cpbuf_init(bmc__cpbuf *b, uint32_t *storage, size_t cap) {
    b->p = storage;
    b->n = 0;
    b->cap = storage ? cap : 0;
    b->heap = 0;
}

/* Make room for `extra` more code points after p[n]. BMC_E_NOMEM on failure. */
bmc_status bmc__cpbuf_reserve(bmc__cpbuf *b, size_t extra);
void bmc__cpbuf_free(bmc__cpbuf *b);

#endif /* BMC_CPBUF_H */
