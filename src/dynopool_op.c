/*
 * dynopool_op.c — the DynOPool operator, its whole contract in one file:
 * shape inference (dp_dynopool_size), forward, backward and MAC count.
 * The formulas are SPEC.md section 1; docs/operator.md explains the kernel.
 *
 * Layout of the computation for one (n, c) plane x (h, w) -> y (ho, wo):
 *  - The query rows u(i, a) and columns v(j, b) are separable, so each axis gets
 *    a table of taps (two source indices, the weight of the second, and the
 *    alpha-gradient factor) built once per call.
 *  - For output row i, the two query rows a = 0, 1 are first interpolated along
 *    the height into row buffers R_a[v] (contiguous, vectorisable); each output
 *    cell then interpolates R_a along the width at its two query columns.
 *    This is the bilinear sample of SPEC 1.3, interpolated height-first.
 *  - The backward pass recomputes the four samples exactly as the forward does
 *    (same operations, same order, no FMA contraction), so it selects the same
 *    query point bit for bit, and scatters dy through the same separable path.
 *  - alpha's gradient is reduced per plane into an array, then summed in plane
 *    order: the result does not depend on the number of threads.
 */
#include "dynopool.h"
#include <limits.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* The query taps of one axis, as arrays indexed [a * out + i] (a in {0, 1}). */
typedef struct {
    int out;
    int *i0, *i1;  /* source indices in [0, in-1]; i1 = min(i0 + 1, in - 1) */
    float *t;      /* weight of i1 (weight of i0 is 1 - t); 0 at a whole pixel */
    float *g;      /* du/dH_out (straight-through) where u in (0, in-1), else 0 */
    int whole;     /* every t is 0: samples along this axis are plain reads */
} dp_axis;

/* ---- shape inference --------------------------------------------------- */

static int alpha_ok(float alpha) { return isfinite(alpha) && alpha > 0.0f; }

int dp_dynopool_size(int in, float alpha)
{
    if (in <= 0) return DP_ERR_SIZE;
    if (!alpha_ok(alpha)) return DP_ERR_ALPHA;
    double s = (double)in / (double)alpha;
    if (s < 1.5) s = 1.5;
    double r = floor(s + 0.5);
    if (!(r <= (double)DP_MAX_AXIS)) return DP_ERR_OVERFLOW;
    return (int)r;
}

/* d out / d alpha, straight-through: -in / alpha^2 above the 1.5 floor, else 0. */
static double size_grad(int in, float alpha)
{
    double a = (double)alpha;
    return ((double)in / a > 1.5) ? -(double)in / (a * a) : 0.0;
}

/* Checks every argument shared by forward and backward and returns the output
 * sizes; DP_OK or the first error found. */
static int check_shape(int n, int c, int h, int w, float alpha_h, float alpha_w,
                       int agg, int *ho, int *wo)
{
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0) return DP_ERR_SIZE;
    if (!alpha_ok(alpha_h) || !alpha_ok(alpha_w)) return DP_ERR_ALPHA;
    if (agg != DP_AGG_MAX && agg != DP_AGG_AVG) return DP_ERR_ARG;
    int oh = dp_dynopool_size(h, alpha_h);
    if (oh < 0) return oh;
    int ow = dp_dynopool_size(w, alpha_w);
    if (ow < 0) return ow;
    /* Element counts of x and y (and the tables' 4 * out * in products) must fit. */
    const uint64_t lim = (uint64_t)PTRDIFF_MAX / sizeof(float);
    uint64_t planes = (uint64_t)n * (uint64_t)c;  /* < 2^62 */
    if (planes > lim) return DP_ERR_OVERFLOW;
    uint64_t in_plane = (uint64_t)h * (uint64_t)w, out_plane = (uint64_t)oh * (uint64_t)ow;
    if (in_plane > lim / planes || out_plane > lim / planes) return DP_ERR_OVERFLOW;
    *ho = oh;
    *wo = ow;
    return DP_OK;
}

