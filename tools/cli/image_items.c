/* image_items.c - --window / --frame / --frames and the items they make (image_items.h). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "image_items.h"

void cli_image_opts_init(cli_image_opts *o, const char *cmd) {
    memset(o, 0, sizeof *o);
    o->cmd = cmd;
    o->params = bmc_load_default_params();
}

/* "C,W", "minmax", "file", "file:K" */
static int parse_window(const char *v, bmc_load_params *p) {
    char *end;
    if (!strcmp(v, "minmax")) {
        p->window = BMC_WINDOW_MINMAX;
        return 0;
    }
    if (!strcmp(v, "auto")) {
        p->window = BMC_WINDOW_AUTO;
        return 0;
    }
    if (!strncmp(v, "file", 4) && (v[4] == '\0' || v[4] == ':')) {
        long k = 0;
        if (v[4] == ':') {
            errno = 0;
            k = strtol(v + 5, &end, 10);
            if (errno || end == v + 5 || *end || k < 0 || k > INT_MAX) return -1;
        }
        p->window = BMC_WINDOW_FILE;
        p->window_index = (int)k;
        return 0;
    }
    errno = 0;
    double c = strtod(v, &end);
    if (errno || end == v || *end != ',') return -1;
    const char *w0 = end + 1;
    double w = strtod(w0, &end);
    if (errno || end == w0 || *end || !isfinite(c) || !isfinite(w) || !(w > 0)) return -1;
    p->window = BMC_WINDOW_CENTER_WIDTH;
    p->window_center = c;
    p->window_width = w;
    return 0;
}

int cli_image_opt_window(void *opts, const char *v) {
    cli_image_opts *o = opts;
    if (parse_window(v, &o->params)) {
        fprintf(stderr, "biomedclip %s: --window wants C,W (width > 0), minmax or file[:K], got '%s'\n", o->cmd, v);
        return CLI_EXIT_USAGE;
    }
    return CLI_GO_ON;
}

int cli_image_opt_frame(void *opts, const char *v) {
    cli_image_opts *o = opts;
    char *end = NULL;
    errno = 0;
    long f = strtol(v, &end, 10);
    if (errno || end == v || *end || f < 0 || f > INT_MAX) {
        fprintf(stderr, "biomedclip %s: --frame wants a frame number from 0, got '%s'\n", o->cmd, v);
        return CLI_EXIT_USAGE;
    }
    o->params.frame = (int)f;
    o->all_frames = 0;
    o->name_frames = 1;
    return CLI_GO_ON;
}

int cli_image_opt_frames(void *opts, const char *v) {
    cli_image_opts *o = opts;
    if (strcmp(v, "all")) {
        fprintf(stderr, "biomedclip %s: --frames wants 'all', got '%s' (one frame: --frame N)\n", o->cmd, v);
        return CLI_EXIT_USAGE;
    }
    o->all_frames = 1;
    o->name_frames = 1;
    return CLI_GO_ON;
}

static char *item_name(const cli_image_opts *o, const char *file, int frame) {
    size_t n = strlen(file) + 16;
    char *s = malloc(n);
    if (!s) return NULL;
    if (o->name_frames) snprintf(s, n, "%s#%d", file, frame);
    else snprintf(s, n, "%s", file);
    return s;
}

int cli_image_items(const cli_image_opts *o, const char *const *files, int n, cli_item **out) {
    int cap = n > 0 ? n : 1, count = 0;
    cli_item *items = malloc((size_t)cap * sizeof *items);
    if (!items) goto oom;
    for (int f = 0; f < n; f++) {
        int frames = 1, first = o->params.frame;
        if (o->all_frames) {
            /* the count comes from the file; frame 0 is decoded to read it */
            bmc_load_params p = o->params;
            p.frame = 0;
            bmc_image im;
            bmc_image_info info;
            if (bmc_image_load_ex(files[f], &p, &im) == BMC_OK && bmc_image_get_info(&im, &info) == BMC_OK)
                frames = info.n_frames > 0 ? info.n_frames : 1;
            bmc_image_free(&im);
            first = 0;
        }
        for (int k = 0; k < frames; k++) {
            if (count == cap) {
                if (cap > INT_MAX / 2) goto oom;
                cli_item *p = realloc(items, (size_t)cap * 2 * sizeof *items);
                if (!p) goto oom;
                items = p, cap *= 2;
            }
            items[count].file = files[f];
            items[count].frame = first + k;
            if (!(items[count].name = item_name(o, files[f], first + k))) goto oom;
            count++;
        }
    }
    *out = items;
    return count;
oom:
    fprintf(stderr, "biomedclip %s: out of memory\n", o->cmd);
    cli_image_items_free(items, count);
    *out = NULL;
    return -1;
}

void cli_image_items_free(cli_item *items, int n) {
    if (!items) return;
    for (int i = 0; i < n; i++) free(items[i].name);
    free(items);
}

bmc_status cli_image_load(const cli_image_opts *o, const cli_item *it, bmc_image *im) {
    bmc_load_params p = o->params;
    p.frame = it->frame;
    return bmc_image_load_ex(it->file, &p, im);
}

void cli_json_item(FILE *f, const cli_image_opts *o, const cli_item *it) {
    fputs("\"file\": ", f);
    cli_json_string(f, it->file);
    if (o->name_frames) fprintf(f, ", \"frame\": %d", it->frame);
}
