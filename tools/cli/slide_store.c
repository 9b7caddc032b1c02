/* slide_store.c - HDF5 / .npy / PNG output of the slide commands (slide_store.h). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "slide_store.h"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#ifdef BMC_WITH_HDF5
#include <hdf5.h>
#endif

static int fail(char *err, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, size, fmt, ap);
    va_end(ap);
    return -1;
}

static char *tmp_name(const char *path) {
    size_t n = strlen(path);
    char *t = malloc(n + 5);
    if (t) memcpy(t, path, n), memcpy(t + n, ".tmp", 5);
    return t;
}

int slide_write_png(const char *path, const unsigned char *pixels, int width, int height, int channels, char *err,
                    size_t err_size) {
    char *tmp = tmp_name(path);
    if (!tmp) return fail(err, err_size, "out of memory");
    int ok = stbi_write_png(tmp, width, height, channels, pixels, width * channels);
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        free(tmp);
        return fail(err, err_size, "%s: cannot write PNG%s%s", path, ok ? ": " : "", ok ? strerror(e) : "");
    }
    free(tmp);
    return 0;
}

/* ---- .npy ------------------------------------------------------------------------------------ */

static int write_npy(const char *path, const char *descr, const void *data, size_t item, int64_t rows, int cols) {
    char hdr[128];
    int len = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (%lld, %d), }", descr,
                       (long long)rows, cols);
    int total = 10 + len + 1, pad = (64 - total % 64) % 64; /* magic + version + length, then '\n' */
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    unsigned short hl = (unsigned short)(len + pad + 1);
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 255), (unsigned char)(hl >> 8)};
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(hdr, 1, (size_t)len, f) == (size_t)len;
    for (int i = 0; ok && i < pad; i++) ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF;
    size_t n = (size_t)rows * (size_t)cols;
    ok = ok && (n == 0 || fwrite(data, item, n, f) == n);
    ok = (fclose(f) == 0) && ok;
    return ok ? 0 : -1;
}

