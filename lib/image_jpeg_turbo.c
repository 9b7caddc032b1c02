/* image_jpeg_turbo.c - JPEG through libjpeg-turbo with PIL's settings (make JPEG=turbo).
 *
 * PIL 9.4 (src/libImaging/JpegDecode.c) keeps libjpeg's defaults: JDCT_ISLOW, fancy upsampling
 * on, no scaling; it asks for out_color_space JCS_GRAYSCALE ('L'), JCS_RGB ('RGB') or JCS_CMYK
 * ('CMYK', from 4 components; libjpeg converts YCCK) and inverts CMYK ("CMYK;I": PIL assumes
 * Adobe's polarity). Doing the same gives PIL's pixels byte for byte with the same library.
 * libjpeg reports fatal errors through error_exit, which must not return: we longjmp back. Its
 * warnings are never printed; a premature end of data while scanlines are still missing is an
 * error, as PIL reports "image file is truncated". libjpeg allocates with its own malloc. */
#ifdef BMC_WITH_LIBJPEG

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

#include "error.h"
#include "image.h"

typedef struct jerr_mgr {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    int eof_warning; /* libjpeg ran out of data and inserted a fake EOI */
} jerr_mgr;

static void on_error(j_common_ptr cinfo) { longjmp(((jerr_mgr *)cinfo->err)->jump, 1); }

static void on_output(j_common_ptr cinfo) { (void)cinfo; }

static void on_emit(j_common_ptr cinfo, int level) {
    if (level >= 0) return; /* trace messages */
    if (cinfo->err->msg_code == JWRN_JPEG_EOF) ((jerr_mgr *)cinfo->err)->eof_warning = 1;
    cinfo->err->num_warnings++;
}

bmc_status bmc__decode_jpeg_turbo(const uint8_t *data, size_t size, const char *name,
                                  bmc__decoded *out) {
    struct jpeg_decompress_struct cinfo;
    jerr_mgr jerr;
    memset(out, 0, sizeof *out);
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = on_error;
    jerr.pub.output_message = on_output;
    jerr.pub.emit_message = on_emit;
    jerr.eof_warning = 0;
    if (setjmp(jerr.jump)) {
        char msg[JMSG_LENGTH_MAX];
        (*cinfo.err->format_message)((j_common_ptr)&cinfo, msg);
        jpeg_destroy_decompress(&cinfo);
        bmc__decoded_free(out);
        return bmc__fail(BMC_E_IMAGE, "%s: corrupt JPEG (libjpeg: %s)", name, msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);

    int mode;
    switch (cinfo.num_components) {
    case 1: cinfo.out_color_space = JCS_GRAYSCALE; mode = BMC__MODE_L; break;
    case 3: cinfo.out_color_space = JCS_RGB; mode = BMC__MODE_RGB; break;
    case 4: cinfo.out_color_space = JCS_CMYK; mode = BMC__MODE_CMYK; break;
    default:
        jpeg_destroy_decompress(&cinfo);
        return bmc__fail(BMC_E_IMAGE, "%s: JPEG with %d components", name, cinfo.num_components);
    }
    char what[600];
    snprintf(what, sizeof what, "%s: JPEG", name);
    bmc_status st = bmc__decoded_alloc(out, what, (int)cinfo.image_width, (int)cinfo.image_height, mode);
    if (st != BMC_OK) {
        jpeg_destroy_decompress(&cinfo);
        return st;
    }
    jpeg_start_decompress(&cinfo);
    int bpp = bmc__mode_bpp(mode);
    if ((int)cinfo.output_width != out->width || (int)cinfo.output_height != out->height ||
        cinfo.output_components != bpp) {
        jpeg_destroy_decompress(&cinfo);
        bmc__decoded_free(out);
        return bmc__fail(BMC_E_INTERNAL, "%s: libjpeg output %ux%ux%d differs from the header", name,
                         cinfo.output_width, cinfo.output_height, cinfo.output_components);
    }
    size_t row_bytes = (size_t)out->width * bpp;
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = out->pix + (size_t)cinfo.output_scanline * row_bytes;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    if (jerr.eof_warning) {
        jpeg_destroy_decompress(&cinfo);
        bmc__decoded_free(out);
        return bmc__fail(BMC_E_IMAGE, "%s: truncated JPEG (data ends before the last scanline)", name);
    }
    jpeg_finish_decompress(&cinfo); /* a missing EOI after complete data is fine, as in PIL */
    jpeg_destroy_decompress(&cinfo);
    if (mode == BMC__MODE_CMYK) {
        size_t n = row_bytes * out->height;
        for (size_t i = 0; i < n; i++) out->pix[i] = (uint8_t)~out->pix[i];
    }
    return BMC_OK;
}

#else
typedef int bmc__image_jpeg_turbo_unused; /* ISO C forbids an empty translation unit */
#endif
