/* fuzz_loader.c - libFuzzer target: arbitrary bytes as a .bmc model file.
 *
 * The loader maps files, so the input goes through a file: a memfd, opened by its
 * /proc/self/fd path. A fuzzer flipping bytes would almost never get past the header and
 * directory CRCs, so the first input byte chooses fix-ups applied before writing:
 *   bit 0  recompute file_size / data_size from the real length
 *   bit 1  recompute the directory CRC   (over what n_tensors covers, when inside the input)
 *   bit 2  recompute the header CRC
 *   bit 4  load with verify_data = 1 (checks every tensor's CRC)
 * With none set, the raw bytes are tried (the CRC and size checks themselves get fuzzed).
 * A model that loads is then used: a context, one text, one image and one preprocessed input
 * are encoded, so that a configuration the loader accepts but the towers cannot run is found. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "biomedclip.h"
#include "crc32.h"
#include "format.h"

static int g_fd = -1;
static char g_path[64];

static void put_u64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static uint32_t get_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get_u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    g_fd = memfd_create("fuzz_loader", 0);
    if (g_fd < 0) { perror("memfd_create"); abort(); }
    snprintf(g_path, sizeof g_path, "/proc/self/fd/%d", g_fd);
    return 0;
}

static void use_model(bmc_model *m) {
    bmc_ctx_params cp = bmc_ctx_default_params();
    cp.max_batch = 1;
    bmc_ctx *ctx = NULL;
    if (bmc_ctx_new(m, &cp, &ctx) != BMC_OK) return;
    float emb[2 * BMC_EMBED_DIM];
    const char *texts[2] = {"a b ##c [MASK] x.", ""};
    (void)bmc_encode_text(ctx, texts, 2, emb, 1);
    unsigned char px[6 * 5 * 3];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (unsigned char)(i * 37);
    bmc_image img = {6, 5, BMC_PIXEL_RGB, 6 * 3, px, NULL};
    (void)bmc_encode_image(ctx, &img, 1, emb, 1);
    static float chw[3 * BMC_IMAGE_SIZE * BMC_IMAGE_SIZE];
    if (bmc_image_preprocess(m, &img, chw) == BMC_OK) (void)bmc_encode_pixels(ctx, chw, 1, emb, 0);
    char desc[4096];
    (void)bmc_model_describe(m, desc, sizeof desc);
    size_t len;
    for (int id = -1; id <= bmc_model_vocab_size(m); id++) (void)bmc_model_token(m, id, &len);
    bmc_ctx_free(ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned flags = data[0];
    size_t n = size - 1;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) return 0;
    memcpy(buf, data + 1, n);
    if (n >= BMC__HEADER_SIZE) {
        if (flags & 1) {
            put_u64(buf + 24, n);                               /* file_size */
            uint64_t data_off = get_u64(buf + 48);
            if (data_off <= n) put_u64(buf + 56, n - data_off);  /* data_size */
        }
        if (flags & 2) {
            uint64_t nt = get_u32(buf + 40);
            if (BMC__HEADER_SIZE + nt * BMC__DIR_ENTRY_SIZE <= n)
                put_u32(buf + 68, bmc__crc32(0, buf + BMC__HEADER_SIZE, (size_t)nt * BMC__DIR_ENTRY_SIZE));
        }
        if (flags & 4) put_u32(buf + 508, bmc__crc32(0, buf, 508));
    }
    if (ftruncate(g_fd, 0) != 0 || (n && pwrite(g_fd, buf, n, 0) != (ssize_t)n)) abort();
    free(buf);

    bmc_model_params p = bmc_model_default_params();
    p.verify_data = (flags >> 4) & 1;
    bmc_model *m = (bmc_model *)0x1;
    bmc_status st = bmc_model_load(g_path, &p, &m);
    if (st == BMC_OK) {
        use_model(m);
        bmc_model_free(m);
    } else {
        if (m != NULL) abort();                 /* contract: *out is NULL on failure */
        if (!bmc_last_error()[0]) abort();      /* contract: a failure says why */
    }
    return 0;
}
