/*
 * dynopool_op.h — the DynOPool operator: libdynopool_op, which needs only libm and
 * OpenMP.  dynopool.h includes it with the rest of the library (models, data,
 * checkpoints).
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
#ifndef DYNOPOOL_OP_H
#define DYNOPOOL_OP_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#  define DP_API __declspec(dllexport)
#elif defined(__GNUC__)
#  define DP_API __attribute__((visibility("default")))
#else
#  define DP_API
#endif

#define DP_VERSION_MAJOR 0
#define DP_VERSION_MINOR 1
#define DP_VERSION_PATCH 0

/* Status codes. 0 is success; every error is negative. */
enum dp_status {
    DP_OK = 0,
    DP_ERR_NULL = -1,      /* a required pointer is NULL */
    DP_ERR_SIZE = -2,      /* a size (n, c, h, w) is <= 0 */
    DP_ERR_ALPHA = -3,     /* alpha is <= 0, NaN or infinite */
    DP_ERR_OVERFLOW = -4,  /* an output size or element count does not fit */
    DP_ERR_NOMEM = -5,     /* an internal allocation failed */
    DP_ERR_ARG = -6,       /* another argument is out of range (e.g. an unknown mode) */
    DP_ERR_IO = -7,        /* a file could not be opened, read, written or renamed */
    DP_ERR_FORMAT = -8,    /* a file's contents are not what was expected */
    DP_ERR_BACKEND = -9,   /* the compute backend (oneDNN) refused or failed */
    DP_ERR_NONFINITE = -10 /* the loss is NaN or infinite (training diverged); nothing updated */
};

/* Static text for a status code ("ok", "NULL pointer argument", ...). Never NULL. */
DP_API const char *dp_strerror(int status);

/* Library version as "MAJOR.MINOR.PATCH". */
DP_API const char *dp_version(void);


/* Threads.  Every parallel loop of the library (its own kernels and oneDNN's)
 * runs on one OpenMP pool, process-wide.
 * dp_threads_available(): the CPUs this process may run on — its affinity mask,
 *   capped by a cgroup v2 CPU quota (a container's --cpus) — at least 1.
 * dp_threads_idle(ms): of those, how many other processes leave idle, measured
 *   over ms milliseconds (it sleeps that long) from /proc/stat less this
 *   process's own CPU time; dp_threads_available() where that cannot be read.
 *   OpenMP's barriers make a step whose threads share cores with other work
 *   crawl, so the tool uses this many by default (docs/engine.md, "Threads").
 * dp_threads_idle_since(mark): the same over the time since the mark was last
 *   set (no sleeping: for a long job that checks now and then), and sets it to
 *   now; a zeroed mark gives dp_threads_available().
 * dp_set_threads(n): use n threads (1..4096) from now on; DP_ERR_ARG otherwise.
 * dp_threads(): the number in use.
 * Results are reproducible bit for bit for a given number of threads; another
 * number changes the order of some sums (oneDNN's weight gradients). */
DP_API int dp_threads_available(void);
DP_API int dp_threads_idle(int ms);
typedef struct dp_cpu_mark { double v[3]; int valid; } dp_cpu_mark;
DP_API int dp_threads_idle_since(dp_cpu_mark *mark);
DP_API int dp_set_threads(int n);
DP_API int dp_threads(void);

/* ---------------------------------------------------------------------------
 * The DynOPool operator (docs/operator.md; paper, section 4.1).
 * ------------------------------------------------------------------------- */

/* Size of one output axis: floor(max(in / alpha, 1.5) + 0.5), computed in double
 * from the float alpha.  Every map keeps at least 2 cells; alpha < 1 up-samples.
 * Returns the size (>= 2), or DP_ERR_SIZE (in <= 0), DP_ERR_ALPHA (alpha <= 0 or
 * not finite), DP_ERR_OVERFLOW (the size exceeds DP_MAX_AXIS). */
DP_API int dp_dynopool_size(int in, float alpha);

/* Largest output axis dp_dynopool_size() accepts (2^24 cells). */
#define DP_MAX_AXIS (1 << 24)

/* How the four query points of an output cell are combined. */
enum dp_agg {
    DP_AGG_MAX = 0,   /* max, ties to the first query point (the paper's default) */
    DP_AGG_AVG = 1    /* mean of the four */
};

/* Forward, max aggregation.
 *   x: (n, c, h, w)        input
 *   y: (n, c, ho, wo)      output, ho = dp_dynopool_size(h, alpha_h), wo likewise
 * Returns 0, or a negative code (nothing written then). */
