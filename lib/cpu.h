/* cpu.h - the kernel level the library runs at, chosen once at first use (cpu.c), and the
 * table of kernels of that level.
 *
 * Levels: AVX-512 (tiles.c, ops_avx512.c; with AVX512_BF16 also tiles_bf16.c for bfloat16
 * weights), AVX2 + FMA + F16C (tiles_avx2.c, ops_avx2.c) and portable
 * (OpenBLAS for the products, ops.c's loops as the baseline compiler vectorises them). Each
 * level's files are compiled with their own -m flags (Makefile), and nothing of a level runs
 * unless the CPU and the OS support it, so one build runs on any x86-64. */
#ifndef BMC_CPU_H
#define BMC_CPU_H

#include <stddef.h>

#include "kernels.h"

typedef enum bmc__level {
    BMC__LEVEL_PORTABLE = 0,
    BMC__LEVEL_AVX2 = 1,   /* AVX2 + FMA, YMM state enabled by the OS */
    BMC__LEVEL_AVX512 = 2, /* AVX-512 F/BW/DQ/VL + AVX2 + FMA, ZMM state enabled by the OS */
    BMC__LEVEL_AVX512_BF16 = 3, /* the same + AVX512_BF16: bfloat16 weights run vdpbf16ps */
} bmc__level;
#define BMC__N_LEVELS 4

/* The kernels of one level. outer and pack_w are NULL at the portable level (OpenBLAS). */
typedef struct bmc__kernels {
    bmc__level level;
    void (*outer)(int mr, const float *x, size_t ldx, const float *bp, size_t ldb, int kc,
                  const bmc__tile_out *o);
    void (*pack_w)(const float *w, size_t ldw, int nb, int kc, float *bp);
    /* the tiles for 16-bit weights, by bmc__wtype (F16, BF16); NULL at the portable level */
    bmc__outer16_fn outer16[3];
    /* at most this many panels per task of a product, by weight type (1 for float): the
     * bfloat16 tiles of avx512_bf16 round a row tile of X once for all of a task's panels */
    int group16[3];
    /* the element-wise loops (ops.c) */
    void (*layernorm_row)(const float *xr, float *yr, int N, const float *w, const float *b,
                          float eps);
    void (*gelu)(float *x, size_t n);
    void (*softmax_scaled)(float *r, int N, float scale);
} bmc__kernels;

/* The kernels of the level in use: the best the CPU has, or the lower one BMC_CPU names
 * (avx512_bf16, avx512, avx2, portable). Decided at the first call (thread-safe), fixed after. */
const bmc__kernels *bmc__kern(void);

/* "avx512_bf16", "avx512", "avx2" or "portable" */
const char *bmc__level_name(bmc__level level);

/* The best level this CPU and OS support, whatever BMC_CPU says. */
bmc__level bmc__cpu_best(void);

/* One line: the level in use and why (for bmc_system_info). */
const char *bmc__cpu_reason(void);

/* Each level's element-wise loops (ops_loops.h, compiled in ops.c, ops_avx2.c, ops_avx512.c). */
#define BMC__OPS_DECLARE(sfx)                                                                   \
    void bmc__layernorm_row_##sfx(const float *xr, float *yr, int N, const float *w,           \
                                  const float *b, float eps);                                  \
    void bmc__gelu_##sfx(float *x, size_t n);                                                  \
    void bmc__softmax_scaled_##sfx(float *r, int N, float scale);
BMC__OPS_DECLARE(portable)
BMC__OPS_DECLARE(avx2)
BMC__OPS_DECLARE(avx512)

/* Each level's table (cpu.c picks one); NULL entries are not used at that level. */
extern const bmc__kernels bmc__kernels_avx512_bf16, bmc__kernels_avx512, bmc__kernels_avx2,
    bmc__kernels_portable;

#endif /* BMC_CPU_H */
