/* test_ftfy.c - ftfy's mojibake repair (lib/ftfy_encoding.c) against ftfy 6.3.1 itself: every
 * vector of tests/data/ftfy_vectors.jsonl (made by tools/make_ftfy_vectors.py with the real ftfy
 * and the official HF tokenizer) through the library's per-line steps over the whole text:
 * bmc__ftfy_line (tu_fix_text; expected `fixed` = ftfy.fix_text(text)), bmc__clean_line
 * (tu_clean_text; expected `clean`, open_clip's cleaning), and bmc__tokenize (expected `ids`).
 * Also a few properties that hold whatever the data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "error.h"
#include "ftfy.h"
#include "text_clean.h"
#include "tokenizer.h"
#include "tokenizer_test_util.h"

#define VECTORS "tests/data/ftfy_vectors.jsonl"
#define MAX_IDS 512

static void show(const char *what, const char *s, size_t n) {
    printf("    %s: ", what);
    for (size_t i = 0; i < n && i < 160; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7F) putchar(c);
        else printf("\\x%02X", c);
    }
    putchar('\n');
}

static void test_vectors(void **state) {
    (void)state;
    tu_vocab tv;
    bmc__config cfg;
    assert_int_equal(tu_load_biomedbert(&tv, &cfg), 0);
    size_t flen = 0, pos = 0;
    char *file = tu_read_file(VECTORS, &flen);
    assert_non_null(file);
    int n = 0, bad_fixed = 0, bad_clean = 0, bad_ids = 0, repaired = 0;
    int exp[MAX_IDS], got[MAX_IDS];
    for (char *line, *end; (line = tu_next_line(file, flen, &pos, &end));) {
        char *text = NULL, *fixed = NULL, *clean = NULL, *cat = NULL;
        size_t text_len = 0, fixed_len = 0, clean_len = 0, cat_len = 0;
        assert_non_null(tu_json_string(tu_json_key(line, end, "text"), &text, &text_len));
        assert_non_null(tu_json_string(tu_json_key(line, end, "fixed"), &fixed, &fixed_len));
        assert_non_null(tu_json_string(tu_json_key(line, end, "clean"), &clean, &clean_len));
        assert_non_null(tu_json_string(tu_json_key(line, end, "cat"), &cat, &cat_len));
        int n_exp = tu_json_ints(tu_json_key(line, end, "ids"), exp, MAX_IDS);
        assert_true(n_exp >= 2);

        char *c = NULL;
        size_t c_len = 0;
        bmc_status st = tu_fix_text(text, text_len, &c, &c_len);
        if (st != BMC_OK || c_len != fixed_len || memcmp(c, fixed, fixed_len)) {
            if (bad_fixed++ < 10) {
                printf("  fix_text differs [%s] line %d\n", cat, n + 1);
                show("text    ", text, text_len);
                show("expected", fixed, fixed_len);
                if (c) show("got     ", c, c_len);
            }
        }
        repaired += text_len != fixed_len || memcmp(text, fixed, fixed_len);
        bmc__free(c);
        c = NULL;
        st = tu_clean_text(text, text_len, &c, &c_len);
        if (st != BMC_OK || c_len != clean_len || memcmp(c, clean, clean_len)) bad_clean++;
        bmc__free(c);
        int n_got = -1;
        st = bmc__tokenize(&tv.v, &cfg, BMC__TOK_CLEAN, text, text_len, got, MAX_IDS, &n_got);
        if (st != BMC_OK || n_got != n_exp || memcmp(got, exp, (size_t)n_exp * sizeof *exp)) bad_ids++;
        free(text);
        free(fixed);
        free(clean);
        free(cat);
        n++;
    }
    printf("ftfy vectors: %d (%d changed by ftfy.fix_text); fix_text: %d differ; cleaned text: %d "
           "differ; ids: %d differ\n", n, repaired, bad_fixed, bad_clean, bad_ids);
    assert_true(n >= 5000);
    assert_true(repaired >= 3000); /* the vectors do exercise the repair */
    assert_int_equal(bad_fixed, 0);
    assert_int_equal(bad_clean, 0);
    assert_int_equal(bad_ids, 0);
    free(file);
    tu_vocab_free(&tv);
}

static uint32_t *to_cps(const char *s, size_t *n) {
    static uint32_t buf[256];
    size_t len = strlen(s), k = 0;
    const uint8_t *u = (const uint8_t *)s;
    while (len) {
        size_t used = bmc__utf8_next(u, len, &buf[k++]);
        u += used;
        len -= used;
    }
    *n = k;
    return buf;
}

