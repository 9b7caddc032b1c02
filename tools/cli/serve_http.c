/* serve_http.c - the HTTP side of `biomedclip serve`, on libmicrohttpd: one thread per connection
 * (MHD_USE_THREAD_PER_CONNECTION), so that a connection thread may parse its request and then
 * block until the workers have encoded it, while the other connections go on. Everything a
 * request can be refused for before its body is read (unknown endpoint, method, API key,
 * Content-Type, Content-Length) is answered at once, and MHD then closes the connection without
 * reading the body. */
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "serve.h"

typedef struct conn_req {
    int endpoint;
    unsigned char *buf; /* the body received so far */
    size_t len, cap;
    double t0;
    int in_flight; /* counted in srv.in_flight until MHD reports the response sent */
} conn_req;

static const struct {
    const char *path, *method;
    int endpoint;
} routes[] = {
    {"/v1/embeddings", "POST", EP_EMBEDDINGS}, {"/embeddings", "POST", EP_EMBEDDINGS},
    {"/classify", "POST", EP_CLASSIFY},        {"/search", "POST", EP_SEARCH},
    {"/tokenize", "POST", EP_TOKENIZE},        {"/health", "GET", EP_HEALTH},
    {"/metrics", "GET", EP_METRICS},           {"/v1/models", "GET", EP_MODELS},
    {"/models", "GET", EP_MODELS},             {"/", "GET", EP_PAGE},
    {"/index.html", "GET", EP_PAGE},           {"/thumbnail", "GET", EP_THUMBNAIL},
};

static const double bucket_le[SRV_N_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                0.5,   1,    2.5,   5,    10,  30};

void srv_metrics_record(srv *s, int ep, int status, double seconds) {
    pthread_mutex_lock(&s->lock);
    for (int k = 0; k < SRV_MAX_CODES; k++) {
        long *e = s->m.codes[ep][k];
        if (e[0] == status || e[0] == 0) {
            e[0] = status, e[1]++;
            break;
        }
    }
    int b = 0;
    while (b < SRV_N_BUCKETS && seconds > bucket_le[b]) b++;
    s->m.hist[ep][b]++;
    s->m.hist_sum[ep] += seconds;
    pthread_mutex_unlock(&s->lock);
}

static enum MHD_Result send_response(struct MHD_Connection *c, srv *s, conn_req *r,
                                     srv_response *rs, const char *allow) {
    struct MHD_Response *resp;
    if (r->endpoint == EP_PAGE && rs->status == 200)
        resp = MHD_create_response_from_buffer(rs->len, rs->body, MHD_RESPMEM_PERSISTENT);
    else
        resp = MHD_create_response_from_buffer(rs->len, rs->body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        if (!(r->endpoint == EP_PAGE && rs->status == 200)) free(rs->body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, rs->type);
    if (rs->retry_after > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", rs->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, v);
    }
    if (rs->status == 401) MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (allow) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    if (r->endpoint != EP_THUMBNAIL) MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (s->cors) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_ORIGIN, s->cors);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Origin");
        if (rs->status == 204) {
            MHD_add_response_header(resp, "Access-Control-Allow-Methods", allow ? allow : "GET, POST");
            MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                    "Authorization, Content-Type, X-API-Key");
            MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
            allow = NULL;
        }
    }
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)rs->status, resp);
    MHD_destroy_response(resp);
    srv_metrics_record(s, r->endpoint, rs->status, srv_now() - r->t0);
    return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *c, srv *s, conn_req *r, int status,
                                  const char *allow, int retry_after, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
static enum MHD_Result send_error(struct MHD_Connection *c, srv *s, conn_req *r, int status,
                                  const char *allow, int retry_after, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    srv_response rs = {0};
    srv_error(&rs, status, "%s", msg);
    rs.retry_after = retry_after;
    return send_response(c, s, r, &rs, allow);
}

/* Compare without an early exit, so that the time taken does not tell how much of a guessed key
 * was right. */
