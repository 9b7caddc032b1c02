/* cmd_info.c - `biomedclip info`: load a model file and describe it (configuration, tensor and
 * parameter counts, file size); --verify also checks every tensor's data CRC-32. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
    "usage: biomedclip info [-m MODEL] [--verify]\n"
    "\n"
    "Print a model file's configuration, tensor count, parameter count and file size.\n"
    "\n"
    "  -m, --model MODEL  the .bmc file (default: $BIOMEDCLIP_MODEL)\n"
    "  --verify           also check every tensor's data CRC-32 (reads the whole file)\n"
    "  -h, --help         this help\n";

int cli_info(int argc, char **argv) {
    const char *model_opt = NULL;
    int verify = 0;
    const cli_option opts[] = {CLI_OPT_MODEL(&model_opt),
                               {"--verify", NULL, CLI_SET, &verify, 1, NULL, NULL}, {0}};
    int rc = cli_parse("info", usage_text, opts, argc, argv);
    if (rc != CLI_GO_ON) return rc;
    const char *path = cli_model_path(model_opt);
    if (!path) {
        fprintf(stderr, "biomedclip info: no model: pass -m MODEL or set BIOMEDCLIP_MODEL\n");
        return CLI_EXIT_MODEL;
    }
    bmc_model_params params = bmc_model_default_params();
    params.verify_data = verify;
    bmc_model *model = NULL;
    if (bmc_model_load(path, &params, &model) != BMC_OK) {
        fprintf(stderr, "biomedclip info: %s\n", bmc_last_error());
        return CLI_EXIT_MODEL;
    }
    int n = bmc_model_describe(model, NULL, 0);
    char *text = malloc((size_t)n + 1);
    if (!text) {
        fprintf(stderr, "biomedclip info: out of memory\n");
        bmc_model_free(model);
        return CLI_EXIT_FAILURE;
    }
    bmc_model_describe(model, text, (size_t)n + 1);
    fputs(text, stdout);
    if (verify) printf("data checksums  all %d tensors verified\n", bmc_model_n_tensors(model));
    printf("system          %s\n", bmc_system_info()); /* the kernels that run, and why */
    free(text);
    bmc_model_free(model);
    return CLI_EXIT_OK;
}
