/* cli.h - the `biomedclip` command line: one file per subcommand, helpers in cli_util.c. */
#ifndef BMC_CLI_H
#define BMC_CLI_H

#include <stdio.h>

#include "biomedclip.h"

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
int cli_search(int argc, char **argv);
int cli_embed_slide(int argc, char **argv);
int cli_classify_slide(int argc, char **argv);

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
/* Option matching for hand-written argument loops: if argv[*i] is `name` ("--top") or
 * "name=VALUE", return 1 and set *value to the value (argv[*i + 1], advancing *i past it, or the
 * text after '='; NULL when missing). Return 0 when argv[*i] is another argument. */
int cli_opt(int argc, char **argv, int *i, const char *name, const char **value);
/* True when s is "-h" or "--help". */
int cli_is_help(const char *s);

#endif /* BMC_CLI_H */
