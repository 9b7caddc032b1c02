/* serve.c - `biomedclip serve`: options, loading, the job queue and its worker threads, and the
 * SIGTERM drain. HTTP is in serve_http.c, the endpoints in serve_api.c (docs/SERVER.md). */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "serve.h"

static const char usage_text[] =
    "usage: biomedclip serve [-m MODEL] [--host 127.0.0.1] [--port 8080] [--index INDEX]\n"
    "                        [--threads N] [--workers W] [--api-key KEY] [limits...]\n"
    "\n"
    "An HTTP service: OpenAI-style /v1/embeddings for texts and images, /classify (zero-shot),\n"
    "/search (with --index), /tokenize, /health, /metrics, /v1/models, and a page at /\n"
    "(docs/SERVER.md). Stops on SIGTERM or SIGINT after answering the requests it holds.\n"
    "\n"
    "  -m, --model MODEL      .bmc model file (default: $BIOMEDCLIP_MODEL)\n"
    "  --host HOST            address to listen on (default 127.0.0.1: this machine only)\n"
    "  --port PORT            TCP port (default 8080; 0: any free port, printed at start)\n"
    "  --index INDEX          an index made by `biomedclip index`, for /search and the page\n"
    "  --workers W            worker contexts sharing the model (default 1)\n"
    "  --threads N            threads per worker (default: the cores divided among workers)\n"
    "  --api-key KEY          require `Authorization: Bearer KEY` (or `X-API-Key: KEY`);\n"
    "                         default: $BIOMEDCLIP_API_KEY, else no key\n"
    "  --cors ORIGIN          let web pages of ORIGIN (https://app.example.org, or *) call\n"
    "                         the API from a browser (CORS headers, OPTIONS preflight)\n"
    "  --batch N              most texts or images encoded in one call, gathered from\n"
    "                         concurrent requests (default 8; 1: no batching across requests)\n"
    "  --max-body BYTES       largest request body (default 33554432, 32 MiB)\n"
    "  --max-texts N          texts (inputs or labels) in one request (default 2048)\n"
    "  --max-images N         images in one request (default 16)\n"
    "  --max-pixels N         width x height of one image (default 40000000)\n"
    "  --timeout S            seconds a connection may stay idle (a slow client) and a request\n"
    "                         may wait in the queue (default 30)\n"
    "  --queue N              requests waiting for a worker before 503 (default 64)\n"
    "  --max-connections N    open connections, one thread each (default 64)\n"
    "\n"
    "Exit status: 0 stopped by a signal, 1 could not listen or start, 2 bad command line,\n"
    "3 model not loadable.\n";

double srv_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* ---- the queue -------------------------------------------------------------------------- */

