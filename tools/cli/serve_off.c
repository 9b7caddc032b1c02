/* serve_off.c - `biomedclip serve` in a build without it (make SERVE=0: no libmicrohttpd or
 * libcjson). */
#include "cli.h"

int cli_serve(int argc, char **argv) {
    (void)argc, (void)argv;
    fprintf(stderr, "biomedclip serve: this biomedclip was built with SERVE=0 (without "
                    "libmicrohttpd and libcjson); rebuild with `make` to get the server\n");
    return CLI_EXIT_USAGE;
}
