/* version.c - version numbers and a description of the build. */
#include <stdio.h>

#include <cblas.h>

#include "biomedclip.h"
#include "image.h"
#include "cpu.h"

int bmc_version_number(void) { return BMC_VERSION_NUMBER; }
const char *bmc_version_string(void) { return BMC_VERSION_STRING; }

const char *bmc_system_info(void) {
    static _Thread_local char buf[512];
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
#ifdef BMC_WITH_DICOM
    const char *dicom = bmc__dicom_version();
#else
    const char *dicom = "none (built with DICOM=0)";
#endif
    /* the kernels chosen at run time (cpu.c), and why */
    snprintf(buf, sizeof buf, "KERNELS=%s (%s) BLAS=%s BLAS_THREADS=%d JPEG=%s TIFF=%s DICOM=%s SLIDE=%s",
             bmc__level_name(bmc__kern()->level), bmc__cpu_reason(), openblas_get_config(),
             openblas_get_num_threads(), jpeg, tiff, dicom, bmc__slide_backend());
    return buf;
}
