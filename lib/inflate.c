/* inflate.c - zlib inflate for the PNG decoder (image_png.c): stb_image's inflater, compiled here
 * with none of its image decoders, privately (STB_IMAGE_STATIC) and with the library's
 * allocator, as image_jpeg.c compiles its JPEG decoder. */
#include <string.h>

#include "image.h"

#define STBI_NO_JPEG
#define STBI_NO_PNG
#define STBI_NO_BMP
#define STBI_NO_PSD
#define STBI_NO_TGA
#define STBI_NO_GIF
#define STBI_NO_PIC
#define STBI_NO_PNM
#define STBI_SUPPORT_ZLIB
#include "stb_image_impl.h"

int bmc__inflate(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_size) {
    /* stb stops with "output buffer limit" when the stream holds more than the buffer; the
     * BMC__INFLATE_SLACK extra bytes (>= one match, 258) make that stop mean the wanted bytes
     * are all there. */
    if (in_size > 0x7fffffff || out_size > 0x7fffffff - BMC__INFLATE_SLACK) return 0;
    int n = stbi_zlib_decode_buffer((char *)out, (int)(out_size + BMC__INFLATE_SLACK), (const char *)in,
                                    (int)in_size);
    if (n >= 0) return (size_t)n >= out_size;
    const char *why = stbi_failure_reason();
    return why && !strcmp(why, "output buffer limit");
}
