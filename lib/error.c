/* error.c - status strings, the per-thread last-error message, logging, allocation hooks. */
#include "error.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static _Thread_local char bmc__last_error[1024];
static bmc_log_fn bmc__log_fn;   /* the only global mutable state: set before use */
static void *bmc__log_user;

const char *bmc_status_str(bmc_status status) {
    switch (status) {
    case BMC_OK: return "BMC_OK: success";
    case BMC_E_INVALID_ARG: return "BMC_E_INVALID_ARG: invalid argument";
    case BMC_E_IO: return "BMC_E_IO: input/output error";
    case BMC_E_FORMAT: return "BMC_E_FORMAT: malformed model file";
    case BMC_E_VERSION: return "BMC_E_VERSION: unsupported model file version";
    case BMC_E_CHECKSUM: return "BMC_E_CHECKSUM: checksum mismatch";
    case BMC_E_NOMEM: return "BMC_E_NOMEM: out of memory";
    case BMC_E_IMAGE: return "BMC_E_IMAGE: unusable image";
    case BMC_E_TOO_LONG: return "BMC_E_TOO_LONG: output buffer too small";
    case BMC_E_INTERNAL: return "BMC_E_INTERNAL: internal error";
    }
    return "unknown status";
}

const char *bmc_last_error(void) { return bmc__last_error; }

void bmc_log_set(bmc_log_fn fn, void *user) {
    bmc__log_fn = fn;
    bmc__log_user = user;
}

bmc_status bmc__fail(bmc_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(bmc__last_error, sizeof bmc__last_error, fmt, ap);
    va_end(ap);
    if (bmc__log_fn) bmc__log_fn(BMC_LOG_ERROR, bmc__last_error, bmc__log_user);
    return status;
}

void bmc__log(int level, const char *fmt, ...) {
    if (!bmc__log_fn) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    bmc__log_fn(level, buf, bmc__log_user);
}

/* ---- allocation ---------------------------------------------------------------------------- */

/* Atomic (relaxed): threads sharing a model allocate concurrently, and a plain counter would be
 * a data race (tests/sh/test_tsan.sh). */
static _Atomic long bmc__alloc_count;
static _Atomic long bmc__alloc_fail_at; /* 0: never */
static _Thread_local unsigned long bmc__alloc_failed; /* failures seen by this thread */

long bmc__alloc_fail_after(long n) {
    long made = atomic_exchange_explicit(&bmc__alloc_count, 0, memory_order_relaxed);
    atomic_store_explicit(&bmc__alloc_fail_at, n, memory_order_relaxed);
    return made;
}

static int bmc__alloc_should_fail(void) {
    long count = atomic_fetch_add_explicit(&bmc__alloc_count, 1, memory_order_relaxed) + 1;
    long at = atomic_load_explicit(&bmc__alloc_fail_at, memory_order_relaxed);
    return at > 0 && count >= at;
}

unsigned long bmc__alloc_failures(void) { return bmc__alloc_failed; }

static void *bmc__alloc_result(void *p) {
    if (!p) bmc__alloc_failed++;
    return p;
}

void *bmc__malloc(size_t size) {
    if (bmc__alloc_should_fail()) return bmc__alloc_result(NULL);
    return bmc__alloc_result(malloc(size ? size : 1));
}

void *bmc__calloc(size_t n, size_t size) {
    if (bmc__alloc_should_fail()) return bmc__alloc_result(NULL);
    return bmc__alloc_result(calloc(n ? n : 1, size ? size : 1));
}

void *bmc__realloc(void *p, size_t size) {
    if (bmc__alloc_should_fail()) return bmc__alloc_result(NULL);
    return bmc__alloc_result(realloc(p, size ? size : 1));
}

void bmc__free(void *p) { free(p); }

int bmc__mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}
