/* serve_api.c - the endpoints of `biomedclip serve` (docs/SERVER.md): requests parsed with cJSON,
 * encoding done by the workers through the queue (serve.c), responses built with cJSON. Numbers
 * are printed with %.9g, as the CLI's --json output, so that the two agree to the last digit. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "serve.h"

/* ---- responses -------------------------------------------------------------------------- */

static const char *error_type(int status) {
    switch (status) {
    case 401: return "authentication_error";
    case 404: return "not_found_error";
    case 503: return "overloaded_error";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

void srv_error(srv_response *rs, int status, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    free(rs->body);
    rs->body = NULL;
    rs->status = status;
    rs->type = "application/json";
    if (status == 503 && !rs->retry_after) rs->retry_after = 1;
    cJSON *root = cJSON_CreateObject(), *err = cJSON_AddObjectToObject(root, "error");
    if (err) {
        cJSON_AddStringToObject(err, "message", msg);
        cJSON_AddStringToObject(err, "type", error_type(status));
    }
    rs->body = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!rs->body) rs->body = strdup("{\"error\": {\"message\": \"out of memory\", \"type\": \"server_error\"}}");
    rs->len = rs->body ? strlen(rs->body) : 0;
}

/* Send root as the 200 response (takes ownership of root). */
static void reply_json(srv_response *rs, cJSON *root) {
    char *text = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text) {
        srv_error(rs, 500, "out of memory");
        return;
    }
    rs->status = 200, rs->body = text, rs->len = strlen(text), rs->type = "application/json";
}

/* The end of a JSON handler: out is sent as the 200 response unless the handler set an error
 * (out, perhaps half built, is then dropped); root is freed either way. */
static void finish_json(srv_response *rs, cJSON *out, cJSON *root) {
    if (rs->status) cJSON_Delete(out);
    else reply_json(rs, out);
    cJSON_Delete(root);
}

/* A JSON array of n floats printed %.9g, added raw (cJSON would print them as doubles). */
static cJSON *float_array(const float *v, int n) {
    char *buf = malloc((size_t)n * 18 + 3), *p = buf;
    if (!buf) return NULL;
    *p++ = '[';
    for (int i = 0; i < n; i++) p += sprintf(p, i ? ",%.9g" : "%.9g", (double)v[i]);
    *p++ = ']', *p = '\0';
    cJSON *raw = cJSON_CreateRaw(buf);
    free(buf);
    return raw;
}

/* ---- requests --------------------------------------------------------------------------- */

/* cJSON records the position of a parse error in a process-wide variable even in the variant
 * that returns it: parse under a lock so that concurrent requests do not race on it. */
static pthread_mutex_t parse_lock = PTHREAD_MUTEX_INITIALIZER;

static cJSON *parse_object(const srv_request *rq, srv_response *rs) {
    if (!rq->body_len) {
        srv_error(rs, 400, "empty body: send a JSON object");
        return NULL;
    }
    const char *end = NULL;
    pthread_mutex_lock(&parse_lock);
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)rq->body, rq->body_len, &end, 0);
    pthread_mutex_unlock(&parse_lock);
    if (!root) {
        size_t at = end ? (size_t)(end - (const char *)rq->body) : 0;
        srv_error(rs, 400, "malformed JSON at byte %zu of %zu", at, rq->body_len);
        return NULL;
    }
    /* cJSON stops at the end of the first value: anything but white space after it is an error */
    for (const char *p = end; p && p < (const char *)rq->body + rq->body_len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            srv_error(rs, 400, "malformed JSON: text after the value at byte %zu",
                      (size_t)(p - (const char *)rq->body));
            cJSON_Delete(root);
            return NULL;
        }
    if (!cJSON_IsObject(root)) {
        srv_error(rs, 400, "the body must be a JSON object");
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* 0 when every member of obj is one of the names (NULL-terminated), else a 400. */
static int known_fields(const cJSON *obj, const char *const *names, srv_response *rs) {
    for (const cJSON *m = obj->child; m; m = m->next) {
        int ok = 0;
        for (int i = 0; names[i] && !ok; i++) ok = !strcmp(m->string, names[i]);
        if (!ok) {
            char list[256] = "";
            for (int i = 0; names[i]; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", names[i]);
            srv_error(rs, 400, "unknown field \"%.100s\" (known: %s)", m->string, list);
            return -1;
        }
    }
    return 0;
}

/* A positive integer field; def when absent. -1 and a 400 when it is something else. */
static int int_field(const cJSON *obj, const char *name, long def, long max, long *out, srv_response *rs) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > max || v->valuedouble != floor(v->valuedouble)) {
        srv_error(rs, 400, "\"%s\" must be an integer from 1 to %ld", name, max);
        return -1;
    }
    *out = (long)v->valuedouble;
    return 0;
}

