/* ops_avx512.c - the element-wise loops (ops_loops.h) compiled for AVX-512 (Makefile: this
 * file's flags), with GELU's table lookups as register permutes; run only at that level
 * (cpu.c). */
#define BMC__SFX(name) name##_avx512
#define BMC__OPS_AVX512 1
#include "ops_loops.h"
