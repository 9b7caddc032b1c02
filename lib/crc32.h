/* crc32.h - CRC-32 as zlib computes it (reflected polynomial 0xEDB88320), used by the model file. */
#ifndef BMC_CRC32_H
#define BMC_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* crc = bmc__crc32(0, data, n) for a whole buffer; pass the previous value to continue. */
uint32_t bmc__crc32(uint32_t crc, const void *data, size_t n);

#endif