/* A field that is absent, null, a or b: *is_b = 1 for b, else 0. -1 and a 400 when it is
 * something else. */
static int choice_field(const cJSON *obj, const char *name, const char *a, const char *b, int *is_b,
                        srv_response *rs) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    *is_b = 0;
    if (!v || cJSON_IsNull(v)) return 0;
    if (cJSON_IsString(v) && !strcmp(v->valuestring, b)) *is_b = 1;
    else if (!cJSON_IsString(v) || strcmp(v->valuestring, a)) {
        srv_error(rs, 400, "\"%s\" must be \"%s\" or \"%s\"", name, a, b);
        return -1;
    }
    return 0;
}

/* Decode an image given as a data URI into b. -1 and a 400 when it is not one. */
static int decode_data_uri(const char *uri, int item, srv_blob *b, srv_response *rs) {
    const char *payload;
    size_t len;
    if (srv_data_uri(uri, &payload, &len)) {
        if (!strncmp(uri, "http://", 7) || !strncmp(uri, "https://", 8))
            srv_error(rs, 400, "image %d: URLs are not fetched; send the image as a data URI "
                      "(data:image/png;base64,...)", item);
        else
            srv_error(rs, 400, "image %d: not a base64 data URI (data:image/png;base64,...)", item);
        return -1;
    }
    int bad = 0;
    b->data = srv_b64_decode(payload, len, &b->size, &bad);
    if (!b->data) {
        if (bad) srv_error(rs, 400, "image %d: invalid base64 in the data URI", item);
        else srv_error(rs, 503, "out of memory");
        return -1;
    }
    if (!b->size) {
        srv_error(rs, 400, "image %d: empty image", item);
        return -1;
    }
    return 0;
}

/* The request's body, a copy, as the image's bytes. -1 and an error response when it is empty
 * or memory runs out. */
static int body_image(const srv_request *rq, srv_blob *b, srv_response *rs) {
    if (!rq->body_len) {
        srv_error(rs, 400, "empty body: send the image's bytes");
        return -1;
    }
    if (!(b->data = malloc(rq->body_len))) {
        srv_error(rs, 503, "out of memory");
        return -1;
    }
    memcpy(b->data, rq->body, rq->body_len);
    b->size = rq->body_len;
    return 0;
}

/* Submit jobs and wait for them; 0 when all succeeded, else the error response is set. */
static int run_jobs(srv *s, srv_job **jobs, int n, srv_response *rs) {
    if (srv_submit(s, jobs, n)) {
        srv_error(rs, 503, "the queue is full (%d requests waiting); retry later", s->lim.queue_cap);
        return -1;
    }
    srv_wait(s, jobs, n);
    for (int i = 0; i < n; i++)
        if (jobs[i]->http_status) {
            srv_error(rs, jobs[i]->http_status, "%s", jobs[i]->error);
            return -1;
        }
    return 0;
}

/* ---- /v1/embeddings --------------------------------------------------------------------- */

