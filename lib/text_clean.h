/* text_clean.h - open_clip's text cleaning before BERT tokenization:
 *     whitespace_clean(basic_clean(text)) = " ".join(html.unescape(html.unescape(
 *                                               ftfy.fix_text(text))).split())
 * with ftfy.fix_text's defaults (ftfy 6.3.1; its mojibake repair, fix_encoding, is in
 * lib/ftfy_encoding.c), Python's html.unescape, and Python's str.split() whitespace.
 * docs/TOKENIZER.md describes exactly what is reproduced.
 *
 * Every step is local to a line (up to and including '\n'): ftfy works line by line, and no
 * HTML character reference can span a '\n'. So a text is cleaned one line at a time, and a
 * caller that needs only a prefix of the result (the tokenizer) can stop early. */
#ifndef BMC_TEXT_CLEAN_H
#define BMC_TEXT_CLEAN_H

#include <stddef.h>
#include <stdint.h>

#include "biomedclip.h"

/* A growable array of code points: it starts in caller storage (often on the stack) or empty,
 * and moves to bmc__malloc'd memory when it outgrows that. */
typedef struct bmc__cpbuf {
    uint32_t *p;
    size_t n, cap;
    int heap; /* p was allocated here */
} bmc__cpbuf;

static inline void bmc__cpbuf_init(bmc__cpbuf *b, uint32_t *storage, size_t cap) {
    b->p = storage;
    b->n = 0;
    b->cap = storage ? cap : 0;
    b->heap = 0;
}

/* Make room for `extra` more code points after p[n]. BMC_E_NOMEM on failure. */
bmc_status bmc__cpbuf_reserve(bmc__cpbuf *b, size_t extra);
void bmc__cpbuf_free(bmc__cpbuf *b);

/* Scratch for cleaning, kept across the lines of a text (init, then free). Short lines fit in
 * the inline storage, so that typical texts are cleaned without any allocation. */
#define BMC__CLEAN_INLINE 256
typedef struct bmc__clean_work {
    bmc__cpbuf a, b, c, d;
    int ftfy_html; /* ftfy's unescape_html='auto' is on: no '<' seen so far */
    uint32_t store[4][BMC__CLEAN_INLINE];
} bmc__clean_work;

void bmc__clean_work_init(bmc__clean_work *w);
void bmc__clean_work_free(bmc__clean_work *w);

/* Clean one line of decoded text (in[0..n), ending with '\n' unless it is the last line) and
 * append the result to out. Whitespace (Python str.isspace) is written as U+0020 but not yet
 * collapsed or stripped: for tokenization that makes no difference. */
bmc_status bmc__clean_line(bmc__clean_work *w, const uint32_t *in, size_t n, bmc__cpbuf *out);

/* The whole cleaning of a UTF-8 text, exactly as open_clip's result (whitespace collapsed to
 * single spaces, stripped), as a NUL-terminated UTF-8 string allocated with bmc__malloc.
 * Invalid UTF-8 is read as U+FFFD per maximal subpart. */
bmc_status bmc__clean_text(const char *utf8, size_t len, char **out, size_t *out_len);

/* ftfy.fix_text(text) with its default configuration, alone (what bmc__clean_text does before
 * html.unescape and the whitespace step), as a NUL-terminated UTF-8 string (bmc__malloc). */
bmc_status bmc__ftfy_fix_text(const char *utf8, size_t len, char **out, size_t *out_len);

/* Decode utf8[0..len) into b (appending). */
bmc_status bmc__decode_utf8(const char *utf8, size_t len, bmc__cpbuf *b);

/* HTML named character references (generated: lib/html_entities.c). */
typedef struct bmc__html_entity {
    const char *name;  /* without '&', e.g. "amp;" or "amp" */
    const char *value; /* UTF-8 */
} bmc__html_entity;
extern const int bmc__html5_count;
extern const bmc__html_entity bmc__html5[];
extern const int bmc__ftfy_upper_count;
extern const bmc__html_entity bmc__ftfy_upper[];

#endif /* BMC_TEXT_CLEAN_H */