/* ---- query-point tables (SPEC 1.2, 1.3) --------------------------------- */

/* Fills ax (arrays already allocated, 2 * out entries each).  For output i and
 * a in {0, 1}:
 *   u = ((4i + 2a + 1) * in - 2 * out) / (4 * out)
 * in one rounding: exact integers over an exact integer, so whole-pixel
 * positions come out exact (alpha = 2 gives u = 2i and 2i + 1). */
static void build_axis(int in, int out, dp_axis *ax)
{
    const double hi = (double)(in - 1);
    const double den = 4.0 * (double)out;
    const double inv_out2 = 1.0 / ((double)out * (double)out);
    ax->out = out;
    ax->whole = 1;
    for (int a = 0; a < 2; a++) {
        for (int i = 0; i < out; i++) {
            const int64_t num = (4 * (int64_t)i + 2 * a + 1) * (int64_t)in - 2 * (int64_t)out;
            const double u = (double)num / den;
            const double uc = u < 0.0 ? 0.0 : (u > hi ? hi : u);
            const double u0 = floor(uc);
            const int k = a * out + i;
            ax->i0[k] = (int)u0;
            ax->i1[k] = ax->i0[k] + 1 < in ? ax->i0[k] + 1 : in - 1;
            ax->t[k] = (float)(uc - u0);
            ax->whole &= ax->t[k] == 0.0f;
            /* du/dH_out = -(i + (2a+1)/4) * in / out^2; the clamp's borders count
             * as outside (grid_sample's convention): there the gradient is 0. */
            ax->g[k] = (u > 0.0 && u < hi)
                           ? (float)(-((double)i + (2 * a + 1) * 0.25) * (double)in * inv_out2)
                           : 0.0f;
        }
    }
}

/* Both axes' tables in one allocation; NULL when out of memory. */
static void *alloc_axes(int ho, int wo, dp_axis *ah, dp_axis *aw)
{
    const size_t nh = 2 * (size_t)ho, nw = 2 * (size_t)wo;
    char *m = malloc((nh + nw) * (2 * sizeof(int) + 2 * sizeof(float)));
    if (!m) return NULL;
    int *ip = (int *)m;
    float *fp = (float *)(ip + 2 * (nh + nw));
    ah->i0 = ip, ah->i1 = ip + nh, aw->i0 = ip + 2 * nh, aw->i1 = ip + 2 * nh + nw;
    ah->t = fp, ah->g = fp + nh, aw->t = fp + 2 * nh, aw->g = fp + 2 * nh + nw;
    return m;
}

/* ---- kernels on one plane ------------------------------------------------ */

/* (1-t) a + t b: exactly a when t == 0 (b finite), so alpha = 2 reproduces max
 * pooling bit for bit.  Forward and backward use it identically. */
static inline float lerp(float a, float b, float t) { return (1.0f - t) * a + t * b; }

/* Query row k of the height axis, interpolated along the height:
 * r[v] = lerp(x[i0, v], x[i1, v], t).  At a whole pixel it is row i0 of x
 * itself, and no copy is made.
 *   x: (h, w) plane;  buf: (w) scratch;  returns (w) */
static inline const float *query_row(const float *restrict x, int w, const dp_axis *ah, int k,
                                     float *restrict buf)
{
    const float *x0 = x + (size_t)ah->i0[k] * w, *x1 = x + (size_t)ah->i1[k] * w;
    const float t = ah->t[k];
    if (t == 0.0f) return x0;
    for (int v = 0; v < w; v++) buf[v] = lerp(x0[v], x1[v], t);
    return buf;
}

/* The four candidates of every cell of one output row, in tie order
 * k = 2a + b: (0,0) (0,1) (1,0) (1,1).
 *   r[a]: (w) query rows;  q: (4, stride), this row's cells at q[k * stride + j] */
