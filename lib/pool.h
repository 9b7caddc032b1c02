/* pool.h - a small persistent thread pool, owned by one context (no global state).
 *
 * bmc__pool_run(pool, fn, arg, n) calls fn(arg, task, thread) once for every task in [0, n),
 * spread over the pool's threads (the caller is thread 0 and works too), and returns when all
 * are done. Tasks are handed out one at a time from a shared counter, so a thread that the OS
 * preempts delays only its current task. What a task computes must not depend on which thread
 * runs it (the kernels write disjoint outputs), so results are the same for any thread count.
 * A NULL pool, or one of 1 thread, runs every task in the caller; code that needs per-thread
 * scratch allocates its own when given a NULL pool (the unit tests' path). */
#ifndef BMC_POOL_H
#define BMC_POOL_H

#include <stddef.h>

#include "biomedclip.h"

typedef struct bmc__pool bmc__pool;

/* fn(arg, task, thread): thread is in [0, bmc__pool_threads(pool)), for per-thread scratch. */
typedef void (*bmc__task_fn)(void *arg, int task, int thread);

/* The largest pool. */
#define BMC__POOL_MAX 64
/* A pool of `threads` threads in all (the caller included: threads - 1 are started; 1 or less
 * starts none, but the pool still holds the caller's scratch), each with `scratch_floats` floats
 * of private scratch (64-byte aligned): the packed keys and a block of scores of one attention
 * task (attention.c). */
bmc_status bmc__pool_new(int threads, size_t scratch_floats, bmc__pool **out);
void bmc__pool_free(bmc__pool *pool); /* NULL-safe; joins the threads */

int bmc__pool_threads(const bmc__pool *pool); /* 1 for NULL */

/* Thread `thread`'s scratch; NULL for a NULL pool. */
float *bmc__pool_scratch(bmc__pool *pool, int thread);
/* Floats of each thread's scratch (at least what bmc__pool_new was given); 0 for a NULL pool. */
size_t bmc__pool_scratch_floats(const bmc__pool *pool);

void bmc__pool_run(bmc__pool *pool, bmc__task_fn fn, void *arg, int n_tasks);

#endif /* BMC_POOL_H */