void srv_api_embeddings(srv *s, const srv_request *rq, srv_response *rs) {
    static const char *const fields[] = {"input", "model", "encoding_format", "dimensions", "user",
                                         "modality", NULL};
    cJSON *root = parse_object(rq, rs), *out = NULL;
    const char **texts = NULL;
    srv_blob *blobs = NULL;
    float *emb = NULL;
    int n = 0, images = 0, b64 = 0;
    if (!root || known_fields(root, fields, rs)) goto done;
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(root, "input");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *dims = cJSON_GetObjectItemCaseSensitive(root, "dimensions");
    const cJSON *user = cJSON_GetObjectItemCaseSensitive(root, "user");
    if (model && !cJSON_IsString(model) && !cJSON_IsNull(model)) {
        srv_error(rs, 400, "\"model\" must be a string");
        goto done;
    }
    if (user && !cJSON_IsString(user)) {
        srv_error(rs, 400, "\"user\" must be a string");
        goto done;
    }
    if (choice_field(root, "encoding_format", "float", "base64", &b64, rs)) goto done;
    if (dims && !cJSON_IsNull(dims) && (!cJSON_IsNumber(dims) || dims->valuedouble != s->dim)) {
        srv_error(rs, 400, "\"dimensions\": this model's embeddings have %d dimensions", s->dim);
        goto done;
    }
    if (choice_field(root, "modality", "text", "image", &images, rs)) goto done;
    if (!input) {
        srv_error(rs, 400, "missing \"input\": a string or a list of strings");
        goto done;
    }
    if (cJSON_IsString(input)) {
        n = 1;
    } else if (cJSON_IsArray(input)) {
        n = cJSON_GetArraySize(input);
        for (const cJSON *e = input->child; e; e = e->next)
            if (!cJSON_IsString(e)) {
                srv_error(rs, 400, "\"input\" must be a string or a list of strings%s",
                          cJSON_IsNumber(e) || cJSON_IsArray(e) ? " (token ids are not accepted)" : "");
                goto done;
            }
        if (n == 0) {
            srv_error(rs, 400, "\"input\" is an empty list");
            goto done;
        }
    } else {
        srv_error(rs, 400, "\"input\" must be a string or a list of strings");
        goto done;
    }
    int max = images ? s->lim.max_images : s->lim.max_texts;
    if (n > max) {
        srv_error(rs, 400, "%d %s in one request; at most %d (%s)", n, images ? "images" : "texts",
                  max, images ? "--max-images" : "--max-texts");
        goto done;
    }
    texts = calloc((size_t)n, sizeof *texts);
    emb = malloc((size_t)n * s->dim * sizeof *emb);
    if (images) blobs = calloc((size_t)n, sizeof *blobs);
    if (!texts || !emb || (images && !blobs)) {
        srv_error(rs, 503, "out of memory");
        goto done;
    }
    {
        int k = 0;
        if (cJSON_IsString(input)) texts[k++] = input->valuestring;
        else
            for (const cJSON *e = input->child; e; e = e->next) texts[k++] = e->valuestring;
    }
    long tokens = 0;
    if (images) {
        for (int i = 0; i < n; i++)
            if (decode_data_uri(texts[i], i, &blobs[i], rs)) goto done;
    } else {
        int ids[BMC_MAX_TOKENS];
        for (int i = 0; i < n; i++) {
            int nt = 0;
            if (bmc_tokenize(s->model, texts[i], ids, BMC_MAX_TOKENS, &nt) == BMC_OK) tokens += nt;
        }
    }
    srv_job job = {.kind = images ? JOB_IMAGES : JOB_TEXTS, .n = n, .texts = texts, .images = blobs, .out = emb};
    srv_job *jp = &job;
    if (run_jobs(s, &jp, 1, rs)) goto done;

    out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(out, "data");
    for (int i = 0; i < n && data; i++) {
        cJSON *item = cJSON_CreateObject();
        if (!item || !cJSON_AddItemToArray(data, item)) goto oom;
        cJSON_AddStringToObject(item, "object", "embedding");
        cJSON_AddNumberToObject(item, "index", i);
        const float *e = emb + (size_t)i * s->dim;
        if (b64) {
            /* little-endian float32, as OpenAI's encoding_format "base64" */
            unsigned char *le = malloc((size_t)s->dim * 4);
            if (!le) goto oom;
            for (int k = 0; k < s->dim; k++) {
                uint32_t u;
                memcpy(&u, &e[k], 4);
                le[4 * k] = (unsigned char)u, le[4 * k + 1] = (unsigned char)(u >> 8);
                le[4 * k + 2] = (unsigned char)(u >> 16), le[4 * k + 3] = (unsigned char)(u >> 24);
            }
            char *txt = srv_b64_encode(le, (size_t)s->dim * 4);
            free(le);
            if (!txt) goto oom;
            cJSON_AddStringToObject(item, "embedding", txt);
            free(txt);
        } else {
            cJSON *arr = float_array(e, s->dim);
            if (!arr) goto oom;
            cJSON_AddItemToObject(item, "embedding", arr);
        }
    }
    cJSON_AddStringToObject(out, "model", s->model_id);
    cJSON *usage = cJSON_AddObjectToObject(out, "usage");
    cJSON_AddNumberToObject(usage, "prompt_tokens", (double)tokens);
    cJSON_AddNumberToObject(usage, "total_tokens", (double)tokens);
done:
    finish_json(rs, out, root);
    if (blobs)
        for (int i = 0; i < n; i++) free(blobs[i].data);
    free(blobs), free(texts), free(emb);
    return;
oom:
    srv_error(rs, 503, "out of memory");
    goto done;
}

