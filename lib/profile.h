/* profile.h - optional time counters for bench --profile: where a forward pass spends its time
 * (GEMM, attention, LayerNorm/GELU/softmax). Compiled in only with -DBMC_PROFILE
 * (make BUILD=build-prof OPT="-O2 -march=native -DBMC_PROFILE"); otherwise the macros are empty
 * and the library has no global counters in its hot path.
 *
 * Use in ops.c: wrap the body of an op in
 *     BMC__PROF_BEGIN(t);  ...work...  BMC__PROF_END(BMC__PROF_GEMM, t);
 * Regions nest (attention calls softmax, a GEMM task applies GELU on a pool thread): only a
 * thread's outermost region is counted, and a pool task starts at the depth of the thread that
 * handed it out (pool.c), so the categories never overlap. A pass is one lane, the caller's, or
 * several where independent groups run side by side on their own threads (a batch split per
 * thread, run.c): each lane's regions are counted, and bmc__prof_lanes says how many
 * there were at most at once, so that shares are of wall time x lanes. Profile one context at a
 * time (bench --profile does): the counters are process-wide. */
#ifndef BMC_PROFILE_H
#define BMC_PROFILE_H

#include <stdint.h>

enum bmc__prof_kind {
    BMC__PROF_GEMM = 0,      /* bmc__gemm: the matrix products (+ bias, GELU)          */
    BMC__PROF_ATTENTION = 1, /* bmc__attention: Q K^T, softmax, . V for every head     */
    BMC__PROF_NORM_ACT = 2,  /* bmc__layernorm, bmc__gelu, bmc__softmax_rows            */
    BMC__PROF_N = 3
};

/* 1 when the library was compiled with BMC_PROFILE. */
int bmc__prof_enabled(void);
/* Nanoseconds and outermost calls per kind since the last reset, summed over threads. */
void bmc__prof_read(uint64_t ns[BMC__PROF_N], uint64_t calls[BMC__PROF_N]);
void bmc__prof_reset(void);
/* The most lanes (threads inside an outermost region) at once since the last reset; 0 if none. */
int bmc__prof_lanes(void);

#ifdef BMC_PROFILE
uint64_t bmc__prof_begin(void);             /* 0 when nested inside another region */
void bmc__prof_end(int kind, uint64_t start);
int bmc__prof_depth(void);                 /* regions open on this thread */
int bmc__prof_set_depth(int depth);         /* returns the previous depth */
#define BMC__PROF_BEGIN(var) uint64_t var = bmc__prof_begin()
#define BMC__PROF_END(kind, var) bmc__prof_end((kind), (var))
#define BMC__PROF_DEPTH() bmc__prof_depth()
#define BMC__PROF_SET_DEPTH(d) bmc__prof_set_depth(d)
#else
#define BMC__PROF_BEGIN(var) ((void)0)
#define BMC__PROF_END(kind, var) ((void)0)
#define BMC__PROF_DEPTH() 0
#define BMC__PROF_SET_DEPTH(d) ((void)(d), 0)
#endif

#endif /* BMC_PROFILE_H */
