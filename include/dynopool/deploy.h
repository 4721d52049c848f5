/* dynopool/deploy.h — a frozen network written as an ONNX model, for ONNX
 * Runtime and the other ONNX tools.  Part of libdynopool; include <dynopool.h>.
 *
 *     dp_infer *h;
 *     char err[1024];
 *     if (dp_infer_load("run/checkpoint.safetensors", &h, err, sizeof err)) ...;
 *     const char *k[] = {"mean", "std"}, *v[] = {"[0.286]", "[0.353]"};
 *     dp_onnx_opts o = {.keys = k, .vals = v, .n_meta = 2};
 *     if (dp_export_onnx(h, "model.onnx", &o, err, sizeof err)) ...;  // err: what, which node
 *     dp_infer_free(h);
 *
 * The model (docs/guide.md, "ONNX export"): ONNX IR version 8, opset 17 of the
 * default domain, one input "input" (float32, [N, in_ch, size, size], the batch
 * N symbolic) and one output "logits" (float32, [N, classes]).  The weights are
 * those of the frozen network (batch norm folded into the convolutions), the
 * learned sizes are constants: each DynOPool is fixed bilinear sampling written
 * as Gather, Mul and Add over precomputed indices and weights
 * (dp_dynopool_taps), then a 2x2 stride-2 MaxPool; a Shape Adaptor is two
 * Resize (linear, align_corners) to its fixed size, mixed by its constant
 * weights.  Every value is written little-endian, as ONNX requires.
 * metadata_props holds "model", "pool", "in_channels", "input_size",
 * "classes", "width", "sizes" and "alphas" (JSON, the learned stage sizes and
 * alphas), "gmacs", "batch_norms_folded", then the caller's pairs (the CLI adds
 * the data's normalisation and class names, which the checkpoint's metadata
 * hold in its own format). */
#ifndef DYNOPOOL_DEPLOY_H
#define DYNOPOOL_DEPLOY_H

#include "dynopool/infer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dp_onnx_opts {
    const char *const *keys; /* extra metadata_props pairs (copied); a key of the */
    const char *const *vals; /* library's own list above is refused (DP_ERR_ARG) */
    int n_meta;
    const char *doc;         /* the model's doc_string; NULL: a line naming the network */
} dp_onnx_opts;

/* Writes the network of h to path as an ONNX model (atomically, as checkpoints
 * are written: dp_write_file_atomic).  opts may be NULL.  h is not changed and
 * may run batches before and after (not during) the call.  DP_OK; DP_ERR_ARG
 * (an op with no ONNX form, a duplicate metadata key; err says which),
 * DP_ERR_NOMEM, DP_ERR_OVERFLOW (over the 2 GiB a protobuf message may hold),
 * DP_ERR_IO (err names the file, errno is set). */
DP_API int dp_export_onnx(const dp_infer *h, const char *path, const dp_onnx_opts *opts, char *err,
                          size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* DYNOPOOL_DEPLOY_H */
