/* src/formats/json_write.h — a small JSON writer into a growable buffer
 * (config.json, adapter_config.json, safetensors headers).
 *
 * Strings are escaped per RFC 8259 (", \, control characters; bytes >= 0x80
 * are copied as they are, so valid UTF-8 in gives valid UTF-8 out). Floats
 * are printed with the fewest significant digits (at most 9 for f32, 17 for
 * f64) that read back to the same value, so 0.05f prints as 0.05 and any f32
 * round-trips (whole numbers below 1e15 as "10000.0", like Python); NaN and Inf are not JSON and make the writer fail.
 * Commas, and in pretty mode newlines and 2-space indents (the layout of
 * Python's json.dumps(indent=2)), are inserted by the writer.
 * Errors (out of memory, NaN, unbalanced nesting, a value where a key is
 * due) are sticky: calls after one do nothing, ct__jw_finish reports it.
 * Leaves out: streaming to a file, key sorting (callers emit keys in order),
 * \u escapes for non-ASCII. */
#ifndef CT_FORMATS_JSON_WRITE_H
#define CT_FORMATS_JSON_WRITE_H
#include <stddef.h>
#include <stdint.h>
#include "ctune/status.h"

#define CT_JW_MAX_DEPTH 32

typedef struct {
    char *s;              /* NUL-terminated text, owned (take it or ct__jw_free) */
    size_t len, cap;
    int pretty;
    int depth;
    int err;              /* 0, or 1 = out of memory, 2 = bad value, 3 = misuse */
    unsigned char n[CT_JW_MAX_DEPTH];   /* items written at each level (0 or 1: only "any yet") */
    unsigned char obj[CT_JW_MAX_DEPTH]; /* 1 if the level is an object */
    int after_key;        /* a key was written, its value is due */
} ct_jw;

void ct__jw_init(ct_jw *w, int pretty);
void ct__jw_free(ct_jw *w);

void ct__jw_obj_begin(ct_jw *w);
void ct__jw_obj_end(ct_jw *w);
void ct__jw_arr_begin(ct_jw *w);
void ct__jw_arr_end(ct_jw *w);
/* Object key (the next call writes its value). */
void ct__jw_key(ct_jw *w, const char *k);
void ct__jw_keyn(ct_jw *w, const char *k, size_t n); /* may hold NUL bytes */
void ct__jw_str(ct_jw *w, const char *s);
void ct__jw_strn(ct_jw *w, const char *s, size_t n);   /* may hold NUL bytes (escaped as \u0000) */
void ct__jw_int(ct_jw *w, int64_t v);
void ct__jw_f32(ct_jw *w, float v);
void ct__jw_f64(ct_jw *w, double v);
void ct__jw_bool(ct_jw *w, int v);
void ct__jw_null(ct_jw *w);
/* Append raw bytes outside the value grammar (e.g. header padding). */
void ct__jw_raw(ct_jw *w, const char *s, size_t n);

/* Shortest decimal text of v that reads back as the same float ("%.{1..9}g");
 * buf needs 32 bytes. Returns the length, or -1 for NaN/Inf. */
int ct__jw_fmt_f32(char *buf, float v);

/* Check the document is complete (nesting closed); on success *out (may be
 * NULL) takes the text and *len its length, and w is reset. On failure w is
 * freed and the status names what (e.g. "adapter_config.json"). */
ct_status ct__jw_finish(ct_jw *w, const char *what, char **out, size_t *len);

#endif
