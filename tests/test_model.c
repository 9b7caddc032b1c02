/* test_model.c - the .bmc loader: a good file ($BMC_TESTDATA/tiny.bmc, written by tools/convert.py)
 * loads and its accessors agree with the file as this test reads it; damaged copies (truncated,
 * flipped bytes, rewritten directory entries with the CRCs fixed up so that the deeper checks
 * are reached) each give the right status and a message naming the problem, and never a crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "biomedclip.h"
#include "crc32.h"
#include "error.h"
#include "format.h"

static uint8_t *g_file;      /* the good file */
static size_t g_size;
static char g_good[1024];    /* its path */
static char g_tmp[1024];     /* scratch copy */
static bmc__header g_h;
static bmc__dir_entry *g_dir; /* inside g_file */

static uint8_t *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return b;
}

static void write_all(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* g_tmp holds a full copy whose data region equals the good file's: then only the header and
 * directory need rewriting (fast); anything that changes the rest clears the flag. */
static int g_tmp_full;

static void write_head(const uint8_t *b) {
    if (!g_tmp_full) {
        write_all(g_tmp, b, g_size);
        g_tmp_full = 1;
        return;
    }
    FILE *f = fopen(g_tmp, "r+b");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, g_h.data_offset, f), g_h.data_offset);
    assert_int_equal(fclose(f), 0);
}

static void write_other(const uint8_t *b, size_t n) { /* truncated, grown or data changed */
    write_all(g_tmp, b, n);
    g_tmp_full = 0;
}

static int setup(void **state) {
    const char *dir = getenv("BMC_TESTDATA");
    snprintf(g_good, sizeof g_good, "%s/tiny.bmc", dir ? dir : "build/testdata");
    g_file = read_all(g_good, &g_size);
    if (!g_file) {
        fprintf(stderr, "cannot read %s (run tests/prep/10_models.sh)\n", g_good);
        return -1;
    }
    memcpy(&g_h, g_file, sizeof g_h);
    g_dir = (bmc__dir_entry *)(g_file + g_h.dir_offset);
    const char *tmp = getenv("TMPDIR");
    snprintf(g_tmp, sizeof g_tmp, "%s/test_model_%ld.bmc", tmp && *tmp ? tmp : "/tmp", (long)getpid());
    return 0;
}

static int teardown(void **state) {
    unlink(g_tmp);
    free(g_file);
    return 0;
}

static int find_entry(const char *name) {
    for (uint32_t i = 0; i < g_h.n_tensors; i++)
        if (!strcmp(g_dir[i].name, name)) return (int)i;
    fail_msg("tensor %s not in %s", name, g_good);
    return -1;
}

/* Recompute the directory and header CRCs of a (modified) copy. */
static void fix_crcs(uint8_t *b) {
    bmc__header *h = (bmc__header *)b;
    if ((uint64_t)h->n_tensors * BMC__DIR_ENTRY_SIZE <= g_h.data_offset - BMC__HEADER_SIZE) /* stay in b */
        h->dir_crc32 = bmc__crc32(0, b + BMC__HEADER_SIZE, (size_t)h->n_tensors * BMC__DIR_ENTRY_SIZE);
    h->header_crc32 = bmc__crc32(0, b, BMC__HEADER_SIZE - 4);
}

/* Load path; check the status and that the message contains each of the given pieces. */
static void expect_load(const char *path, bmc_status want, int verify, ...) {
    bmc_model_params p = bmc_model_default_params();
    p.verify_data = verify;
    bmc_model *m = (bmc_model *)0x1;
    bmc_status st = bmc_model_load(path, &p, &m);
    const char *msg = bmc_last_error();
    if (st != want) fail_msg("%s: status %d (%s), expected %d; message: %s", path, st, bmc_status_str(st), want, msg);
    if (want != BMC_OK) assert_null(m);
    va_list ap;
    va_start(ap, verify);
    for (const char *piece; (piece = va_arg(ap, const char *));)
        if (!strstr(msg, piece)) fail_msg("message \"%s\" lacks \"%s\"", msg, piece);
    va_end(ap);
    bmc_model_free(want == BMC_OK ? m : NULL);
}