#if defined(__GNUC__) && !defined(__clang__)
/* Scalar loads beat vector gathers here (measured: bench/bench_dynopool.py). */
__attribute__((optimize("no-tree-vectorize")))
#endif
static void sample_cells(const float *const r[2], const dp_axis *aw, float *restrict q,
                         size_t stride)
{
    const int wo = aw->out;
    for (int k = 0; k < 4; k++) {
        const float *ra = r[k >> 1];
        const int *v0 = aw->i0 + (k & 1) * wo, *v1 = aw->i1 + (k & 1) * wo;
        const float *t = aw->t + (k & 1) * wo;
        float *qk = q + (size_t)k * stride;
        if (aw->whole)
            for (int j = 0; j < wo; j++) qk[j] = ra[v0[j]];
        else
            for (int j = 0; j < wo; j++) qk[j] = lerp(ra[v0[j]], ra[v1[j]], t[j]);
    }
}

/* Max of the four candidates, ties to the first; a NaN wins (as in max_pool2d).
 * Branch-free so that it vectorises: on real data the winner is unpredictable
 * and mispredicted branches cost more than the rest of the cell.
 * It runs over a whole plane at once, so that the loop is long enough to vectorise.
 *   q: (4, m);  y: (m) values, or NULL;  sel: (m) winners, or NULL */
static inline int is_nan(float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u); /* an integer test: no unordered compare, no branch */
    return (u & 0x7fffffffu) > 0x7f800000u;
}

static void select_max(const float *restrict q, size_t m, float *restrict y, int *restrict sel)
{
    const float *q0 = q, *q1 = q + m, *q2 = q + 2 * m, *q3 = q + 3 * m;
    for (size_t j = 0; j < m; j++) {
        float best = q0[j];
        int k = 0;
        int take = (q1[j] > best) | is_nan(q1[j]);
        best = take ? q1[j] : best;
        k = take ? 1 : k;
        take = (q2[j] > best) | is_nan(q2[j]);
        best = take ? q2[j] : best;
        k = take ? 2 : k;
        take = (q3[j] > best) | is_nan(q3[j]);
        best = take ? q3[j] : best;
        k = take ? 3 : k;
        if (y) y[j] = best;
        if (sel) sel[j] = k;
    }
}

/* Per-thread scratch, cut from one allocation; each thread's slice starts on
 * its own cache line (false sharing made 2 threads slower than 1). */
typedef struct {
    float *rb;   /* (2, w) query-row buffers */
    float *d;    /* (2, w) x[i1, :] - x[i0, :] of each query row (backward) */
    float *gr;   /* (2, w) dL/d(query row) (backward) */
    float *q;    /* (4, mp) candidates of every cell of the plane, mp = padded ho * wo */
    float *yb;   /* (mp) the forward's maxima, before they are copied to y */
    float *cacc; /* (2, wo) per column tap: sum over the plane of dL/dv / g_v (backward) */
    int *sel;    /* (mp) winner of each cell (backward; shares yb's space) */
} dp_scratch;

static size_t line_floats(size_t n) { return (n + 15) & ~(size_t)15; }

/* Cells of a plane padded to whole cache lines: select_max then runs whole
 * vectors only (its scalar remainder branches, and small planes are all remainder). */
static size_t padded_cells(int ho, int wo) { return line_floats((size_t)ho * wo); }

/* Floats per thread; the backward needs more than the forward. */
static size_t scratch_floats(int w, int ho, int wo, int backward)
{
    size_t n = line_floats(2 * (size_t)w) + 5 * padded_cells(ho, wo);
    if (backward) n += 2 * line_floats(2 * (size_t)w) + line_floats(2 * (size_t)wo);
    return n;
}

/* Cuts one thread's slice, which must start zeroed (the padding is read). */
static void scratch_cut(float *base, int w, int ho, int wo, int backward, dp_scratch *s)
{
    const size_t mp = padded_cells(ho, wo);
    s->rb = base;
    s->q = s->rb + line_floats(2 * (size_t)w);
    s->yb = s->q + 4 * mp;
    s->sel = (int *)s->yb; /* int and float are both 4 bytes; never used together */
    s->d = s->gr = s->cacc = NULL;
    if (!backward) return;
    s->d = s->yb + mp;
    s->gr = s->d + line_floats(2 * (size_t)w);
    s->cacc = s->gr + line_floats(2 * (size_t)w);
}

