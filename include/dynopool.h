/*
 * dynopool.h — public C API of libdynopool.
 *
 * DynOPool (Jang et al., "Pooling Revisited: Your Receptive Field is Suboptimal",
 * CVPR 2022) is a pooling layer whose output size is learned: the scale of each
 * axis is 1/alpha, and alpha is a trainable parameter.  This header is the
 * manual; docs/operator.md writes out the formulas, from "The size rule" to
 * "Aggregation".
 *
 * Example (forward and backward of one layer, error handling included):
 *
 *     #include <dynopool.h>
 *
 *     int ho = dp_dynopool_size(h, 1.7f);           // output height
 *     int wo = dp_dynopool_size(w, 2.6f);           // output width
 *     if (ho < 0 || wo < 0) { puts(dp_strerror(ho < 0 ? ho : wo)); ... }
 *     float *y = malloc(sizeof(float) * n * c * ho * wo);
 *     int rc = dp_dynopool_forward(x, n, c, h, w, 1.7f, 2.6f, y);
 *     ...
 *     float dalpha[2];                              // (d/d alpha_h, d/d alpha_w)
 *     rc = dp_dynopool_backward(x, dy, n, c, h, w, 1.7f, 2.6f, dx, dalpha);
 *
 * Conventions, for every function here:
 *  - Tensors are float32, NCHW, contiguous, owned by the caller.  The library
 *    never keeps a pointer after a call returns and never frees caller memory.
 *  - Every call returns 0 on success or a negative DP_ERR_* code; on an error
 *    nothing is written to any output.  dp_strerror() turns a code into text.
 *  - The library never prints and never exits.
 *  - Calls are thread-safe; work is spread over OpenMP threads (OMP_NUM_THREADS).
 */
#ifndef DYNOPOOL_H
#define DYNOPOOL_H

/* The whole library, by room (docs/engine.md, "Five rooms, one-way doors"):
 *   dynopool_op.h       the operator, status codes, threads (libdynopool_op alone)
 *   dynopool/engine.h   models: build, train, predict, cost
 *   dynopool/infer.h    a trained network frozen for inference (loaded by the store)
 *   dynopool/io.h       datasets, the loader, one image file prepared for a network
 *   dynopool/store.h    checkpoints
 *   dynopool/deploy.h   a frozen network written as an ONNX model */
#include "dynopool_op.h"
#include "dynopool/engine.h"
#include "dynopool/infer.h"
#include "dynopool/io.h"
#include "dynopool/store.h"
#include "dynopool/deploy.h"

#endif /* DYNOPOOL_H */