/* Write a modified copy of the good file and expect status + message pieces. */
#define EXPECT_COPY(buf, want, ...) \
    do { write_head(buf); expect_load(g_tmp, want, 0, __VA_ARGS__, (const char *)NULL); } while (0)

static uint8_t *copy(void) {
    uint8_t *b = malloc(g_size);
    assert_non_null(b);
    memcpy(b, g_file, g_size);
    return b;
}

static bmc__dir_entry *entry(uint8_t *b, int i) { return (bmc__dir_entry *)(b + BMC__HEADER_SIZE) + i; }

/* ---- the good file ------------------------------------------------------------------------- */

static void test_good_file(void **state) {
    bmc_model *m = NULL;
    assert_int_equal(bmc_model_load(g_good, NULL, &m), BMC_OK);
    const bmc__config *c = &g_h.config;
    assert_int_equal(bmc_model_embed_dim(m), c->embed_dim);
    assert_int_equal(bmc_model_embed_dim(m), 32);
    assert_int_equal(bmc_model_image_size(m), 224);
    assert_int_equal(bmc_model_context_length(m), 256);
    assert_int_equal(bmc_model_n_tensors(m), (int)g_h.n_tensors);
    assert_int_equal(bmc_model_file_size(m), g_size);
    /* parameters from the tiny architecture, counted here independently of the loader */
    int64_t vw = 64, vm = 128, tw = 64, tf = 128, e = 32, h = (64 + 32) / 2;
    int64_t vit = vw + 197 * vw + vw * 3 * 16 * 16 + vw +
                  2 * (4 * vw + 3 * vw * vw + 3 * vw + vw * vw + vw + vm * vw + vm + vw * vm + vw) + 2 * vw + e * vw;
    int64_t bert = 30522 * tw + 512 * tw + 2 * tw + 2 * tw +
                   2 * (4 * (tw * tw + tw) + 4 * tw + tf * tw + tf + tw * tf + tw) + h * tw + e * h;
    assert_int_equal(bmc_model_n_params(m), vit + bert + 1);
    /* tensors: 4 + 12 per block + 3 (vision), 5 + 16 per layer + 2 (text), logit_scale, vocab x2 */
    assert_int_equal(bmc_model_n_tensors(m), 4 + 12 * 2 + 3 + 5 + 16 * 2 + 2 + 1 + 2);
    float ls = bmc_model_logit_scale(m);
    assert_true(ls > 99.999f && ls < 100.001f);

    /* the vocabulary equals vocab.txt line by line */
    char vpath[1024];
    const char *sd = getenv("SHARED_DATA");
    snprintf(vpath, sizeof vpath, "%s/biomedbert-vocab.txt", sd ? sd : "../shared/data");
    FILE *f = fopen(vpath, "r");
    assert_non_null(f);
    char line[512];
    int id = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        size_t len = 0;
        const char *tok = bmc_model_token(m, id, &len);
        assert_non_null(tok);
        assert_int_equal(len, strlen(line));
        assert_string_equal(tok, line); /* NUL-terminated */
        id++;
    }
    fclose(f);
    assert_int_equal(id, 28895);
    assert_int_equal(bmc_model_vocab_size(m), id);
    size_t len = 99;
    assert_null(bmc_model_token(m, id, &len));
    assert_int_equal(len, 0);
    assert_null(bmc_model_token(m, -1, NULL));

    /* describe: snprintf semantics */
    char big[4096], small[40];
    int n = bmc_model_describe(m, big, sizeof big);
    assert_true(n > 0 && (size_t)n < sizeof big);
    assert_int_equal(strlen(big), n);
    assert_non_null(strstr(big, "2,188,993"));
    assert_int_equal(bmc_model_describe(m, small, sizeof small), n);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_memory_equal(small, big, sizeof small - 1);
    assert_int_equal(bmc_model_describe(m, NULL, 0), n);
    bmc_model_free(m);

    bmc_model_params p = bmc_model_default_params();
    assert_int_equal(p.verify_data, 0);
    assert_int_equal(p.prefault, 0);
    p.verify_data = 1;
    p.prefault = 1;
    assert_int_equal(bmc_model_load(g_good, &p, &m), BMC_OK);
    bmc_model_free(m);
    bmc_model_free(NULL);
    assert_int_equal(bmc_model_n_params(NULL), 0);
}

