/* dynopool/infer.h — a trained network frozen for inference: load a checkpoint,
 * run batches, read logits.  Part of libdynopool; include <dynopool.h>.
 *
 *     dp_infer *h;
 *     char err[1024];
 *     if (dp_infer_load("run/checkpoint.safetensors", &h, err, sizeof err)) ...;  // err: file, what
 *     dp_infer_info in;
 *     dp_infer_info_get(h, &in);              // in.cfg.in_ch, in.cfg.size, in.cfg.classes
 *     float *logits = malloc(sizeof(float) * n * in.cfg.classes);
 *     dp_infer_run(h, x, n, logits);          // x: (n, in_ch, size, size), normalised
 *     dp_infer_free(h);
 *
 * Frozen means: the alphas are constants, so every map size is fixed by the
 * checkpoint; batch norm (running statistics) is folded into the convolution
 * before it (docs/guide.md, "Deploy"); no gradient, momentum or backward
 * buffers exist.  The images must be prepared as the network's training run
 * prepared its test images (dp_image_prepare in dynopool/io.h does it for one
 * file).  A handle runs one batch at a time: calls on one handle must not
 * overlap (different handles may run at once). */
#ifndef DYNOPOOL_INFER_H
#define DYNOPOOL_INFER_H

#include "dynopool/engine.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dp_infer dp_infer;

typedef struct dp_infer_info {
    dp_model_config cfg;    /* what the checkpoint holds: arch, pool, in_ch, size, classes, width */
    dp_model_info model;    /* its GMACs per image, parameters, stage sizes and alphas, as
                               dp_model_info_get gives them for the network before folding */
    int folded;             /* batch norms folded into the convolution before them */
    /* Memory the handle holds now, in bytes: */
    size_t weight_bytes;    /* weights and biases after folding (and the buffers they came from) */
    size_t act_bytes;       /* activations: grows to the largest batch run so far */
    size_t work_bytes;      /* workspaces and scratch (oneDNN's weight reorders) */
    size_t grad_bytes;      /* gradient and momentum buffers: 0, none is allocated */
} dp_infer_info;

/* Loads the checkpoint at path (written by dp_model_save or `dynopool train`)
 * for inference: the same checks as dp_model_load (architecture, every
 * tensor's shape, finite values, alphas > 0); momentum buffers in the file are
 * skipped, not read.  *out is NULL on failure, err then names the file and
 * what did not match.  DP_OK, DP_ERR_IO, DP_ERR_FORMAT, DP_ERR_NOMEM,
 * DP_ERR_SIZE / DP_ERR_OVERFLOW (the alphas give no valid map sizes). */
DP_API int dp_infer_load(const char *path, dp_infer **out, char *err, size_t errlen);
/* The same from a model in memory (its weights, statistics, alphas and
 * metadata are copied; m is not changed and may be freed afterwards). */
DP_API int dp_infer_freeze(const dp_model *m, dp_infer **out);
DP_API void dp_infer_free(dp_infer *h);
/* Logits (n, classes) of the images x (n, in_ch, size, size), float32 NCHW.
 * DP_ERR_NONFINITE, logits untouched, when x holds a NaN or infinity: the
 * frozen network's fused activations would not carry it to the logits. */
DP_API int dp_infer_run(dp_infer *h, const float *x, int n, float *logits);
DP_API int dp_infer_info_get(const dp_infer *h, dp_infer_info *info);
/* Runs the handle in float32 (the default) or bf16 (enum dp_precision; AUTO is
 * resolved), as dp_model_set_precision does for a model; the same codes. */
DP_API int dp_infer_set_precision(dp_infer *h, int precision);
/* A metadata value of the checkpoint (as dp_model_meta: "dataset", "run", ...), or NULL. */
DP_API const char *dp_infer_meta(const dp_infer *h, const char *key);

#ifdef __cplusplus
}
#endif
#endif /* DYNOPOOL_INFER_H */
