/* serve.h - `biomedclip serve` (docs/SERVER.md): an HTTP embedding and zero-shot service over
 * the public API. The pieces:
 *   serve.c       the command: options, model, worker threads and their queue, signals
 *   serve_http.c  libmicrohttpd (the only file that includes it): one thread per connection,
 *                 routing, limits, API key, metrics
 *   serve_api.c   the endpoints: JSON requests in, JSON responses out (the only file with cJSON)
 *   serve_util.c  base64, data URIs, image size sniffing, BMP thumbnails
 * A connection thread parses its request, puts encode jobs on the bounded queue and waits; W
 * worker threads, each with its own bmc_ctx over the one shared bmc_model, take jobs off the
 * queue, several of the same kind at once when that makes a larger batch. */
#ifndef BMC_CLI_SERVE_H
#define BMC_CLI_SERVE_H

#include <pthread.h>
#include <stddef.h>

#include "biomedclip.h"
#include "index_store.h"

/* Limits (flags and defaults in serve.c and docs/SERVER.md). */
typedef struct srv_limits {
    size_t max_body;      /* bytes of one request body */
    int max_texts;        /* texts in one request (inputs, labels) */
    int max_images;       /* images in one request */
    long long max_pixels; /* width * height of one image */
    int timeout_s;        /* idle connection timeout, and longest wait in the queue */
    int queue_cap;        /* jobs waiting for a worker */
    int max_conn;         /* open connections (each has a thread) */
    int batch;            /* most items of one modality encoded in one call */
} srv_limits;

/* An encoded image as received (bytes of a PNG, JPEG, DICOM, ...). */
typedef struct srv_blob {
    unsigned char *data;
    size_t size;
} srv_blob;

enum { JOB_TEXTS, JOB_IMAGES };
enum { JOB_QUEUED, JOB_RUNNING, JOB_DONE };

/* One unit of work for a worker: encode n texts or n images into out[n * dim] (unit rows). */
typedef struct srv_job {
    int kind;
    int n;
    const char *const *texts;   /* JOB_TEXTS */
    const srv_blob *images;     /* JOB_IMAGES */
    float *out;
    int state;                  /* JOB_QUEUED -> JOB_RUNNING -> JOB_DONE (under srv.lock) */
    int http_status;            /* 0: done; else the HTTP status of the failure */
    char error[512];
    double t_queued;
    struct srv_job *next;
} srv_job;

/* Endpoints, for metrics. */
enum {
    EP_EMBEDDINGS, EP_CLASSIFY, EP_SEARCH, EP_TOKENIZE, EP_HEALTH, EP_METRICS, EP_MODELS,
    EP_PAGE, EP_THUMBNAIL, EP_OTHER, EP_COUNT
};
#define SRV_N_BUCKETS 12
#define SRV_MAX_CODES 16

typedef struct srv_metrics {
    long codes[EP_COUNT][SRV_MAX_CODES][2]; /* (status, count) pairs, status 0 = unused */
    long hist[EP_COUNT][SRV_N_BUCKETS + 1];  /* latency buckets (+Inf last) */
    double hist_sum[EP_COUNT];
    long items[2], batches[2];              /* by JOB_TEXTS / JOB_IMAGES */
} srv_metrics;

typedef struct srv {
    /* configuration */
    srv_limits lim;
    const char *api_key;     /* NULL: no key */
    const char *cors;        /* --cors ORIGIN: allowed cross-origin caller, or NULL */
    const char *model_path;
    char model_id[128];      /* the model file's base name without .bmc */
    const char *index_dir;
    int workers, threads;
    /* state, set once loading finishes (ready == 1) */
    bmc_model *model;
    int dim;
    idx_store index;
    int has_index;
    char **sorted_paths;     /* the index's paths, sorted (thumbnails are served for these only) */
    volatile int ready;      /* 0 loading, 1 serving (read without the lock: set once) */
    /* queue and workers */
    pthread_mutex_t lock;
    pthread_cond_t work_cv, done_cv;
    srv_job *head, *tail;
    int queued;              /* jobs in the queue */
    int in_flight;           /* requests past their body (for draining) */
    int busy;                /* workers running jobs */
    int draining, stopping;
    pthread_t *worker_threads;
    int n_started;
    srv_metrics m;
    double t_start;
} srv;