/* ---- /classify -------------------------------------------------------------------------- */

#define DEFAULT_TEMPLATE "this is a photo of "

void srv_api_classify(srv *s, const srv_request *rq, srv_response *rs) {
    static const char *const fields[] = {"image", "labels", "template", NULL};
    cJSON *root = NULL, *out = NULL;
    cli_paths labels = {0}; /* a comma-separated list is split as `classify --labels` splits it */
    char **prompts = NULL;
    int n = 0;
    srv_blob blob = {0};
    float *text_emb = NULL, *img_emb = NULL, *probs = NULL;
    const char *template = DEFAULT_TEMPLATE;
    int max = s->lim.max_texts;
    if (!strcmp(rq->content_type, "application/json") || !*rq->content_type) {
        if (!(root = parse_object(rq, rs)) || known_fields(root, fields, rs)) goto done;
        const cJSON *image = cJSON_GetObjectItemCaseSensitive(root, "image");
        const cJSON *lab = cJSON_GetObjectItemCaseSensitive(root, "labels");
        const cJSON *tpl = cJSON_GetObjectItemCaseSensitive(root, "template");
        if (!cJSON_IsString(image)) {
            srv_error(rs, 400, "missing \"image\": a data URI (data:image/png;base64,...)");
            goto done;
        }
        if (tpl && !cJSON_IsNull(tpl)) {
            if (!cJSON_IsString(tpl)) {
                srv_error(rs, 400, "\"template\" must be a string");
                goto done;
            }
            template = tpl->valuestring;
        }
        if (cJSON_IsString(lab)) {
            if (cli_labels_split(&labels, lab->valuestring)) goto oom;
            if (labels.n > max) goto too_many;
        } else if (cJSON_IsArray(lab)) {
            for (const cJSON *e = lab->child; e; e = e->next) {
                if (!cJSON_IsString(e) || !*e->valuestring) {
                    srv_error(rs, 400, "\"labels\" must be non-empty strings");
                    goto done;
                }
                if (labels.n >= max) goto too_many;
                if (cli_paths_push(&labels, strdup(e->valuestring))) goto oom;
            }
        } else {
            srv_error(rs, 400, "missing \"labels\": a list of strings (or one comma-separated string)");
            goto done;
        }
        if (decode_data_uri(image->valuestring, 0, &blob, rs)) goto done;
    } else {
        if (rq->q_labels && cli_labels_split(&labels, rq->q_labels)) goto oom;
        if (labels.n > max) goto too_many;
        if (rq->q_template) template = rq->q_template;
        if (body_image(rq, &blob, rs)) goto done;
    }
    n = labels.n;
    if (n == 0) {
        srv_error(rs, 400, "no labels: send \"labels\" (JSON) or ?labels=a,b,c");
        goto done;
    }
    prompts = cli_prompts(template, &labels);
    text_emb = malloc((size_t)n * s->dim * sizeof *text_emb);
    img_emb = malloc((size_t)s->dim * sizeof *img_emb);
    probs = malloc((size_t)n * sizeof *probs);
    if (!prompts || !text_emb || !img_emb || !probs) goto oom;
    srv_job tj = {.kind = JOB_TEXTS, .n = n, .texts = (const char *const *)prompts, .out = text_emb};
    srv_job ij = {.kind = JOB_IMAGES, .n = 1, .images = &blob, .out = img_emb};
    srv_job *jobs[2] = {&ij, &tj};
    if (run_jobs(s, jobs, 2, rs)) goto done;
    if (bmc_zero_shot_probs(s->model, img_emb, 1, text_emb, n, probs) != BMC_OK) {
        srv_error(rs, 500, "%s", bmc_last_error());
        goto done;
    }
    out = cJSON_CreateObject();
    cJSON *la = cJSON_AddArrayToObject(out, "labels");
    for (int j = 0; j < n && la; j++) cJSON_AddItemToArray(la, cJSON_CreateString(labels.v[j]));
    cJSON *pa = float_array(probs, n);
    if (!out || !la || !pa) {
        cJSON_Delete(pa);
        goto oom;
    }
    cJSON_AddItemToObject(out, "probs", pa);
done:
    finish_json(rs, out, root);
    cli_paths_free(&labels);
    cli_prompts_free(prompts, n);
    free(text_emb), free(img_emb), free(probs), free(blob.data);
    return;
too_many:
    srv_error(rs, 400, "more than %d labels (--max-texts)", max);
    goto done;
oom:
    srv_error(rs, 503, "out of memory");
    goto done;
}