/* The heuristic on texts whose answer ftfy's documentation and source comments state. */
static void test_is_bad(void **state) {
    (void)state;
    static const char *bad[] = {"Ã©", "â€™", "Ã la", "Ã¡", "Â°C", "ÐŸÑ€Ð¸Ð²ÐµÑ‚", "\xc2\x80",
                                "\xc2\x9d", "Ã\xc2\xa0"};
    static const char *good[] = {"", "plain ASCII", "Café naïve", "37 °C", "5 µm ± 0.2",
                                 "Ελληνικά", "肺癌", "🙂", "Zürich", "×400"};
    size_t n;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        uint32_t *s = to_cps(bad[i], &n);
        if (!bmc__ftfy_is_bad(s, n)) fail_msg("is_bad(%s) should be true", bad[i]);
    }
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        uint32_t *s = to_cps(good[i], &n);
        if (bmc__ftfy_is_bad(s, n)) fail_msg("is_bad(%s) should be false", good[i]);
    }
}

/* fix_encoding never changes ASCII text (it returns at once, possible_encoding(text, 'ascii')),
 * and allocates nothing for text that does not look like mojibake. */
static void test_ascii_untouched(void **state) {
    (void)state;
    uint32_t s[128], store[128];
    for (uint32_t c = 0; c < 128; c++) s[c] = c;
    bmc__cpbuf out;
    bmc__cpbuf_init(&out, store, 128);
    assert_int_equal(bmc__ftfy_fix_encoding(s, 128, &out), BMC_OK);
    assert_int_equal(out.n, 128);
    assert_memory_equal(out.p, s, sizeof s);
    assert_int_equal(out.heap, 0);
    size_t n;
    uint32_t *t = to_cps("Café naïve — 37 °C, 5 µm", &n);
    out.n = 0;
    assert_int_equal(bmc__ftfy_fix_encoding(t, n, &out), BMC_OK);
    assert_int_equal(out.n, n);
    assert_int_equal(out.heap, 0);
    bmc__cpbuf_free(&out);
}

/* Every allocation of the repair failing in turn (lib/error.h bmc__alloc_fail_after): each
 * attempt returns BMC_E_NOMEM or succeeds with ftfy's result, and leaks nothing (the sanitizer
 * build checks that). Texts that go through each codec path, restore_byte_a0, lossy bytes,
 * the nested decode_inconsistent_utf8 and the C1 fixes. */
static void test_alloc_failure(void **state) {
    (void)state;
    static const struct {
        const char *text, *fixed;
    } cases[] = {
        {"\xc3\x83\xc2\xa9t\xc3\x83\xc2\xa9", "\xc3\xa9t\xc3\xa9"},          /* Ã©tÃ© -> été */
        {"Caf\xc3\xa9 and \xc3\x83\xc2\xa9t\xc3\x83\xc2\xa9 \xc2\x93x\xc2\x94",
         "Caf\xc3\xa9 and \xc3\xa9t\xc3\xa9 \"x\""},                            /* mixed, C1 */
        {"\xc3\xa2\xe2\x82\xac\xc5\x93hi\xc3\xa2\xe2\x82\xac\xef\xbf\xbd", "\"hi\xef\xbf\xbd"}, /* lossy */
        {"\xc3\x83 la mode", "\xc3\xa0 la mode"},                                   /* byte A0 */
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char *out = NULL;
        size_t n = 0, len = strlen(cases[k].text);
        bmc__alloc_fail_after(0);
        assert_int_equal(tu_fix_text(cases[k].text, len, &out, &n), BMC_OK);
        long total = bmc__alloc_fail_after(0);
        assert_int_equal(n, strlen(cases[k].fixed));
        assert_memory_equal(out, cases[k].fixed, n);
        bmc__free(out);
        assert_true(total >= 2);
        for (long f = 1; f <= total; f++) {
            out = NULL;
            bmc__alloc_fail_after(f);
            bmc_status st = tu_fix_text(cases[k].text, len, &out, &n);
            bmc__alloc_fail_after(0);
            if (st == BMC_OK) {
                assert_int_equal(n, strlen(cases[k].fixed));
                assert_memory_equal(out, cases[k].fixed, n);
                bmc__free(out);
            } else {
                assert_int_equal(st, BMC_E_NOMEM);
                assert_null(out);
            }
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_is_bad),
        cmocka_unit_test(test_ascii_untouched),
        cmocka_unit_test(test_alloc_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