int slide_write_npy(const char *dir, const float *features, const int64_t *coords, int64_t n, int dim, char *err,
                    size_t err_size) {
    char *tmp = tmp_name(dir);
    size_t len = strlen(dir) + 32;
    char *fp = malloc(len), *cp = malloc(len);
    int rc = -1;
    if (!tmp || !fp || !cp) {
        rc = fail(err, err_size, "out of memory");
        goto done;
    }
    snprintf(fp, len, "%s.tmp/features.npy", dir);
    snprintf(cp, len, "%s.tmp/coords.npy", dir);
    if (mkdir(tmp, 0777) != 0 && errno != EEXIST) {
        rc = fail(err, err_size, "%s: cannot create: %s", tmp, strerror(errno));
        goto done;
    }
    if (write_npy(fp, "<f4", features, sizeof(float), n, dim) != 0 ||
        write_npy(cp, "<i8", coords, sizeof(int64_t), n, 2) != 0) {
        rc = fail(err, err_size, "%s: cannot write: %s", tmp, strerror(errno));
        goto done;
    }
    if (rename(tmp, dir) != 0) {
        rc = fail(err, err_size, "%s: cannot rename to %s: %s", tmp, dir, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    free(tmp), free(fp), free(cp);
    return rc;
}

/* One .npy array of `descr` items and 2 dimensions, as write_npy writes it (version 1 or 2,
 * C order). *data malloc'd. */
static int read_npy(const char *path, const char *descr, size_t item, void **data, int64_t *rows, int64_t *cols) {
    FILE *f = fopen(path, "rb");
    unsigned char pre[12];
    char hdr[4096];
    int ok = 0;
    *data = NULL;
    if (!f) return -1;
    if (fread(pre, 1, 10, f) == 10 && !memcmp(pre, "\x93NUMPY", 6) && (pre[6] == 1 || pre[6] == 2)) {
        size_t hl = pre[8] | (size_t)pre[9] << 8;
        if (pre[6] == 2 && fread(pre + 10, 1, 2, f) == 2) hl |= (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
        long long r = -1, c = -1;
        char want[64];
        snprintf(want, sizeof want, "'descr': '%s'", descr);
        const char *shape;
        if (hl < sizeof hdr && fread(hdr, 1, hl, f) == hl && (hdr[hl] = '\0', strstr(hdr, want)) &&
            strstr(hdr, "'fortran_order': False") && (shape = strstr(hdr, "'shape': (")) &&
            sscanf(shape, "'shape': (%lld, %lld)", &r, &c) == 2 && r >= 0 && c > 0 && c <= 65536 && r <= (1LL << 31)) {
            size_t n = (size_t)r * (size_t)c;
            *data = malloc(n * item + 1);
            ok = *data && fread(*data, item, n, f) == n;
            *rows = r, *cols = c;
        }
    }
    fclose(f);
    if (!ok) {
        free(*data);
        *data = NULL;
    }
    return ok ? 0 : -1;
}

int slide_read_npy(const char *dir, float **features, int64_t **coords, int64_t *n, int *dim, char *err,
                   size_t err_size) {
    size_t len = strlen(dir) + 32;
    char *p = malloc(len);
    int64_t fr = 0, fc = 0, cr = 0, cc = 0;
    void *fv = NULL, *cv = NULL;
    *features = NULL, *coords = NULL, *n = 0, *dim = 0;
    if (!p) return fail(err, err_size, "out of memory");
    snprintf(p, len, "%s/features.npy", dir);
    int rc = read_npy(p, "<f4", sizeof(float), &fv, &fr, &fc);
    snprintf(p, len, "%s/coords.npy", dir);
    rc = rc || read_npy(p, "<i8", sizeof(int64_t), &cv, &cr, &cc);
    free(p);
    if (rc || fr != cr || cc != 2) {
        free(fv), free(cv);
        return fail(err, err_size, "%s: features.npy [N, D] <f4 and coords.npy [N, 2] <i8 are not both there", dir);
    }
    *features = fv, *coords = cv, *n = fr, *dim = (int)fc;
    return 0;
}

/* ---- HDF5 ------------------------------------------------------------------------------------ */

#ifdef BMC_WITH_HDF5

int slide_have_h5(void) { return 1; }

/* A scalar attribute: *v, of mem_type in memory, stored as file_type. */
static int attr_scalar(hid_t obj, const char *name, hid_t file_type, hid_t mem_type, const void *v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, file_type, sp, H5P_DEFAULT, H5P_DEFAULT);
    int ok = a >= 0 && H5Awrite(a, mem_type, v) >= 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return ok ? 0 : -1;
}

static int attr_i64(hid_t obj, const char *name, int64_t v) {
    return attr_scalar(obj, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v);
}

static int attr_f64(hid_t obj, const char *name, double v) {
    return attr_scalar(obj, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
}

/* A magnification (10 / mpp) as h5py would store what TRIDENT computes: an integer when it is
 * one (20, 40), a float otherwise. */
static int attr_mag(hid_t obj, const char *name, double mpp) {
    double mag = 10.0 / mpp, r = floor(mag + 0.5);
    return fabs(mag - r) < 1e-6 ? attr_i64(obj, name, (int64_t)r) : attr_f64(obj, name, mag);
}

/* A variable-length UTF-8 string, as h5py writes a Python str. */
static int attr_str(hid_t obj, const char *name, const char *v) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    int ok = a >= 0 && H5Awrite(a, t, &v) >= 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return ok ? 0 : -1;
}

static hid_t dataset(hid_t file, const char *name, hid_t file_type, hid_t mem_type, const void *data, int64_t n,
                     int cols) {
    hsize_t dims[2] = {(hsize_t)n, (hsize_t)cols};
    hid_t sp = H5Screate_simple(2, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_obj_track_times(dcpl, 0); /* no timestamps: a rerun writes the same bytes */
    hid_t d = H5Dcreate2(file, name, file_type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d >= 0 && n > 0 && H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
        H5Dclose(d);
        d = -1;
    }
    H5Pclose(dcpl);
    H5Sclose(sp);
    return d;
}

int slide_write_h5(const char *path, const slide_meta *m, const float *features, const int64_t *coords, int64_t n,
                   int dim, char *err, size_t err_size) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* errors are reported here, not as HDF5 stack dumps */
    char *tmp = tmp_name(path);
    if (!tmp) return fail(err, err_size, "out of memory");
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    H5Pset_obj_track_times(fcpl, 0);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, H5P_DEFAULT);
    H5Pclose(fcpl);
    if (f < 0) {
        free(tmp);
        return fail(err, err_size, "%s: HDF5 cannot create the file", path);
    }
    int ok = 1;
    hid_t df = dataset(f, "features", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, features, n, dim);
    hid_t dc = dataset(f, "coords", H5T_STD_I64LE, H5T_NATIVE_INT64, coords, n, 2);
    ok = df >= 0 && dc >= 0;
    /* TRIDENT: features carry name + encoder; coords the tiling (IO.py coords_to_h5), plus CLAM's
     * patch_level and the resolutions in um/px */
    ok = ok && attr_str(df, "name", m->name) == 0 && attr_str(df, "encoder", "biomedclip") == 0;
    ok = ok && attr_i64(dc, "patch_size", m->patch_size) == 0 &&
         attr_i64(dc, "patch_size_level0", m->patch_size0) == 0 &&
         attr_mag(dc, "level0_magnification", m->level0_mpp) == 0 &&
         attr_mag(dc, "target_magnification", m->mpp) == 0 && attr_i64(dc, "overlap", m->overlap) == 0 &&
         attr_str(dc, "name", m->name) == 0 && attr_i64(dc, "level0_width", m->level0_width) == 0 &&
         attr_i64(dc, "level0_height", m->level0_height) == 0 && attr_i64(dc, "patch_level", m->patch_level) == 0 &&
         attr_f64(dc, "mpp", m->mpp) == 0 && attr_f64(dc, "level0_mpp", m->level0_mpp) == 0;
    if (df >= 0) H5Dclose(df);
    if (dc >= 0) H5Dclose(dc);
    ok = H5Fclose(f) >= 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        free(tmp);
        return fail(err, err_size, "%s: cannot write the HDF5 file", path);
    }
    free(tmp);
    return 0;
}

