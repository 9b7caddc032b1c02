/* test_pool.c - the context's thread pool (lib/pool.h): every task runs exactly once, on a
 * thread index inside the pool, for many job sizes in a row (the spin/sleep hand-over between
 * jobs), with per-thread scratch that threads do not share. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "pool.h"

typedef struct job {
    bmc__pool *pool;
    int threads;
    int counts[1000];   /* runs per task (each task writes only its own slot) */
    int thread_of[1000];
    int bad;
} job;

static void task(void *arg, int t, int thread) {
    job *j = arg;
    j->counts[t]++;
    j->thread_of[t] = thread;
    if (thread < 0 || thread >= j->threads) j->bad = 1;
    /* the thread's scratch is its own: write a marker, spin a little, check it is intact */
    float *s = bmc__pool_scratch(j->pool, thread);
    if (s) {
        s[0] = (float)t;
        for (volatile int i = 0; i < (t % 7) * 100; i++) {}
        if (s[0] != (float)t) j->bad = 1;
    }
}

static void run_jobs(int threads) {
    bmc__pool *pool = NULL;
    assert_int_equal(bmc__pool_new(threads, 64, &pool), BMC_OK);
    assert_int_equal(bmc__pool_threads(pool), threads < 1 ? 1 : threads);
    static job j;
    int used[8] = {0};
    for (int round = 0; round < 400; round++) {
        int n = (round * 37) % 1000;
        if (round % 50 == 0) { /* now and then let the workers fall asleep */
            struct timespec ts = {0, 2000000};
            nanosleep(&ts, NULL);
        }
        memset(&j, 0, sizeof j);
        j.pool = pool;
        j.threads = bmc__pool_threads(pool);
        bmc__pool_run(pool, task, &j, n);
        assert_false(j.bad);
        for (int t = 0; t < n; t++) {
            assert_int_equal(j.counts[t], 1);
            if (j.thread_of[t] < 8) used[j.thread_of[t]] = 1;
        }
        for (int t = n; t < 1000; t++) assert_int_equal(j.counts[t], 0);
    }
    printf("pool of %d thread(s): 400 jobs of 0..999 tasks; threads seen:", threads);
    for (int i = 0; i < 8; i++)
        if (used[i]) printf(" %d", i);
    printf("\n");
    bmc__pool_free(pool);
}

static void test_pool_1(void **state) { (void)state; run_jobs(1); }
static void test_pool_2(void **state) { (void)state; run_jobs(2); }
static void test_pool_5(void **state) { (void)state; run_jobs(5); }

static void test_null_pool(void **state) {
    (void)state;
    static job j;
    memset(&j, 0, sizeof j);
    j.threads = 1;
    assert_int_equal(bmc__pool_threads(NULL), 1);
    assert_null(bmc__pool_scratch(NULL, 0));
    bmc__pool_run(NULL, task, &j, 17);
    for (int t = 0; t < 17; t++) {
        assert_int_equal(j.counts[t], 1);
        assert_int_equal(j.thread_of[t], 0);
    }
    bmc__pool_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_1), cmocka_unit_test(test_pool_2),
        cmocka_unit_test(test_pool_5), cmocka_unit_test(test_null_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
