/* stb_image_impl.h - compiles stb_image into the including file, privately: STB_IMAGE_STATIC keeps
 * every stb symbol inside the library (no clash with a user's own copy), allocations go through
 * bmc__malloc and assertions are compiled out (the library never aborts). The including file
 * chooses the parts first (STBI_ONLY_JPEG, or STBI_NO_* and STBI_SUPPORT_ZLIB) and includes
 * this once. */
#ifndef BMC_STB_IMAGE_IMPL_H
#define BMC_STB_IMAGE_IMPL_H

#include "error.h"
#include "image.h"

#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_MAX_DIMENSIONS BMC_IMAGE_MAX_SIDE
#define STBI_ASSERT(x) ((void)0)
#define STBI_MALLOC(sz) bmc__malloc(sz)
#define STBI_REALLOC(p, newsz) bmc__realloc(p, newsz)
#define STBI_FREE(p) bmc__free(p)
#if defined(__GNUC__)
/* file-wide: stb declares static functions of the decoders left out */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#endif
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#endif /* BMC_STB_IMAGE_IMPL_H */