/* Forward on one plane.
 *   x: (h, w)  y: (ho, wo)  ah: height taps (ho)  aw: width taps (wo) */
static void forward_plane(const float *restrict x, int w, float *restrict y, const dp_axis *ah,
                          const dp_axis *aw, int agg, const dp_scratch *s)
{
    const int ho = ah->out, wo = aw->out;
    const size_t m = (size_t)ho * wo, mp = padded_cells(ho, wo);
    for (int i = 0; i < ho; i++) {
        const float *r[2] = {query_row(x, w, ah, i, s->rb), query_row(x, w, ah, ho + i, s->rb + w)};
        sample_cells(r, aw, s->q + (size_t)i * wo, mp);
    }
    const float *q = s->q;
    if (agg == DP_AGG_MAX) {
        select_max(q, mp, s->yb, NULL);
        memcpy(y, s->yb, sizeof(float) * m);
    } else {
        for (size_t o = 0; o < m; o++)
            y[o] = 0.25f * ((q[o] + q[mp + o]) + (q[2 * mp + o] + q[3 * mp + o]));
    }
}

/* dy through candidate k = 2a + b of cell j: into the query row's gradient gr,
 * and the alpha paths (dB/dv into cacc; dB/du, times dy, is returned).
 *   r[a]: (w) query rows  d: (2, w) row differences  gr: (2, w)  cacc: (2, wo) */
static inline float scatter(int k, int j, float gq, const float *const r[2], const float *d,
                            const dp_axis *aw, float *restrict gr, float *restrict cacc, int w)
{
    const int a = k >> 1, idx = (k & 1) * aw->out + j;
    const int v0 = aw->i0[idx], v1 = aw->i1[idx];
    const float t = aw->t[idx];
    const float *ra = r[a], *da = d + (size_t)a * w;
    float *ga = gr + (size_t)a * w;
    ga[v0] += (1.0f - t) * gq;
    ga[v1] += t * gq;
    cacc[idx] += gq * (ra[v1] - ra[v0]);  /* dB/dv = r[v1] - r[v0] */
    return gq * lerp(da[v0], da[v1], t);  /* dB/du = lerp_v(x[i1,:] - x[i0,:]) */
}

/* Backward on one plane.  Overwrites dx; stores this plane's dL/dH_out and
 * dL/dW_out (before the chain to alpha) in sums[0..1].
 *   x: (h, w)  dy: (ho, wo)  dx: (h, w)  ah: (ho) taps  aw: (wo) taps */
