/* cli_util.c - small helpers shared by the subcommands. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

const char *cli_model_path(const char *opt) {
    if (opt && *opt) return opt;
    const char *env = getenv("BIOMEDCLIP_MODEL");
    return (env && *env) ? env : NULL;
}

bmc_model *cli_load_model(const char *path) {
    if (!path) {
        fprintf(stderr, "biomedclip: no model: pass -m MODEL or set BIOMEDCLIP_MODEL\n");
        return NULL;
    }
    bmc_model *model = NULL;
    bmc_status st = bmc_model_load(path, NULL, &model);
    if (st != BMC_OK) {
        fprintf(stderr, "biomedclip: %s\n", bmc_last_error());
        return NULL;
    }
    return model;
}

void cli_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\b': fputs("\\b", f); break;
        case '\f': fputs("\\f", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20) fprintf(f, "\\u%04x", *p);
            else fputc(*p, f);
        }
    }
    fputc('"', f);
}

void cli_json_floats(FILE *f, const float *v, int n) {
    fputc('[', f);
    for (int i = 0; i < n; i++) fprintf(f, i ? ", %.9g" : "%.9g", (double)v[i]);
    fputc(']', f);
}

int cli_parse_int(const char *cmd, const char *opt, const char *value, int *out) {
    if (!value) {
        fprintf(stderr, "biomedclip %s: %s needs a value\n", cmd, opt);
        return -1;
    }
    char *end = NULL;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || end == value || *end || v <= 0 || v > INT_MAX) {
        fprintf(stderr, "biomedclip %s: %s wants a positive integer, got '%s'\n", cmd, opt, value);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* The option of opts that argument a spells, or NULL. *value is set for options that take one:
 * the text after '=', or the next argument (advancing *i; NULL when there is none). */
static const cli_option *match(const cli_option *opts, int argc, char **argv, int *i,
                               const char **value) {
    const char *a = argv[*i];
    for (const cli_option *o = opts; o->kind != CLI_END; o++) {
        for (int spelling = 0; spelling < 2; spelling++) {
            const char *name = spelling ? o->alias : o->name;
            if (!name) continue;
            size_t n = strlen(name);
            if (o->kind == CLI_SET) {
                if (!strcmp(a, name)) return o;
                continue;
            }
            if (strncmp(a, name, n) != 0) continue;
            if (a[n] == '=') {
                *value = a + n + 1;
                return o;
            }
            if (a[n] != '\0') continue;
            *value = (*i + 1 < argc) ? argv[++*i] : NULL;
            return o;
        }
    }
    return NULL;
}

/* CLI_CHOICE: the position of value among the '|'-separated choices, or -1. */
static int choice_index(const char *choices, const char *value) {
    size_t len = strlen(value);
    int k = 0;
    for (const char *p = choices;; k++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && !strncmp(p, value, n)) return k;
        if (!bar) return -1;
        p = bar + 1;
    }
}

/* "wants table, json or tsv" from "table|json|tsv". */
static void print_choices(const char *choices) {
    for (const char *p = choices;;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        fprintf(stderr, "%.*s", (int)n, p);
        if (!bar) return;
        p = bar + 1;
        fputs(strchr(p, '|') ? ", " : " or ", stderr);
    }
}

static int apply(const char *cmd, const cli_option *o, const char *a, const char *v) {
    if (o->kind == CLI_SET) {
        *(int *)o->dest = o->value;
        return CLI_GO_ON;
    }
    if (!v) {
        fprintf(stderr, "biomedclip %s: %s needs a value\n", cmd, a);
        return CLI_EXIT_USAGE;
    }
    switch (o->kind) {
    case CLI_STRING:
        *(const char **)o->dest = v;
        return CLI_GO_ON;
    case CLI_INT:
        return cli_parse_int(cmd, o->name, v, o->dest) ? CLI_EXIT_USAGE : CLI_GO_ON;
    case CLI_CHOICE: {
        int k = choice_index(o->choices, v);
        if (k >= 0) {
            *(int *)o->dest = k;
            return CLI_GO_ON;
        }
        fprintf(stderr, "biomedclip %s: %s wants ", cmd, o->name);
        print_choices(o->choices);
        fprintf(stderr, ", got '%s'\n", v);
        return CLI_EXIT_USAGE;
    }
    default:
        return o->call(o->dest, v);
    }
}

int cli_parse(const char *cmd, const char *usage, const cli_option *opts, int argc, char **argv) {
    const cli_option *args = NULL;
    for (const cli_option *o = opts; o->kind != CLI_END; o++)
        if (!o->name) args = o;
    int only_args = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        const cli_option *o;
        int rc;
        if (only_args || a[0] != '-' || !a[1]) {
            if (!args) {
                fprintf(stderr, "biomedclip %s: unexpected argument '%s' (see --help)\n", cmd, a);
                return CLI_EXIT_USAGE;
            }
            rc = args->call(args->dest, a);
        } else if (!strcmp(a, "--")) {
            only_args = 1;
            continue;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return CLI_EXIT_OK;
        } else if ((o = match(opts, argc, argv, &i, &v))) {
            rc = apply(cmd, o, a, v);
        } else {
            fprintf(stderr, "biomedclip %s: unknown option '%s' (see --help)\n", cmd, a);
            return CLI_EXIT_USAGE;
        }
        if (rc != CLI_GO_ON) return rc;
    }
    return CLI_GO_ON;
}