/* serve.c: the queue. Submit n jobs atomically; returns 0, or -1 when the queue has no room for
 * them (the caller answers 503). Wait for them: 0 when all are done, -1 when the wait passed the
 * timeout while some were still queued (those are withdrawn; running ones are waited for). */
int srv_submit(srv *s, srv_job **jobs, int n);
int srv_wait(srv *s, srv_job **jobs, int n);
double srv_now(void);

/* serve_http.c */
struct MHD_Daemon;
struct MHD_Daemon *srv_http_start(srv *s, const char *host, int port, int *bound_port);
void srv_http_quiesce(struct MHD_Daemon *d); /* stop accepting connections */
void srv_http_stop(struct MHD_Daemon *d);    /* close every connection and stop; NULL-safe */
void srv_metrics_record(srv *s, int endpoint, int status, double seconds);

/* serve_api.c: each returns the HTTP status and sets *body (malloc'd JSON text, or a payload)
 * and *type (the Content-Type, static). */
typedef struct srv_request {
    int endpoint;
    const char *content_type; /* as sent; may be NULL */
    const unsigned char *body;
    size_t body_len;
    /* query-string arguments for raw image uploads (classify, search) */
    const char *q_labels, *q_template, *q_top_k;
} srv_request;

typedef struct srv_response {
    int status;
    char *body; /* malloc'd */
    size_t len;
    const char *type;
    int retry_after; /* > 0: add a Retry-After header */
} srv_response;

void srv_api_embeddings(srv *s, const srv_request *rq, srv_response *rs);
void srv_api_classify(srv *s, const srv_request *rq, srv_response *rs);
void srv_api_search(srv *s, const srv_request *rq, srv_response *rs);
void srv_api_tokenize(srv *s, const srv_request *rq, srv_response *rs);
void srv_api_models(srv *s, srv_response *rs);
void srv_api_health(srv *s, srv_response *rs);
void srv_api_metrics(srv *s, srv_response *rs);
void srv_api_thumbnail(srv *s, const char *file, srv_response *rs);
int srv_sort_paths(srv *s); /* fills s->sorted_paths; -1 when out of memory */
/* {"error": {"message": MSG, "type": TYPE}} with the status; the type follows the status. */
void srv_error(srv_response *rs, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* serve_util.c */
/* Decode standard base64 (RFC 4648, padding optional, no other characters; whitespace is not
 * allowed). Returns a malloc'd buffer (size in *out_len) or NULL: *bad set to 1 when the text
 * is not base64, 0 when memory ran out. */
unsigned char *srv_b64_decode(const char *s, size_t len, size_t *out_len, int *bad);
/* Encode n bytes; returns a malloc'd NUL-terminated string or NULL. */
char *srv_b64_encode(const unsigned char *p, size_t n);
/* Split a data URI "data:[<mediatype>][;base64],<data>": 0 and the base64 payload (start,
 * length) when it is a base64 data URI, -1 otherwise. */
int srv_data_uri(const char *uri, const char **payload, size_t *len);
/* Width and height from the header of a PNG, JPEG, GIF or BMP without decoding; 0 when found,
 * -1 for other formats (then only the decoder's own limits apply before decoding). */
int srv_image_size(const unsigned char *p, size_t n, long long *w, long long *h);
/* A 24-bit BMP of a w x h RGB image; malloc'd, size in *len. */
unsigned char *srv_bmp(const unsigned char *rgb, int w, int h, size_t *len);

/* The page (generated from serve_page.html at build time). */
extern unsigned char serve_page_html[];  /* xxd -i serve_page.html */
extern unsigned int serve_page_html_len;

#endif /* BMC_CLI_SERVE_H */