/* ---- /search ---------------------------------------------------------------------------- */

typedef struct hit {
    float score;
    long row;
} hit;

static int by_score_desc(const void *a, const void *b) {
    const hit *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    return x->row < y->row ? -1 : x->row > y->row;
}

void srv_api_search(srv *s, const srv_request *rq, srv_response *rs) {
    static const char *const fields[] = {"text", "image", "top_k", NULL};
    cJSON *root = NULL, *out = NULL;
    srv_blob blob = {0};
    float *q = NULL, *scores = NULL;
    hit *hits = NULL;
    const char *text = NULL;
    long top = 10;
    if (!s->has_index) {
        srv_error(rs, 404, "no index: start the server with --index INDEX");
        return;
    }
    if (!strcmp(rq->content_type, "application/json") || !*rq->content_type) {
        if (!(root = parse_object(rq, rs)) || known_fields(root, fields, rs)) goto done;
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "text");
        const cJSON *im = cJSON_GetObjectItemCaseSensitive(root, "image");
        if (int_field(root, "top_k", 10, 1000000000, &top, rs)) goto done;
        if (!t == !im || (t && !cJSON_IsString(t)) || (im && !cJSON_IsString(im))) {
            srv_error(rs, 400, "give exactly one of \"text\" (a string) and \"image\" (a data URI)");
            goto done;
        }
        if (t) text = t->valuestring;
        else if (decode_data_uri(im->valuestring, 0, &blob, rs)) goto done;
    } else {
        if (rq->q_top_k) {
            char *end;
            top = strtol(rq->q_top_k, &end, 10);
            if (*end || top < 1) {
                srv_error(rs, 400, "top_k must be a positive integer");
                goto done;
            }
        }
        if (body_image(rq, &blob, rs)) goto done;
    }
    long n = s->index.n;
    q = malloc((size_t)s->dim * sizeof *q);
    scores = malloc((size_t)(n ? n : 1) * sizeof *scores);
    hits = malloc((size_t)(n ? n : 1) * sizeof *hits);
    if (!q || !scores || !hits) goto oom;
    srv_job job = {.kind = text ? JOB_TEXTS : JOB_IMAGES, .n = 1, .texts = &text, .images = &blob, .out = q};
    srv_job *jp = &job;
    if (run_jobs(s, &jp, 1, rs)) goto done;
    if (n > 0 && bmc_similarity(q, 1, s->index.emb, (int)n, s->dim, scores) != BMC_OK) {
        srv_error(rs, 500, "%s", bmc_last_error());
        goto done;
    }
    for (long i = 0; i < n; i++) hits[i].score = scores[i], hits[i].row = i;
    qsort(hits, (size_t)n, sizeof *hits, by_score_desc);
    if (!(out = cJSON_CreateArray())) goto oom;
    for (long k = 0; k < top && k < n; k++) {
        cJSON *h = cJSON_CreateObject();
        char num[32];
        if (!h || !cJSON_AddItemToArray(out, h)) goto oom;
        cJSON_AddStringToObject(h, "file", s->index.paths[hits[k].row]);
        snprintf(num, sizeof num, "%.9g", (double)hits[k].score);
        cJSON_AddRawToObject(h, "score", num);
    }
done:
    finish_json(rs, out, root);
    free(blob.data), free(q), free(scores), free(hits);
    return;
oom:
    srv_error(rs, 503, "out of memory");
    goto done;
}

/* ---- /tokenize, /v1/models, /health, /metrics, /thumbnail -------------------------------- */

void srv_api_tokenize(srv *s, const srv_request *rq, srv_response *rs) {
    static const char *const fields[] = {"text", "content", NULL};
    cJSON *root = parse_object(rq, rs), *out = NULL;
    if (!root || known_fields(root, fields, rs)) goto done;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "text");
    if (!t) t = cJSON_GetObjectItemCaseSensitive(root, "content");
    if (!cJSON_IsString(t)) {
        srv_error(rs, 400, "missing \"text\": a string");
        goto done;
    }
    int ids[BMC_MAX_TOKENS], n = 0;
    if (bmc_tokenize(s->model, t->valuestring, ids, BMC_MAX_TOKENS, &n) != BMC_OK) {
        srv_error(rs, 400, "%s", bmc_last_error());
        goto done;
    }
    out = cJSON_CreateObject();
    cJSON_AddItemToObject(out, "tokens", cJSON_CreateIntArray(ids, n));
