/* src/tokenizer/tok_internal.h — the tokenizer object shared by the files of
 * src/tokenizer/: vocabulary and merge tables (vocab.c), BPE merge engines
 * (bpe.c), normalizers and pre-tokenizers (pretok.c), the encode/decode
 * pipeline and public API (tokenizer.c) and the loaders (load_*.c).
 *
 * One pipeline serves every source format; a loader only fills the tables and
 * picks the steps. Encoding follows Hugging Face `tokenizers`:
 *   text -> split out added tokens matched on the raw text
 *        -> per remaining segment: normalizers -> split out "normalized" added
 *           tokens -> pre-tokenizer steps -> BPE model per piece
 *        -> post-processor template (BOS/EOS ids around the sequence).
 * Internal piece strings are kept as the vocabulary spells them: byte-level
 * vocabularies in GPT-2's bytes-to-unicode alphabet ("Ġthe"), SentencePiece
 * ones with "▁" for spaces. Each id also has its decoded bytes precomputed.
 */
#ifndef CT_TOKENIZER_TOK_INTERNAL_H
#define CT_TOKENIZER_TOK_INTERNAL_H
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "core/internal.h"
#include "ctune/tokenizer.h"

/* Token types, numbered as GGUF's tokenizer.ggml.token_type. */
enum { CT__TT_NORMAL = 1, CT__TT_UNKNOWN = 2, CT__TT_CONTROL = 3, CT__TT_USER = 4, CT__TT_UNUSED = 5, CT__TT_BYTE = 6 };

typedef enum { CT__KIND_BYTELEVEL = 0, CT__KIND_SPM = 1 } ct__tok_kind;
typedef enum { CT__MERGE_RANK = 0, CT__MERGE_SCORE = 1 } ct__merge_mode;

/* ---- growable buffers ------------------------------------------------------ */
typedef struct { char *p; size_t n, cap; } ct__buf;
typedef struct { int32_t *v; size_t n, cap; } ct__ids;
ct_status ct__buf_put(ct__buf *b, const void *p, size_t n);
ct_status ct__ids_push(ct__ids *v, int32_t id);

/* ---- hash maps ------------------------------------------------------------- */
/* string -> id; the strings live in the tokenizer's piece pool. */
typedef struct { uint32_t *slot; size_t mask; } ct__strmap; /* slot: id + 1, 0 = empty */
/* (left id, right id) -> (rank, merged id) */
typedef struct { uint64_t *key; uint32_t *rank; int32_t *id; size_t mask, n; } ct__pairmap;

/* ---- added tokens (tokenizer.json "added_tokens", GGUF control tokens) ------ */
typedef struct {
    char *text; size_t len; /* content (normalized when `normalized`) */
    int32_t id;
    uint8_t special, normalized, lstrip, rstrip, single_word;
} ct__added;

/* ---- normalizers and pre-tokenizers ----------------------------------------- */
typedef enum { CT__NM_PREPEND, CT__NM_REPLACE, CT__NM_STRIP, CT__NM_NFC } ct__nm_type;
typedef struct {
    ct__nm_type type;
    char *a; size_t alen;  /* PREPEND: text; REPLACE: literal pattern (re NULL) */
    char *b; size_t blen;  /* REPLACE: content */
    pcre2_code *re;        /* REPLACE with a Regex pattern */
    int left, right;       /* STRIP */
} ct__norm;

typedef enum { CT__PT_SPLIT, CT__PT_BYTELEVEL, CT__PT_METASPACE } ct__pt_type;
typedef enum {
    CT__SPLIT_REMOVED, CT__SPLIT_ISOLATED, CT__SPLIT_MERGED_PREV, CT__SPLIT_MERGED_NEXT, CT__SPLIT_CONTIGUOUS
} ct__split_beh;
enum { CT__PREPEND_NEVER = 0, CT__PREPEND_ALWAYS = 1, CT__PREPEND_FIRST = 2 };
typedef struct {
    ct__pt_type type;
    pcre2_code *re;          /* SPLIT; BYTELEVEL when use_regex (GPT-2 pattern) */
    ct__split_beh beh;
    int invert;
    int add_prefix_space;    /* BYTELEVEL */
    int prepend, split;      /* METASPACE: CT__PREPEND_*, split on the replacement */
    char repl[8]; int repl_len;
} ct__pretok;

/* ---- the tokenizer ---------------------------------------------------------- */
struct ct_tokenizer {
    ct__tok_kind kind;
    ct__merge_mode merge;
    int n_vocab;                 /* V: ids are 0..V-1 */
    char *pool; size_t pool_n, pool_cap;  /* piece bytes of every id, back to back */
    uint32_t *poff, *plen;       /* (V) piece of id i = pool[poff[i] .. +plen[i]) */
    char *dpool; uint32_t *doff, *dlen;   /* (V) decoded bytes of id i */
    float *score;                /* (V) SPM scores, NULL for rank merging */
    uint8_t *type;               /* (V) CT__TT_* */
    uint8_t *is_added;           /* (V) 1 when id is an added token (decoded as raw content) */
    ct__strmap vocab;            /* piece -> id */
    ct__pairmap merges;          /* rank merging */
    uint8_t *in_merge;           /* (V) rank: 1 when id is one side of some merge */
    uint8_t *cp_in_token;        /* score: bitmap of code points inside multi-char mergeable tokens */
    int32_t byte_id[256];        /* byte-level: token of byte b's unicode char; SPM: <0xNN>; -1 none */
    int byte_fallback, ignore_merges, fuse_unk;
    int32_t unk_id;              /* -1 none */

