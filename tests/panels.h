/* panels.h - lay out a row-major Linear weight as the model file stores it (format.h,
 * BMC__LAYOUT_PANEL64), for tests and benchmarks that make their own weights; the converter
 * (tools/convert.py) does the same for the model file. */
#ifndef BMC_TESTS_PANELS_H
#define BMC_TESTS_PANELS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "format.h"

/* Floats that the panels of an [N, K] weight take. */
static inline size_t bmc__panel_floats(int N, int K) {
    return (size_t)(N + BMC__PANEL - 1) / BMC__PANEL * BMC__PANEL * (size_t)K;
}

/* panels[ceil(N / 64)][K][64] from w[N, K] (row stride ldw), zeros past N. */
static inline void bmc__panel_pack(const float *w, int N, int K, size_t ldw, float *panels) {
    memset(panels, 0, bmc__panel_floats(N, K) * sizeof(float));
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++)
            panels[(size_t)(n / BMC__PANEL) * K * BMC__PANEL + (size_t)k * BMC__PANEL +
                   n % BMC__PANEL] = w[(size_t)n * ldw + k];
}

/* The same for 16-bit elements: F16 panels [K][64] (pairs 0), or BF16's panel64x2 (pairs 1):
 * element (n, k) at (n / 64) * K * 64 + (k / 2) * 128 + (n % 64) * 2 + k % 2 (K even). */
static inline void bmc__panel_pack16(const uint16_t *w, int N, int K, size_t ldw, int pairs,
                                     uint16_t *panels) {
    memset(panels, 0, bmc__panel_floats(N, K) * sizeof(uint16_t));
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            size_t at = (size_t)(n / BMC__PANEL) * K * BMC__PANEL +
                        (pairs ? (size_t)(k / 2) * 2 * BMC__PANEL + (size_t)(n % BMC__PANEL) * 2 + k % 2
                               : (size_t)k * BMC__PANEL + n % BMC__PANEL);
            panels[at] = w[(size_t)n * ldw + k];
        }
}

#endif /* BMC_TESTS_PANELS_H */