static void backward_plane(const float *restrict x, const float *restrict dy, int h, int w,
                           const dp_axis *ah, const dp_axis *aw, int agg, float *restrict dx,
                           const dp_scratch *s, double sums[2])
{
    const int ho = ah->out, wo = aw->out;
    const size_t mp = padded_cells(ho, wo);
    if (agg == DP_AGG_MAX) { /* the winners first, exactly as the forward picks them */
        for (int i = 0; i < ho; i++) {
            const float *r[2] = {query_row(x, w, ah, i, s->rb),
                                 query_row(x, w, ah, ho + i, s->rb + w)};
            sample_cells(r, aw, s->q + (size_t)i * wo, mp);
        }
        select_max(s->q, mp, NULL, s->sel);
    }
    memset(dx, 0, sizeof(float) * (size_t)h * w);
    memset(s->gr, 0, sizeof(float) * 2 * (size_t)w);
    memset(s->cacc, 0, sizeof(float) * 2 * (size_t)wo);
    double sum_h = 0.0;
    for (int i = 0; i < ho; i++) {
        const float *r[2];
        for (int a = 0; a < 2; a++) {
            const int k = a * ho + i;
            const float *x0 = x + (size_t)ah->i0[k] * w, *x1 = x + (size_t)ah->i1[k] * w;
            float *da = s->d + (size_t)a * w;
            for (int v = 0; v < w; v++) da[v] = x1[v] - x0[v];
            r[a] = query_row(x, w, ah, k, s->rb + (size_t)a * w);
        }
        const float *dyi = dy + (size_t)i * wo;
        /* sum of dL/du / g_u for the two query rows, in registers: the selected
         * row is data, and an indexed accumulator would chain through memory */
        float racc[2] = {0.0f, 0.0f}, r0 = 0.0f, r1 = 0.0f;
        if (agg == DP_AGG_MAX) {
            const int *sel = s->sel + (size_t)i * wo;
            for (int j = 0; j < wo; j++) {
                const float v = scatter(sel[j], j, dyi[j], r, s->d, aw, s->gr, s->cacc, w);
                const float fa = (float)(sel[j] >> 1); /* 0 or 1: both updates are exact */
                r1 += v * fa;
                r0 += v - v * fa;
            }
        } else {
            for (int j = 0; j < wo; j++)
                for (int k = 0; k < 4; k++) {
                    const float v = scatter(k, j, 0.25f * dyi[j], r, s->d, aw, s->gr, s->cacc, w);
                    if (k < 2) r0 += v; else r1 += v;
                }
        }
        racc[0] = r0;
        racc[1] = r1;
        /* The query rows' gradients go back to their two source rows, and are
         * cleared for the next output row. */
        for (int a = 0; a < 2; a++) {
            const int k = a * ho + i;
            float *ga = s->gr + (size_t)a * w;
            float *dx0 = dx + (size_t)ah->i0[k] * w, *dx1 = dx + (size_t)ah->i1[k] * w;
            const float t = ah->t[k];
            if (t == 0.0f) {
                for (int v = 0; v < w; v++) dx0[v] += ga[v];
            } else {
                for (int v = 0; v < w; v++) dx0[v] += (1.0f - t) * ga[v];
                for (int v = 0; v < w; v++) dx1[v] += t * ga[v];
            }
            memset(ga, 0, sizeof(float) * (size_t)w);
            sum_h += (double)ah->g[k] * (double)racc[a];
        }
    }
    double sum_w = 0.0;
    for (int k = 0; k < 2 * wo; k++) sum_w += (double)aw->g[k] * (double)s->cacc[k];
    sums[0] = sum_h;
    sums[1] = sum_w;
}

/* ---- entry points ------------------------------------------------------- */

