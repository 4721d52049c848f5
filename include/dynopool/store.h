/* dynopool/store.h — checkpoints (safetensors with PyTorch's names and a JSON
 * metadata block) and the atomic file write they use.  Part of libdynopool;
 * include <dynopool.h>. */
#ifndef DYNOPOOL_STORE_H
#define DYNOPOOL_STORE_H

#include "dynopool/engine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Writes n bytes of data to path atomically, as checkpoints are written: a
 * fresh temporary file beside path (created with O_CREAT|O_EXCL|O_NOFOLLOW, so
 * a link planted in the folder is never followed), fsync, rename over path,
 * fsync of the folder.  DP_OK, or DP_ERR_IO (DP_ERR_NULL, DP_ERR_NOMEM) with
 * errno set; on failure path is untouched or whole, never partly written. */
DP_API int dp_write_file_atomic(const char *path, const void *data, size_t n);

/* Checkpoints: safetensors (PyTorch state_dict names, float32, num_batches_tracked
 * int64) with a JSON metadata block; written atomically.  Extra metadata pairs
 * (may be 0) are stored beside the model's own.  Loading checks the architecture,
 * every tensor's shape, that every value is finite and every DynOPool alpha > 0,
 * and the range of metadata 'steps'; err names the file and what did not match.
 * A MobileNetV2 checkpoint written before its classifier took torchvision's name
 * ("classifier.weight", now "classifier.1.weight", docs/models.md) still loads. */
DP_API int dp_model_save(const dp_model *m, const char *path, const char *const *keys,
                         const char *const *vals, int n, char *err, size_t errlen);
DP_API int dp_model_load(dp_model *m, const char *path, char *err, size_t errlen);
/* Initial weights from a PyTorch state_dict saved as safetensors (a torchvision
 * model's, under the names of docs/models.md; no metadata needed): every weight,
 * bias and batch-norm running statistic of m must be in the file under its name
 * with its shape (float32), and the file may hold nothing else; a BN's
 * num_batches_tracked (int64, shape []) is taken when present.  The DynOPool and
 * Shape Adaptor factors (alpha) keep their values and may not be in the file;
 * momentum buffers and steps are untouched.  MobileNetV2's classifier is also
 * found under its older name ("classifier.weight", as dp_model_load accepts it).
 * DP_ERR_FORMAT (err naming the file and the tensor) and m unchanged on any
 * mismatch or non-finite value; DP_ERR_IO, DP_ERR_NOMEM. */
DP_API int dp_model_load_weights(dp_model *m, const char *path, char *err, size_t errlen);
/* The configuration a checkpoint was saved with (model, variant, in_ch, size,
 * classes, width; the rest from dp_model_defaults), without building the model:
 * each field must be in range (in_ch 1..4096, size 2..16384, classes 1..1000000,
 * width in (0, 16], steps 0..2^53) and the tensors the configuration implies
 * must be the file's, so that dp_model_create never allocates more for a
 * checkpoint than the file holds.  DP_ERR_FORMAT otherwise, err naming the file
 * and the field. */
DP_API int dp_checkpoint_config(const char *path, dp_model_config *cfg, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* DYNOPOOL_STORE_H */
