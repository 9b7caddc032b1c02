/* tokenizer.c - open_clip cleaning + Hugging Face BertTokenizerFast (tokenizers crate), one
 * line at a time and one character at a time, stopping as soon as the context is full.
 *
 * The Rust pipeline, for reference (huggingface/tokenizers, tokenizers/src):
 *   tokenizer/added_vocabulary.rs  extract_and_normalize: split off the special tokens typed in
 *                                  the text (leftmost-longest, before normalisation)
 *   normalizers/bert.rs            clean_text, handle_chinese_chars, NFD + drop Mn, lowercase
 *   pre_tokenizers/bert.rs         split on whitespace (removed) and punctuation (isolated)
 *   models/wordpiece/mod.rs        greedy longest-match-first, "##" continuation, [UNK] for a
 *                                  word with no match or more than max_input_chars_per_word
 *   processors/template.rs         [CLS] $A [SEP]; truncation keeps the specials
 * Every stage only looks at one character (or one run of combining marks, or one word), so the
 * text is streamed: decode a line, clean it, normalise/split/WordPiece it, emit ids. */
#include <string.h>

#include "error.h"
#include "text_clean.h"
#include "tokenizer.h"
#include "unicode.h"

#define N_SPECIAL 5
#define MAX_SPECIAL_LEN 32
#define LINE_INLINE 256

typedef struct tok {
    const bmc__vocab *vocab;
    const bmc__config *cfg;
    int *ids;
    int cap;
    int count;       /* content ids so far (without [CLS]/[SEP]) */
    int max_content; /* context_length - 2 */
    int full;        /* count reached max_content: stop */
    bmc_status st;
    /* the special tokens matched in the raw text (tokenizer.json added_tokens) */
    int n_special;
    int special_id[N_SPECIAL];
    int special_len[N_SPECIAL];
    uint32_t special[N_SPECIAL][MAX_SPECIAL_LEN];
    /* a run of combining marks waiting for canonical ordering */
    bmc__cpbuf run;
    uint32_t run_store[64];
    /* the current word (pre-token), normalised; only the first max_word_chars + 1 are kept */
    uint32_t word[BMC__TOK_MAX_WORD + 1];
    size_t word_n;
} tok;

/* ------------------------------------------------------------------------------------------ */
/* WordPiece                                                                                    */

static void emit(tok *t, int id) {
    if (t->full) return;
    if (1 + t->count < t->cap) t->ids[1 + t->count] = id;
    if (++t->count >= t->max_content) t->full = 1;
}

/* models/wordpiece/mod.rs WordPiece::tokenize on one pre-token. */
static void wordpiece(tok *t, const uint32_t *w, size_t n) {
    if (n > t->cfg->max_word_chars) {
        emit(t, (int)t->cfg->unk_id);
        return;
    }
    /* bytes: the word in UTF-8, off[i] = byte offset of character i; sub: "##" + a suffix. */
    char bytes[4 * BMC__TOK_MAX_WORD], sub[2 + 4 * BMC__TOK_MAX_WORD];
    size_t off[BMC__TOK_MAX_WORD + 1];
    off[0] = 0;
    for (size_t i = 0; i < n; i++) off[i + 1] = off[i] + (size_t)bmc__utf8_put(w[i], bytes + off[i]);
    int found[BMC__TOK_MAX_WORD];
    int n_found = 0;
    for (size_t start = 0; start < n;) {
        int32_t id = -1;
        size_t end = n;
        if (start > 0) {
            sub[0] = sub[1] = '#';
            memcpy(sub + 2, bytes + off[start], off[n] - off[start]);
        }
        for (; end > start; end--) {
            size_t len = off[end] - off[start];
            id = start ? bmc__vocab_find(t->vocab, sub, len + 2)
                       : bmc__vocab_find(t->vocab, bytes, len);
            if (id >= 0) break;
        }
        if (id < 0) { /* one unmatchable piece makes the whole word [UNK] */
            emit(t, (int)t->cfg->unk_id);
            return;
        }
        found[n_found++] = id;
        start = end;
    }
    for (int i = 0; i < n_found; i++) emit(t, found[i]);
}

