/* ftfy.h - ftfy's fix_encoding (ftfy 6.3.1, the mojibake repair that ftfy.fix_text runs on
 * every segment), in lib/ftfy_encoding.c, and the tables it needs, generated from ftfy's own
 * modules by tools/gen_ftfy_tables.py into lib/ftfy_tables.c. docs/TOKENIZER.md describes it. */
#ifndef BMC_FTFY_H
#define BMC_FTFY_H

#include <stddef.h>
#include <stdint.h>

#include "text_clean.h"

/* A character that some table mentions: the BADNESS_RE sets it belongs to, the alternatives
 * of BADNESS_RE it can begin, its UTF8_CLUES classes, and its byte in each of ftfy's single-byte codecs (0: not encodable). */
typedef struct bmc__ftfy_char {
    uint32_t cp;
    uint64_t bad[2]; /* bit k of the 128: member of set k */
    uint64_t alts;   /* bit a: alternative a begins with a set (without flags) holding it */
    uint8_t clue;
    uint8_t enc[10];
} bmc__ftfy_char;

/* UTF8_CLUES class bits */
#define BMC__FTFY_FIRST2 1u
#define BMC__FTFY_FIRST3 2u
#define BMC__FTFY_FIRST4 4u
#define BMC__FTFY_CONT 8u
#define BMC__FTFY_CONT_STRICT 16u

/* BADNESS_RE set flags */
#define BMC__FTFY_SET_SPACE 1u
#define BMC__FTFY_SET_WORD 2u
#define BMC__FTFY_SET_ANY 4u
#define BMC__FTFY_SET_NEG 8u /* [^...]: the members are the characters it excludes */

/* A fixed-length alternative of a bytes regex: len byte sets (256-bit maps). */
typedef struct bmc__ftfy_byte_alt {
    int len;
    uint32_t set[6][8];
} bmc__ftfy_byte_alt;

extern const int bmc__ftfy_n_enc;
extern const char *const bmc__ftfy_enc_name[];
extern const uint8_t bmc__ftfy_enc_sloppy[];
extern const int bmc__ftfy_enc_latin1, bmc__ftfy_enc_macroman;
extern const uint16_t bmc__ftfy_cp1252[32];
extern const bmc__ftfy_char bmc__ftfy_ascii[128];
extern const int bmc__ftfy_n_chars;
extern const bmc__ftfy_char bmc__ftfy_chars[];
extern const int bmc__ftfy_n_bad_sets;
extern const uint8_t bmc__ftfy_bad_set_flags[];
extern const int bmc__ftfy_n_bad_alts;
extern const uint16_t bmc__ftfy_bad_alts[];
extern const uint16_t bmc__ftfy_bad_alt_start[];
extern const uint64_t bmc__ftfy_bad_other;
extern const int bmc__ftfy_bad_lookback;
extern const int bmc__ftfy_n_altered;
extern const bmc__ftfy_byte_alt bmc__ftfy_altered[];
extern const int bmc__ftfy_n_lossy;
extern const bmc__ftfy_byte_alt bmc__ftfy_lossy[];
extern const int bmc__ftfy_n_word;
extern const uint32_t bmc__ftfy_word[][2];

/* ftfy.badness.is_bad(text): does BADNESS_RE match anywhere in s[0..n)? */
int bmc__ftfy_is_bad(const uint32_t *s, size_t n);

/* ftfy.fix_encoding(text) with the default configuration: s[0..n) repaired, appended to out.
 * BMC_E_NOMEM if a buffer cannot be had. Allocates only when the text looks like mojibake
 * (is_bad), never for ASCII text, which fix_encoding returns untouched. */
bmc_status bmc__ftfy_fix_encoding(const uint32_t *s, size_t n, bmc__cpbuf *out);

#endif /* BMC_FTFY_H */