/* Whether this process's mapping of path has VmFlag flag ("hg": MADV_HUGEPAGE) in
 * /proc/self/smaps: 1 yes, 0 no, -1 no such mapping or no smaps. */
static int mapping_flag(const char *path, const char *flag) {
    char real[4096], line[8192], want[64];
    if (!realpath(path, real)) return -1;
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    snprintf(want, sizeof want, " %s", flag);
    int in = 0, found = -1;
    while (found < 0 && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!strncmp(line, "VmFlags:", 8)) {
            if (in) {
                size_t n = strlen(want);
                const char *at = strstr(line + 7, want);
                found = at && (at[n] == ' ' || at[n] == 0);
            }
            in = 0;
        } else if (strchr(line, '-') && strchr(line, '-') < strchr(line, ' ')) { /* a header */
            size_t n = strlen(line), r = strlen(real);
            in = n >= r && !strcmp(line + n - r, real);
        }
    }
    fclose(f);
    return found;
}

/* huge_pages (default 1) advises MADV_HUGEPAGE on the mapping, 0 leaves it alone. The flag is
 * only there where the kernel has transparent huge pages. */
static void test_huge_pages(void **state) {
    (void)state;
    bmc_model_params p = bmc_model_default_params();
    assert_int_equal(p.huge_pages, 1);
    FILE *f = fopen("/proc/self/smaps", "r");
    int have_smaps = f != NULL, have_thp = access("/sys/kernel/mm/transparent_hugepage", F_OK) == 0;
    if (f) fclose(f);
    for (int hp = 0; hp <= 1; hp++) {
        p.huge_pages = hp;
        bmc_model *m = NULL;
        assert_int_equal(bmc_model_load(g_good, &p, &m), BMC_OK);
        int flag = mapping_flag(g_good, "hg");
        if (have_smaps) assert_int_not_equal(flag, -1); /* the mapping is found */
        if (have_smaps && have_thp) assert_int_equal(flag, hp);
        if (have_smaps && !hp) assert_int_equal(flag, 0);
        bmc_model_free(m);
    }
}

static void test_bad_arguments(void **state) {
    bmc_model *m = NULL;
    assert_int_equal(bmc_model_load(NULL, NULL, &m), BMC_E_INVALID_ARG);
    assert_int_equal(bmc_model_load(g_good, NULL, NULL), BMC_E_INVALID_ARG);
    expect_load("/nonexistent/dir/model.bmc", BMC_E_IO, 0, "/nonexistent/dir/model.bmc", "cannot open",
                (const char *)NULL);
    expect_load("/tmp", BMC_E_IO, 0, "/tmp", "not a regular file", (const char *)NULL);
}

/* ---- truncation ---------------------------------------------------------------------------- */

static void test_truncated(void **state) {
    size_t cuts[] = {0, 1, 8, 100, 507, 511, 512, 513, 600, BMC__HEADER_SIZE + 10 * BMC__DIR_ENTRY_SIZE,
                     (size_t)g_h.data_offset - 1, (size_t)g_h.data_offset, (size_t)g_h.data_offset + 100,
                     g_size / 2, g_size - 4096, g_size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        write_other(g_file, cuts[i]);
        if (cuts[i] < BMC__HEADER_SIZE)
            expect_load(g_tmp, BMC_E_FORMAT, 0, g_tmp, "too small", (const char *)NULL);
        else
            expect_load(g_tmp, BMC_E_FORMAT, 0, g_tmp, "truncated", (const char *)NULL);
    }
    /* a file that grew is refused as well */
    uint8_t *b = malloc(g_size + 100);
    memcpy(b, g_file, g_size);
    memset(b + g_size, 0, 100);
    write_other(b, g_size + 100);
    expect_load(g_tmp, BMC_E_FORMAT, 0, "header says the file has", (const char *)NULL);
    free(b);
}