static void word_end(tok *t) {
    if (t->word_n) wordpiece(t, t->word, t->word_n);
    t->word_n = 0;
}

/* ------------------------------------------------------------------------------------------ */
/* BertNormalizer and BertPreTokenizer, one character at a time                                 */

/* pre_tokenizers/bert.rs: whitespace ends a word; punctuation is a word of its own. */
static void pretok_char(tok *t, uint32_t c) {
    unsigned f = bmc__u_flags(c);
    if (f & BMC__U_WS_RUST) {
        word_end(t);
    } else if (f & BMC__U_HF_PUNCT) {
        word_end(t);
        t->word[0] = c;
        t->word_n = 1;
        word_end(t);
    } else {
        if (t->word_n <= t->cfg->max_word_chars) t->word[t->word_n] = c;
        t->word_n++; /* counts on past the limit: the word will be [UNK] */
    }
}

/* Lowercase (char::to_lowercase, after NFD and the Mn filter), then pre-tokenize. */
static void lower_char(tok *t, uint32_t c) {
    if (!t->cfg->lowercase) {
        pretok_char(t, c);
        return;
    }
    uint32_t low[3];
    int k = bmc__u_lower(c, low);
    for (int i = 0; i < k; i++) pretok_char(t, low[i]);
}

static void flush_run(tok *t) {
    if (!t->run.n) return;
    bmc__u_reorder(t->run.p, t->run.n, 1);
    for (size_t i = 0; i < t->run.n; i++) lower_char(t, t->run.p[i]);
    t->run.n = 0;
}

/* NFD (Unicode 9.0 data) and the removal of Mn (Unicode 8.0). A non-starter waits in t->run
 * until the next starter, because canonical ordering may move it; Mn are dropped on arrival,
 * which gives the same order (a stable sort commutes with removing elements) as long as an Mn
 * starter still closes the run. */
static void nfd_char(tok *t, uint32_t c) {
    if (!t->cfg->strip_accents) { /* BertNormalizer strip_accents false: no NFD at all */
        lower_char(t, c);
        return;
    }
    uint32_t d[BMC__U_MAX_DECOMP];
    int k = bmc__u_decompose(c, d, 1);
    for (int i = 0; i < k; i++) {
        int mn = (bmc__u_flags(d[i]) & BMC__U_HF_MN) != 0;
        if (bmc__u_ccc(d[i], 1) == 0) {
            flush_run(t);
            if (!mn) lower_char(t, d[i]);
        } else if (!mn) {
            if (bmc__cpbuf_reserve(&t->run, 1) != BMC_OK) {
                t->st = BMC_E_NOMEM;
                return;
            }
            t->run.p[t->run.n++] = d[i];
        }
    }
}

/* normalizers/bert.rs: clean_text, then handle_chinese_chars, then the above. */
static void norm_char(tok *t, uint32_t c) {
    unsigned f = bmc__u_flags(c);
    if (c == 0 || c == 0xFFFD || ((f & BMC__U_HF_OTHER) && c != '\t' && c != '\n' && c != '\r'))
        return;
    if (f & BMC__U_WS_RUST) {
        nfd_char(t, ' ');
    } else if (f & BMC__U_CJK) {
        nfd_char(t, ' ');
        nfd_char(t, c);
        nfd_char(t, ' ');
    } else {
        nfd_char(t, c);
    }
}

/* One piece of text between special tokens: normalised and pre-tokenized on its own. With
 * more = 1 the piece continues in the next call (a long line fed in chunks): the current word
 * stays open. */
static void piece(tok *t, const uint32_t *s, size_t n, int more) {
    for (size_t i = 0; i < n && !t->full && t->st == BMC_OK; i++) norm_char(t, s[i]);
    if (more) return;
    flush_run(t);
    word_end(t);
}

/* added_vocabulary.rs find_matches: the special tokens, leftmost-longest, on the text before
 * normalisation; the rest goes piece by piece. more = 1: s is a chunk of a longer text, so the
 * last MAX_SPECIAL_LEN code points (which may start a special token) are left for the next
 * call. Returns how many code points were consumed. */
