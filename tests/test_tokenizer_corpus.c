/* test_tokenizer_corpus.c - every text of tests/data/tokenizer_corpus.jsonl (made by
 * tools/make_tokenizer_corpus.py with the official HF tokenizer and ftfy 6.3.1's default
 * fix_text, mojibake repair included) through bmc__tokenize (expected `ids`), the same with
 * BMC__TOK_RAW (expected `raw_ids`, or `ids` when absent) and the library's per-line cleaning
 * over the whole text (tu_clean_text; expected `clean`). Prints the counts per group. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "error.h"
#include "text_clean.h"
#include "tokenizer.h"
#include "tokenizer_test_util.h"

#define CORPUS "tests/data/tokenizer_corpus.jsonl"
#define MAX_IDS 512

static int same(const int *a, int na, const int *b, int nb) {
    return na == nb && !memcmp(a, b, (size_t)na * sizeof *a);
}

static void print_ids(const char *what, const int *ids, int n) {
    printf("    %s:", what);
    for (int i = 0; i < n && i < 24; i++) printf(" %d", ids[i]);
    printf(n > 24 ? " ... (%d)\n" : "\n", n);
}

static void test_corpus(void **state) {
    (void)state;
    tu_vocab tv;
    bmc__config cfg;
    assert_int_equal(tu_load_biomedbert(&tv, &cfg), 0);
    size_t flen = 0, pos = 0;
    char *file = tu_read_file(CORPUS, &flen);
    assert_non_null(file);

    int n = 0, bad_ids = 0, bad_raw = 0, bad_clean = 0, n_bytes = 0, n_long = 0;
    int exp[MAX_IDS], exp_raw[MAX_IDS], got[MAX_IDS];
    for (char *line, *end; (line = tu_next_line(file, flen, &pos, &end));) {
        const char *v;
        char *text = NULL, *clean = NULL, *cat = NULL;
        size_t text_len = 0, clean_len = 0, cat_len = 0;
        assert_non_null(tu_json_string(tu_json_key(line, end, "text"), &text, &text_len));
        assert_non_null(tu_json_string(tu_json_key(line, end, "clean"), &clean, &clean_len));
        assert_non_null(tu_json_string(tu_json_key(line, end, "cat"), &cat, &cat_len));
        if ((v = tu_json_key(line, end, "bytes_hex"))) { /* raw bytes, not valid UTF-8 */
            free(text);
            text = tu_unhex(v + 1, &text_len);
            n_bytes++;
        }
        int n_exp = tu_json_ints(tu_json_key(line, end, "ids"), exp, MAX_IDS);
        assert_true(n_exp >= 2);
        int n_raw = n_exp;
        memcpy(exp_raw, exp, sizeof exp);
        if ((v = tu_json_key(line, end, "raw_ids"))) n_raw = tu_json_ints(v, exp_raw, MAX_IDS);
        assert_true(n_raw >= 2);
        n_long += n_exp == (int)cfg.context_length;

        int n_got = -1;
        bmc_status st = bmc__tokenize(&tv.v, &cfg, BMC__TOK_CLEAN, text, text_len, got, MAX_IDS,
                                      &n_got);
        if (st != BMC_OK || !same(got, n_got, exp, n_exp)) {
            if (bad_ids++ < 5) {
                printf("  ids differ [%s] line %d: %s\n", cat, n + 1, st ? bmc_last_error() : "");
                print_ids("expected", exp, n_exp);
                print_ids("got     ", got, n_got);
            }
        }
        st = bmc__tokenize(&tv.v, &cfg, BMC__TOK_RAW, text, text_len, got, MAX_IDS, &n_got);
        if (st != BMC_OK || !same(got, n_got, exp_raw, n_raw)) {
            if (bad_raw++ < 5) {
                printf("  raw ids differ [%s] line %d\n", cat, n + 1);
                print_ids("expected", exp_raw, n_raw);
                print_ids("got     ", got, n_got);
            }
        }
        char *c = NULL;
        size_t c_len = 0;
        st = tu_clean_text(text, text_len, &c, &c_len);
        if (st != BMC_OK || c_len != clean_len || memcmp(c, clean, clean_len)) {
            if (bad_clean++ < 5) printf("  clean text differs [%s] line %d\n", cat, n + 1);
        }
        bmc__free(c);
        free(text);
        free(clean);
        free(cat);
        n++;
    }
    printf("tokenizer corpus: %d texts (%d given as invalid UTF-8 bytes, %d filling the context); "
           "full pipeline ids: %d differ; HF-only ids: %d differ; cleaned text: %d differ\n",
           n, n_bytes, n_long, bad_ids, bad_raw, bad_clean);
    assert_true(n >= 2000);
    assert_int_equal(bad_ids, 0);
    assert_int_equal(bad_raw, 0);
    assert_int_equal(bad_clean, 0);
    free(file);
    tu_vocab_free(&tv);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_corpus)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