/* ---- header ---------------------------------------------------------------------------------- */

static void test_header_bytes(void **state) {
    uint8_t *b = copy();
    /* every header byte flipped in turn: a specific status for the fields checked before the CRC */
    for (size_t off = 0; off < BMC__HEADER_SIZE; off++) {
        b[off] ^= 0x5A;
        write_head(b);
        bmc_model *m = NULL;
        bmc_status st = bmc_model_load(g_tmp, NULL, &m);
        bmc_status want = off < 8 ? BMC_E_FORMAT : off < 12 ? BMC_E_VERSION : off >= 16 && off < 20 ? BMC_E_FORMAT
                                                                                                      : BMC_E_CHECKSUM;
        if (st != want) fail_msg("header byte %zu flipped: status %d, expected %d (%s)", off, st, want, bmc_last_error());
        assert_null(m);
        b[off] ^= 0x5A;
    }
    free(b);
    b = copy();
    b[0] = 'X';
    EXPECT_COPY(b, BMC_E_FORMAT, "bad magic");
    memcpy(b, g_file, 8);
    ((bmc__header *)b)->version = 3;
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_VERSION, "format version 3, this library reads version 2");
    ((bmc__header *)b)->version = 1; /* row-major Linear weights: convert again */
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_VERSION, "format version 1", "tools/convert.py");
    ((bmc__header *)b)->version = 2;
    b[100] ^= 1; /* inside the configuration, CRC not fixed */
    EXPECT_COPY(b, BMC_E_CHECKSUM, "header CRC-32");
    b[100] ^= 1;
    ((bmc__header *)b)->header_crc32 ^= 0x10;
    EXPECT_COPY(b, BMC_E_CHECKSUM, "header CRC-32");
    memcpy(b, g_file, BMC__HEADER_SIZE);
    ((bmc__header *)b)->tensor_align = 32;
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "header sizes");
    memcpy(b, g_file, BMC__HEADER_SIZE);
    ((bmc__header *)b)->data_offset += 4096;
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "data region");
    memcpy(b, g_file, BMC__HEADER_SIZE);
    ((bmc__header *)b)->data_offset = 4096; /* before the end of the directory */
    ((bmc__header *)b)->data_size = g_size - 4096;
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "data region");
    memcpy(b, g_file, BMC__HEADER_SIZE);
    ((bmc__header *)b)->n_tensors = 0x7FFFFFFF;
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "tensors in the directory");
    memcpy(b, g_file, BMC__HEADER_SIZE);
    ((bmc__header *)b)->n_tensors = 200; /* a directory running into the data region */
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "data region");
    free(b);
}