done:
    finish_json(rs, out, root);
}

void srv_api_models(srv *s, srv_response *rs) {
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(out, "data"), *m = cJSON_CreateObject();
    cJSON_AddItemToArray(data, m);
    cJSON_AddStringToObject(m, "id", s->model_id);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)(time(NULL) - (time_t)(srv_now() - s->t_start)));
    cJSON_AddStringToObject(m, "owned_by", "libbiomedclip");
    cJSON_AddNumberToObject(m, "embed_dim", s->dim);
    cJSON_AddNumberToObject(m, "context_length", bmc_model_context_length(s->model));
    cJSON_AddNumberToObject(m, "image_size", bmc_model_image_size(s->model));
    reply_json(rs, out);
}

void srv_api_health(srv *s, srv_response *rs) {
    cJSON *out = cJSON_CreateObject();
    int ready = __atomic_load_n(&s->ready, __ATOMIC_ACQUIRE);
    cJSON_AddStringToObject(out, "status", ready ? "ok" : "loading");
    if (ready) {
        cJSON_AddStringToObject(out, "model", s->model_id);
        cJSON_AddNumberToObject(out, "embed_dim", s->dim);
        cJSON_AddNumberToObject(out, "index_size", s->has_index ? (double)s->index.n : 0);
        cJSON_AddBoolToObject(out, "index", s->has_index);
        cJSON_AddNumberToObject(out, "workers", s->workers);
    }
    reply_json(rs, out);
    if (!ready) rs->status = 503, rs->retry_after = 1;
}

static const char *const ep_names[EP_COUNT] = {"/v1/embeddings", "/classify", "/search", "/tokenize",
                                               "/health", "/metrics", "/v1/models", "/",
                                               "/thumbnail", "other"};
static const char *const bucket_names[SRV_N_BUCKETS + 1] = {"0.005", "0.01", "0.025", "0.05", "0.1",
                                                            "0.25", "0.5", "1", "2.5", "5",
                                                            "10", "30", "+Inf"};

