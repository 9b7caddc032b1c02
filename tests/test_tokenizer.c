/* test_tokenizer.c - the tokenizer on the shared test vectors (ids made by the official HF
 * tokenizer) and on edge cases: empty and blank texts, truncation, invalid UTF-8, multi-megabyte
 * texts, the 100-character word limit, typed special tokens, small buffers, bad arguments,
 * allocation failure. Expected ids come from the vectors or from vocabulary look-ups, never
 * from the tokenizer itself, except where a case is defined as equal to another text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "error.h"
#include "text_clean.h"
#include "tokenizer.h"
#include "tokenizer_test_util.h"

static tu_vocab tv;
static bmc__config cfg;
static int ids[1024], ids2[1024];

static int setup(void **state) {
    (void)state;
    return tu_load_biomedbert(&tv, &cfg);
}

static int teardown(void **state) {
    (void)state;
    tu_vocab_free(&tv);
    return 0;
}

static int tok(const char *s, size_t len, int *out) {
    int n = -1;
    assert_int_equal(bmc__tokenize(&tv.v, &cfg, BMC__TOK_CLEAN, s, len, out, 1024, &n), BMC_OK);
    return n;
}
static int toks(const char *s, int *out) { return tok(s, strlen(s), out); }
static int tok_raw(const char *s, int *out) {
    int n = -1;
    assert_int_equal(bmc__tokenize(&tv.v, &cfg, BMC__TOK_RAW, s, strlen(s), out, 1024, &n), BMC_OK);
    return n;
}
static void assert_ids(const int *got, int n_got, const int *exp, int n_exp) {
    assert_int_equal(n_got, n_exp);
    for (int i = 0; i < n_exp; i++) assert_int_equal(got[i], exp[i]);
}
static void assert_same_as(const char *text, const char *equivalent) {
    int n = toks(text, ids), m = toks(equivalent, ids2);
    assert_ids(ids, n, ids2, m);
}

/* ------------------------------------------------------------------------------------------ */

static void test_shared_vectors(void **state) {
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/tokenizer_test_vectors.json", tu_shared_data());
    size_t len = 0;
    char *json = tu_read_file(path, &len);
    assert_non_null(json);
    const char *p = strstr(json, "\"vectors\""), *end = json + len;
    assert_non_null(p);
    int n = 0, n_lig = 0, exp[300];
    while ((p = tu_json_key(p, end, "text"))) {
        char *text = NULL;
        size_t tlen = 0;
        p = tu_json_string(p, &text, &tlen);
        assert_non_null(p);
        int n_exp = tu_json_ints(tu_json_key(p, end, "ids"), exp, 300);
        assert_true(n_exp >= 2);
        int n_raw = tok_raw(text, ids);
        assert_ids(ids, n_raw, exp, n_exp); /* HF tokenizer alone: exact */
        int n_full = tok(text, tlen, ids);
        char *lig = strstr(text, "\xef\xac\x81");
        if (!lig) {
            assert_ids(ids, n_full, exp, n_exp); /* open_clip's cleaning changes nothing here */
        } else {
            /* the one vector whose ids the cleaning changes: ftfy turns U+FB01 into "fi" */
            memcpy(lig, "fi\x20", 3);
            memmove(lig + 2, lig + 3, strlen(lig + 3) + 1);
            int n_fi = tok_raw(text, ids2);
            assert_ids(ids, n_full, ids2, n_fi);
            assert_int_not_equal(n_full, n_exp);
            n_lig++;
        }
        free(text);
        n++;
    }
    printf("shared vectors: %d texts, HF ids identical; full pipeline identical except the %d "
           "ligature text (ftfy's fix)\n", n, n_lig);
    assert_int_equal(n, 24);
    assert_int_equal(n_lig, 1);
    free(json);
}

