/* fuzz_tokenize.c - libFuzzer target: the tokenizer (open_clip cleaning + BERT WordPiece) on the
 * tiny test model's real vocabulary.
 *
 * Byte 0 chooses the room given for ids: a multiple of 8 gives byte0 / 8 (0..31, to exercise
 * BMC_E_TOO_LONG), anything else BMC_MAX_TOKENS. The rest is the text: as a C string to
 * bmc_tokenize (cut at the first NUL), and whole (NULs included) to the raw tokenizer.
 * Checked: [CLS] first, [SEP] last, every id inside the vocabulary, at most the context length,
 * the same ids on a second call, and a too-small buffer reporting the same count as a big one.
 * Then ftfy.fix_text alone (mojibake repair included) on the whole input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "error.h"
#include "model.h"
#include "tokenizer.h"
#include "../tests/tokenizer_test_util.h" /* tu_fix_text: ftfy.fix_text on a whole text */

static bmc_model *g_model;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    g_model = fuzz_load_tiny();
    return 0;
}

static void check_ids(const int *ids, int n) {
    const bmc__config *c = &g_model->config;
    if (n < 2 || n > (int)c->context_length) abort();
    if (ids[0] != (int)c->cls_id || ids[n - 1] != (int)c->sep_id) abort();
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= bmc_model_vocab_size(g_model)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int cap = data[0] % 8 == 0 ? data[0] / 8 : BMC_MAX_TOKENS;
    size_t n = size - 1;
    char *text = malloc(n + 1);
    if (!text) return 0;
    memcpy(text, data + 1, n);
    text[n] = 0;

    int big[BMC_MAX_TOKENS], again[BMC_MAX_TOKENS], nb = -1, na = -1;
    bmc_status st = bmc_tokenize(g_model, text, big, BMC_MAX_TOKENS, &nb);
    if (st != BMC_OK) abort(); /* BMC_MAX_TOKENS always suffices (biomedclip.h) */
    check_ids(big, nb);
    if (bmc_tokenize(g_model, text, again, BMC_MAX_TOKENS, &na) != BMC_OK || na != nb ||
        memcmp(big, again, sizeof(int) * (size_t)nb) != 0)
        abort();

    int *small = malloc(sizeof(int) * (size_t)(cap ? cap : 1)), ns = -1;
    if (small) {
        st = bmc_tokenize(g_model, text, small, cap, &ns);
        if (st == BMC_OK) {
            if (ns != nb || memcmp(small, big, sizeof(int) * (size_t)nb) != 0) abort();
        } else if (st == BMC_E_TOO_LONG) {
            if (cap >= nb || ns != nb) abort();
        } else if (st != BMC_E_INVALID_ARG || cap > 0) {
            abort();
        }
        free(small);
    }

    int raw[BMC_MAX_TOKENS], nr = -1;
    st = bmc__tokenize(&g_model->vocab, &g_model->config, BMC__TOK_RAW, (const char *)data + 1,
                       n, raw, BMC_MAX_TOKENS, &nr);
    if (st != BMC_OK) abort();
    check_ids(raw, nr);

    /* ftfy.fix_text alone on the whole input (the tokenizer stops reading at 256 ids), NULs
     * included: never fails but for memory, and is valid UTF-8 no longer than 4x the input
     * (fix_text shortens mojibake; only its character maps grow text, at most 3x). */
    char *fixed = NULL;
    size_t nf = 0;
    st = tu_fix_text((const char *)data + 1, n, &fixed, &nf);
    if (st != BMC_OK || !fixed || nf > 4 * n + 4) abort();
    bmc__free(fixed);
    free(text);
    return 0;
}
