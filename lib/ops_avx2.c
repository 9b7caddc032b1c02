/* ops_avx2.c - the element-wise loops (ops_loops.h) compiled for AVX2 + FMA (Makefile: this
 * file's flags); run only at that level (cpu.c). */
#define BMC__SFX(name) name##_avx2
#define BMC__OPS_AVX2 1
#include "ops_loops.h"
