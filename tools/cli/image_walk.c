/* image_walk.c - finding image files under directories (image_walk.h). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli.h"
#include "image_walk.h"

static const char *const image_ext[] = {"jpg", "jpeg", "png", "bmp", "tga", "gif", "ppm", "pgm",
                                        "pnm", "tif", "tiff", "dcm", "dicom"};

int cli_paths_push(cli_paths *l, char *s) {
    if (!s) return -1;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 256;
        char **p = realloc(l->v, (size_t)cap * sizeof *p);
        if (!p) {
            free(s);
            return -1;
        }
        l->v = p, l->cap = cap;
    }
    l->v[l->n++] = s;
    return 0;
}

void cli_paths_free(cli_paths *l) {
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    l->v = NULL, l->n = l->cap = 0;
}

int cli_paths_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* DICOM files often have no extension (IM000001): those are recognised by their content, the
 * Part 10 marker "DICM" at byte 128. */
static int is_dicom_part10(const char *path) {
    FILE *f = fopen(path, "rb");
    unsigned char b[132];
    int yes = f && fread(b, 1, sizeof b, f) == sizeof b && !memcmp(b + 128, "DICM", 4);
    if (f) fclose(f);
    return yes;
}

static int is_image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    for (size_t i = 0; i < sizeof image_ext / sizeof *image_ext; i++)
        if (!strcasecmp(dot + 1, image_ext[i])) return 1;
    return 0;
}

int cli_walk_images(const char *cmd, const char *dir, cli_paths *out, int *errors) {
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "biomedclip %s: %s: cannot open directory\n", cmd, dir);
        (*errors)++;
        return 0;
    }
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *p = cli_join_path(dir, e->d_name);
        struct stat lst, st;
        if (!p) {
            rc = -1;
        } else if (lstat(p, &lst) != 0) {
            free(p);
        } else if (S_ISDIR(lst.st_mode)) {
            rc = cli_walk_images(cmd, p, out, errors);
            free(p);
        } else if (stat(p, &st) == 0 && S_ISREG(st.st_mode) &&
                   (is_image_name(e->d_name) || (!strchr(e->d_name, '.') && is_dicom_part10(p)))) {
            if (strchr(p, '\n')) {
                fprintf(stderr, "biomedclip %s: skipping a file with a newline in its name: %s\n", cmd, p);
                free(p);
            } else {
                rc = cli_paths_push(out, p);
            }
        } else {
            free(p);
        }
    }
    closedir(d);
    return rc;
}
