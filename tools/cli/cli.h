/* cli.h - the `biomedclip` command line: one file per subcommand, helpers in cli_util.c. */
#ifndef BMC_CLI_H
#define BMC_CLI_H

#include <stdio.h>

#include "biomedclip.h"
#include "image_walk.h" /* cli_paths */

/* Exit codes (docs/CLI.md). */
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAILURE 1   /* an input failed (others may still have been processed) */
#define CLI_EXIT_USAGE 2     /* bad command line */
#define CLI_EXIT_MODEL 3     /* the model could not be loaded */

typedef int (*cli_command_fn)(int argc, char **argv);

int cli_info(int argc, char **argv);
int cli_tokenize(int argc, char **argv);
int cli_embed_image(int argc, char **argv);
int cli_embed_text(int argc, char **argv);
int cli_classify(int argc, char **argv);
int cli_index(int argc, char **argv);
int cli_index_merge(int argc, char **argv);
int cli_search(int argc, char **argv);
int cli_embed_slide(int argc, char **argv);
int cli_classify_slide(int argc, char **argv);
int cli_compare(int argc, char **argv);
int cli_serve(int argc, char **argv); /* serve.c, or serve_off.c when built with SERVE=0 */
int cli_info_image(int argc, char **argv);

/* The model path: the -m value if given, else $BIOMEDCLIP_MODEL, else NULL. */
const char *cli_model_path(const char *opt);
/* Load the model, printing the loader's message to stderr on failure (returns NULL then). */
bmc_model *cli_load_model(const char *path);
/* Print s as a JSON string literal (quotes included, escapes per RFC 8259). */
void cli_json_string(FILE *f, const char *s);
/* Print n floats as a JSON array with %.9g (round-trips a float). */
void cli_json_floats(FILE *f, const float *v, int n);
/* Parse a positive int option value; returns 0 on success, prints an error otherwise. */
int cli_parse_int(const char *cmd, const char *opt, const char *value, int *out);

/* ---- The command line of a subcommand: a table of options, read by cli_parse ---------------
 * Every subcommand reads its arguments the same way: -h/--help prints the usage, "--" ends the
 * options, "-" alone is an argument, and an option that takes a value accepts "--opt VALUE" and
 * "--opt=VALUE". A new command lists its options in a table ending with {0}:
 *
 *     const char *model = NULL;  int threads = 0, json = 0;  cli_list files;
 *     const cli_option opts[] = {CLI_OPT_MODEL(&model), CLI_OPT_THREADS(&threads),
 *                                CLI_OPT_JSON(&json), CLI_ARGS(&files), {0}};
 *     int rc = cli_parse("my-cmd", usage_text, opts, argc, argv);
 *     if (rc != CLI_GO_ON) return rc;
 */
typedef enum cli_kind {
    CLI_END = 0, /* the end of the table */
    CLI_SET,     /* a flag: *(int *)dest = value */
    CLI_STRING,  /* takes a value: *(const char **)dest = VALUE */
    CLI_INT,     /* takes a positive integer: *(int *)dest = VALUE */
    CLI_CHOICE,  /* takes one of choices ("table|json|tsv"): *(int *)dest = its position */
    CLI_CALL,    /* takes a value: call(dest, VALUE) */
} cli_kind;

typedef struct cli_option {
    const char *name;    /* "--batch"; NULL: the entry that receives the non-option arguments */
    const char *alias;   /* another spelling ("-m"), or NULL */
    cli_kind kind;
    void *dest;
    int value;           /* CLI_SET: what is stored */
    const char *choices; /* CLI_CHOICE: the values, '|'-separated */
    /* CLI_CALL: CLI_GO_ON to go on, else the exit code to stop with (having printed why) */
    int (*call)(void *dest, const char *value);
} cli_option;

#define CLI_GO_ON (-1)

#define CLI_OPT_MODEL(p) {"--model", "-m", CLI_STRING, (p), 0, NULL, NULL}
#define CLI_OPT_THREADS(p) {"--threads", NULL, CLI_INT, (p), 0, NULL, NULL}
#define CLI_OPT_BATCH(p) {"--batch", NULL, CLI_INT, (p), 0, NULL, NULL}
#define CLI_OPT_JSON(p) {"--json", NULL, CLI_SET, (p), 1, NULL, NULL}
#define CLI_OPT_FORMAT(p) {"--format", NULL, CLI_CHOICE, (p), 0, "table|json|tsv", NULL}
#define CLI_OPT_RAW(p) {"--raw", NULL, CLI_SET, (p), 1, NULL, NULL}
#define CLI_OPT_FILE(list) {"--file", NULL, CLI_CALL, (list), 0, NULL, cli_list_add_file}
#define CLI_ARGS(list) {NULL, NULL, CLI_CALL, (list), 0, NULL, cli_list_add}