static int key_equal(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = la != lb;
    for (size_t i = 0; i < la; i++) diff |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
    return diff == 0;
}

/* 0 when the request carries the key, else the message for the 401. */
static const char *check_key(srv *s, struct MHD_Connection *c) {
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *xkey = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-API-Key");
    const char *got = NULL;
    if (auth && !strncasecmp(auth, "Bearer ", 7)) got = auth + 7;
    else if (xkey) got = xkey;
    if (!got) return "missing API key: send `Authorization: Bearer KEY`";
    return key_equal(got, s->api_key) ? NULL : "invalid API key";
}

/* The media type of the request, lowercased and without parameters, into buf ("" if none). */
static const char *media_type(struct MHD_Connection *c, char *buf, size_t size) {
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    size_t n = 0;
    if (ct) {
        while (*ct == ' ') ct++;
        while (ct[n] && ct[n] != ';' && ct[n] != ' ' && n + 1 < size) {
            buf[n] = (char)(ct[n] >= 'A' && ct[n] <= 'Z' ? ct[n] + 32 : ct[n]);
            n++;
        }
    }
    buf[n] = '\0';
    return buf;
}

static int is_image_type(const char *mt) {
    return !strncmp(mt, "image/", 6) || !strcmp(mt, "application/dicom") ||
           !strcmp(mt, "application/octet-stream");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
    srv *s = cls;
    conn_req *r = *con_cls;
    if (!r) {
        if (!(r = calloc(1, sizeof *r))) return MHD_NO;
        *con_cls = r;
        r->t0 = srv_now();
        r->endpoint = EP_OTHER;
        const char *want = NULL;
        for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
            if (!strcmp(url, routes[i].path)) r->endpoint = routes[i].endpoint, want = routes[i].method;
        if (!want) return send_error(c, s, r, 404, NULL, 0, "no endpoint %.200s (see GET / and docs/SERVER.md)", url);
        int is_get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
        if (s->cors && !strcmp(method, "OPTIONS")) { /* a browser's preflight: no key needed */
            srv_response rs = {.status = 204, .type = "text/plain"};
            return send_response(c, s, r, &rs, want);
        }
        if (strcmp(method, want) && !(is_get && !strcmp(want, "GET")))
            return send_error(c, s, r, 405, !strcmp(want, "GET") ? "GET, HEAD" : want, 0,
                              "%s wants %s, not %.20s", url, want, method);
        if (s->api_key && r->endpoint != EP_PAGE && r->endpoint != EP_HEALTH) {
            const char *why = check_key(s, c);
            if (why) return send_error(c, s, r, 401, NULL, 0, "%s", why);
        }
        if (r->endpoint != EP_PAGE && r->endpoint != EP_HEALTH && r->endpoint != EP_METRICS &&
            !__atomic_load_n(&s->ready, __ATOMIC_ACQUIRE))
            return send_error(c, s, r, 503, NULL, 1, "the model is loading");
        if (!strcmp(want, "POST")) {
            char mt[128];
            media_type(c, mt, sizeof mt);
            int json = !*mt || !strcmp(mt, "application/json");
            int raw_ok = r->endpoint == EP_CLASSIFY || r->endpoint == EP_SEARCH;
            if (!json && !(raw_ok && is_image_type(mt)))
                return send_error(c, s, r, 415, NULL, 0, "Content-Type %.100s is not accepted here: send application/json%s",
                                  mt, raw_ok ? ", or an image as image/*, application/dicom or application/octet-stream" : "");
            const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
            if (cl) {
                char *end;
                errno = 0;
                unsigned long long n = strtoull(cl, &end, 10);
                if (errno || *end || n > s->lim.max_body)
                    return send_error(c, s, r, 413, NULL, 0, "body of %.30s bytes is larger than --max-body %zu",
                                      cl, s->lim.max_body);
                if (n && !(r->buf = malloc(n))) return send_error(c, s, r, 503, NULL, 1, "out of memory");
                r->cap = n;
            }
        }
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        if (r->len + n > s->lim.max_body) return MHD_NO; /* chunked past the limit: close */
        if (r->len + n > r->cap) {
            size_t cap = r->cap ? r->cap : 65536;
            while (cap < r->len + n) cap *= 2;
            if (cap > s->lim.max_body) cap = s->lim.max_body;
            unsigned char *p = realloc(r->buf, cap);
            if (!p) return MHD_NO;
            r->buf = p, r->cap = cap;
        }
        memcpy(r->buf + r->len, upload, n);
        r->len += n;
        *upload_size = 0;
        return MHD_YES;
    }

    /* the whole request is here */
    pthread_mutex_lock(&s->lock);
    int draining = s->draining;
    if (!draining) s->in_flight++, r->in_flight = 1;
    pthread_mutex_unlock(&s->lock);
    if (draining) return send_error(c, s, r, 503, NULL, 1, "shutting down");

    srv_response rs = {0};
    srv_request rq = {.endpoint = r->endpoint, .body = r->buf, .body_len = r->len};
    char mt[128];
    rq.content_type = media_type(c, mt, sizeof mt);
    rq.q_labels = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "labels");
    rq.q_template = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "template");
    rq.q_top_k = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "top_k");
    switch (r->endpoint) {
    case EP_EMBEDDINGS: srv_api_embeddings(s, &rq, &rs); break;
    case EP_CLASSIFY: srv_api_classify(s, &rq, &rs); break;
    case EP_SEARCH: srv_api_search(s, &rq, &rs); break;
    case EP_TOKENIZE: srv_api_tokenize(s, &rq, &rs); break;
    case EP_HEALTH: srv_api_health(s, &rs); break;
    case EP_METRICS: srv_api_metrics(s, &rs); break;
    case EP_MODELS: srv_api_models(s, &rs); break;
    case EP_THUMBNAIL: {
        const char *file = NULL;
        size_t flen = 0;
        /* a name with a NUL byte in it (%00) names no file of the index */
        if (MHD_lookup_connection_value_n(c, MHD_GET_ARGUMENT_KIND, "file", 4, &file, &flen) != MHD_YES ||
            !file || strlen(file) != flen)
            file = NULL;
        srv_api_thumbnail(s, file, &rs);
        break;
    }
    case EP_PAGE:
        rs.status = 200, rs.body = (char *)serve_page_html, rs.len = serve_page_html_len;
        rs.type = "text/html; charset=utf-8";
        break;
    }
    return send_response(c, s, r, &rs, NULL);
}