static void test_config(void **state) {
    struct { size_t off; uint32_t value; const char *piece; } cases[] = {
        {offsetof(bmc__config, vision_heads), 5, "vision width 64, heads 5"},
        {offsetof(bmc__config, vision_heads), 0, "heads 0"},
        {offsetof(bmc__config, vision_layers), 65, "65 vision layers"},
        {offsetof(bmc__config, text_layers), 0, "0 text layers"},
        {offsetof(bmc__config, text_heads), 3, "text width 64, heads 3"},
        {offsetof(bmc__config, patch_size), 15, "multiple of the patch size 15"},
        {offsetof(bmc__config, image_size), 448, "exceeds BMC_IMAGE_SIZE"},
        {offsetof(bmc__config, context_length), 1000, "context length 1000"},
        {offsetof(bmc__config, embed_dim), 1024, "embedding dimension 1024"},
        {offsetof(bmc__config, text_proj_type), 7, "projection type 7"},
        {offsetof(bmc__config, vocab_size), 40000, "40000 vocabulary entries"},
        {offsetof(bmc__config, cls_id), 28895, "special token id 28895"},
        {offsetof(bmc__config, lowercase), 2, "lowercase 2"},
        {offsetof(bmc__config, vocab_rows), 0x7FFFFFFF, "vocabulary rows"},
    };
    uint8_t *b = copy();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(b, g_file, BMC__HEADER_SIZE);
        memcpy(b + 72 + cases[i].off, &cases[i].value, 4);
        fix_crcs(b);
        EXPECT_COPY(b, BMC_E_FORMAT, "config", cases[i].piece);
    }
    memcpy(b, g_file, BMC__HEADER_SIZE);
    ((bmc__header *)b)->config.text_ln_eps = -1.0;
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "LayerNorm eps");
    /* a consistent but different architecture: the shapes no longer match */
    memcpy(b, g_file, BMC__HEADER_SIZE);
    ((bmc__header *)b)->config.vision_mlp = 256;
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "tensor visual.trunk.blocks.", "expected shape [256,64], found [128,64]");
    memcpy(b, g_file, BMC__HEADER_SIZE);
    ((bmc__header *)b)->config.vision_layers = 3;
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "missing tensor visual.trunk.blocks.2.");
    memcpy(b, g_file, BMC__HEADER_SIZE);
    ((bmc__header *)b)->config.text_layers = 1;
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "unexpected tensor text.transformer.encoder.layer.1.");
    free(b);
}

/* ---- directory ------------------------------------------------------------------------------- */

static void test_directory_bytes(void **state) {
    uint8_t *b = copy();
    size_t dir_bytes = (size_t)g_h.n_tensors * BMC__DIR_ENTRY_SIZE;
    for (size_t off = 0; off < dir_bytes; off += 37) {
        b[BMC__HEADER_SIZE + off] ^= 0x81;
        write_head(b);
        bmc_model *m = NULL;
        bmc_status st = bmc_model_load(g_tmp, NULL, &m);
        if (st != BMC_E_CHECKSUM || !strstr(bmc_last_error(), "directory CRC-32"))
            fail_msg("directory byte %zu flipped: status %d (%s)", off, st, bmc_last_error());
        b[BMC__HEADER_SIZE + off] ^= 0x81;
    }
    free(b);
}

