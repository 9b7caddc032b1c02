/* slide_store.h - the files `embed-slide` writes and `classify-slide` reads (docs/SLIDES.md):
 * the TRIDENT/CLAM-style HDF5 file, the .npy pair, PNG images. HDF5 is the only outside library
 * here; a build without it (make SLIDE=0) answers every call with an error. */
#ifndef BMC_CLI_SLIDE_STORE_H
#define BMC_CLI_SLIDE_STORE_H

#include <stddef.h>
#include <stdint.h>

/* What goes into the attributes next to the arrays. */
typedef struct slide_meta {
    const char *name;       /* the slide's file name without its extension */
    int64_t patch_size;     /* tile side in output pixels */
    int64_t patch_size0;    /* tile side in level-0 pixels */
    int64_t overlap;        /* output pixels */
    int64_t patch_level;    /* the level the tiles were read from */
    double mpp, level0_mpp; /* um/px of the tiles and of level 0 */
    int64_t level0_width, level0_height;
} slide_meta;

/* Write path (through path + ".tmp" and a rename, so a reader sees the whole file or none):
 * `features` [n, dim] float32 and `coords` [n, 2] int64, attributes as TRIDENT writes them.
 * Returns 0, or -1 with a message in err. Byte-identical for identical inputs. */
int slide_write_h5(const char *path, const slide_meta *m, const float *features, const int64_t *coords,
                   int64_t n, int dim, char *err, size_t err_size);
/* Read an embed-slide HDF5 file: *features [n, dim] and *coords [n, 2] malloc'd (free them),
 * *patch_size0 from the coords attributes. */
int slide_read_h5(const char *path, float **features, int64_t **coords, int64_t *n, int *dim,
                  int64_t *patch_size0, char *err, size_t err_size);
/* Write dir/features.npy ([n, dim] <f4) and dir/coords.npy ([n, 2] <i8), through dir + ".tmp"
 * and a rename of the directory. */
int slide_write_npy(const char *dir, const float *features, const int64_t *coords, int64_t n, int dim,
                    char *err, size_t err_size);
/* Read what slide_write_npy wrote (little-endian host). */
int slide_read_npy(const char *dir, float **features, int64_t **coords, int64_t *n, int *dim, char *err,
                   size_t err_size);
/* Write an 8-bit PNG (channels 1 or 3) through path + ".tmp" and a rename. */
int slide_write_png(const char *path, const unsigned char *pixels, int width, int height, int channels,
                    char *err, size_t err_size);
/* Whether this build can write HDF5. */
int slide_have_h5(void);

#endif /* BMC_CLI_SLIDE_STORE_H */