/* Prometheus text exposition format 0.0.4. */
void srv_api_metrics(srv *s, srv_response *rs) {
    size_t cap = 64 * 1024, len = 0;
    char *b = malloc(cap);
    if (!b) {
        srv_error(rs, 503, "out of memory");
        return;
    }
#define OUT(...) (len += (size_t)snprintf(b + len, len < cap ? cap - len : 0, __VA_ARGS__))
    pthread_mutex_lock(&s->lock);
    srv_metrics m = s->m;
    int queued = s->queued, in_flight = s->in_flight, busy = s->busy;
    pthread_mutex_unlock(&s->lock);
    OUT("# HELP biomedclip_requests_total HTTP requests answered, by endpoint and status.\n"
        "# TYPE biomedclip_requests_total counter\n");
    for (int e = 0; e < EP_COUNT; e++)
        for (int k = 0; k < SRV_MAX_CODES && m.codes[e][k][0]; k++)
            OUT("biomedclip_requests_total{endpoint=\"%s\",status=\"%ld\"} %ld\n", ep_names[e],
                m.codes[e][k][0], m.codes[e][k][1]);
    OUT("# HELP biomedclip_request_duration_seconds Time from the request's headers to its response.\n"
        "# TYPE biomedclip_request_duration_seconds histogram\n");
    for (int e = 0; e < EP_COUNT; e++) {
        long total = 0;
        for (int i = 0; i <= SRV_N_BUCKETS; i++) total += m.hist[e][i];
        if (!total) continue;
        long cum = 0;
        for (int i = 0; i <= SRV_N_BUCKETS; i++) {
            cum += m.hist[e][i];
            OUT("biomedclip_request_duration_seconds_bucket{endpoint=\"%s\",le=\"%s\"} %ld\n",
                ep_names[e], bucket_names[i], cum);
        }
        OUT("biomedclip_request_duration_seconds_sum{endpoint=\"%s\"} %.6f\n", ep_names[e], m.hist_sum[e]);
        OUT("biomedclip_request_duration_seconds_count{endpoint=\"%s\"} %ld\n", ep_names[e], total);
    }
    OUT("# HELP biomedclip_queue_depth Encode jobs waiting for a worker.\n"
        "# TYPE biomedclip_queue_depth gauge\nbiomedclip_queue_depth %d\n"
        "# HELP biomedclip_queue_capacity Jobs the queue holds before answering 503.\n"
        "# TYPE biomedclip_queue_capacity gauge\nbiomedclip_queue_capacity %d\n"
        "# HELP biomedclip_requests_in_flight Requests received and not yet answered.\n"
        "# TYPE biomedclip_requests_in_flight gauge\nbiomedclip_requests_in_flight %d\n",
        queued, s->lim.queue_cap, in_flight);
    OUT("# HELP biomedclip_items_embedded_total Texts and images encoded.\n"
        "# TYPE biomedclip_items_embedded_total counter\n"
        "biomedclip_items_embedded_total{modality=\"text\"} %ld\n"
        "biomedclip_items_embedded_total{modality=\"image\"} %ld\n"
        "# HELP biomedclip_batches_total Encoder calls (items / batches = mean batch size).\n"
        "# TYPE biomedclip_batches_total counter\n"
        "biomedclip_batches_total{modality=\"text\"} %ld\n"
        "biomedclip_batches_total{modality=\"image\"} %ld\n",
        m.items[JOB_TEXTS], m.items[JOB_IMAGES], m.batches[JOB_TEXTS], m.batches[JOB_IMAGES]);
    OUT("# HELP biomedclip_workers Worker contexts.\n# TYPE biomedclip_workers gauge\n"
        "biomedclip_workers %d\n"
        "# HELP biomedclip_workers_busy Workers encoding now.\n# TYPE biomedclip_workers_busy gauge\n"
        "biomedclip_workers_busy %d\n"
        "# HELP biomedclip_ready 1 once the model is loaded.\n# TYPE biomedclip_ready gauge\n"
        "biomedclip_ready %d\n"
        "# HELP biomedclip_uptime_seconds Seconds since the start.\n# TYPE biomedclip_uptime_seconds gauge\n"
        "biomedclip_uptime_seconds %.3f\n",
        s->workers, busy, __atomic_load_n(&s->ready, __ATOMIC_ACQUIRE), srv_now() - s->t_start);
#undef OUT
    if (len >= cap) { /* cannot happen with the fixed tables above; say so rather than cut */
        free(b);
        srv_error(rs, 500, "metrics text too long");
        return;
    }
    rs->status = 200, rs->body = b, rs->len = len, rs->type = "text/plain; version=0.0.4; charset=utf-8";
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void srv_api_thumbnail(srv *s, const char *file, srv_response *rs) {
    /* Only the paths of the index are served: the name is looked up, never opened as given. */
    if (!file || !s->has_index || !s->sorted_paths ||
        !bsearch(&file, s->sorted_paths, (size_t)s->index.n, sizeof *s->sorted_paths, cmp_str)) {
        srv_error(rs, 404, "not an image of the index");
        return;
    }
    bmc_image im = {0};
    int side = bmc_model_image_size(s->model);
    unsigned char *rgb = malloc((size_t)side * side * 3);
    if (!rgb) {
        srv_error(rs, 503, "out of memory");
        return;
    }
    if (bmc_image_load(file, BMC_DECODE_DEFAULT, &im) != BMC_OK ||
        bmc_image_crop(s->model, &im, rgb) != BMC_OK) {
        srv_error(rs, 404, "%s", bmc_last_error());
    } else {
        size_t len = 0;
        unsigned char *bmp = srv_bmp(rgb, side, side, &len);
        if (!bmp) srv_error(rs, 503, "out of memory");
        else rs->status = 200, rs->body = (char *)bmp, rs->len = len, rs->type = "image/bmp";
    }
    bmc_image_free(&im);
    free(rgb);
}

/* Sorted copy of the index's paths, for srv_api_thumbnail. */
int srv_sort_paths(srv *s) {
    long n = s->index.n;
    s->sorted_paths = malloc((size_t)(n ? n : 1) * sizeof *s->sorted_paths);
    if (!s->sorted_paths) return -1;
    memcpy(s->sorted_paths, s->index.paths, (size_t)n * sizeof *s->sorted_paths);
    qsort(s->sorted_paths, (size_t)n, sizeof *s->sorted_paths, cmp_str);
    return 0;
}
