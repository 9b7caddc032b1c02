/* profile.c - the counters behind profile.h (empty unless compiled with -DBMC_PROFILE). */
#include "profile.h"

#include <string.h>
#include <time.h>

#ifdef BMC_PROFILE
static uint64_t prof_ns[BMC__PROF_N];    /* updated with atomic adds */
static uint64_t prof_calls[BMC__PROF_N];
/* Regions open on this thread. A pool task runs at the depth of the thread that handed it out
 * (bmc__prof_set_depth in pool.c): an op that spreads its work over the pool (GEMM with a fused
 * GELU, attention calling softmax) opens regions on the workers too, and those must not be
 * counted a second time. */
static _Thread_local int prof_depth;
static int prof_lanes_open; /* threads inside an outermost region now */
static int prof_lanes_max;  /* ... at most since the last reset */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t bmc__prof_begin(void) {
    if (prof_depth++ > 0) return 0;
    int open = __atomic_add_fetch(&prof_lanes_open, 1, __ATOMIC_ACQ_REL);
    int max = __atomic_load_n(&prof_lanes_max, __ATOMIC_RELAXED);
    while (open > max && !__atomic_compare_exchange_n(&prof_lanes_max, &max, open, 1,
                                                      __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    return now_ns();
}

void bmc__prof_end(int kind, uint64_t start) {
    if (--prof_depth > 0) return;
    __atomic_sub_fetch(&prof_lanes_open, 1, __ATOMIC_ACQ_REL);
    if (kind < 0 || kind >= BMC__PROF_N) return;
    __atomic_fetch_add(&prof_ns[kind], now_ns() - start, __ATOMIC_RELAXED);
    __atomic_fetch_add(&prof_calls[kind], 1, __ATOMIC_RELAXED);
}

int bmc__prof_enabled(void) { return 1; }

void bmc__prof_read(uint64_t ns[BMC__PROF_N], uint64_t calls[BMC__PROF_N]) {
    for (int i = 0; i < BMC__PROF_N; i++) {
        ns[i] = __atomic_load_n(&prof_ns[i], __ATOMIC_RELAXED);
        calls[i] = __atomic_load_n(&prof_calls[i], __ATOMIC_RELAXED);
    }
}

void bmc__prof_reset(void) {
    for (int i = 0; i < BMC__PROF_N; i++) {
        __atomic_store_n(&prof_ns[i], 0, __ATOMIC_RELAXED);
        __atomic_store_n(&prof_calls[i], 0, __ATOMIC_RELAXED);
    }
    __atomic_store_n(&prof_lanes_max, 0, __ATOMIC_RELAXED);
}

int bmc__prof_lanes(void) { return __atomic_load_n(&prof_lanes_max, __ATOMIC_RELAXED); }

int bmc__prof_depth(void) { return prof_depth; }

int bmc__prof_set_depth(int depth) {
    int old = prof_depth;
    prof_depth = depth;
    return old;
}
#else
int bmc__prof_enabled(void) { return 0; }

void bmc__prof_read(uint64_t ns[BMC__PROF_N], uint64_t calls[BMC__PROF_N]) {
    memset(ns, 0, sizeof(uint64_t) * BMC__PROF_N);
    memset(calls, 0, sizeof(uint64_t) * BMC__PROF_N);
}

void bmc__prof_reset(void) {}

int bmc__prof_lanes(void) { return 0; }
#endif
