/* src/formats/json.h — a strict RFC 8259 JSON reader (DOM), used for
 * config.json, safetensors headers, tokenizer.json, index files, PEFT configs.
 * Parse errors report line and column. Strings are decoded to UTF-8 (\uXXXX
 * with surrogate pairs); an embedded NUL is kept (len is authoritative).
 * Nesting is limited (CT_JSON_MAX_DEPTH) so hostile input cannot overflow the stack. */
#ifndef CT_FORMATS_JSON_H
#define CT_FORMATS_JSON_H
#include <stddef.h>
#include <stdint.h>
#include "ctune/status.h"

#define CT_JSON_MAX_DEPTH 128

typedef enum { CT_JSON_NULL, CT_JSON_BOOL, CT_JSON_NUM, CT_JSON_STR, CT_JSON_ARR, CT_JSON_OBJ } ct_json_type;

typedef struct ct_json ct_json;
struct ct_json {
    ct_json_type type;
    union {
        int b;                                          /* BOOL */
        double num;                                     /* NUM */
        struct { char *s; size_t len; } str;            /* STR: NUL-terminated too */
        struct { ct_json *items; size_t n; } arr;       /* ARR */
        struct { char **keys; size_t *klens; ct_json *vals; size_t n; } obj; /* OBJ, in file order */
    } u;
};

/* Parse len bytes. name is used in error messages ("config.json:3:17: expected ','").
 * Duplicate object keys are kept (ct__json_get returns the first); use
 * ct__json_has_dup_keys to reject them where a format forbids them.
 * On success *out is a tree freed with ct__json_free. */
ct_status ct__json_parse(const char *text, size_t len, const char *name, ct_json **out);
void ct__json_free(ct_json *j);

/* Member of an object by key (NULL if absent or j is not an object). */
const ct_json *ct__json_get(const ct_json *j, const char *key);
/* Typed getters with defaults; return 1 when present with the right type. */
int ct__json_get_num(const ct_json *obj, const char *key, double *out);
int ct__json_get_int(const ct_json *obj, const char *key, int64_t *out); /* integral numbers only */
int ct__json_get_bool(const ct_json *obj, const char *key, int *out);
const char *ct__json_get_str(const ct_json *obj, const char *key); /* NULL if absent/not string */
/* 1 if object j (not recursive) has two equal keys. */
int ct__json_has_dup_keys(const ct_json *j);

#endif