DP_API int dp_dynopool_forward(const float *x, int n, int c, int h, int w,
                               float alpha_h, float alpha_w, float *y);

/* Backward, max aggregation.
 *   x:      (n, c, h, w)     the forward's input
 *   dy:     (n, c, ho, wo)   gradient of the loss with respect to y
 *   dx:     (n, c, h, w)     OVERWRITTEN with dL/dx
 *   dalpha: [2]              OVERWRITTEN with (dL/dalpha_h, dL/dalpha_w)
 * The gradient flows through the selected query point only; alpha's gradient
 * goes through the straight-through output size (zero on an axis clamped at
 * the 1.5 floor).  x and dx must not overlap.  Returns 0 or a negative code. */
DP_API int dp_dynopool_backward(const float *x, const float *dy, int n, int c, int h, int w,
                                float alpha_h, float alpha_w, float *dx, float *dalpha);

/* The same pair with a choice of aggregation (enum dp_agg); with DP_AGG_MAX they
 * are identical to the two calls above. */
DP_API int dp_dynopool_forward_agg(const float *x, int n, int c, int h, int w,
                                   float alpha_h, float alpha_w, int agg, float *y);
DP_API int dp_dynopool_backward_agg(const float *x, const float *dy, int n, int c, int h, int w,
                                    float alpha_h, float alpha_w, int agg,
                                    float *dx, float *dalpha);

/* DynOPool's own cost for one forward pass, in multiply-accumulates: four
 * bilinear samples of four weighted corners per output element, 16 * n*c*ho*wo
 * (the 4-way max is comparisons, not counted).  This is what the paper's
 * Table 5.5 compares with the model's MACs; the model's GMACs never include it.
 * Returns the count (>= 0) or a negative code. */
DP_API long long dp_dynopool_macs(int n, int c, int h, int w, float alpha_h, float alpha_w);

/* The operator at a fixed alpha as fixed bilinear taps (docs/operator.md,
 * "Query points", "Bilinear sample"): on one axis of `in` cells, query
 * coordinate q = 2i + a (output cell i, a in {0, 1}) samples
 * (1 - t[q]) * x[i0[q]] + t[q] * x[i1[q]], the kernel's own weights.  Sampling
 * both axes so, height first, gives a (2 ho, 2 wo) map whose 2x2 stride-2 max
 * pooling is dp_dynopool_forward's output bit for bit (what an ONNX export
 * writes with Gather, Mul, Add and MaxPool; tests/test_onnx.c proves it).
 *   i0, i1, t: 2 * dp_dynopool_size(in, alpha) entries each, overwritten
 * Returns the output size (>= 2) or a negative code (DP_ERR_NOMEM too). */
DP_API int dp_dynopool_taps(int in, float alpha, int *i0, int *i1, float *t);

/* The same operator on a channel-blocked layout (oneDNN's nChw8c / nChw16c, as
 * the engine keeps its maps): blk channels innermost, cb = ceil(c / blk) blocks;
 * blk = 1 is NCHW and gives exactly dp_dynopool_forward/backward.
 *   x: (n, cb, h, w, blk)  y: (n, cb, ho, wo, blk)  dx like x  dalpha[2] overwritten */
DP_API int dp_dynopool_forward_blk(const float *x, int n, int cb, int h, int w, int blk,
                                   float alpha_h, float alpha_w, float *y);
DP_API int dp_dynopool_backward_blk(const float *x, const float *dy, int n, int cb, int h, int w,
                                    int blk, float alpha_h, float alpha_w, float *dx,
                                    float *dalpha);

/* The size rule every resizing op shares (DynOPool, Shape Adaptor): a continuous
 * size s becomes floor(max(s, 1.5) + 0.5) cells.  Returns it (>= 2), or
 * DP_ERR_OVERFLOW when s is NaN or the size exceeds DP_MAX_AXIS.
 * dp_dynopool_size(in, alpha) is dp_size_round(in / alpha) after its checks. */
DP_API int dp_size_round(double s);
/* d dp_dynopool_size(in, alpha) / d alpha through the straight-through size
 * (the rounding's gradient taken as 1): -in / alpha^2 while in / alpha > 1.5,
 * 0 on the floor.  The complexity loss's path to alpha. */
DP_API double dp_dynopool_size_grad(int in, float alpha);

#ifdef __cplusplus
}
#endif
#endif /* DYNOPOOL_OP_H */
