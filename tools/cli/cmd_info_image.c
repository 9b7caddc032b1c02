/* cmd_info_image.c - `biomedclip info-image`: what the library sees in image files (format,
 * size, PIL mode, bits, photometric interpretation, the window that made 8 bits, frames,
 * transfer syntax), for users debugging a strange scan. No model is needed. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "image_items.h"

static const char usage_text[] =
    "usage: biomedclip info-image [--json] [--window W] [--frame N | --frames all] IMAGE...\n"
    "\n"
    "Print what the library makes of each image: format, size, mode (PIL's), bits stored,\n"
    "photometric interpretation and transfer syntax (DICOM; TIFF: photometric, compression),\n"
    "the rule that made 8 bits (window), frames (and which was loaded). With --json one line\n"
    "per image: {\"file\", [\"frame\",] \"format\", \"width\", \"height\", \"mode\", \"bits_stored\",\n"
    "\"n_frames\", \"photometric\", \"transfer_syntax\", \"window\"}.\n"
    "\n"
    "  --json               JSON lines instead of text\n"
    CLI_IMAGE_OPTS_HELP
    "\n"
    "A file that cannot be decoded gets a message on stderr saying why; the others are still\n"
    "printed. Exit status: 0 all images read, 1 some image failed, 2 bad command line.\n";

static void print_info(const cli_image_opts *o, const cli_item *it, const bmc_image_info *in, int json) {
    if (json) {
        fputc('{', stdout);
        cli_json_item(stdout, o, it);
        fputs(", \"format\": ", stdout);
        cli_json_string(stdout, in->format);
        printf(", \"width\": %d, \"height\": %d, \"mode\": ", in->width, in->height);
        cli_json_string(stdout, in->mode);
        printf(", \"bits_stored\": %d, \"n_frames\": %d", in->bits_stored, in->n_frames);
        if (!o->name_frames) printf(", \"frame\": %d", in->frame); /* else cli_json_item gave it */
        fputs(", \"photometric\": ", stdout);
        cli_json_string(stdout, in->photometric);
        fputs(", \"transfer_syntax\": ", stdout);
        cli_json_string(stdout, in->transfer_syntax);
        fputs(", \"window\": ", stdout);
        cli_json_string(stdout, in->window);
        fputs("}\n", stdout);
        return;
    }
    printf("%s\n", it->name);
    printf("  format           %s\n", in->format);
    printf("  size             %d x %d\n", in->width, in->height);
    printf("  mode             %s\n", in->mode);
    printf("  bits stored      %d\n", in->bits_stored);
    printf("  frames           %d (frame %d loaded)\n", in->n_frames, in->frame);
    if (in->photometric[0]) printf("  photometric      %s\n", in->photometric);
    if (in->transfer_syntax[0]) printf("  transfer syntax  %s\n", in->transfer_syntax);
    printf("  window           %s\n", in->window[0] ? in->window : "none (8-bit samples)");
}

int cli_info_image(int argc, char **argv) {
    int json = 0, rc = CLI_EXIT_FAILURE, failed = 0;
    cli_list files;
    cli_image_opts img;
    cli_image_opts_init(&img, "info-image");
    cli_item *items = NULL;
    int n_items = 0;
    if (cli_list_init(&files, argc)) {
        fprintf(stderr, "biomedclip info-image: out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    const cli_option opts[] = {CLI_OPT_JSON(&json), CLI_IMAGE_OPTS(&img), CLI_ARGS(&files), {0}};
    if ((rc = cli_parse("info-image", usage_text, opts, argc, argv)) != CLI_GO_ON) goto done;
    rc = CLI_EXIT_USAGE;
    if (files.n == 0) {
        fprintf(stderr, "biomedclip info-image: no images (see --help)\n");
        goto done;
    }
    rc = CLI_EXIT_FAILURE;
    if ((n_items = cli_image_items(&img, files.v, files.n, &items)) < 0) goto done;
    for (int i = 0; i < n_items; i++) {
        bmc_image im;
        bmc_image_info info;
        if (cli_image_load(&img, &items[i], &im) != BMC_OK || bmc_image_get_info(&im, &info) != BMC_OK) {
            fflush(stdout);
            const char *why = bmc_last_error();
            if (strstr(why, items[i].file)) fprintf(stderr, "biomedclip info-image: %s\n", why);
            else fprintf(stderr, "biomedclip info-image: %s: %s\n", items[i].name, why);
            failed++;
        } else {
            print_info(&img, &items[i], &info, json);
        }
        bmc_image_free(&im);
    }
    fflush(stdout);
    rc = failed ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
done:
    cli_image_items_free(items, n_items);
    cli_list_free(&files);
    return rc;
}