int srv_submit(srv *s, srv_job **jobs, int n) {
    pthread_mutex_lock(&s->lock);
    if (s->queued + n > s->lim.queue_cap || s->stopping) {
        pthread_mutex_unlock(&s->lock);
        return -1;
    }
    double t = srv_now();
    for (int i = 0; i < n; i++) {
        srv_job *j = jobs[i];
        j->state = JOB_QUEUED, j->http_status = 0, j->error[0] = '\0', j->t_queued = t, j->next = NULL;
        if (s->tail) s->tail->next = j;
        else s->head = j;
        s->tail = j;
        s->queued++;
    }
    pthread_cond_broadcast(&s->work_cv);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

/* Remove j from the queue (lock held). */
static void unlink_job(srv *s, srv_job *j) {
    srv_job **p = &s->head, *prev = NULL;
    while (*p && *p != j) prev = *p, p = &(*p)->next;
    if (!*p) return;
    *p = j->next;
    if (s->tail == j) s->tail = prev;
    j->next = NULL;
    s->queued--;
}

int srv_wait(srv *s, srv_job **jobs, int n) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += s->lim.timeout_s;
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        int pending = 0, queued = 0;
        for (int i = 0; i < n; i++) {
            pending += jobs[i]->state != JOB_DONE;
            queued += jobs[i]->state == JOB_QUEUED;
        }
        if (!pending) break;
        if (rc == -1 && !queued) {
            /* withdrawn what was queued; wait for the running ones without a deadline */
            pthread_cond_wait(&s->done_cv, &s->lock);
            continue;
        }
        if (pthread_cond_timedwait(&s->done_cv, &s->lock, &deadline) == ETIMEDOUT && queued) {
            for (int i = 0; i < n; i++)
                if (jobs[i]->state == JOB_QUEUED) {
                    unlink_job(s, jobs[i]);
                    jobs[i]->state = JOB_DONE;
                    jobs[i]->http_status = 503;
                    snprintf(jobs[i]->error, sizeof jobs[i]->error,
                             "timed out after %d s waiting for a worker", s->lim.timeout_s);
                }
            rc = -1;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* ---- workers ---------------------------------------------------------------------------- */

typedef struct worker {
    srv *s;
    int id;
    bmc_ctx *ctx;
} worker;

/* Take the first job and, behind it, other queued jobs of the same kind while the items fit in
 * one batch (lock held). Returns the number taken into got[]. */
static int take_jobs(srv *s, srv_job **got, int max_jobs) {
    srv_job *first = s->head;
    int n = 0, items = first->n;
    unlink_job(s, first);
    got[n++] = first;
    for (srv_job *j = s->head, *next; j && n < max_jobs; j = next) {
        next = j->next;
        if (j->kind != first->kind || items + j->n > s->lim.batch) continue;
        unlink_job(s, j);
        got[n++] = j;
        items += j->n;
    }
    for (int i = 0; i < n; i++) got[i]->state = JOB_RUNNING;
    return n;
}

static void job_fail(srv_job *j, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void job_fail(srv_job *j, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    j->http_status = status;
    vsnprintf(j->error, sizeof j->error, fmt, ap);
    va_end(ap);
}

/* Encode the texts of jobs[0..n) together, `batch` at a time. */
static void run_texts(worker *w, srv_job **jobs, int n) {
    srv *s = w->s;
    int total = 0;
    for (int i = 0; i < n; i++) total += jobs[i]->n;
    const char **texts = malloc((size_t)(total ? total : 1) * sizeof *texts);
    float *emb = malloc((size_t)(total ? total : 1) * s->dim * sizeof *emb);
    if (!texts || !emb) {
        for (int i = 0; i < n; i++) job_fail(jobs[i], 500, "out of memory");
        free(texts), free(emb);
        return;
    }
    int k = 0;
    for (int i = 0; i < n; i++)
        for (int t = 0; t < jobs[i]->n; t++) texts[k++] = jobs[i]->texts[t];
    int ok = 1;
    for (int start = 0; start < total && ok; start += s->lim.batch) {
        int count = total - start < s->lim.batch ? total - start : s->lim.batch;
        ok = bmc_encode_text(w->ctx, texts + start, count, emb + (size_t)start * s->dim, 1) == BMC_OK;
    }
    if (ok) {
        k = 0;
        for (int i = 0; i < n; i++) {
            memcpy(jobs[i]->out, emb + (size_t)k * s->dim, (size_t)jobs[i]->n * s->dim * sizeof *emb);
            k += jobs[i]->n;
        }
    } else {
        for (int i = 0; i < n; i++) job_fail(jobs[i], 500, "encoding the texts: %s", bmc_last_error());
    }
    pthread_mutex_lock(&s->lock);
    s->m.items[JOB_TEXTS] += ok ? total : 0;
    s->m.batches[JOB_TEXTS] += ok ? (total + s->lim.batch - 1) / s->lim.batch : 0;
    pthread_mutex_unlock(&s->lock);
    free(texts), free(emb);
}

/* Decode the images of jobs[0..n) (a job fails as a whole on its first bad image), then encode
 * every decoded image together. */
static void run_images(worker *w, srv_job **jobs, int n) {
    srv *s = w->s;
    int total = 0;
    for (int i = 0; i < n; i++) total += jobs[i]->n;
    bmc_image *images = calloc((size_t)(total ? total : 1), sizeof *images);
    int *owner = malloc((size_t)(total ? total : 1) * 2 * sizeof *owner), *item = owner + total;
    float *emb = malloc((size_t)(total ? total : 1) * s->dim * sizeof *emb);
    if (!images || !owner || !emb) {
        for (int i = 0; i < n; i++) job_fail(jobs[i], 500, "out of memory");
        free(images), free(owner), free(emb);
        return;
    }
    int loaded = 0;
    for (int i = 0; i < n; i++) {
        srv_job *j = jobs[i];
        int first = loaded;
        for (int t = 0; t < j->n && !j->http_status; t++) {
            const srv_blob *b = &j->images[t];
            long long iw, ih;
            if (srv_image_size(b->data, b->size, &iw, &ih) == 0 && iw * ih > s->lim.max_pixels) {
                job_fail(j, 413, "image %d: %lld x %lld = %lld pixels, more than --max-pixels %lld; "
                         "refused before decoding", t, iw, ih, iw * ih, s->lim.max_pixels);
                break;
            }
            bmc_image *im = &images[loaded];
            if (bmc_image_load_memory(b->data, b->size, BMC_DECODE_DEFAULT, im) != BMC_OK) {
                job_fail(j, 400, "image %d: cannot decode: %s", t, bmc_last_error());
                break;
            }
            owner[loaded] = i, item[loaded++] = t;
            if ((long long)im->width * im->height > s->lim.max_pixels)
                job_fail(j, 413, "image %d: %d x %d pixels, more than --max-pixels %lld", t,
                         im->width, im->height, s->lim.max_pixels);
        }
        if (j->http_status) { /* drop this job's images */
            for (int r = first; r < loaded; r++) bmc_image_free(&images[r]);
            loaded = first;
        }
    }
    int ok = 1;
    for (int start = 0; start < loaded && ok; start += s->lim.batch) {
        int count = loaded - start < s->lim.batch ? loaded - start : s->lim.batch;
        ok = bmc_encode_image(w->ctx, images + start, count, emb + (size_t)start * s->dim, 1) == BMC_OK;
    }
    if (!ok) { /* find the image that fails: one at a time */
        ok = 1;
        for (int r = 0; r < loaded; r++) {
            srv_job *j = jobs[owner[r]];
            if (j->http_status) continue;
            if (bmc_encode_image(w->ctx, &images[r], 1, emb + (size_t)r * s->dim, 1) != BMC_OK)
                job_fail(j, 400, "image %d: %s", item[r], bmc_last_error());
        }
    }
    int row = 0;
    for (int i = 0; i < n; i++) {
        srv_job *j = jobs[i];
        int count = 0;
        while (row + count < loaded && owner[row + count] == i) count++;
        if (!j->http_status)
            memcpy(j->out, emb + (size_t)row * s->dim, (size_t)count * s->dim * sizeof *emb);
        row += count;
    }
    for (int r = 0; r < loaded; r++) bmc_image_free(&images[r]);
    pthread_mutex_lock(&s->lock);
    s->m.items[JOB_IMAGES] += loaded;
    s->m.batches[JOB_IMAGES] += (loaded + s->lim.batch - 1) / s->lim.batch;
    pthread_mutex_unlock(&s->lock);
    free(images), free(owner), free(emb);
}

static void *worker_main(void *arg) {
    worker *w = arg;
    srv *s = w->s;
    int cap = s->lim.batch > 0 ? s->lim.batch : 1;
    srv_job **got = malloc((size_t)cap * sizeof *got);
    if (!got) return NULL;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->head && !s->stopping) pthread_cond_wait(&s->work_cv, &s->lock);
        if (!s->head) break; /* stopping and nothing left */
        int n = take_jobs(s, got, cap);
        s->busy++;
        pthread_mutex_unlock(&s->lock);
        if (got[0]->kind == JOB_TEXTS) run_texts(w, got, n);
        else run_images(w, got, n);
        pthread_mutex_lock(&s->lock);
        for (int i = 0; i < n; i++) got[i]->state = JOB_DONE;
        s->busy--;
        pthread_cond_broadcast(&s->done_cv);
    }
    pthread_mutex_unlock(&s->lock);
    free(got);
    return NULL;
}

/* ---- the command ------------------------------------------------------------------------ */

static int parse_ll(const char *opt, const char *v, long long min, long long *out) {
    char *end = NULL;
    errno = 0;
    long long x = v ? strtoll(v, &end, 10) : 0;
    if (!v || errno || end == v || *end || x < min) {
        fprintf(stderr, "biomedclip serve: %s wants an integer >= %lld, got '%s'\n", opt, min,
                v ? v : "");
        return -1;
    }
    *out = x;
    return 0;
}

int cli_serve(int argc, char **argv) {
    const char *model_opt = NULL, *host = "127.0.0.1", *port_opt = NULL, *body_opt = NULL,
               *pixels_opt = NULL, *key_opt = NULL;
    long long port = 8080, x;
    srv *s = calloc(1, sizeof *s);
    if (!s) return CLI_EXIT_FAILURE;
    s->lim = (srv_limits){.max_body = 32u << 20, .max_texts = 2048, .max_images = 16,
                          .max_pixels = 40000000, .timeout_s = 30, .queue_cap = 64,
                          .max_conn = 64, .batch = 8};
    s->workers = 1;
    s->api_key = getenv("BIOMEDCLIP_API_KEY");
    if (s->api_key && !*s->api_key) s->api_key = NULL;
    worker *ws = NULL;
    struct MHD_Daemon *d = NULL;

    const cli_option opts[] = {
        CLI_OPT_MODEL(&model_opt),
        CLI_OPT_THREADS(&s->threads),
        CLI_OPT_BATCH(&s->lim.batch),
        {"--host", NULL, CLI_STRING, &host, 0, NULL, NULL},
        {"--port", NULL, CLI_STRING, &port_opt, 0, NULL, NULL},
        {"--index", NULL, CLI_STRING, &s->index_dir, 0, NULL, NULL},
        {"--api-key", NULL, CLI_STRING, &key_opt, 0, NULL, NULL},
        {"--cors", NULL, CLI_STRING, &s->cors, 0, NULL, NULL},
        {"--workers", NULL, CLI_INT, &s->workers, 0, NULL, NULL},
        {"--max-body", NULL, CLI_STRING, &body_opt, 0, NULL, NULL},
        {"--max-texts", NULL, CLI_INT, &s->lim.max_texts, 0, NULL, NULL},
        {"--max-images", NULL, CLI_INT, &s->lim.max_images, 0, NULL, NULL},
        {"--max-pixels", NULL, CLI_STRING, &pixels_opt, 0, NULL, NULL},
        {"--timeout", NULL, CLI_INT, &s->lim.timeout_s, 0, NULL, NULL},
        {"--queue", NULL, CLI_INT, &s->lim.queue_cap, 0, NULL, NULL},
        {"--max-connections", NULL, CLI_INT, &s->lim.max_conn, 0, NULL, NULL},
        {0}};
    int rc = cli_parse("serve", usage_text, opts, argc, argv);
    if (rc != CLI_GO_ON) {
        free(s);
        return rc;
    }
    rc = CLI_EXIT_USAGE;
    if (key_opt) s->api_key = *key_opt ? key_opt : NULL;
    /* the three whose range an int option cannot express: a port may be 0, sizes exceed 2^31 */
    if (port_opt && parse_ll("--port", port_opt, 0, &port)) goto done;
    if (body_opt) {
        if (parse_ll("--max-body", body_opt, 1, &x)) goto done;
        s->lim.max_body = (size_t)x;
    }
    if (pixels_opt && parse_ll("--max-pixels", pixels_opt, 1, &s->lim.max_pixels)) goto done;
    if (port > 65535 || s->workers > 256 || s->lim.batch > 1024) {
        fprintf(stderr, "biomedclip serve: --port at most 65535, --workers 256, --batch 1024\n");
        goto done;
    }
    s->model_path = cli_model_path(model_opt);
    if (!s->model_path) {
        fprintf(stderr, "biomedclip: no model: pass -m MODEL or set BIOMEDCLIP_MODEL\n");
        goto done;
    }
    {
        const char *base = strrchr(s->model_path, '/');
        base = base ? base + 1 : s->model_path;
        snprintf(s->model_id, sizeof s->model_id, "%s", base);
        size_t l = strlen(s->model_id);
        if (l > 4 && !strcmp(s->model_id + l - 4, ".bmc")) s->model_id[l - 4] = '\0';
    }

    /* Request bodies, decoded images and responses are large and short-lived, and each connection
     * has its own thread: with glibc's default the mmap threshold rises after the first large free,
     * and later large blocks are then kept in per-thread arenas, so the resident size would grow
     * with the number of concurrent connections. A fixed threshold maps and unmaps them. */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    /* Signals go to the thread that waits for them below, never to a worker or connection. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->work_cv, NULL);
    pthread_cond_init(&s->done_cv, NULL);
    s->t_start = srv_now();

    /* Listen first, so that /health answers 503 while the model and the index load. */
    rc = CLI_EXIT_FAILURE;
    int bound = 0;
    if (!(d = srv_http_start(s, host, (int)port, &bound))) goto done;
    fprintf(stderr, "biomedclip serve: listening on http://%s%s%s:%d\n", strchr(host, ':') ? "[" : "",
            host, strchr(host, ':') ? "]" : "", bound);

    rc = CLI_EXIT_MODEL;
    if (!(s->model = cli_load_model(s->model_path))) goto done;
    rc = CLI_EXIT_FAILURE;
    s->dim = bmc_model_embed_dim(s->model);
    if (s->index_dir) {
        if (idx_open_read(&s->index, s->index_dir)) goto done;
        s->has_index = 1;
        if (srv_sort_paths(s)) goto done;
        if (s->index.dim != s->dim) {
            fprintf(stderr, "biomedclip serve: %s holds %d-d embeddings but the model makes %d-d ones\n",
                    s->index_dir, s->index.dim, s->dim);
            goto done;
        }
    }
    /* One worker with every core by default: the shortest time for each request, and concurrent
     * requests are batched together; one context per core (--workers N --threads 1) measured no
     * faster here (docs/PERF.md, "HTTP server"). */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1) cores = 1;
    if (s->threads <= 0) s->threads = cores / s->workers > 0 ? (int)(cores / s->workers) : 1;
    ws = calloc((size_t)s->workers, sizeof *ws);
    s->worker_threads = calloc((size_t)s->workers, sizeof *s->worker_threads);
    if (!ws || !s->worker_threads) goto done;
    bmc_ctx_params cp = bmc_ctx_default_params();
    cp.n_threads = s->threads;
    if (s->lim.batch > cp.max_batch) cp.max_batch = s->lim.batch;
    for (int i = 0; i < s->workers; i++) {
        ws[i].s = s, ws[i].id = i;
        if (bmc_ctx_new(s->model, &cp, &ws[i].ctx) != BMC_OK) {
            fprintf(stderr, "biomedclip serve: %s\n", bmc_last_error());
            goto done;
        }
    }
    for (int i = 0; i < s->workers; i++) {
        if (pthread_create(&s->worker_threads[i], NULL, worker_main, &ws[i])) {
            fprintf(stderr, "biomedclip serve: cannot start worker %d\n", i);
            goto done;
        }
        s->n_started++;
    }
    __atomic_store_n(&s->ready, 1, __ATOMIC_RELEASE);
    fprintf(stderr, "biomedclip serve: ready (%s, %d worker%s x %d thread%s%s%s)\n", s->model_id,
            s->workers, s->workers > 1 ? "s" : "", s->threads, s->threads > 1 ? "s" : "",
            s->has_index ? ", index " : "", s->has_index ? s->index_dir : "");

    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "biomedclip serve: %s: draining\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    /* Drain: stop accepting, answer the requests already received, then stop. */
    pthread_mutex_lock(&s->lock);
    s->draining = 1;
    pthread_mutex_unlock(&s->lock);
    srv_http_quiesce(d);
    pthread_mutex_lock(&s->lock);
    while (s->in_flight > 0) pthread_cond_wait(&s->done_cv, &s->lock);
    pthread_mutex_unlock(&s->lock);
    rc = CLI_EXIT_OK;

done:
    srv_http_stop(d);
    if (s->worker_threads) {
        pthread_mutex_lock(&s->lock);
        s->stopping = 1;
        pthread_cond_broadcast(&s->work_cv);
        pthread_mutex_unlock(&s->lock);
        for (int i = 0; i < s->n_started; i++) pthread_join(s->worker_threads[i], NULL);
    }
    if (ws)
        for (int i = 0; i < s->workers; i++) bmc_ctx_free(ws[i].ctx);
    free(ws), free(s->worker_threads);
    free(s->sorted_paths);
    idx_close(&s->index);
    bmc_model_free(s->model);
    if (rc == CLI_EXIT_OK) fprintf(stderr, "biomedclip serve: stopped\n");
    if (rc != CLI_EXIT_USAGE) {
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->work_cv);
        pthread_cond_destroy(&s->done_cv);
    }
    free(s);
    return rc;
}
