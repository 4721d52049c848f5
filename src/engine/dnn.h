/* dnn.h — the engine's only door to oneDNN (2.x C API; oneDNN 3 removed it, so
 * a port touches dnn.c alone).  Convolution, batch norm and max pooling on the
 * blocked layouts of engine.h; the fully connected layer on plain matrices.  Each
 * node keeps in *be the primitives of the last 4 shapes it ran (a frozen net's
 * convolutions: the last one), so they are built only for a shape new to the
 * node (docs/engine.md, "Shapes that change").  All calls return DP_OK or
 * DP_ERR_BACKEND / DP_ERR_NOMEM. */
#ifndef DP_DNN_H
#define DP_DNN_H

#include "engine/engine.h"

/* What dnn.c did since the last dnn_stats_reset, over all nets and threads
 * (tests and profiles: bench/bench_step.c).  Kinds: conv, batch norm, max
 * pooling, linear. */
enum { DNN_CONV, DNN_BN, DNN_POOL, DNN_LINEAR, DNN_KINDS };
typedef struct {
    long long built[DNN_KINDS];  /* node states built: primitive descriptors, primitives,
                                    reorders, workspaces (a shape new to the node) */
    long long reused[DNN_KINDS]; /* calls that found their node's state built for their shape */
    double build_s;              /* seconds spent building them */
    long long runs;              /* primitive executions (reorders included) */
    double run_s;                /* seconds in them (from creating their arguments to the wait) */
} dnn_stats;
void dnn_stats_get(dnn_stats *s);
void dnn_stats_reset(void);

/* The channel block the engine should use: 16 where oneDNN runs AVX-512 kernels,
 * else 8.  0 when oneDNN cannot start. */
int dnn_blk(void);
void dnn_free(void **be);
/* What oneDNN does with bf16 here (enum dp_bf16_support): DP_BF16_NATIVE where its
 * effective ISA (ONEDNN_MAX_CPU_ISA may lower it) has the AVX512-BF16 or AMX
 * instructions, DP_BF16_EMULATED where it still builds bf16 convolutions and
 * matmuls (oneDNN 2.6 on AVX-512 without BF16: emulated, slowly), DP_BF16_NONE
 * where it has no implementation (AVX2 and below). */
int dnn_bf16_support(void);

/* Convolution, square kernel k, stride s, padding p, groups g.
 *   x: (n, cin, h, w)  w: (cout, cin/g, k, k) OIHW  b: (cout) or NULL  y: (n, cout, ho, wo)
 * Backward: dx (layout of x) may be NULL; dw OIHW and db (or NULL) are overwritten.
 * Weights in oneDNN's formats live in net->wscr, one scratch for all convs.
 * net->bf16: x, dy and w enter the primitives as bf16 copies (round to nearest
 * even), accumulation and y, dx, dw, db stay f32 (docs/engine.md, "Mixed precision").
 * Frozen nets (net->frozen) only: act (0 none, 1 ReLU, DP_ACT_SILU, 6 ReLU6) is
 * fused into the convolution, and the weights are reordered on the first call
 * and kept, so they must not change afterwards (dp_net_fold runs before). */
int dnn_conv_forward(dp_net *net, void **be, const dp_act *x, const float *w, const float *b,
                     int k, int s, int p, int g, int act, dp_act *y);
int dnn_conv_backward(dp_net *net, void **be, const dp_act *x, const float *w, const dp_act *dy,
                      float *dx, float *dw, float *db);

/* Batch norm over (n, h, w) per channel, optionally followed by ReLU.
 * train = 1: batch statistics, stored in mean/var (biased variance, c floats each)
 * for the backward; train = 0: normalises with mean/var as given (running averages). */
int dnn_bn_forward(void **be, const dp_act *x, const float *gamma, const float *beta,
                   float *mean, float *var, float eps, int train, int relu, dp_act *y);
/* dgamma, dbeta overwritten; dx (layout of x) may not be NULL. */
int dnn_bn_backward(void **be, const dp_act *x, const float *gamma, const float *beta,
                    const float *mean, const float *var, const dp_act *dy, float *dx,
                    float *dgamma, float *dbeta);

/* Max pooling, square kernel k, stride s, padding p (padding never wins). */
int dnn_pool_forward(void **be, const dp_act *x, int k, int s, int p, int train, dp_act *y);
int dnn_pool_backward(void **be, const dp_act *dy, float *dx, const dp_act *x);

/* Fully connected layer on plain row-major matrices (oneDNN matmul):
 *   x (n, cin)  w (cout, cin)  b (cout)  y (n, cout)
 * forward y = x W^T + b; backward dW = dy^T x (overwritten) and, when dx is not
 * NULL, dx = dy W (n, cin, overwritten).  The bias gradient is the caller's.
 * bf16: x, W and dy are converted to bf16 for the products (f32 accumulation,
 * f32 results). */
int dnn_linear_forward(void **be, const float *x, const float *w, const float *b, int n, int cin,
                       int cout, int bf16, float *y);
int dnn_linear_backward(void **be, const float *x, const float *w, const float *dy, int n,
                        int cin, int cout, int bf16, float *dx, float *dw);

#endif
