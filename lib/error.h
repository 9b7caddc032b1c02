/* error.h - the per-thread last-error message, the log callback and the allocator hooks. */
#ifndef BMC_ERROR_H
#define BMC_ERROR_H

#include <stddef.h>

#include "biomedclip.h"

#if defined(__GNUC__)
#define BMC__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define BMC__PRINTF(a, b)
#endif

/* Record a failure: formats the message for bmc_last_error(), passes it to the log callback,
 * and returns status, so that callers write `return bmc__fail(BMC_E_FORMAT, "...", ...);`. */
bmc_status bmc__fail(bmc_status status, const char *fmt, ...) BMC__PRINTF(2, 3);
void bmc__log(int level, const char *fmt, ...) BMC__PRINTF(2, 3);

/* Every library allocation goes through these (for fault injection in tests and so that an
 * embedder can count them). bmc__malloc(0) returns a valid unique pointer. */
void *bmc__malloc(size_t size);
void *bmc__calloc(size_t n, size_t size);
void *bmc__realloc(void *p, size_t size);
void bmc__free(void *p);

/* Test hook: the n-th allocation from now (1-based) and every later one fail; 0 disables.
 * Returns the number of allocations made since the last call. Not thread-safe. */
long bmc__alloc_fail_after(long n);

/* How many allocations have failed on this thread so far: lets code behind a third-party API
 * that folds every failure into one message (stb_image) tell out-of-memory from bad input. */
unsigned long bmc__alloc_failures(void);

/* Checked size arithmetic: returns 0 and leaves *out unchanged on overflow. */
int bmc__mul_size(size_t a, size_t b, size_t *out);

#endif /* BMC_ERROR_H */
