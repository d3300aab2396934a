/* ctune/status.h — status codes, error messages and logging.
 *
 * Every fallible public function returns a ct_status: CT_OK (0) or a negative
 * code. The detailed message of the most recent failure on the calling thread
 * (file, tensor or field, and a hint) is kept and returned by ct_errmsg(), in
 * the manner of sqlite3_errmsg(). The library never prints to stdout and never
 * exits; diagnostics go through the log callback (default: stderr for warnings).
 */
#ifndef CTUNE_STATUS_H
#define CTUNE_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, description) */
#define CT_STATUS_LIST(X)                                        \
    X(CT_OK, 0, "ok")                                            \
    X(CT_ERR_IO, -1, "input/output error")                       \
    X(CT_ERR_FORMAT, -2, "malformed or corrupt file")            \
    X(CT_ERR_NOMEM, -3, "out of memory")                         \
    X(CT_ERR_UNSUPPORTED, -4, "unsupported model or option")     \
    X(CT_ERR_ARG, -5, "invalid argument")                        \
    X(CT_ERR_SHAPE, -6, "tensor shape mismatch")                 \
    X(CT_ERR_MISSING, -7, "missing tensor or field")             \
    X(CT_ERR_RANGE, -8, "value out of range")                    \
    X(CT_ERR_NUMERIC, -9, "numerical error (NaN/Inf)")

typedef enum {
#define CT__STATUS_ENUM(name, val, desc) name = val,
    CT_STATUS_LIST(CT__STATUS_ENUM)
#undef CT__STATUS_ENUM
} ct_status;

/* Short description of a status code ("malformed or corrupt file"). */
const char *ct_status_str(ct_status s);

/* Detailed message of the last failure on this thread, e.g.
 * "model.safetensors: tensor 'lm_head.weight': data_offsets [0, 4096) exceed
 * the data buffer (2048 bytes); the file may be truncated". Never NULL. */
const char *ct_errmsg(void);

enum { CT_LOG_DEBUG = 0, CT_LOG_INFO = 1, CT_LOG_WARN = 2, CT_LOG_ERROR = 3 };
typedef void (*ct_log_fn)(int level, const char *msg, void *userdata);
/* Install a log callback (NULL restores the default: WARN and above to stderr).
 * min_level filters messages below it. Not thread-safe against concurrent logging. */
void ct_set_log(ct_log_fn fn, void *userdata, int min_level);

#ifdef __cplusplus
}
#endif
#endif