static void test_entries(void **state) {
    uint8_t *b = copy();
    int fc1 = find_entry("visual.trunk.blocks.0.mlp.fc1.weight");
    int n1 = find_entry("visual.trunk.blocks.1.norm1.weight");
    int qb = find_entry("text.transformer.encoder.layer.0.attention.self.query.bias");
    bmc__dir_entry *e;
#define RESET() memcpy(b, g_file, g_h.data_offset)
    /* shape off by one, nbytes consistent with it (whole panels of 64 outputs: the same) */
    RESET();
    e = entry(b, fc1);
    e->shape[0] = 127;
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "tensor visual.trunk.blocks.0.mlp.fc1.weight: expected shape [128,64], found [127,64]");
    RESET();
    e = entry(b, n1);
    e->shape[0] = 63;
    e->nbytes = 63 * 4;
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "tensor visual.trunk.blocks.1.norm1.weight: expected shape [64], found [63]");
    RESET();
    e = entry(b, fc1); /* same element count, transposed */
    e->shape[0] = 64;
    e->shape[1] = 128;
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "expected shape [128,64], found [64,128]");
    RESET();
    e = entry(b, n1); /* an extra dimension */
    e->ndim = 2;
    e->shape[1] = 1;
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "expected shape [64], found [64,1]");
    /* layouts: Linear weights are panels, the rest rows */
    RESET();
    entry(b, fc1)->layout = BMC__LAYOUT_ROWS; /* [128, 64]: the same bytes either way */
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "mlp.fc1.weight: layout rows, expected panel64");
    RESET();
    entry(b, n1)->layout = BMC__LAYOUT_PANEL64;
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "norm1.weight: layout panel64 needs an F32 or F16 tensor of 2 or more dimensions");
    /* 16-bit Linear weights: F16 in panel64, BF16 only in panel64x2 (pairs of k) */
    RESET();
    entry(b, fc1)->dtype = BMC__BF16; /* [128, 64] in 2-byte elements: half the bytes */
    entry(b, fc1)->nbytes /= 2;
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "mlp.fc1.weight: layout panel64 needs an F32 or F16 tensor");
    RESET();
    entry(b, fc1)->layout = BMC__LAYOUT_PANEL64X2;
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "mlp.fc1.weight: layout panel64x2 needs a BF16 tensor");
    RESET();
    entry(b, n1)->dtype = BMC__F16; /* a LayerNorm weight stays float32 */
    entry(b, n1)->nbytes /= 2;
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "norm1.weight: dtype F16, expected F32");
    RESET();
    entry(b, qb)->layout = 7;
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "query.bias: unknown layout 7");
    RESET();
    entry(b, fc1)->shape[0] = 129; /* a third panel, not in nbytes */
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "mlp.fc1.weight: nbytes 32768 but 12288 elements of F32 (whole panels) need 49152");
    /* nbytes not matching the shape */
    RESET();
    entry(b, n1)->nbytes += 4;
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "visual.trunk.blocks.1.norm1.weight: nbytes 260");
    RESET();
    e = entry(b, n1);
    e->nbytes = UINT64_MAX;
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "visual.trunk.blocks.1.norm1.weight: nbytes");
    RESET();
    e = entry(b, fc1); /* dimensions whose product overflows */
    e->shape[0] = (uint64_t)1 << 40;
    e->shape[1] = (uint64_t)1 << 40;
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "element count overflows");
    RESET();
    e = entry(b, fc1);
    e->ndim = 5;
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "5 dimensions");
    RESET();
    entry(b, fc1)->shape[3] = 7; /* a non-zero unused dimension */
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "unused dimension 3");
    /* offsets */
    RESET();
    entry(b, qb)->offset = (g_size + 4096) & ~(uint64_t)63;
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "query.bias: bytes", "outside the data region");
    RESET();
    entry(b, qb)->offset = UINT64_MAX & ~(uint64_t)63;
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "outside the data region");
    RESET();
    entry(b, qb)->offset = (g_size - 64) & ~(uint64_t)63; /* starts inside, runs past the end */
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "outside the data region");
    RESET();
    entry(b, qb)->offset = 1024; /* inside the directory */
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "outside the data region");
    RESET();
    entry(b, qb)->offset += 4;
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "query.bias: offset", "not a multiple of 64");
    RESET();
    entry(b, qb)->offset = entry(b, fc1)->offset + 64; /* inside another tensor */
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "overlap");
    /* names and dtypes */
    RESET();
    memset(entry(b, qb)->name, 'a', BMC__NAME_MAX);
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "not NUL-terminated");
    RESET();
    memset(entry(b, qb)->name, 0, BMC__NAME_MAX);
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "name is empty");
    RESET();
    strcpy(entry(b, qb)->name, "text.transformer.pooler.dense.bias");
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "unexpected tensor text.transformer.pooler.dense.bias");
    RESET();
    strcpy(entry(b, qb)->name, "text.transformer.encoder.layer.0.attention.self.key.bias");
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "tensor text.transformer.encoder.layer.0.attention.self.key.bias appears twice");
    RESET();
    e = entry(b, qb);
    e->dtype = BMC__F16;
    e->nbytes /= 2;
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "query.bias: dtype F16, expected F32");
    RESET();
    entry(b, qb)->dtype = 99;
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "unknown dtype 99");
    /* drop the last entry: a missing tensor */
    RESET();
    ((bmc__header *)b)->n_tensors -= 1;
    fix_crcs(b);
    EXPECT_COPY(b, BMC_E_FORMAT, "missing tensor tokenizer.vocab.bytes");
#undef RESET
    free(b);
}

/* ---- tensor data ----------------------------------------------------------------------------- */

