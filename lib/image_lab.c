/* image_lab.c - CIELab to RGB as Pillow 9.4 converts a 'LAB' image (Image.convert -> ImageCms).
 *
 * Pillow builds a littleCMS transform from cmsCreateLab2Profile(NULL) (D50) to
 * cmsCreate_sRGBProfile(), perceptual intent, no flags, with its 'LAB' pixel type (Lab V2
 * encoding, 8 bits, one extra byte: L, a + 128, b + 128, pad) and its 'RGB' type (TYPE_RGBA_8),
 * and runs it row by row (src/_imagingcms.c findLCMStype, createProfile, _buildTransform,
 * pyCMSdoTransform). The same calls into the same littleCMS give the same bytes. Built when
 * lcms2 is installed (make LCMS=0 leaves it out; CIELab TIFFs are then refused). */
#include <string.h>

#include "error.h"
#include "image.h"

#ifdef BMC_WITH_LCMS2

#include <lcms2.h>

bmc_status bmc__lab_to_rgb(const uint8_t *lab, size_t n, uint8_t *rgb, const char *name) {
    cmsHPROFILE in = cmsCreateLab2Profile(NULL), out = cmsCreate_sRGBProfile();
    cmsHTRANSFORM t = NULL;
    if (in && out)
        t = cmsCreateTransform(in, COLORSPACE_SH(PT_LabV2) | CHANNELS_SH(3) | BYTES_SH(1) | EXTRA_SH(1), out,
                               TYPE_RGBA_8, INTENT_PERCEPTUAL, 0);
    if (in) cmsCloseProfile(in);
    if (out) cmsCloseProfile(out);
    if (!t) return bmc__fail(BMC_E_NOMEM, "%s: littleCMS cannot build the Lab -> sRGB transform", name);
    /* Pillow's pixels are 4 bytes; convert in chunks through 4-byte buffers */
    enum { CHUNK = 4096 };
    uint8_t *buf = bmc__malloc((size_t)CHUNK * 8);
    if (!buf) {
        cmsDeleteTransform(t);
        return bmc__fail(BMC_E_NOMEM, "%s: out of memory converting Lab to RGB", name);
    }
    for (size_t i = 0; i < n; i += CHUNK) {
        size_t k = n - i < CHUNK ? n - i : CHUNK;
        uint8_t *src = buf, *dst = buf + (size_t)CHUNK * 4;
        for (size_t j = 0; j < k; j++) {
            memcpy(src + 4 * j, lab + 3 * (i + j), 3);
            src[4 * j + 3] = 255;
        }
        cmsDoTransform(t, src, dst, (cmsUInt32Number)k);
        for (size_t j = 0; j < k; j++) memcpy(rgb + 3 * (i + j), dst + 4 * j, 3);
    }
    bmc__free(buf);
    cmsDeleteTransform(t);
    return BMC_OK;
}

#else

bmc_status bmc__lab_to_rgb(const uint8_t *lab, size_t n, uint8_t *rgb, const char *name) {
    (void)lab, (void)n, (void)rgb;
    return bmc__fail(BMC_E_IMAGE, "%s: CIELab support not built in (rebuild without LCMS=0, needs liblcms2-dev)",
                     name);
}

#endif