    ct__added *added; int n_added;
    uint8_t added_first[256];    /* bit0: some raw-matched token starts with this byte; bit1: normalized */
    pcre2_code *word_re;         /* \w, for single_word added tokens */

    ct__norm *norms; int n_norms;
    ct__pretok *pretoks; int n_pretoks;

    int32_t bos_id, eos_id;
    int32_t tmpl_pre[4]; int n_tmpl_pre;    /* post-processor ids before the sequence */
    int32_t tmpl_post[4]; int n_tmpl_post;  /* and after it */

    int dec_strip_space;         /* decode drops this many leading ' ' (SPM dummy prefix) */
    char *chat_template;
    char *source;                /* path, for messages */
};

/* vocab.c: building the tables ------------------------------------------------ */
/* Allocate V empty pieces (all tables sized V). */
ct_status ct__tok_alloc(ct_tokenizer *t, int n_vocab, int with_scores);
/* Set piece text of id (copied). Later calls for the same id replace it. */
ct_status ct__tok_set_piece(ct_tokenizer *t, int32_t id, const char *s, size_t n);
/* Build the piece->id map (the later id wins for duplicate text). */
ct_status ct__tok_build_vocab(ct_tokenizer *t);
int32_t ct__tok_lookup(const ct_tokenizer *t, const char *s, size_t n); /* -1 if absent */
/* Add merge (left, right) with the next rank; merged = lookup(left+right).
 * Returns CT_ERR_FORMAT with a message naming `src` when a piece is missing. */
ct_status ct__tok_add_merge(ct_tokenizer *t, const char *l, size_t ln, const char *r, size_t rn,
                            uint32_t rank, const char *src);
int ct__pairmap_get(const ct__pairmap *m, int32_t a, int32_t b, uint32_t *rank, int32_t *id);
/* After pieces, types and added tokens are set: byte tables, decoded bytes. */
ct_status ct__tok_finish(ct_tokenizer *t);
/* Register an added token; its id must be < V. */
ct_status ct__tok_add_added(ct_tokenizer *t, const char *s, size_t n, int32_t id, int special,
                            int normalized, int lstrip, int rstrip, int single_word);
/* GPT-2 bytes_to_unicode: codepoint of byte b, and the inverse (-1 if none). */
uint32_t ct__bl_char(uint8_t b);
int ct__bl_byte(uint32_t cp);
/* UTF-8 helpers: length of the char at s (1 for an invalid byte); encode cp. */
size_t ct__utf8_len(const char *s, size_t n);
int ct__utf8_put(uint32_t cp, char *out);
int ct__utf8_get(const char *s, size_t n, uint32_t *cp); /* bytes used, 0 if invalid */

/* bpe.c: one pre-token through the model -------------------------------------- */
typedef struct ct__bpe_scratch ct__bpe_scratch;
void ct__bpe_scratch_free(ct__bpe_scratch *s);
ct_status ct__bpe_word(const ct_tokenizer *t, const char *w, size_t n, ct__bpe_scratch **s, ct__ids *out);

/* pretok.c: normalizers, pre-tokenizers, regex ---------------------------------- */
/* Compile a PCRE2 pattern with UTF|UCP (+ JIT); literal=1 matches the text as is. */
ct_status ct__re_compile(const char *pat, size_t len, int literal, pcre2_code **out, const char *what);
/* Pieces: spans into a buffer. `first` marks a piece starting the input text. */
typedef struct { size_t off, len; int first; } ct__span;
typedef struct { ct__buf text; ct__span *sp; size_t n, cap; } ct__pieces;
typedef struct ct__pt_scratch ct__pt_scratch;
void ct__pt_scratch_free(ct__pt_scratch *s);
/* Apply t's normalizers to s[0..n) into out (cleared first). */
ct_status ct__normalize(const ct_tokenizer *t, const char *s, size_t n, ct__buf *out, ct__pt_scratch **sc);
/* Run t's pre-tokenizer steps on one segment; *res points into the scratch. */
ct_status ct__pretokenize(const ct_tokenizer *t, const char *s, size_t n, int first, ct__pt_scratch **sc,
                          const ct__pieces **res);
/* Regex list of a GGUF tokenizer.ggml.pre name (NULL-terminated), NULL if unknown. */
const char *const *ct__gguf_pre_regexes(const char *name, size_t len);
extern const char ct__gpt2_pattern[];
void ct__pretok_free(ct__pretok *p);
void ct__norm_free(ct__norm *n);
/* Unicode helpers: White_Space property; NFC (nfc.c). */
int ct__is_space(uint32_t cp);
ct_status ct__nfc(const char *s, size_t n, ct__buf *out);

/* loaders ------------------------------------------------------------------- */
struct ct_json;
ct_tokenizer *ct__tok_new(const char *source);
/* tokenizer.json (root = its parsed DOM); tokenizer_config.json beside path is read when present. */
ct_status ct__tok_load_hf_json(const char *path, const struct ct_json *root, ct_tokenizer **out);
/* GPT-2 encoder.json / vocab.json (root) with vocab.bpe / merges.txt beside it. */
ct_status ct__tok_load_gpt2(const char *path, const struct ct_json *root, ct_tokenizer **out);
/* llama2.c tokenizer.bin image. */
ct_status ct__tok_load_llama2c(const char *path, const uint8_t *data, size_t size, ct_tokenizer **out);

#endif