static void test_empty_and_blank(void **state) {
    (void)state;
    const int cls_sep[2] = {(int)cfg.cls_id, (int)cfg.sep_id};
    const char *blank[] = {"", " ", "\t\n\r\v\f", "\xc2\xa0\xe3\x80\x80\xe2\x80\xa8 \x1c\x1f",
                           "\xe2\x80\x8b\xef\xbb\xbf\x00", "\x1b[31m\x1b[0m", "&#0;&#1;", "\xcc\x81"};
    for (size_t i = 0; i < sizeof blank / sizeof *blank; i++) {
        size_t len = i == 4 ? 7 : strlen(blank[i]);
        assert_ids(ids, tok(blank[i], len, ids), cls_sep, 2);
    }
    int n = -1;
    assert_int_equal(bmc__tokenize(&tv.v, &cfg, BMC__TOK_CLEAN, NULL, 0, ids, 2, &n), BMC_OK);
    assert_ids(ids, n, cls_sep, 2);
}

static void test_truncation(void **state) {
    (void)state;
    const int carcinoma = tu_id(&tv, "carcinoma");
    for (int words = 250; words <= 300; words++) {
        char text[4096] = "";
        for (int w = 0; w < words; w++) strcat(text, "carcinoma ");
        int n = toks(text, ids), want = words + 2 < 256 ? words + 2 : 256;
        assert_int_equal(n, want);
        assert_int_equal(ids[0], (int)cfg.cls_id);
        assert_int_equal(ids[n - 1], (int)cfg.sep_id);
        for (int i = 1; i < n - 1; i++) assert_int_equal(ids[i], carcinoma);
    }
    /* a two-piece word cut in the middle: "covid" is cov ##id */
    char text[4096] = "a";
    for (int w = 0; w < 200; w++) strcat(text, " covid");
    int n = toks(text, ids);
    assert_int_equal(n, 256);
    assert_int_equal(ids[253], tu_id(&tv, "##id"));
    assert_int_equal(ids[254], tu_id(&tv, "cov")); /* its ##id is cut off */
    assert_int_equal(ids[255], (int)cfg.sep_id);
    /* context length from the config */
    bmc__config c8 = cfg;
    c8.context_length = 8;
    assert_int_equal(bmc__tokenize(&tv.v, &c8, BMC__TOK_CLEAN, text, strlen(text), ids2, 8, &n), BMC_OK);
    assert_int_equal(n, 8);
    for (int i = 0; i < 7; i++) assert_int_equal(ids2[i], ids[i]);
    assert_int_equal(ids2[7], (int)cfg.sep_id);
    c8.context_length = 2;
    assert_int_equal(bmc__tokenize(&tv.v, &c8, BMC__TOK_CLEAN, text, strlen(text), ids2, 8, &n), BMC_OK);
    assert_int_equal(n, 2);
}

