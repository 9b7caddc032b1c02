/* image_items.h - the image options shared by every command that reads images (--window,
 * --frame, --frames all), and the list of items they make: one per file, or one per frame of a
 * multi-frame file (DICOM frames, TIFF pages) with --frames all. docs/CLI.md, "Image options". */
#ifndef BMC_CLI_IMAGE_ITEMS_H
#define BMC_CLI_IMAGE_ITEMS_H

#include <stdio.h>

#include "biomedclip.h"

typedef struct cli_image_opts {
    const char *cmd;        /* the command, for messages */
    bmc_load_params params; /* --window, --frame */
    int all_frames;         /* --frames all: every frame is an item */
    int name_frames;        /* outputs name the frame (--frame or --frames was given) */
} cli_image_opts;

/* Usage lines for the three options (each command's --help prints them). */
#define CLI_IMAGE_OPTS_HELP                                                                        \
    "  --window W           how more than 8 bits become 8: C,W (centre, width; LINEAR), minmax\n"  \
    "                       (of the frame), file[:K] (the file's window K, default 0); default:\n" \
    "                       the file's first window, else its VOI LUT, else min-max (DICOM)\n"     \
    "  --frame N            frame (DICOM) or page (TIFF) N, from 0 (default 0)\n"                  \
    "  --frames all         every frame / page, each one item, named FILE#N (JSON: \"frame\": N)\n"

void cli_image_opts_init(cli_image_opts *o, const char *cmd);
/* cli_option handlers (CLI_CALL, dest = the cli_image_opts): CLI_GO_ON, or CLI_EXIT_USAGE after
 * printing why the value is wrong. */
int cli_image_opt_window(void *opts, const char *value);
int cli_image_opt_frame(void *opts, const char *value);
int cli_image_opt_frames(void *opts, const char *value);
/* The three entries of a command's option table (cli.h), for a cli_image_opts *o. */
#define CLI_IMAGE_OPTS(o)                                                                              {"--window", NULL, CLI_CALL, (o), 0, NULL, cli_image_opt_window},                                   {"--frame", NULL, CLI_CALL, (o), 0, NULL, cli_image_opt_frame},                                     {"--frames", NULL, CLI_CALL, (o), 0, NULL, cli_image_opt_frames}

typedef struct cli_item {
    const char *file; /* the caller's string */
    int frame;
    char *name;       /* "FILE", or "FILE#N" when the options name frames (owned) */
} cli_item;

/* One item per file, or with --frames all one per frame (the count read from each file; a file
 * that cannot be read stays one item, so that its error is reported in order). Returns the
 * number of items, or -1 when memory ran out (printed). */
int cli_image_items(const cli_image_opts *o, const char *const *files, int n, cli_item **items);
void cli_image_items_free(cli_item *items, int n);

/* Load one item with the options. */
bmc_status cli_image_load(const cli_image_opts *o, const cli_item *it, bmc_image *im);
/* JSON members naming an item: "file": PATH, and "frame": N when the options name frames. */
void cli_json_item(FILE *f, const cli_image_opts *o, const cli_item *it);

#endif /* BMC_CLI_IMAGE_ITEMS_H */