int cli_list_init(cli_list *l, int argc) {
    l->n = 0;
    l->v = calloc((size_t)argc + 1, sizeof *l->v);
    l->is_file = calloc((size_t)argc + 1, 1);
    return l->v && l->is_file ? 0 : -1;
}

void cli_list_free(cli_list *l) {
    free(l->v);
    free(l->is_file);
    l->v = NULL, l->is_file = NULL, l->n = 0;
}

int cli_list_add(void *list, const char *arg) {
    cli_list *l = list;
    l->v[l->n++] = arg;
    return CLI_GO_ON;
}

int cli_list_add_file(void *list, const char *path) {
    cli_list *l = list;
    l->is_file[l->n] = 1;
    l->v[l->n++] = path;
    return CLI_GO_ON;
}

int cli_require(const char *cmd, int have, const char *what) {
    if (have) return CLI_GO_ON;
    fprintf(stderr, "biomedclip %s: no %s (see --help)\n", cmd, what);
    return CLI_EXIT_USAGE;
}

int cli_read_lines(const char *cmd, const char *path, cli_text_fn fn, void *user) {
    int is_stdin = !strcmp(path, "-");
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        fflush(stdout);
        fprintf(stderr, "biomedclip %s: cannot open %s\n", cmd, path);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int rc = 0;
    while ((got = getline(&line, &cap, f)) >= 0) {
        size_t len = (size_t)got;
        if (len && line[len - 1] == '\n') len--;
        if (len && line[len - 1] == '\r') len--;
        line[len] = '\0';
        if (fn(user, line, len)) {
            rc = -1;
            break;
        }
    }
    if (rc == 0 && ferror(f)) {
        fflush(stdout);
        fprintf(stderr, "biomedclip %s: error reading %s\n", cmd, path);
        rc = 1;
    }
    free(line);
    if (!is_stdin) fclose(f);
    return rc;
}

int cli_each_input(const char *cmd, const cli_list *in, cli_text_fn fn, void *user) {
    int unreadable = 0;
    for (int k = 0; k < in->n; k++) {
        int rc = in->is_file[k] ? cli_read_lines(cmd, in->v[k], fn, user)
                                : (fn(user, in->v[k], strlen(in->v[k])) ? -1 : 0);
        if (rc < 0) return -1;
        if (rc) unreadable = 1;
    }
    return unreadable;
}

int cli_split_commas(const char *list, cli_text_fn fn, void *user) {
    for (const char *p = list;;) {
        const char *comma = strchr(p, ',');
        int rc = fn(user, p, comma ? (size_t)(comma - p) : strlen(p));
        if (rc || !comma) return rc;
        p = comma + 1;
    }
}

int cli_labels_add(void *labels, const char *s, size_t len) {
    while (len && (*s == ' ' || *s == '\t')) s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r')) len--;
    return len ? cli_paths_push(labels, strndup(s, len)) : 0;
}

int cli_labels_split(cli_paths *labels, const char *list) {
    return cli_split_commas(list, cli_labels_add, labels);
}

char **cli_prompts(const char *template, const cli_paths *l) {
    char **p = calloc((size_t)(l->n ? l->n : 1), sizeof *p);
    size_t lt = strlen(template);
    for (int j = 0; p && j < l->n; j++) {
        size_t ll = strlen(l->v[j]);
        if (!(p[j] = malloc(lt + ll + 1))) {
            cli_prompts_free(p, j);
            return NULL;
        }
        memcpy(p[j], template, lt);
        memcpy(p[j] + lt, l->v[j], ll + 1);
    }
    return p;
}

void cli_prompts_free(char **prompts, int n) {
    for (int j = 0; prompts && j < n; j++) free(prompts[j]);
    free(prompts);
}

int cli_new_ctx(const char *cmd, const bmc_model *model, int threads, int max_batch,
                bmc_ctx **ctx) {
    bmc_ctx_params cp = bmc_ctx_default_params();
    if (threads > 0) cp.n_threads = threads;
    if (max_batch > 0) cp.max_batch = max_batch;
    if (bmc_ctx_new(model, &cp, ctx) == BMC_OK) return 0;
    fprintf(stderr, "biomedclip %s: %s\n", cmd, bmc_last_error());
    return -1;
}

int cli_oom(const char *cmd) {
    fprintf(stderr, "biomedclip %s: out of memory\n", cmd);
    return CLI_EXIT_FAILURE;
}

char *cli_join_path(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    while (a > 1 && dir[a - 1] == '/') a--;
    char *s = malloc(a + b + 2);
    if (!s) return NULL;
    memcpy(s, dir, a);
    s[a] = '/';
    memcpy(s + a + 1, name, b + 1);
    return s;
}

void cli_print_embedding(const char *key, const char *name, const float *e, int dim, int json) {
    if (json) {
        fprintf(stdout, "{\"%s\": ", key);
        cli_json_string(stdout, name);
        fputs(", \"embedding\": ", stdout);
        cli_json_floats(stdout, e, dim);
        fputs("}\n", stdout);
    } else {
        fputs(name, stdout);
        for (int k = 0; k < dim; k++) printf(k ? " %.9g" : "\t%.9g", (double)e[k]);
        putchar('\n');
    }
}
