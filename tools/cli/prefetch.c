/* prefetch.c - the reader thread of prefetch.h: two slots, each FREE (the reader may fill it),
 * READY or FAILED (the caller takes it), under one mutex and condition variable. */
#include <string.h>
#include <time.h>

#include "prefetch.h"

enum { SLOT_FREE, SLOT_READY, SLOT_FAILED };

static void *reader_main(void *arg) {
    cli_prefetch *p = arg;
    for (long long b = p->first; b < p->end; b++) {
        int s = (int)(b & 1);
        pthread_mutex_lock(&p->mu);
        while (p->state[s] != SLOT_FREE && !p->stop) pthread_cond_wait(&p->cv, &p->mu);
        int stop = p->stop;
        pthread_mutex_unlock(&p->mu);
        if (stop) break;
        int state = p->fill(p->user, b, s) == 0 ? SLOT_READY : SLOT_FAILED;
        pthread_mutex_lock(&p->mu);
        p->state[s] = state;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        if (state == SLOT_FAILED) break;
    }
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    p->cpu_s = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
    return NULL;
}

int cli_prefetch_start(cli_prefetch *p, long long first, long long end, cli_prefetch_fill fill, void *user) {
    memset(p, 0, sizeof *p);
    p->fill = fill, p->user = user, p->first = first, p->end = end;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->sync_init = 1;
    if (first >= end) return 0;
    if (pthread_create(&p->th, NULL, reader_main, p) != 0) return -1;
    p->started = 1;
    return 0;
}

int cli_prefetch_wait(cli_prefetch *p, long long b) {
    int s = (int)(b & 1);
    pthread_mutex_lock(&p->mu);
    while (p->state[s] == SLOT_FREE) pthread_cond_wait(&p->cv, &p->mu);
    int state = p->state[s];
    pthread_mutex_unlock(&p->mu);
    return state == SLOT_READY ? 0 : -1;
}

void cli_prefetch_release(cli_prefetch *p, long long b) {
    pthread_mutex_lock(&p->mu);
    p->state[b & 1] = SLOT_FREE;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void cli_prefetch_stop(cli_prefetch *p) {
    if (p->started) {
        pthread_mutex_lock(&p->mu);
        p->stop = 1;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->th, NULL);
        p->started = 0;
    }
    if (p->sync_init) {
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
        p->sync_init = 0;
    }
}