/* Read argv[1..argc) against opts (for messages, cmd names the command). Returns CLI_GO_ON when
 * the command should run, else the exit code to return: CLI_EXIT_OK after printing usage for
 * --help, CLI_EXIT_USAGE after printing why the command line is wrong. */
int cli_parse(const char *cmd, const char *usage, const cli_option *opts, int argc, char **argv);

/* The inputs of a command in command-line order: arguments, or with --file, files to read. */
typedef struct cli_list {
    const char **v; /* [argc] */
    char *is_file;  /* [argc] 1 where v[k] names a file of inputs */
    int n;
} cli_list;
int cli_list_init(cli_list *l, int argc); /* 0, or -1 when out of memory */
void cli_list_free(cli_list *l);
int cli_list_add(void *list, const char *arg);       /* CLI_CALL: one input */
int cli_list_add_file(void *list, const char *path); /* CLI_CALL: a file of inputs */

/* CLI_GO_ON when have is true, else CLI_EXIT_USAGE after "biomedclip cmd: no WHAT (see --help)". */
int cli_require(const char *cmd, int have, const char *what);

/* Called with each input text (len bytes, NUL-terminated, valid during the call); non-zero
 * stops. */
typedef int (*cli_text_fn)(void *user, const char *text, size_t len);
/* Call fn for every line of path ('-': standard input), without its "\n" or "\r\n". Returns 0;
 * 1 when the file cannot be read (after "biomedclip cmd: cannot open PATH" or "... error reading
 * PATH"); -1 as soon as fn returns non-zero. */
int cli_read_lines(const char *cmd, const char *path, cli_text_fn fn, void *user);
/* Call fn for the inputs of in, in order: an argument as it is, a file ('-': standard input) line
 * by line without its "\n" or "\r\n". Returns 0; 1 when a file could not be read (after
 * "biomedclip cmd: cannot open PATH" or "... error reading PATH"; the other inputs still went
 * through); -1 as soon as fn returns non-zero. */
int cli_each_input(const char *cmd, const cli_list *in, cli_text_fn fn, void *user);

/* Call fn for each item of a comma-separated list, as it stands (not NUL-terminated; blanks
 * and empty items included: fn trims and skips). Returns 0, or the first non-zero fn returns. */
int cli_split_commas(const char *list, cli_text_fn fn, void *user);

/* Zero-shot labels (classify, classify-slide, serve's /classify) are a cli_paths, in the order
 * given. cli_labels_add is a cli_text_fn (user: the cli_paths): it appends the label s[0..len)
 * without blanks (space, tab) before and without blanks or '\r' after, and skips it when that
 * leaves nothing. cli_labels_split does so for each item of a comma-separated list. Both
 * return 0, or -1 when out of memory. */
int cli_labels_add(void *labels, const char *s, size_t len);
int cli_labels_split(cli_paths *labels, const char *list);
/* The zero-shot prompts: template + each label, labels->n new strings; NULL when out of
 * memory. Free with cli_prompts_free(prompts, labels->n). */
char **cli_prompts(const char *template, const cli_paths *labels);
void cli_prompts_free(char **prompts, int n);

/* The zero-shot labels' options: --labels LIST (add_list) and --labels-file FILE (add_file). */
#define CLI_OPT_LABELS(dest, add_list, add_file)                                               \
    {"--labels", NULL, CLI_CALL, (dest), 0, NULL, (add_list)},                                 \
    {"--labels-file", NULL, CLI_CALL, (dest), 0, NULL, (add_file)}

/* A context on model with `threads` threads (0: the default) and scratch for batches of
 * max_batch (0: the default). Returns 0, or -1 after printing "biomedclip cmd: why". */
int cli_new_ctx(const char *cmd, const bmc_model *model, int threads, int max_batch, bmc_ctx **ctx);

/* CLI_EXIT_FAILURE, after "biomedclip cmd: out of memory". */
int cli_oom(const char *cmd);

/* dir + "/" + name in a new string (trailing slashes of dir dropped); NULL: out of memory. */
char *cli_join_path(const char *dir, const char *name);

/* Print one embedding: `name<TAB>v1 v2 ...`, or as JSON {"KEY": name, "embedding": [...]}. */
void cli_print_embedding(const char *key, const char *name, const float *e, int dim, int json);

#endif /* BMC_CLI_H */