/* Scratch for nt threads, 64-byte aligned and zeroed. */
static float *alloc_scratch(size_t per_thread, int nt)
{
    const size_t bytes = sizeof(float) * per_thread * (size_t)nt; /* a multiple of 64 */
    float *p = aligned_alloc(64, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

static int max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static int thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

int dp_dynopool_forward_agg(const float *x, int n, int c, int h, int w, float alpha_h,
                            float alpha_w, int agg, float *y)
{
    if (!x || !y) return DP_ERR_NULL;
    int ho, wo;
    int rc = check_shape(n, c, h, w, alpha_h, alpha_w, agg, &ho, &wo);
    if (rc) return rc;

    const int nt = max_threads();
    const size_t per_thread = scratch_floats(w, ho, wo, 0);
    dp_axis ah, aw;
    void *tables = alloc_axes(ho, wo, &ah, &aw);
    float *scratch = alloc_scratch(per_thread, nt);
    if (!tables || !scratch) {
        free(tables);
        free(scratch);
        return DP_ERR_NOMEM;
    }
    build_axis(h, ho, &ah);
    build_axis(w, wo, &aw);

    const ptrdiff_t planes = (ptrdiff_t)n * c;
    const size_t in_plane = (size_t)h * w, out_plane = (size_t)ho * wo;
#pragma omp parallel num_threads(nt)
    {
        dp_scratch s;
        scratch_cut(scratch + per_thread * (size_t)thread_id(), w, ho, wo, 0, &s);
#pragma omp for schedule(static)
        for (ptrdiff_t p = 0; p < planes; p++)
            forward_plane(x + (size_t)p * in_plane, w, y + (size_t)p * out_plane, &ah, &aw, agg,
                          &s);
    }
    free(scratch);
    free(tables);
    return DP_OK;
}

int dp_dynopool_backward_agg(const float *x, const float *dy, int n, int c, int h, int w,
                             float alpha_h, float alpha_w, int agg, float *dx, float *dalpha)
{
    if (!x || !dy || !dx || !dalpha) return DP_ERR_NULL;
    int ho, wo;
    int rc = check_shape(n, c, h, w, alpha_h, alpha_w, agg, &ho, &wo);
    if (rc) return rc;

    const int nt = max_threads();
    const ptrdiff_t planes = (ptrdiff_t)n * c;
    const size_t per_thread = scratch_floats(w, ho, wo, 1);
    dp_axis ah, aw;
    void *tables = alloc_axes(ho, wo, &ah, &aw);
    float *scratch = alloc_scratch(per_thread, nt);
    double *sums = malloc(sizeof(double) * 2 * (size_t)planes);
    if (!tables || !scratch || !sums) {
        free(tables);
        free(scratch);
        free(sums);
        return DP_ERR_NOMEM;
    }
    build_axis(h, ho, &ah);
    build_axis(w, wo, &aw);

    const size_t in_plane = (size_t)h * w, out_plane = (size_t)ho * wo;
#pragma omp parallel num_threads(nt)
    {
        dp_scratch s;
        scratch_cut(scratch + per_thread * (size_t)thread_id(), w, ho, wo, 1, &s);
#pragma omp for schedule(static)
        for (ptrdiff_t p = 0; p < planes; p++)
            backward_plane(x + (size_t)p * in_plane, dy + (size_t)p * out_plane, h, w, &ah, &aw,
                           agg, dx + (size_t)p * in_plane, &s, &sums[2 * p]);
    }
    /* Sum in plane order, so the result does not depend on the thread count. */
    double gh = 0.0, gw = 0.0;
    for (ptrdiff_t p = 0; p < planes; p++) {
        gh += sums[2 * p];
        gw += sums[2 * p + 1];
    }
    const double sh = size_grad(h, alpha_h), sw = size_grad(w, alpha_w);
    dalpha[0] = sh != 0.0 ? (float)(gh * sh) : 0.0f; /* +0 on the floor, not -0 */
    dalpha[1] = sw != 0.0 ? (float)(gw * sw) : 0.0f;

    free(sums);
    free(scratch);
    free(tables);
    return DP_OK;
}

int dp_dynopool_forward(const float *x, int n, int c, int h, int w, float alpha_h,
                        float alpha_w, float *y)
{
    return dp_dynopool_forward_agg(x, n, c, h, w, alpha_h, alpha_w, DP_AGG_MAX, y);
}

int dp_dynopool_backward(const float *x, const float *dy, int n, int c, int h, int w,
                         float alpha_h, float alpha_w, float *dx, float *dalpha)
{
    return dp_dynopool_backward_agg(x, dy, n, c, h, w, alpha_h, alpha_w, DP_AGG_MAX, dx,
                                    dalpha);
}

/* ---- cost ---------------------------------------------------------------- */

long long dp_dynopool_macs(int n, int c, int h, int w, float alpha_h, float alpha_w)
{
    int ho, wo;
    int rc = check_shape(n, c, h, w, alpha_h, alpha_w, DP_AGG_MAX, &ho, &wo);
    if (rc) return rc;
    /* check_shape bounds n*c*ho*wo by PTRDIFF_MAX / 4, so 16 times it fits. */
    uint64_t elems = (uint64_t)n * (uint64_t)c * (uint64_t)ho * (uint64_t)wo;
    if (elems > (uint64_t)LLONG_MAX / 16u) return DP_ERR_OVERFLOW;
    return (long long)(16u * elems);
}
