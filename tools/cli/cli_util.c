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

int cli_opt(int argc, char **argv, int *i, const char *name, const char **value) {
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0) return 0;
    if (a[n] == '=') {
        *value = a + n + 1;
        return 1;
    }
    if (a[n] != '\0') return 0;
    *value = (*i + 1 < argc) ? argv[++*i] : NULL;
    return 1;
}

int cli_is_help(const char *s) { return !strcmp(s, "-h") || !strcmp(s, "--help"); }
