/* cmd_embed_text.c - placeholder until the subcommand lands. */
#include "cli.h"

int cli_embed_text(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "biomedclip: this command is not built yet\n");
    return CLI_EXIT_USAGE;
}
