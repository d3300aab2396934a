/* src/formats/st_write.h — writing safetensors files and other outputs
 * atomically (the writer side of src/formats/safetensors.c).
 *
 * Every output goes to "<path>.tmp.<pid>" first, is fsync'ed, then renamed
 * over path, so an interrupted run or a full disk never leaves a file that
 * looks complete; on failure the temporary file is removed and the error
 * names the path and the cause (e.g. "No space left on device: free space or
 * choose another -o").
 * Tensor checks (name present, not "__metadata__", no duplicates, dtype,
 * ndim, sizes, metadata shape) happen before the temporary file is created;
 * write/fsync/rename failures after it remove it. The rename is atomic only
 * within one file system (the temporary file is created beside path). */
#ifndef CT_FORMATS_ST_WRITE_H
#define CT_FORMATS_ST_WRITE_H
#include <stddef.h>
#include <stdint.h>
#include "ctune/dtype.h"
#include "formats/json_write.h"
#include "ctune/status.h"

typedef struct {
    const char *name;     /* e.g. "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight" */
    ct_dtype dtype;       /* stored dtype: CT_DT_F32, CT_DT_F16 or CT_DT_BF16 (converted from src, round to nearest even) */
    int ndim;             /* 1..4 */
    int64_t shape[4];     /* PyTorch order */
    const float *src;     /* numel floats, row-major */
} ct__st_out;

/* Write n tensors to path as safetensors (header keys sorted by name as
 * safetensors' own writer does, data in that order, 8-byte aligned header).
 * metadata: NULL or a JSON object text of string values, e.g.
 * "{\"format\":\"pt\"}", stored as __metadata__. Atomic (see above). */
ct_status ct__st_write(const char *path, const ct__st_out *t, int n, const char *metadata);

/* Write len bytes to path atomically (config.json, adapter_config.json, ...). */
ct_status ct__write_file_atomic(const char *path, const void *data, size_t len);

/* Finish the JSON of w (ct__jw_finish) and write it to path atomically with
 * a final newline (config.json, adapter_config.json, head_config.json). */
ct_status ct__jw_write_file(const char *path, ct_jw *w);

/* mkdir -p; an existing directory is fine. */
ct_status ct__mkdir_p(const char *path);

/* Test hook (not for library callers): the writes of the functions above
 * let after_bytes more bytes through, then fail once with errno err (e.g.
 * ENOSPC) as a full disk would; after_bytes < 0 turns it off. Process-wide,
 * not thread-safe. */
void ct__write_inject_fault(long long after_bytes, int err);

#endif
