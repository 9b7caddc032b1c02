/* prefetch.h - a reader thread one batch ahead of the model (embed-slide, classify, index):
 * it fills batch b + 1 into one of two slots while the caller encodes batch b from the other,
 * so the towers do not wait for decoding. Batches are filled and handed over in order. */
#ifndef BMC_CLI_PREFETCH_H
#define BMC_CLI_PREFETCH_H

#include <pthread.h>

/* Fills batch b into slot (b & 1), on the reader thread. Returns 0 when the slot is ready, non-zero
 * when the run cannot go on: the caller sees the batch as failed and the reader stops. */
typedef int (*cli_prefetch_fill)(void *user, long long b, int slot);

typedef struct cli_prefetch {
    cli_prefetch_fill fill;
    void *user;
    long long first, end; /* batches [first, end) */
    int state[2], stop, started, sync_init;
    double cpu_s;         /* the reader thread's CPU time, once stopped */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t th;
} cli_prefetch;

/* Starts the reader on batches [first, end) (no thread when there are none). 0, or -1 when the
 * thread cannot be started. *p is ready for cli_prefetch_stop either way. */
int cli_prefetch_start(cli_prefetch *p, long long first, long long end, cli_prefetch_fill fill, void *user);
/* Waits until batch b (the next one in order) is filled: 0 ready, -1 its fill failed. */
int cli_prefetch_wait(cli_prefetch *p, long long b);
/* The caller is done with batch b: its slot may take batch b + 2. */
void cli_prefetch_release(cli_prefetch *p, long long b);
/* Stops the reader (after the batch it is filling) and joins it; sets cpu_s. Safe to call twice
 * and after a failed start. */
void cli_prefetch_stop(cli_prefetch *p);

#endif /* BMC_CLI_PREFETCH_H */
