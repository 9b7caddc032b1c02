/* pool.c - the context's thread pool (pool.h).
 *
 * A job is published by bumping a generation counter; idle workers first spin on it for a short
 * while (a forward pass issues a job every 0.1-2 ms, so a worker usually finds the next one
 * before it would sleep) and then sleep on a condition variable, so an idle pool costs nothing.
 * Tasks are claimed with an atomic counter; the last worker to finish wakes the caller if it
 * went to sleep. */
#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

/* pause iterations before sleeping: some tens of microseconds */
#define SPIN_LIMIT 20000

typedef struct worker {
    struct bmc__pool *pool;
    int index;
    pthread_t thread;
} worker;

struct bmc__pool {
    int n;                    /* threads, the caller included */
    worker *workers;          /* [n - 1] */
    float *scratch;           /* [n][stride], 64-byte aligned */
    size_t stride;            /* floats of scratch per thread, a multiple of 16 */
    void *scratch_block;      /* the allocation scratch lies in */
    pthread_mutex_t mu;
    pthread_cond_t wake;      /* workers: a new generation (or stop) */
    pthread_cond_t done;      /* caller: busy dropped to 0 */
    /* the current job; written by the caller before the generation is bumped */
    bmc__task_fn fn;
    void *arg;
    int n_tasks;
    atomic_int next;          /* next unclaimed task */
    atomic_int busy;          /* workers that have not finished the current job */
    atomic_uint gen;          /* job generation */
    atomic_int stop;
};

static void run_tasks(struct bmc__pool *p, int thread) {
    for (;;) {
        int t = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (t >= p->n_tasks) break;
        p->fn(p->arg, t, thread);
    }
}

static void *worker_main(void *arg) {
    worker *w = arg;
    struct bmc__pool *p = w->pool;
    unsigned seen = 0;
    for (;;) {
        unsigned g = atomic_load_explicit(&p->gen, memory_order_acquire);
        for (int i = 0; i < SPIN_LIMIT && g == seen; i++) {
            CPU_RELAX();
            g = atomic_load_explicit(&p->gen, memory_order_acquire);
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen &&
                   !atomic_load(&p->stop))
                pthread_cond_wait(&p->wake, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) break;
        seen = g;
        run_tasks(p, w->index);
        if (atomic_fetch_sub_explicit(&p->busy, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

int bmc__pool_threads(const bmc__pool *pool) { return pool ? pool->n : 1; }

float *bmc__pool_scratch(bmc__pool *pool, int thread) {
    return pool ? pool->scratch + (size_t)thread * pool->stride : NULL;
}

void bmc__pool_run(bmc__pool *p, bmc__task_fn fn, void *arg, int n_tasks) {
    if (n_tasks <= 0) return;
    if (!p || p->n == 1 || n_tasks == 1) {
        for (int t = 0; t < n_tasks; t++) fn(arg, t, 0);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    p->n_tasks = n_tasks;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    atomic_store_explicit(&p->busy, p->n - 1, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    run_tasks(p, 0);
    /* every task is claimed; wait until the workers are out of theirs */
    for (int i = 0; i < SPIN_LIMIT; i++) {
        if (atomic_load_explicit(&p->busy, memory_order_acquire) == 0) return;
        CPU_RELAX();
    }
    pthread_mutex_lock(&p->mu);
    while (atomic_load_explicit(&p->busy, memory_order_acquire) != 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

static void pool_stop(struct bmc__pool *p, int started) {
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < started; i++) pthread_join(p->workers[i].thread, NULL);
}

static void pool_destroy(struct bmc__pool *p) {
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->mu);
    bmc__free(p->scratch_block);
    bmc__free(p->workers);
    bmc__free(p);
}

bmc_status bmc__pool_new(int threads, size_t scratch_floats, bmc__pool **out) {
    *out = NULL;
    if (threads < 1) threads = 1;
    if (threads > BMC__POOL_MAX) threads = BMC__POOL_MAX;
    struct bmc__pool *p = bmc__calloc(1, sizeof *p);
    if (!p) return bmc__fail(BMC_E_NOMEM, "thread pool: cannot allocate");
    p->n = threads;
    p->stride = (scratch_floats + 15) & ~(size_t)15;
    size_t bytes = 0;
    if (!bmc__mul_size(p->stride * sizeof(float), (size_t)threads, &bytes) || bytes > SIZE_MAX - 64) {
        bmc__free(p);
        return bmc__fail(BMC_E_NOMEM, "thread pool: scratch of %zu floats per thread is too large",
                         scratch_floats);
    }
    p->workers = bmc__calloc((size_t)threads, sizeof *p->workers);
    p->scratch_block = bmc__malloc(bytes + 64);
    if (!p->workers || !p->scratch_block) {
        bmc__free(p->workers);
        bmc__free(p->scratch_block);
        bmc__free(p);
        return bmc__fail(BMC_E_NOMEM, "thread pool: cannot allocate scratch for %d threads",
                         threads);
    }
    p->scratch = (float *)(((uintptr_t)p->scratch_block + 63) & ~(uintptr_t)63);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->next, 0);
    atomic_init(&p->busy, 0);
    atomic_init(&p->gen, 0);
    atomic_init(&p->stop, 0);
    for (int i = 0; i < threads - 1; i++) {
        p->workers[i].pool = p;
        p->workers[i].index = i + 1;
        if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]) != 0) {
            pool_stop(p, i);
            pool_destroy(p);
            return bmc__fail(BMC_E_NOMEM, "thread pool: cannot start thread %d of %d", i + 2,
                             threads);
        }
    }
    *out = p;
    return BMC_OK;
}

void bmc__pool_free(bmc__pool *p) {
    if (!p) return;
    pool_stop(p, p->n - 1);
    pool_destroy(p);
}