/* Called once the response has been sent (or the connection failed): only then may a draining
 * server stop, or it would close connections with their responses still unsent. */
static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode code) {
    srv *s = cls;
    conn_req *r = *con_cls;
    if (r && r->in_flight) {
        pthread_mutex_lock(&s->lock);
        s->in_flight--;
        pthread_cond_broadcast(&s->done_cv);
        pthread_mutex_unlock(&s->lock);
    }
    if (r) free(r->buf), free(r);
    *con_cls = NULL;
}

struct MHD_Daemon *srv_http_start(srv *s, const char *host, int port, int *bound_port) {
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char ports[16];
    snprintf(ports, sizeof ports, "%d", port);
    int g = getaddrinfo(host, ports, &hints, &ai);
    if (g) {
        fprintf(stderr, "biomedclip serve: --host %s: %s\n", host, gai_strerror(g));
        return NULL;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                     MHD_USE_ITC;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, s,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)s->lim.timeout_s,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)s->lim.max_conn,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
        MHD_OPTION_END);
    int err = errno;
    freeaddrinfo(ai);
    if (!d) {
        fprintf(stderr, "biomedclip serve: cannot listen on %s:%d: %s\n", host, port, strerror(err));
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    *bound_port = info ? info->port : port;
    return d;
}

void srv_http_quiesce(struct MHD_Daemon *d) { MHD_quiesce_daemon(d); }

void srv_http_stop(struct MHD_Daemon *d) {
    if (d) MHD_stop_daemon(d);
}
