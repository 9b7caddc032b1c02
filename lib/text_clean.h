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
#include "cpbuf.h"


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

/* ftfy.fix_text with its default configuration on one line of decoded text (in[0..n), ending
 * with '\n' unless it is the last line), appended to out: the first step of bmc__clean_line. */
bmc_status bmc__ftfy_line(bmc__clean_work *w, const uint32_t *in, size_t n, bmc__cpbuf *out);

/* Clean one line of decoded text (in[0..n), ending with '\n' unless it is the last line) and
 * append the result to out. Whitespace (Python str.isspace) is written as U+0020 but not yet
 * collapsed or stripped: for tokenization that makes no difference. */
bmc_status bmc__clean_line(bmc__clean_work *w, const uint32_t *in, size_t n, bmc__cpbuf *out);

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