static size_t text_ids(tok *t, const uint32_t *s, size_t n, int more) {
    size_t limit = !more ? n : n > MAX_SPECIAL_LEN ? n - MAX_SPECIAL_LEN : 0;
    size_t start = 0;
    for (size_t i = 0; i < limit && !t->full; i++) {
        int best = -1;
        for (int k = 0; k < t->n_special; k++) {
            size_t len = (size_t)t->special_len[k];
            if (len <= n - i && s[i] == t->special[k][0] &&
                !memcmp(s + i, t->special[k], len * sizeof *s) &&
                (best < 0 || t->special_len[k] > t->special_len[best]))
                best = k;
        }
        if (best < 0) continue;
        piece(t, s + start, i - start, 0);
        emit(t, t->special_id[best]);
        i += (size_t)t->special_len[best] - 1;
        start = i + 1;
    }
    if (start < limit) {
        piece(t, s + start, limit - start, more);
        start = limit;
    }
    return start;
}

/* A line of printable ASCII (plus tab), without '&' or with no cleaning asked for: open_clip's
 * cleaning leaves it as it is (but for whitespace, which BERT splits on anyway), and it needs
 * no decoding. Such a line, however long, is fed in chunks and abandoned as soon as the
 * context is full. Only '<' matters to the cleaning of later lines (ftfy's 'auto' rule). */
static int plain_line(const char *s, size_t n, int clean, int *has_lt) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80 || (clean && ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7F || c == '&')))
            return 0;
        if (c == '<') *has_lt = 1;
    }
    return 1;
}