int slide_read_h5(const char *path, float **features, int64_t **coords, int64_t *n, int *dim, int64_t *patch_size0,
                  char *err, size_t err_size) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    *features = NULL, *coords = NULL, *n = 0, *dim = 0, *patch_size0 = 0;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return fail(err, err_size, "%s: not an HDF5 file HDF5 can open", path);
    int rc = -1;
    hid_t df = H5Dopen2(f, "features", H5P_DEFAULT), dc = H5Dopen2(f, "coords", H5P_DEFAULT);
    hsize_t fd[2] = {0, 0}, cd[2] = {0, 0};
    if (df < 0 || dc < 0) {
        fail(err, err_size, "%s: no 'features' or 'coords' dataset", path);
        goto done;
    }
    hid_t fs = H5Dget_space(df), cs = H5Dget_space(dc);
    int fr = H5Sget_simple_extent_ndims(fs), cr = H5Sget_simple_extent_ndims(cs);
    if (fr == 2) H5Sget_simple_extent_dims(fs, fd, NULL);
    if (cr == 2) H5Sget_simple_extent_dims(cs, cd, NULL);
    H5Sclose(fs), H5Sclose(cs);
    if (fr != 2 || cr != 2 || cd[1] != 2 || fd[0] != cd[0] || fd[1] < 1 || fd[1] > 65536 || fd[0] > (1ull << 31)) {
        fail(err, err_size, "%s: 'features' must be [N, D] and 'coords' [N, 2]", path);
        goto done;
    }
    *features = malloc((size_t)(fd[0] * fd[1]) * sizeof(float) + 1);
    *coords = malloc((size_t)cd[0] * 2 * sizeof(int64_t) + 1);
    if (!*features || !*coords) {
        fail(err, err_size, "%s: out of memory", path);
        goto done;
    }
    if (fd[0] > 0 && (H5Dread(df, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, *features) < 0 ||
                      H5Dread(dc, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, *coords) < 0)) {
        fail(err, err_size, "%s: cannot read the datasets", path);
        goto done;
    }
    if (H5Aexists(dc, "patch_size_level0") > 0) {
        hid_t a = H5Aopen(dc, "patch_size_level0", H5P_DEFAULT);
        if (a >= 0) {
            H5Aread(a, H5T_NATIVE_INT64, patch_size0);
            H5Aclose(a);
        }
    }
    *n = (int64_t)fd[0], *dim = (int)fd[1];
    rc = 0;
done:
    if (rc != 0) {
        free(*features), free(*coords);
        *features = NULL, *coords = NULL;
    }
    if (df >= 0) H5Dclose(df);
    if (dc >= 0) H5Dclose(dc);
    H5Fclose(f);
    return rc;
}

#else

int slide_have_h5(void) { return 0; }

int slide_write_h5(const char *path, const slide_meta *m, const float *features, const int64_t *coords, int64_t n,
                   int dim, char *err, size_t err_size) {
    return fail(err, err_size, "%s: this biomedclip was built without HDF5 (use --format npy)", path);
}

int slide_read_h5(const char *path, float **features, int64_t **coords, int64_t *n, int *dim, int64_t *patch_size0,
                  char *err, size_t err_size) {
    *features = NULL, *coords = NULL, *n = 0, *dim = 0, *patch_size0 = 0;
    return fail(err, err_size, "%s: this biomedclip was built without HDF5", path);
}

#endif
