/* tokenizer.h - BiomedCLIP's text tokenizer: open_clip's cleaning (text_clean.h) followed by
 * the Hugging Face BertTokenizerFast of BiomedBERT (tokenizer.json: added special tokens,
 * BertNormalizer, BertPreTokenizer, WordPiece, [CLS] ... [SEP], truncation to the context
 * length). docs/TOKENIZER.md describes every step and what was checked against the reference. */
#ifndef BMC_TOKENIZER_H
#define BMC_TOKENIZER_H

#include <stddef.h>

#include "format.h"
#include "model.h"

/* Longest word (in characters after normalisation) the WordPiece step keeps; the config's
 * max_word_chars must not exceed it. Longer words become [UNK] anyway. */
#define BMC__TOK_MAX_WORD 128

/* What bmc__tokenize reads the text as: BiomedCLIP's input (open_clip's cleaning, then the HF
 * tokenizer), or raw, exactly HF tokenizer(text) (tokenizer.json alone), which the tests
 * compare with the official tokenizer apart from the cleaning. */
typedef enum bmc__tok_mode { BMC__TOK_RAW = 0, BMC__TOK_CLEAN = 1 } bmc__tok_mode;

/* Tokenize utf8[0..len) (any bytes; invalid UTF-8 reads as U+FFFD) into ids[0..cap):
 * [CLS] ids... [SEP], at most cfg->context_length ids, no padding. *n_ids receives the number
 * of ids the text has (also when that is more than cap, with BMC_E_TOO_LONG).
 * Allocates scratch (and frees it) only for lines longer than 256 code points. */
bmc_status bmc__tokenize(const bmc__vocab *vocab, const bmc__config *cfg, bmc__tok_mode mode,
                         const char *utf8, size_t len, int *ids, int cap, int *n_ids);

#endif /* BMC_TOKENIZER_H */