static void test_invalid_utf8(void **state) {
    (void)state;
    /* Unicode 15 §3.9, Table 3-8: one U+FFFD per maximal subpart. */
    const char in[] = "a\xf1\x80\x80\xe1\x80\xc2" "b\x80" "c\x80\xbf" "d";
    const char want[] = "a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" "b\xef\xbf\xbd"
                        "c\xef\xbf\xbd\xef\xbf\xbd" "d";
    char *clean = NULL;
    size_t n;
    assert_int_equal(tu_clean_text(in, sizeof in - 1, &clean, &n), BMC_OK);
    assert_int_equal(n, sizeof want - 1);
    assert_memory_equal(clean, want, n);
    bmc__free(clean);
    const struct { const char *bytes, *as; } cases[] = {
        {"x\xc0\xafy", "x\xef\xbf\xbd\xef\xbf\xbdy"},             /* overlong */
        {"x\xed\xa0\x80y", "x\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdy"}, /* surrogate */
        {"x\xf4\x90\x80\x80y", "x\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdy"},
        {"x\xf0\x9f\x99 y", "x\xef\xbf\xbd y"},                      /* truncated */
        {"caf\xc3", "caf\xef\xbf\xbd"},                              /* cut at the end */
        {"\xff\xfe\xfd", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        assert_int_equal(tu_clean_text(cases[i].bytes, strlen(cases[i].bytes), &clean, &n), BMC_OK);
        assert_string_equal(clean, cases[i].as);
        bmc__free(clean);
        assert_same_as(cases[i].bytes, cases[i].as);
    }
    /* BERT drops U+FFFD, so the pieces join: "x\xff y" is "x y", "x\xffy" is "xy" */
    assert_same_as("carci\xffnoma", "carcinoma");
}

static void test_multimegabyte(void **state) {
    (void)state;
    const size_t big = 4u << 20;
    char *s = malloc(big + 16);
    assert_non_null(s);
    const int carcinoma = tu_id(&tv, "carcinoma"), amp = tu_id(&tv, "&");
    /* many words: stops after the context is full */
    for (size_t i = 0; i < big; i += 10) memcpy(s + i, "carcinoma ", 10);
    int n = tok(s, big, ids);
    assert_int_equal(n, 256);
    for (int i = 1; i < 255; i++) assert_int_equal(ids[i], carcinoma);
    /* many lines */
    for (size_t i = 9; i < big; i += 10) s[i] = '\n';
    assert_int_equal(tok(s, big, ids), 256);
    assert_int_equal(ids[254], carcinoma);
    /* one 4 MB word: a single [UNK] */
    memset(s, 'x', big);
    n = tok(s, big, ids);
    assert_int_equal(n, 3);
    assert_int_equal(ids[1], (int)cfg.unk_id);
    /* one 4 MB line of entities: ftfy and html.unescape run over all of it */
    for (size_t i = 0; i + 5 <= big; i += 5) memcpy(s + i, "&amp;", 5);
    n = tok(s, big - big % 5, ids);
    assert_int_equal(n, 256);
    for (int i = 1; i < 255; i++) assert_int_equal(ids[i], amp);
    free(s);
}

/* ftfy.fix_text works on segments of at most 1,000,000 code points: an entity cut by that
 * boundary is left to html.unescape, which does not know ftfy's upper-case names. */
static void test_ftfy_segments(void **state) {
    (void)state;
    const size_t seg = 1000000;
    char *s = malloc(seg + 64);
    assert_non_null(s);
    for (size_t start = seg - 10; start <= seg - 2; start += 8) {
        memset(s, ' ', start);
        memcpy(s + start, "&EACUTE;", 9);
        int n = tok(s, start + 8, ids);
        int m = tok_raw(start + 8 <= seg ? "\xc3\x89" : "&EACUTE;", ids2);
        assert_ids(ids, n, ids2, m);
    }
    free(s);
    assert_same_as("&EACUTE;", "\xc3\x89");
}

/* Long lines of plain ASCII are fed to the tokenizer in chunks; the result must be the one of
 * the general path (forced here by one no-break space, which cleans to a space). */
static void test_long_plain_lines(void **state) {
    (void)state;
    const char *units[] = {"[MASK]abcdefghijklmnopqrstuvwxyz ", "a[MASK]", "covid-19 [SEP]x&y ",
                           "abcdefghij"};
    char *s = malloc(20000), *t = malloc(20000);
    assert_non_null(s);
    assert_non_null(t);
    for (size_t u = 0; u < sizeof units / sizeof *units; u++) {
        s[0] = 0;
        for (int r = 0; r < 400 && strlen(s) + 40 < 16000; r++) strcat(s, units[u]);
        snprintf(t, 20000, "\xc2\xa0%s", s);
        int n = toks(s, ids), m = toks(t, ids2);
        assert_ids(ids, n, ids2, m);
        int nr = tok_raw(s, ids), mr = tok_raw(t, ids2);
        assert_ids(ids, nr, ids2, mr);
    }
    free(s);
    free(t);
}

static void test_word_length(void **state) {
    (void)state;
    char w[512];
    const int xx = tu_id(&tv, "xx"), x = tu_id(&tv, "##x");
    for (int len = 99; len <= 102; len++) {
        memset(w, 'x', (size_t)len);
        w[len] = 0;
        int n = toks(w, ids);
        if (len <= 100) {
            assert_int_equal(n, len + 1); /* xx ##x ... */
            assert_int_equal(ids[1], xx);
            assert_int_equal(ids[n - 2], x);
        } else {
            assert_int_equal(n, 3);
            assert_int_equal(ids[1], (int)cfg.unk_id);
        }
        /* é is one character after NFD + accent removal */
        w[0] = 0;
        for (int i = 0; i < len; i++) strcat(w, "\xc3\xa9");
        assert_int_equal(toks(w, ids) == 3 && ids[1] == (int)cfg.unk_id, len > 100);
    }
    /* ftfy splits the ligature: 60 x U+FB01 becomes a 120-character word */
    w[0] = 0;
    for (int i = 0; i < 60; i++) strcat(w, "\xef\xac\x81");
    assert_int_equal(toks(w, ids), 3);
    assert_int_equal(ids[1], (int)cfg.unk_id);
}

static void test_special_tokens(void **state) {
    (void)state;
    const int mask = (int)cfg.mask_id, pad = (int)cfg.pad_id;
    int n = toks("[MASK]", ids);
    assert_int_equal(n, 3);
    assert_int_equal(ids[1], mask);
    /* foo[MASK]bar: the typed token splits the text like a separator */
    int a = toks("foo", ids2) - 2;
    n = toks("foo[MASK]bar", ids);
    assert_int_equal(ids[1 + a], mask);
    for (int i = 0; i < a; i++) assert_int_equal(ids[1 + i], ids2[1 + i]);
    /* [PAD] typed in the text is id 0 in the middle (as in HF) */
    n = toks("x [PAD] y", ids);
    assert_int_equal(n, 5);
    assert_int_equal(ids[2], pad);
    /* only the exact strings: lower case and broken ones are normalised text */
    n = toks("[mask]", ids);
    const int want[5] = {(int)cfg.cls_id, tu_id(&tv, "["), tu_id(&tv, "mask"), tu_id(&tv, "]"),
                         (int)cfg.sep_id};
    assert_ids(ids, n, want, 5);
    assert_same_as("[MA\xe2\x80\x8bSK]", "[mask]"); /* the ZWSP goes, but after the match */
}

static void test_small_cap(void **state) {
    (void)state;
    const char *t = "this is a photo of brain MRI"; /* 9 ids */
    int n = -1;
    for (int cap = 0; cap < 9; cap++) {
        assert_int_equal(bmc__tokenize(&tv.v, &cfg, BMC__TOK_CLEAN, t, strlen(t), ids, cap, &n),
                         BMC_E_TOO_LONG);
        assert_int_equal(n, 9);
    }
    assert_int_equal(bmc__tokenize(&tv.v, &cfg, BMC__TOK_CLEAN, t, strlen(t), ids, 9, &n), BMC_OK);
    assert_int_equal(n, 9);
    assert_int_equal(ids[8], (int)cfg.sep_id);
}

static void test_bad_args(void **state) {
    (void)state;
    int n;
    const char *t = "x";
    assert_int_equal(bmc__tokenize(NULL, &cfg, BMC__TOK_CLEAN, t, 1, ids, 8, &n), BMC_E_INVALID_ARG);
    assert_int_equal(bmc__tokenize(&tv.v, NULL, BMC__TOK_CLEAN, t, 1, ids, 8, &n), BMC_E_INVALID_ARG);
    assert_int_equal(bmc__tokenize(&tv.v, &cfg, BMC__TOK_CLEAN, NULL, 1, ids, 8, &n), BMC_E_INVALID_ARG);
    assert_int_equal(bmc__tokenize(&tv.v, &cfg, BMC__TOK_CLEAN, t, 1, NULL, 8, &n), BMC_E_INVALID_ARG);
    assert_int_equal(bmc__tokenize(&tv.v, &cfg, BMC__TOK_CLEAN, t, 1, ids, 8, NULL), BMC_E_INVALID_ARG);
    assert_int_equal(bmc__tokenize(&tv.v, &cfg, BMC__TOK_CLEAN, t, 1, ids, -1, &n), BMC_E_INVALID_ARG);
    assert_int_equal(bmc__tokenize(NULL, &cfg, BMC__TOK_RAW, t, 1, ids, 8, &n), BMC_E_INVALID_ARG);
    assert_int_equal(bmc_tokenize(NULL, t, ids, 8, &n), BMC_E_INVALID_ARG);
    assert_true(strstr(bmc_last_error(), "model") != NULL);
    bmc__config c = cfg;
    c.context_length = 1;
    assert_int_equal(bmc__tokenize(&tv.v, &c, BMC__TOK_CLEAN, t, 1, ids, 8, &n), BMC_E_INVALID_ARG);
    c = cfg;
    c.max_word_chars = 0;
    assert_int_equal(bmc__tokenize(&tv.v, &c, BMC__TOK_CLEAN, t, 1, ids, 8, &n), BMC_E_INVALID_ARG);
    c = cfg;
    c.unk_id = tv.v.n;
    assert_int_equal(bmc__tokenize(&tv.v, &c, BMC__TOK_CLEAN, t, 1, ids, 8, &n), BMC_E_INVALID_ARG);
}

static void test_allocations(void **state) {
    (void)state;
    /* a typical prompt (lines under 256 code points) allocates nothing */
    bmc__alloc_fail_after(0);
    toks("this is a photo of &ldquo;adenocarcinoma&rdquo; histopathology, \xc3\x97" "40 \xef\xac\x81", ids);
    assert_int_equal(bmc__alloc_fail_after(0), 0);
    /* a long line needs scratch; every failing allocation is reported, nothing leaks (ASan) */
    char s[3000];
    memset(s, 'a', sizeof s);
    for (size_t i = 7; i < sizeof s; i += 8) s[i] = ' ';
    s[100] = '&';
    int n = -1;
    for (long k = 1;; k++) {
        bmc__alloc_fail_after(k);
        bmc_status st = bmc__tokenize(&tv.v, &cfg, BMC__TOK_CLEAN, s, sizeof s, ids, 1024, &n);
        long made = bmc__alloc_fail_after(0);
        if (st == BMC_OK) {
            assert_true(made < k);
            break;
        }
        assert_int_equal(st, BMC_E_NOMEM);
        assert_true(k < 100);
    }
    assert_int_equal(n, 256);
}

/* A few cleaning rules spelled out (the corpus test checks thousands against Python). */
static void test_clean_text(void **state) {
    (void)state;
    const struct { const char *in, *out; } cases[] = {
        {"  a \xe3\x80\x80 b\t\n", "a b"},                       /* str.split() + join */
        {"a\x1c" "b\x1f" "c", "abc"},                            /* ftfy drops them first */
        {"&#28;x", "x"},                                         /* html.unescape: \x1c is space */
        {"&amp;lt;b&amp;gt;", "<b>"},                            /* nested, no '<' in the text */
        {"&EACUTE;t&EACUTE;", "\xc3\x89t\xc3\x89"},              /* ftfy's upper-case names */
        {"a < &EACUTE; &ldquo;", "a < &EACUTE; \xe2\x80\x9c"},   /* '<': ftfy leaves entities */
        {"&ldquo;x&rdquo;", "\"x\""},                            /* ftfy unescapes, then uncurls */
        {"\xe2\x80\x98q\xe2\x80\x99 \xef\xac\x81 \xef\xbc\xa1\xef\xbc\x91", "'q' fi A1"},
        {"\xc2\x93hi\xc2\x94 \xc2\x85", "\"hi\" \xe2\x80\xa6"},  /* C1 controls as cp1252 */
        {"e\xcc\x81", "\xc3\xa9"},                               /* NFC */
        {"\x1b[1;31mred\x1b[0m", "red"},                         /* terminal escapes */
        {"&#128;&#x41;&#65&notit;&amp", "\xe2\x82\xac" "AA\xc2\xacit;&"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *out = NULL;
        assert_int_equal(tu_clean_text(cases[i].in, strlen(cases[i].in), &out, NULL), BMC_OK);
        assert_string_equal(out, cases[i].out);
        bmc__free(out);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_vectors), cmocka_unit_test(test_empty_and_blank),
        cmocka_unit_test(test_truncation),     cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_multimegabyte),  cmocka_unit_test(test_ftfy_segments),
        cmocka_unit_test(test_long_plain_lines), cmocka_unit_test(test_word_length),
        cmocka_unit_test(test_special_tokens),
        cmocka_unit_test(test_small_cap),      cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_allocations),    cmocka_unit_test(test_clean_text),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
