/* embed_folder.c - embed every image of one folder with libbiomedclip.
 *
 *   cc embed_folder.c $(pkg-config --cflags --libs --static biomedclip) -o embed_folder
 *   ./embed_folder weights/biomedclip.bmc photos/ photos.f32
 *
 * Writes the unit-norm embeddings, one row of bmc_model_embed_dim() float32 values per image,
 * to OUT (raw, host byte order: numpy.fromfile(OUT, "<f4").reshape(-1, dim)), and prints
 * "row<TAB>file" for each image, in sorted file-name order. Files that are not decodable images
 * are reported on stderr and skipped. */
#define _POSIX_C_SOURCE 200809L /* opendir, strdup */
#include <biomedclip.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODEL DIR OUT\n", argv[0]);
        return 2;
    }
    bmc_model *model = NULL;
    bmc_ctx *ctx = NULL;
    if (bmc_model_load(argv[1], NULL, &model) != BMC_OK || bmc_ctx_new(model, NULL, &ctx) != BMC_OK) {
        fprintf(stderr, "embed_folder: %s\n", bmc_last_error());
        bmc_model_free(model);
        return 1;
    }
    int dim = bmc_model_embed_dim(model);
    float *emb = malloc((size_t)dim * sizeof *emb);

    /* the file names, sorted */
    DIR *d = opendir(argv[2]);
    if (!d) {
        perror(argv[2]);
        return 1;
    }
    char **names = NULL;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        names = realloc(names, (size_t)(n + 1) * sizeof *names);
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, by_name);

    FILE *out = fopen(argv[3], "wb");
    int rows = 0, failed = 0;
    for (int i = 0; out && i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", argv[2], names[i]);
        bmc_image image;
        if (bmc_image_load(path, BMC_DECODE_DEFAULT, &image) != BMC_OK) {
            fprintf(stderr, "embed_folder: skipping %s: %s\n", path, bmc_last_error());
            continue;
        }
        if (bmc_encode_image(ctx, &image, 1, emb, 1) == BMC_OK) {
            fwrite(emb, sizeof *emb, (size_t)dim, out);
            printf("%d\t%s\n", rows++, path);
        } else {
            fprintf(stderr, "embed_folder: %s: %s\n", path, bmc_last_error());
            failed++;
        }
        bmc_image_free(&image);
    }
    if (!out || fclose(out)) perror(argv[3]);
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    free(emb);
    bmc_ctx_free(ctx);
    bmc_model_free(model);
    return (out && !failed) ? 0 : 1;
}
