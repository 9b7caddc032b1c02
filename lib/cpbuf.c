/* cpbuf.c - the growable code-point array (cpbuf.h). */
#include <stdint.h>
#include <string.h>

#include "cpbuf.h"
#include "error.h"

bmc_status bmc__cpbuf_reserve(bmc__cpbuf *b, size_t extra) {
    if (b->cap - b->n >= extra) return BMC_OK;
    size_t need = b->n + extra, cap = b->cap ? b->cap : 256, bytes;
    if (need < b->n) return bmc__fail(BMC_E_NOMEM, "text: %zu code points is too long", b->n);
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (!bmc__mul_size(cap, sizeof(uint32_t), &bytes))
        return bmc__fail(BMC_E_NOMEM, "text: %zu code points is too long", need);
    uint32_t *p = b->heap ? bmc__realloc(b->p, bytes) : bmc__malloc(bytes);
    if (!p) return bmc__fail(BMC_E_NOMEM, "text: out of memory for %zu code points", cap);
    if (!b->heap && b->n) memcpy(p, b->p, b->n * sizeof *p);
    b->p = p;
    b->cap = cap;
    b->heap = 1;
    return BMC_OK;
}

void bmc__cpbuf_free(bmc__cpbuf *b) {
    if (b->heap) bmc__free(b->p);
    bmc__cpbuf_init(b, NULL, 0);
}
