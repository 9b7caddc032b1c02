/* tool_slide_tile.c - test helper (not a test itself): the library's view of a whole-slide image,
 * for tests/py/test_slide.py to compare with openslide-python + PIL.
 *
 *   tool_slide_tile info SLIDE
 *       "vendor V", "mpp X Y", "levels N", then "level L W H DOWNSAMPLE" lines
 *   tool_slide_tile region SLIDE LEVEL X Y W H OUT.ppm
 *       bmc_slide_read_region as a binary PPM
 *   tool_slide_tile tiles SLIDE TILE_PX MPP OVERLAP SLIDE_MPP OUTDIR X Y [X Y ...]
 *       "tiling level L region R size0 S step0 T cols C rows R", then OUTDIR/tile_X_Y.ppm each
 * Errors: "ERR STATUS MESSAGE" on stdout, exit 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "biomedclip.h"

static int err(bmc_status st) {
    printf("ERR %d %s\n", (int)st, bmc_last_error());
    return 1;
}

static int write_ppm(const char *path, const unsigned char *rgb, int w, int h) {
    FILE *f = fopen(path, "wb");
    int ok = f && fprintf(f, "P6\n%d %d\n255\n", w, h) > 0 && fwrite(rgb, 3, (size_t)w * h, f) == (size_t)w * h;
    if (f) ok = (fclose(f) == 0) && ok;
    return ok ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: see tests/tool_slide_tile.c\n");
        return 2;
    }
    bmc_slide *s = NULL;
    bmc_status st = bmc_slide_open(argv[2], &s);
    if (st != BMC_OK) return err(st);
    int rc = 0;
    if (!strcmp(argv[1], "info")) {
        double my, mx = bmc_slide_mpp(s, &my);
        printf("vendor %s\nmpp %.17g %.17g\nlevels %d\n", bmc_slide_vendor(s), mx, my, bmc_slide_level_count(s));
        for (int l = 0; l < bmc_slide_level_count(s); l++) {
            int64_t w, h;
            bmc_slide_level_size(s, l, &w, &h);
            printf("level %d %lld %lld %.17g\n", l, (long long)w, (long long)h, bmc_slide_level_downsample(s, l));
        }
    } else if (!strcmp(argv[1], "region") && argc == 9) {
        bmc_image im;
        st = bmc_slide_read_region(s, atoi(argv[3]), atoll(argv[4]), atoll(argv[5]), atoi(argv[6]), atoi(argv[7]), &im);
        if (st != BMC_OK) rc = err(st);
        else {
            rc = write_ppm(argv[8], im.pixels, im.width, im.height) ? 1 : 0;
            bmc_image_free(&im);
        }
    } else if (!strcmp(argv[1], "tiles") && argc >= 8 && argc % 2 == 0) {
        bmc_slide_tiling t;
        memset(&t, 0, sizeof t);
        t.tile_px = atoi(argv[3]), t.mpp = atof(argv[4]), t.overlap = atoi(argv[5]), t.slide_mpp = atof(argv[6]);
        if ((st = bmc_slide_tiling_init(s, &t)) != BMC_OK) rc = err(st);
        else {
            printf("tiling level %d region %d size0 %lld step0 %lld cols %lld rows %lld\n", t.level, t.region_px,
                   (long long)t.size0, (long long)t.step0, (long long)t.cols, (long long)t.rows);
            unsigned char *rgb = malloc((size_t)t.tile_px * t.tile_px * 3);
            for (int i = 8; rgb && i + 1 < argc && !rc; i += 2) {
                char path[4096];
                snprintf(path, sizeof path, "%s/tile_%s_%s.ppm", argv[7], argv[i], argv[i + 1]);
                if ((st = bmc_slide_read_tile(s, &t, atoll(argv[i]), atoll(argv[i + 1]), rgb)) != BMC_OK) rc = err(st);
                else if (write_ppm(path, rgb, t.tile_px, t.tile_px)) rc = 1;
            }
            free(rgb);
        }
    } else {
        fprintf(stderr, "tool_slide_tile: bad arguments\n");
        rc = 2;
    }
    bmc_slide_close(s);
    return rc;
}