static void test_data(void **state) {
    uint8_t *b = copy();
    int pos = find_entry("visual.trunk.pos_embed");
    b[g_dir[pos].offset + 5] ^= 0x40;
    write_other(b, g_size);
    expect_load(g_tmp, BMC_OK, 0, (const char *)NULL); /* data CRCs are checked only on request */
    expect_load(g_tmp, BMC_E_CHECKSUM, 1, "tensor visual.trunk.pos_embed: data CRC-32", (const char *)NULL);
    memcpy(b, g_file, g_size);
    int ls = find_entry("logit_scale");
    float big = 1000.0f;
    memcpy(b + g_dir[ls].offset, &big, 4);
    write_other(b, g_size);
    expect_load(g_tmp, BMC_E_FORMAT, 0, "logit_scale", "not finite", (const char *)NULL);
    memcpy(b, g_file, g_size);
    int vo = find_entry("tokenizer.vocab.offsets");
    uint32_t *offs = (uint32_t *)(b + g_dir[vo].offset);
    offs[10] = offs[12] + 1; /* not increasing */
    write_other(b, g_size);
    expect_load(g_tmp, BMC_E_FORMAT, 0, g_tmp, "vocabulary", (const char *)NULL);
    memcpy(b, g_file, g_size);
    offs[28895] += 1; /* past the byte blob */
    write_other(b, g_size);
    expect_load(g_tmp, BMC_E_FORMAT, 0, "vocabulary", (const char *)NULL);
    free(b);
}

/* ---- allocation failures --------------------------------------------------------------------- */

static void test_alloc_failures(void **state) {
    bmc_model *m = NULL;
    bmc__alloc_fail_after(0);
    assert_int_equal(bmc_model_load(g_good, NULL, &m), BMC_OK);
    long total = bmc__alloc_fail_after(0);
    bmc_model_free(m);
    assert_true(total >= 1);
    for (long k = 1; k <= total; k++) {
        bmc__alloc_fail_after(k);
        bmc_status st = bmc_model_load(g_good, NULL, &m);
        bmc__alloc_fail_after(0);
        if (st != BMC_E_NOMEM) fail_msg("allocation %ld of %ld failing: status %d (%s)", k, total, st, bmc_last_error());
        assert_null(m);
    }
}

/* ---- random damage: any status, never a crash (run under `make sanitize` too) ------------------ */

static void test_fuzz_directory(void **state) {
    uint8_t *b = copy();
    write_other(b, g_size);
    FILE *f = fopen(g_tmp, "r+b");
    assert_non_null(f);
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    int ok = 0;
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(b, g_file, g_h.data_offset);
        int flips = 1 + iter % 4;
        for (int k = 0; k < flips; k++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            size_t span = iter % 3 == 0 ? BMC__HEADER_SIZE : (size_t)g_h.data_offset;
            size_t off = (size_t)(seed >> 33) % span;
            b[off] = (uint8_t)(seed >> 13);
        }
        fix_crcs(b); /* so that the checks behind the CRCs see the damage */
        fseek(f, 0, SEEK_SET);
        assert_int_equal(fwrite(b, 1, g_h.data_offset, f), g_h.data_offset);
        fflush(f);
        bmc_model *m = NULL;
        bmc_status st = bmc_model_load(g_tmp, NULL, &m);
        if (st == BMC_OK) {
            ok++;
            char buf[64];
            bmc_model_describe(m, buf, sizeof buf);
            bmc_model_free(m);
        } else {
            assert_null(m);
            assert_true(bmc_last_error()[0] != 0);
        }
    }
    fclose(f);
    g_tmp_full = 0;
    printf("fuzz: 3000 damaged headers/directories, %d still loadable (harmless bytes)\n", ok);
    free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_file),      cmocka_unit_test(test_huge_pages),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_truncated),      cmocka_unit_test(test_header_bytes),
        cmocka_unit_test(test_config),         cmocka_unit_test(test_directory_bytes),
        cmocka_unit_test(test_entries),        cmocka_unit_test(test_data),
        cmocka_unit_test(test_alloc_failures), cmocka_unit_test(test_fuzz_directory),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
