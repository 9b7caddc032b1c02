/* pool.c - the context's thread pool (pool.h).
 *
 * A job (function, argument, task count) is written into one of two slots, then published by
 * storing a new ticket: the job's generation in the high 32 bits, the next unclaimed task in the
 * low 32. A thread claims a task by a compare-and-swap that also checks the generation, so a
 * worker that wakes up late, after the job it saw is over, claims nothing from the next one
 * with the wrong slot. The caller waits for the job's tasks to be done, not for every worker to
 * have looked at it: a worker that the OS has descheduled (a busy machine) holds up a job only
 * if it is in the middle of one of its tasks.
 *
 * Idle workers spin on the ticket for a short while (a forward pass issues a job every 0.05-2
 * ms, so a worker usually finds the next one before it would sleep) and then sleep on a
 * condition variable, so an idle pool costs nothing. */
#include "pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

#include "error.h"
#include "profile.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

/* polls of the ticket before sleeping (a pause each, then a yield each): tens of microseconds */
#define SPIN_PAUSE 4000
#define SPIN_YIELD 50

typedef struct worker {
    struct bmc__pool *pool;
    int index;
    pthread_t thread;
} worker;

/* Atomic fields: a worker that woke up late may read a slot while the caller refills it for a
 * later job; it then fails to claim a task (the generation check) and uses nothing it read. */
typedef struct job {
    _Atomic(bmc__task_fn) fn;
    _Atomic(void *) arg;
    atomic_int n_tasks;
    atomic_int prof_depth; /* the caller's profile depth, which its tasks start at (profile.h) */
} job;

struct bmc__pool {
    int n;                    /* threads, the caller included */
    worker *workers;          /* [n - 1] */
    float *scratch;           /* [n][stride], 64-byte aligned */
    size_t stride;            /* floats of scratch per thread, a multiple of 16 */
    void *scratch_block;      /* the allocation scratch lies in */
    pthread_mutex_t mu;
    pthread_cond_t wake;      /* workers: a new ticket generation (or stop) */
    pthread_cond_t idle;      /* caller: the job's last task is done */
    job slots[2];             /* job of generation g is slots[g & 1] */
    _Atomic uint64_t ticket;  /* generation << 32 | next unclaimed task */
    atomic_int done;          /* tasks of the current job finished */
    atomic_int caller_asleep; /* the caller waits on `idle` */
    atomic_int stop;
};

static uint32_t ticket_gen(uint64_t t) { return (uint32_t)(t >> 32); }

/* Claim and run tasks of generation g until none is left. */
static void run_tasks(struct bmc__pool *p, uint32_t g, int thread) {
    job *j = &p->slots[g & 1];
    uint64_t t = atomic_load_explicit(&p->ticket, memory_order_acquire);
    for (;;) {
        int n = atomic_load_explicit(&j->n_tasks, memory_order_relaxed);
        if (ticket_gen(t) != g || (int)(uint32_t)t >= n) return;
        bmc__task_fn fn = atomic_load_explicit(&j->fn, memory_order_relaxed);
        void *arg = atomic_load_explicit(&j->arg, memory_order_relaxed);
        /* success: generation g is still the current job, so what was read belongs to it */
        if (!atomic_compare_exchange_weak_explicit(&p->ticket, &t, t + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue; /* t was reloaded */
        int depth = BMC__PROF_SET_DEPTH(atomic_load_explicit(&j->prof_depth, memory_order_relaxed));
        fn(arg, (int)(uint32_t)t, thread);
        (void)BMC__PROF_SET_DEPTH(depth);
        if (atomic_fetch_add_explicit(&p->done, 1, memory_order_seq_cst) + 1 == n &&
            atomic_load_explicit(&p->caller_asleep, memory_order_seq_cst)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->idle);
            pthread_mutex_unlock(&p->mu);
        }
        t = atomic_load_explicit(&p->ticket, memory_order_acquire);
    }
}

static void *worker_main(void *arg) {
    worker *w = arg;
    struct bmc__pool *p = w->pool;
    uint32_t seen = 0;
    for (;;) {
        uint32_t g = ticket_gen(atomic_load_explicit(&p->ticket, memory_order_acquire));
        for (int i = 0; i < SPIN_PAUSE + SPIN_YIELD && g == seen; i++) {
            if (i < SPIN_PAUSE) CPU_RELAX();
            else sched_yield();
            g = ticket_gen(atomic_load_explicit(&p->ticket, memory_order_acquire));
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            while ((g = ticket_gen(atomic_load_explicit(&p->ticket, memory_order_acquire))) ==
                       seen &&
                   !atomic_load(&p->stop))
                pthread_cond_wait(&p->wake, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) break;
        seen = g;
        run_tasks(p, g, w->index);
    }
    return NULL;
}

int bmc__pool_threads(const bmc__pool *pool) { return pool ? pool->n : 1; }

float *bmc__pool_scratch(bmc__pool *pool, int thread) {
    return pool ? pool->scratch + (size_t)thread * pool->stride : NULL;
}

size_t bmc__pool_scratch_floats(const bmc__pool *pool) { return pool ? pool->stride : 0; }

void bmc__pool_run(bmc__pool *p, bmc__task_fn fn, void *arg, int n_tasks) {
    if (n_tasks <= 0) return;
    if (!p || p->n == 1 || n_tasks == 1) {
        for (int t = 0; t < n_tasks; t++) fn(arg, t, 0);
        return;
    }
    /* the previous job is over (every task done), so nobody reads this slot any more */
    uint32_t g = ticket_gen(atomic_load_explicit(&p->ticket, memory_order_relaxed)) + 1;
    job *j = &p->slots[g & 1];
    atomic_store_explicit(&j->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&j->arg, arg, memory_order_relaxed);
    atomic_store_explicit(&j->n_tasks, n_tasks, memory_order_relaxed);
    atomic_store_explicit(&j->prof_depth, BMC__PROF_DEPTH(), memory_order_relaxed);
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    atomic_store_explicit(&p->ticket, (uint64_t)g << 32, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    run_tasks(p, g, 0);
    /* every task is claimed; wait for those still running on workers */
    for (int i = 0; i < SPIN_PAUSE + SPIN_YIELD; i++) {
        if (atomic_load_explicit(&p->done, memory_order_acquire) == n_tasks) return;
        if (i < SPIN_PAUSE) CPU_RELAX();
        else sched_yield();
    }
    pthread_mutex_lock(&p->mu);
    atomic_store_explicit(&p->caller_asleep, 1, memory_order_seq_cst);
    while (atomic_load_explicit(&p->done, memory_order_seq_cst) != n_tasks)
        pthread_cond_wait(&p->idle, &p->mu);
    atomic_store_explicit(&p->caller_asleep, 0, memory_order_relaxed);
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
    pthread_cond_destroy(&p->idle);
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
    if (!bmc__mul_size(p->stride * sizeof(float), (size_t)threads, &bytes) ||
        bytes > SIZE_MAX - 64) {
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
    pthread_cond_init(&p->idle, NULL);
    atomic_init(&p->ticket, 0);
    atomic_init(&p->done, 0);
    atomic_init(&p->caller_asleep, 0);
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
