/* main.c - `biomedclip SUBCOMMAND ...`: dispatch to the subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    cli_command_fn fn;
    const char *summary;
} commands[] = {
    {"info", cli_info, "print a model file's configuration, tensor and parameter counts"},
    {"tokenize", cli_tokenize, "print the token ids of texts"},
    {"embed-image", cli_embed_image, "print image embeddings"},
    {"embed-text", cli_embed_text, "print text embeddings"},
    {"classify", cli_classify, "zero-shot classification of images over labels"},
    {"index", cli_index, "embed every image under directories into an index directory"},
    {"index-merge", cli_index_merge, "join the shards of `index --shard K/N` into one index"},
    {"search", cli_search, "search an index by text or by image"},
    {"embed-slide", cli_embed_slide, "embed the tissue tiles of whole-slide images into .h5 files"},
    {"classify-slide", cli_classify_slide, "zero-shot classification of a whole-slide image (MI-Zero)"},
    {"compare", cli_compare, "compare two models' embeddings of the same images and texts"},
    {"info-image", cli_info_image, "what the library sees in image files (format, window, frames)"},
    {"serve", cli_serve, "HTTP service: embeddings, zero-shot, search, a page (docs/SERVER.md)"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: biomedclip <command> [options]   (biomedclip <command> --help)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nThe model defaults to $BIOMEDCLIP_MODEL. libbiomedclip %s\n", bmc_version_string());
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("biomedclip %s\n", bmc_version_string());
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "biomedclip: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
