/* crc32.c - slicing-by-8 CRC-32 (zlib's polynomial), so Python's zlib.crc32 writes what we check. */
#include "crc32.h"

#include <pthread.h>

static uint32_t bmc__crc_table[8][256];
static pthread_once_t bmc__crc_once = PTHREAD_ONCE_INIT;

static void bmc__crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        bmc__crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            bmc__crc_table[t][i] = (bmc__crc_table[t - 1][i] >> 8) ^ bmc__crc_table[0][bmc__crc_table[t - 1][i] & 0xFF];
}

uint32_t bmc__crc32(uint32_t crc, const void *data, size_t n) {
    pthread_once(&bmc__crc_once, bmc__crc_init);
    const uint8_t *p = (const uint8_t *)data;
    uint32_t c = ~crc;
    while (n >= 8) {
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        c = bmc__crc_table[7][lo & 0xFF] ^ bmc__crc_table[6][(lo >> 8) & 0xFF] ^
            bmc__crc_table[5][(lo >> 16) & 0xFF] ^ bmc__crc_table[4][lo >> 24] ^
            bmc__crc_table[3][hi & 0xFF] ^ bmc__crc_table[2][(hi >> 8) & 0xFF] ^
            bmc__crc_table[1][(hi >> 16) & 0xFF] ^ bmc__crc_table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) c = bmc__crc_table[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
    return ~c;
}
