/* version.c - version numbers and a description of the build. */
#include <stdio.h>

#include <cblas.h>

#include "biomedclip.h"

int bmc_version_number(void) { return BMC_VERSION_NUMBER; }
const char *bmc_version_string(void) { return BMC_VERSION_STRING; }

const char *bmc_system_info(void) {
    static _Thread_local char buf[256];
    const char *simd =
#if defined(__AVX512F__)
        "AVX512";
#elif defined(__AVX2__)
        "AVX2";
#elif defined(__SSE2__)
        "SSE2";
#else
        "scalar";
#endif
#ifdef BMC_WITH_LIBJPEG
    const char *jpeg = "libjpeg-turbo";
#else
    const char *jpeg = "stb_image";
#endif
#if defined(BMC_WITH_LIBTIFF) && defined(BMC_WITH_LCMS2)
    const char *tiff = "libtiff+lcms2";
#elif defined(BMC_WITH_LIBTIFF)
    const char *tiff = "libtiff";
#else
    const char *tiff = "none";
#endif
    snprintf(buf, sizeof buf, "SIMD=%s BLAS=%s BLAS_THREADS=%d JPEG=%s TIFF=%s", simd, openblas_get_config(),
             openblas_get_num_threads(), jpeg, tiff);
    return buf;
}