static void plain_ids(tok *t, const char *s, size_t n) {
    uint32_t buf[1024];
    size_t have = 0, pos = 0;
    while (!t->full && t->st == BMC_OK && (pos < n || have)) {
        while (have < sizeof buf / sizeof *buf && pos < n) buf[have++] = (unsigned char)s[pos++];
        size_t used = text_ids(t, buf, have, pos < n);
        memmove(buf, buf + used, (have - used) * sizeof *buf);
        have -= used;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Entry points                                                                                 */

static bmc_status check_args(const bmc__vocab *vocab, const bmc__config *cfg, const char *utf8,
                             size_t len, const int *ids, int cap, const int *n_ids) {
    if (!vocab || !cfg || (!utf8 && len) || !ids || !n_ids || cap < 0)
        return bmc__fail(BMC_E_INVALID_ARG, "tokenize: %s", !vocab ? "vocab is NULL"
                         : !cfg ? "config is NULL" : !utf8 && len ? "text is NULL"
                         : !ids ? "ids is NULL" : !n_ids ? "n_ids is NULL" : "cap < 0");
    if (!vocab->slots || vocab->n == 0)
        return bmc__fail(BMC_E_INVALID_ARG, "tokenize: the vocabulary has no index");
    if (cfg->context_length < 2 || cfg->context_length > (1u << 20))
        return bmc__fail(BMC_E_INVALID_ARG, "tokenize: context length %u (need 2..2^20)",
                         cfg->context_length);
    if (cfg->max_word_chars < 1 || cfg->max_word_chars > BMC__TOK_MAX_WORD)
        return bmc__fail(BMC_E_INVALID_ARG, "tokenize: max_word_chars %u (need 1..%d)",
                         cfg->max_word_chars, BMC__TOK_MAX_WORD);
    const uint32_t sp[N_SPECIAL] = {cfg->pad_id, cfg->unk_id, cfg->cls_id, cfg->sep_id, cfg->mask_id};
    for (int k = 0; k < N_SPECIAL; k++)
        if (sp[k] >= vocab->n)
            return bmc__fail(BMC_E_INVALID_ARG, "tokenize: special token id %u >= vocabulary size %u",
                             sp[k], vocab->n);
    return BMC_OK;
}

/* The special tokens' strings, from the vocabulary (the file stores ids, not strings). */
static void load_specials(tok *t) {
    const bmc__config *cfg = t->cfg;
    const uint32_t sp[N_SPECIAL] = {cfg->pad_id, cfg->unk_id, cfg->cls_id, cfg->sep_id, cfg->mask_id};
    t->n_special = 0;
    for (int k = 0; k < N_SPECIAL; k++) {
        const uint8_t *s = t->vocab->bytes + t->vocab->offsets[sp[k]];
        size_t n = t->vocab->offsets[sp[k] + 1] - t->vocab->offsets[sp[k]], len = 0;
        uint32_t *dst = t->special[t->n_special];
        while (n && len < MAX_SPECIAL_LEN) {
            size_t used = bmc__utf8_next(s, n, &dst[len++]);
            s += used;
            n -= used;
        }
        if (n || len == 0) continue; /* empty or too long to be typed: never matched */
        t->special_len[t->n_special] = (int)len;
        t->special_id[t->n_special++] = (int)sp[k];
    }
}

bmc_status bmc__tokenize(const bmc__vocab *vocab, const bmc__config *cfg, bmc__tok_mode mode,
                         const char *utf8, size_t len, int *ids, int cap, int *n_ids) {
    const int clean = mode == BMC__TOK_CLEAN;
    bmc_status st = check_args(vocab, cfg, utf8, len, ids, cap, n_ids);
    if (st != BMC_OK) return st;
    tok t;
    memset(&t, 0, sizeof t);
    t.vocab = vocab;
    t.cfg = cfg;
    t.ids = ids;
    t.cap = cap;
    t.max_content = (int)cfg->context_length - 2;
    t.full = t.max_content == 0;
    bmc__cpbuf_init(&t.run, t.run_store, sizeof t.run_store / sizeof t.run_store[0]);
    load_specials(&t);

    bmc__clean_work w;
    uint32_t line_store[LINE_INLINE], out_store[LINE_INLINE];
    bmc__cpbuf line, out;
    bmc__clean_work_init(&w);
    bmc__cpbuf_init(&line, line_store, LINE_INLINE);
    bmc__cpbuf_init(&out, out_store, LINE_INLINE);
    size_t pos = 0;
    while (pos < len && !t.full && st == BMC_OK) {
        const char *nl = memchr(utf8 + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - utf8) + 1 : len;
        int has_lt = 0;
        if (plain_line(utf8 + pos, end - pos, clean, &has_lt)) {
            plain_ids(&t, utf8 + pos, end - pos);
            if (has_lt) w.ftfy_html = 0;
            st = t.st;
            pos = end;
            continue;
        }
        line.n = out.n = 0;
        st = bmc__decode_utf8(utf8 + pos, end - pos, &line);
        if (st == BMC_OK && clean) st = bmc__clean_line(&w, line.p, line.n, &out);
        if (st == BMC_OK) {
            const bmc__cpbuf *text = clean ? &out : &line;
            text_ids(&t, text->p, text->n, 0);
            st = t.st;
        }
        pos = end;
    }
    bmc__cpbuf_free(&line);
    bmc__cpbuf_free(&out);
    bmc__clean_work_free(&w);
    bmc__cpbuf_free(&t.run);
    if (st != BMC_OK) return st; /* bmc__cpbuf_reserve recorded the message */

    int total = t.count + 2;
    *n_ids = total;
    if (total > cap)
        return bmc__fail(BMC_E_TOO_LONG, "tokenize: the text has %d ids but ids has room for %d",
                         total, cap);
    ids[0] = (int)cfg->cls_id;
    ids[total - 1] = (int)cfg->sep_id;
    return BMC_OK;
}

bmc_status bmc_tokenize(const bmc_model *model, const char *utf8, int *ids, int cap, int *n_ids) {
    if (!model || !utf8)
        return bmc__fail(BMC_E_INVALID_ARG, "bmc_tokenize: %s is NULL", model ? "text" : "model");
    return bmc__tokenize(&model->vocab, &model->config, BMC__TOK_CLEAN, utf8, strlen(utf8), ids, cap,
                         n_ids);
}
