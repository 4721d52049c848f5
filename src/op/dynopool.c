/*
 * dynopool_op.c — the DynOPool operator, its whole contract in one file:
 * shape inference (dp_dynopool_size), forward, backward and MAC count.
 * docs/operator.md gives the formulas ("The size rule" to "Aggregation") and
 * explains the kernel ("The kernel").
 *
 * How one (n, c) plane x (h, w) becomes y (ho, wo):
 *  - Query rows u(i, a) and columns v(j, b) are separable: each axis gets a
 *    table of taps (two source indices, the weight of the second, the alpha
 *    gradient factor), built once per call and shared by all planes.
 *  - Every query row of the plane is first interpolated along the height into
 *    R_a (ho, w) — contiguous rows, vectorised.  Each cell's four candidates are
 *    then interpolated from R along the width, in one long loop over the whole
 *    plane per candidate (flat offsets from a cell table), and the max is taken
 *    by a branch-free loop over the plane.  This is the bilinear sample of docs/operator.md,
 *    height first; long loops keep small planes (8x8) cheap.
 *  - The backward pass recomputes R and the candidates with the same operations
 *    in the same order (no FMA contraction: -ffp-contract=off), so it selects
 *    the forward's winner bit for bit, then scatters dy back the same way.
 *  - alpha's gradient is reduced per plane into an array and summed in plane
 *    order: the result does not depend on the number of threads.
 */
#include "dynopool_op.h"

#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

_Static_assert(sizeof(int) == sizeof(float), "scratch slices hold ints in float-sized words");

/* The query taps of one axis, as arrays indexed [a * out + i] (a in {0, 1}). */
typedef struct {
    int out;
    int *i0, *i1;  /* source indices in [0, in-1]; i1 = min(i0 + 1, in - 1) */
    float *t;      /* weight of i1 (weight of i0 is 1 - t); 0 at a whole pixel */
    float *g;      /* du/dH_out (straight-through) where u in (0, in-1), else 0 */
    int whole;     /* every t is 0: samples along this axis are plain reads */
} dp_axis;

/* The width taps of every cell of a plane, flattened for query rows stored as
 * R_a (ho, w): indexed [b * m + o] for cell o = i * wo + j, m = ho * wo. */
typedef struct {
    size_t m;
    int *c0, *c1;  /* i * w + width source index: offsets into R_a */
    float *t;      /* weight of c1 */
} dp_cells;

/* ---- shape inference --------------------------------------------------- */

static int alpha_ok(float alpha) { return isfinite(alpha) && alpha > 0.0f; }

/* The size rule, the one place it is written (docs/operator.md, "The size rule"). */
int dp_size_round(double s)
{
    if (s < 1.5) s = 1.5;
    const double r = floor(s + 0.5);
    if (!(r <= (double)DP_MAX_AXIS)) return DP_ERR_OVERFLOW; /* also NaN */
    return (int)r;
}

int dp_dynopool_size(int in, float alpha)
{
    if (in <= 0) return DP_ERR_SIZE;
    if (!alpha_ok(alpha)) return DP_ERR_ALPHA;
    return dp_size_round((double)in / (double)alpha);
}

/* d out / d alpha, straight-through: -in / alpha^2 above the 1.5 floor, else 0. */
double dp_dynopool_size_grad(int in, float alpha)
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
    /* Element counts of x and y must be addressable, and the query rows of one
     * plane (oh x w, indexed with int offsets) must fit in an int. */
    const uint64_t lim = (uint64_t)PTRDIFF_MAX / sizeof(float);
    uint64_t planes = (uint64_t)n * (uint64_t)c;  /* < 2^62 */
    if (planes > lim) return DP_ERR_OVERFLOW;
    uint64_t in_plane = (uint64_t)h * (uint64_t)w, out_plane = (uint64_t)oh * (uint64_t)ow;
    if (in_plane > lim / planes || out_plane > lim / planes) return DP_ERR_OVERFLOW;
    if ((uint64_t)oh * (uint64_t)w > (uint64_t)INT_MAX) return DP_ERR_OVERFLOW;
    *ho = oh;
    *wo = ow;
    return DP_OK;
}

/* ---- query-point tables (docs/operator.md, "Query points", "Bilinear sample") -- */

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

/* The public form of one axis's taps, for a network whose alphas are constants
 * (an ONNX export, dynopool/deploy.h): query coordinate q = 2i + a, the order in
 * which a 2x2 stride-2 max pool over the sampled map takes the four candidates
 * of a cell (docs/operator.md, "Aggregation"). */
int dp_dynopool_taps(int in, float alpha, int *i0, int *i1, float *t)
{
    if (!i0 || !i1 || !t) return DP_ERR_NULL;
    const int out = dp_dynopool_size(in, alpha);
    if (out < 0) return out;
    dp_axis ax;
    void *mem = malloc(2 * (size_t)out * (2 * sizeof(int) + 2 * sizeof(float)));
    if (!mem) return DP_ERR_NOMEM;
    ax.i0 = mem, ax.i1 = ax.i0 + 2 * (size_t)out;
    ax.t = (float *)(ax.i1 + 2 * (size_t)out), ax.g = ax.t + 2 * (size_t)out;
    build_axis(in, out, &ax);
    for (int a = 0; a < 2; a++)
        for (int i = 0; i < out; i++) {
            const int k = a * out + i, q = 2 * i + a;
            i0[q] = ax.i0[k], i1[q] = ax.i1[k], t[q] = ax.t[k];
        }
    free(mem);
    return out;
}

/* Cell table from the width taps: for R_a stored (ho, w). */
static void build_cells(const dp_axis *aw, int ho, int w, dp_cells *cl)
{
    const int wo = aw->out;
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < ho; i++)
            for (int j = 0; j < wo; j++) {
                const size_t o = (size_t)b * cl->m + (size_t)i * wo + j;
                const int k = b * wo + j;
                cl->c0[o] = i * w + aw->i0[k];
                cl->c1[o] = i * w + aw->i1[k];
                cl->t[o] = aw->t[k];
            }
}

/* Both axes' taps and the cell table in one allocation; NULL when out of memory. */
static void *alloc_tables(int ho, int wo, dp_axis *ah, dp_axis *aw, dp_cells *cl)
{
    const size_t nh = 2 * (size_t)ho, nw = 2 * (size_t)wo, nc = 2 * (size_t)ho * wo;
    const size_t n = nh + nw + nc;
    char *mem = malloc(n * (2 * sizeof(int) + 2 * sizeof(float)));
    if (!mem) return NULL;
    int *ip = (int *)mem;
    float *fp = (float *)(mem + 2 * n * sizeof(int)); /* the floats follow the ints */
    ah->i0 = ip, ah->i1 = ip + nh, ip += 2 * nh;
    aw->i0 = ip, aw->i1 = ip + nw, ip += 2 * nw;
    cl->c0 = ip, cl->c1 = ip + nc;
    ah->t = fp, ah->g = fp + nh, fp += 2 * nh;
    aw->t = fp, aw->g = fp + nw, fp += 2 * nw;
    cl->t = fp;
    cl->m = (size_t)ho * wo;
    return mem;
}

/* ---- kernels on one plane ------------------------------------------------ */

/* (1-t) a + t b: exactly a when t == 0 (b finite), so alpha = 2 reproduces max
 * pooling bit for bit.  Forward and backward use it identically. */
static inline float lerp(float a, float b, float t) { return (1.0f - t) * a + t * b; }

/* Per-thread scratch, cut from one allocation; each piece starts on its own
 * cache line, and so does each thread's slice (false sharing made 2 threads
 * slower than 1). */
typedef struct {
    float *r;    /* (2, ho, w) query rows of the plane, interpolated along the height */
    float *q;    /* (4, mp) candidates of every cell, mp = ho * wo padded to a line */
    float *yb;   /* (mp) the forward's maxima, before they are copied to y (forward) */
    int *sel;    /* (mp) winner of each cell (backward, in the words yb has in the forward) */
    float *d;    /* (2, w) x[i1, :] - x[i0, :] of the current query rows (backward) */
    float *gr;   /* (2, w) dL/d(current query rows) (backward) */
    float *cacc; /* (2, wo) per column tap: sum over the plane of dL/dv / g_v (backward) */
} dp_scratch;

static size_t line_floats(size_t n) { return (n + 15) & ~(size_t)15; }

/* Cells of a plane padded to whole cache lines: select_max then runs whole
 * vectors only (its scalar remainder branches, and small planes are all remainder). */
static size_t padded_cells(int ho, int wo) { return line_floats((size_t)ho * wo); }

/* 4-byte words per thread; the backward needs more than the forward. */
static size_t scratch_floats(int w, int ho, int wo, int backward)
{
    size_t n = line_floats(2 * (size_t)ho * w) + 5 * padded_cells(ho, wo);
    if (backward) n += 2 * line_floats(2 * (size_t)w) + line_floats(2 * (size_t)wo);
    return n;
}

/* Cuts one thread's slice, which must start zeroed (the padding is read). */
static void scratch_cut(float *base, int w, int ho, int wo, int backward, dp_scratch *s)
{
    const size_t mp = padded_cells(ho, wo);
    s->r = base;
    s->q = s->r + line_floats(2 * (size_t)ho * w);
    float *after_q = s->q + 4 * mp; /* mp words: maxima (forward) or winners (backward) */
    s->yb = NULL;
    s->sel = NULL;
    s->d = s->gr = s->cacc = NULL;
    if (!backward) {
        s->yb = after_q;
        return;
    }
    s->sel = (int *)(void *)after_q; /* a backward call's own allocation: never read as float */
    s->d = after_q + mp;
    s->gr = s->d + line_floats(2 * (size_t)w);
    s->cacc = s->gr + line_floats(2 * (size_t)w);
}

/* Query rows of the plane: r[a][i][v] = lerp(x[i0, v], x[i1, v], t) for the
 * height tap (i, a); a copy of row i0 at a whole pixel.
 *   x: (h, w)  r: (2, ho, w) */
static void plane_rows(const float *restrict x, int w, const dp_axis *ah, float *restrict r)
{
    for (int k = 0; k < 2 * ah->out; k++) {
        const float *x0 = x + (size_t)ah->i0[k] * w, *x1 = x + (size_t)ah->i1[k] * w;
        const float t = ah->t[k];
        float *rk = r + (size_t)k * w;
        if (t == 0.0f)
            memcpy(rk, x0, sizeof(float) * (size_t)w);
        else
            for (int v = 0; v < w; v++) rk[v] = lerp(x0[v], x1[v], t);
    }
}

/* The four candidates of every cell, in tie order k = 2a + b:
 * (0,0) (0,1) (1,0) (1,1).  q[k][o] = lerp(r_a[c0], r_a[c1], t) along the width.
 *   r: (2, ho, w)  q: (4, mp) */
#if defined(__GNUC__) && !defined(__clang__)
/* Scalar loads beat AVX-512 gathers here (measured: bench/bench_dynopool.py). */
__attribute__((optimize("no-tree-vectorize")))
#endif
static void plane_candidates(const float *restrict r, size_t rs, const dp_cells *cl, int whole,
                             float *restrict q, size_t mp)
{
    const size_t m = cl->m;
    for (int k = 0; k < 4; k++) {
        const float *ra = r + (size_t)(k >> 1) * rs;
        const int *c0 = cl->c0 + (size_t)(k & 1) * m, *c1 = cl->c1 + (size_t)(k & 1) * m;
        const float *t = cl->t + (size_t)(k & 1) * m;
        float *qk = q + (size_t)k * mp;
        if (whole)
            for (size_t o = 0; o < m; o++) qk[o] = ra[c0[o]];
        else
            for (size_t o = 0; o < m; o++) qk[o] = lerp(ra[c0[o]], ra[c1[o]], t[o]);
    }
}

static inline int is_nan(float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u); /* an integer test: no unordered compare, no branch */
    return (u & 0x7fffffffu) > 0x7f800000u;
}

/* Max of the four candidates, ties to the first; a NaN wins (as in max_pool2d).
 * Branch-free so that it vectorises: on real data the winner is unpredictable,
 * and mispredicted branches cost more than the rest of the cell.
 *   q: (4, mp);  y: (mp) values, or NULL;  sel: (mp) winners, or NULL */
static void select_max(const float *restrict q, size_t mp, float *restrict y, int *restrict sel)
{
    const float *q0 = q, *q1 = q + mp, *q2 = q + 2 * mp, *q3 = q + 3 * mp;
    for (size_t o = 0; o < mp; o++) {
        float best = q0[o];
        int k = 0;
        int take = (q1[o] > best) | is_nan(q1[o]);
        best = take ? q1[o] : best;
        k = take ? 1 : k;
        take = (q2[o] > best) | is_nan(q2[o]);
        best = take ? q2[o] : best;
        k = take ? 2 : k;
        take = (q3[o] > best) | is_nan(q3[o]);
        best = take ? q3[o] : best;
        k = take ? 3 : k;
        if (y) y[o] = best;
        if (sel) sel[o] = k;
    }
}

/* Forward on one plane.
 *   x: (h, w)  y: (ho, wo)  ah: height taps  aw: width taps  cl: cell table */
static void forward_plane(const float *restrict x, int w, float *restrict y, const dp_axis *ah,
                          const dp_axis *aw, const dp_cells *cl, int agg, const dp_scratch *s)
{
    const size_t m = cl->m, mp = padded_cells(ah->out, aw->out);
    const float *q = s->q;
    plane_rows(x, w, ah, s->r);
    plane_candidates(s->r, (size_t)ah->out * w, cl, aw->whole, s->q, mp);
    if (agg == DP_AGG_MAX) {
        select_max(q, mp, s->yb, NULL);
        memcpy(y, s->yb, sizeof(float) * m);
    } else {
        for (size_t o = 0; o < m; o++)
            y[o] = 0.25f * ((q[o] + q[mp + o]) + (q[2 * mp + o] + q[3 * mp + o]));
    }
}

/* dy through candidate k = 2a + b of cell j of the current output row: into
 * the query rows' gradient gr and the width path of alpha (dB/dv into cacc);
 * returns dy * dB/du for the height path.
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
 *   x: (h, w)  dy: (ho, wo)  dx: (h, w)  ah, aw: taps  cl: cell table */
static void backward_plane(const float *restrict x, const float *restrict dy, int h, int w,
                           const dp_axis *ah, const dp_axis *aw, const dp_cells *cl, int agg,
                           float *restrict dx, const dp_scratch *s, double sums[2])
{
    const int ho = ah->out, wo = aw->out;
    const size_t rs = (size_t)ho * w, mp = padded_cells(ho, wo);
    plane_rows(x, w, ah, s->r);
    if (agg == DP_AGG_MAX) { /* the winners, exactly as the forward picks them */
        plane_candidates(s->r, rs, cl, aw->whole, s->q, mp);
        select_max(s->q, mp, NULL, s->sel);
    }
    memset(dx, 0, sizeof(float) * (size_t)h * w);
    memset(s->gr, 0, sizeof(float) * 2 * (size_t)w);
    memset(s->cacc, 0, sizeof(float) * 2 * (size_t)wo);
    double sum_h = 0.0;
    for (int i = 0; i < ho; i++) {
        const float *r[2] = {s->r + (size_t)i * w, s->r + rs + (size_t)i * w};
        for (int a = 0; a < 2; a++) {
            const int k = a * ho + i;
            const float *x0 = x + (size_t)ah->i0[k] * w, *x1 = x + (size_t)ah->i1[k] * w;
            float *da = s->d + (size_t)a * w;
            for (int v = 0; v < w; v++) da[v] = x1[v] - x0[v];
        }
        const float *dyi = dy + (size_t)i * wo;
        /* dL/du / g_u of the two query rows, in registers: the selected row is
         * data, and an indexed accumulator would chain through memory */
        float r0 = 0.0f, r1 = 0.0f;
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
            sum_h += (double)ah->g[k] * (double)(a ? r1 : r0);
        }
    }
    double sum_w = 0.0;
    for (int k = 0; k < 2 * wo; k++) sum_w += (double)aw->g[k] * (double)s->cacc[k];
    sums[0] = sum_h;
    sums[1] = sum_w;
}

/* ---- entry points ------------------------------------------------------- */

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

/* Scratch for nt threads, 64-byte aligned and zeroed; NULL on overflow or OOM. */
static float *alloc_scratch(size_t per_thread, int nt)
{
    if (per_thread > SIZE_MAX / sizeof(float) / (size_t)nt) return NULL;
    const size_t bytes = sizeof(float) * per_thread * (size_t)nt; /* a multiple of 64 */
    float *p = aligned_alloc(64, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

/* Everything one call shares between its threads. */
typedef struct {
    dp_axis ah, aw;
    dp_cells cl;
    void *tables;
    float *scratch;
    size_t per_thread;
} dp_plan;

static void plan_free(dp_plan *pl)
{
    free(pl->tables);
    free(pl->scratch);
}

static int plan_make(int h, int w, int ho, int wo, int backward, dp_plan *pl)
{
    pl->per_thread = scratch_floats(w, ho, wo, backward);
    pl->tables = alloc_tables(ho, wo, &pl->ah, &pl->aw, &pl->cl);
    pl->scratch = alloc_scratch(pl->per_thread, max_threads());
    if (!pl->tables || !pl->scratch) {
        plan_free(pl);
        return DP_ERR_NOMEM;
    }
    build_axis(h, ho, &pl->ah);
    build_axis(w, wo, &pl->aw);
    build_cells(&pl->aw, ho, w, &pl->cl);
    return DP_OK;
}

int dp_dynopool_forward_agg(const float *x, int n, int c, int h, int w, float alpha_h,
                            float alpha_w, int agg, float *y)
{
    if (!x || !y) return DP_ERR_NULL;
    int ho, wo;
    int rc = check_shape(n, c, h, w, alpha_h, alpha_w, agg, &ho, &wo);
    if (rc) return rc;
    dp_plan pl;
    if ((rc = plan_make(h, w, ho, wo, 0, &pl))) return rc;

    const ptrdiff_t planes = (ptrdiff_t)n * c;
    const size_t in_plane = (size_t)h * w, out_plane = (size_t)ho * wo;
#pragma omp parallel num_threads(max_threads())
    {
        dp_scratch s;
        scratch_cut(pl.scratch + pl.per_thread * (size_t)thread_id(), w, ho, wo, 0, &s);
#pragma omp for schedule(static)
        for (ptrdiff_t p = 0; p < planes; p++)
            forward_plane(x + (size_t)p * in_plane, w, y + (size_t)p * out_plane, &pl.ah,
                          &pl.aw, &pl.cl, agg, &s);
    }
    plan_free(&pl);
    return DP_OK;
}

int dp_dynopool_backward_agg(const float *x, const float *dy, int n, int c, int h, int w,
                             float alpha_h, float alpha_w, int agg, float *dx, float *dalpha)
{
    if (!x || !dy || !dx || !dalpha) return DP_ERR_NULL;
    int ho, wo;
    int rc = check_shape(n, c, h, w, alpha_h, alpha_w, agg, &ho, &wo);
    if (rc) return rc;
    const ptrdiff_t planes = (ptrdiff_t)n * c;
    double *sums = malloc(sizeof(double) * 2 * (size_t)planes);
    if (!sums) return DP_ERR_NOMEM;
    dp_plan pl;
    if ((rc = plan_make(h, w, ho, wo, 1, &pl))) {
        free(sums);
        return rc;
    }

    const size_t in_plane = (size_t)h * w, out_plane = (size_t)ho * wo;
#pragma omp parallel num_threads(max_threads())
    {
        dp_scratch s;
        scratch_cut(pl.scratch + pl.per_thread * (size_t)thread_id(), w, ho, wo, 1, &s);
#pragma omp for schedule(static)
        for (ptrdiff_t p = 0; p < planes; p++)
            backward_plane(x + (size_t)p * in_plane, dy + (size_t)p * out_plane, h, w, &pl.ah,
                           &pl.aw, &pl.cl, agg, dx + (size_t)p * in_plane, &s, &sums[2 * p]);
    }
    /* Sum in plane order, so the result does not depend on the thread count. */
    double gh = 0.0, gw = 0.0;
    for (ptrdiff_t p = 0; p < planes; p++) {
        gh += sums[2 * p];
        gw += sums[2 * p + 1];
    }
    const double sh = dp_dynopool_size_grad(h, alpha_h), sw = dp_dynopool_size_grad(w, alpha_w);
    dalpha[0] = sh != 0.0 ? (float)(gh * sh) : 0.0f; /* +0 on the floor, not -0 */
    dalpha[1] = sw != 0.0 ? (float)(gw * sw) : 0.0f;
    free(sums);
    plan_free(&pl);
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

/* ---- the blocked layout of the engine (engine.h) ------------------------------
 * x: (n, cb, h, w, B) with B = 8 or 16 channel lanes that share every tap, so the
 * four samples and the max run across the lanes in vector registers.  The
 * samples are computed in the plane kernel's order (height first, then width),
 * so the values are bit for bit those of dp_dynopool_forward. */

#define DP_INLINE static inline __attribute__((always_inline))

/* The four candidates of cell (i, j) for the B lanes of block xb: q[k][l]. */
DP_INLINE void blk_candidates(const float *restrict xb, int w, const dp_axis *ah,
                              const dp_axis *aw, int i, int j, const int B, float q[4][16])
{
    const int ho = ah->out, wo = aw->out;
    for (int a = 0; a < 2; a++) {
        const int ku = a * ho + i;
        const float tu = ah->t[ku];
        const float *x0 = xb + (size_t)ah->i0[ku] * w * B, *x1 = xb + (size_t)ah->i1[ku] * w * B;
        for (int b = 0; b < 2; b++) {
            const int kv = b * wo + j;
            const float tv = aw->t[kv];
            const int c0 = aw->i0[kv] * B, c1 = aw->i1[kv] * B;
            for (int l = 0; l < B; l++)
                q[2 * a + b][l] = lerp(lerp(x0[c0 + l], x1[c0 + l], tu),
                                       lerp(x0[c1 + l], x1[c1 + l], tu), tv);
        }
    }
}

DP_INLINE void blk_select(float q[4][16], const int B, float *best, int *sel)
{
    for (int l = 0; l < B; l++) {
        float bv = q[0][l];
        int k = 0;
        for (int c = 1; c < 4; c++) {
            const int take = (q[c][l] > bv) | is_nan(q[c][l]);
            bv = take ? q[c][l] : bv;
            k = take ? c : k;
        }
        best[l] = bv;
        sel[l] = k;
    }
}

/* Whole-pixel taps on both axes (alpha = 2 on even sizes, for one): the samples
 * are plain reads, and lerp(a, b, 0) = a for finite b gives the same values. */
DP_INLINE void blk_reads(const float *restrict xb, int w, const dp_axis *ah, const dp_axis *aw,
                         int i, int j, const int B, float q[4][16])
{
    for (int a = 0; a < 2; a++) {
        const float *x0 = xb + (size_t)ah->i0[a * ah->out + i] * w * B;
        for (int b = 0; b < 2; b++) {
            const int c0 = aw->i0[b * aw->out + j] * B;
            for (int l = 0; l < B; l++) q[2 * a + b][l] = x0[c0 + l];
        }
    }
}

DP_INLINE void blk_forward(const float *restrict xb, float *restrict yb, int w, const dp_axis *ah,
                           const dp_axis *aw, const int B)
{
    float q[4][16], best[16];
    int sel[16];
    const int whole = ah->whole && aw->whole;
    for (int i = 0; i < ah->out; i++)
        for (int j = 0; j < aw->out; j++) {
            if (whole) blk_reads(xb, w, ah, aw, i, j, B, q);
            else blk_candidates(xb, w, ah, aw, i, j, B, q);
            blk_select(q, B, best, sel);
            float *yo = yb + ((size_t)i * aw->out + j) * B;
            for (int l = 0; l < B; l++) yo[l] = best[l];
        }
}

/* One block's backward: dxb overwritten; sums[0..1] = this block's dL/dH_out and
 * dL/dW_out before the chain to alpha. */
DP_INLINE void blk_backward(const float *restrict xb, const float *restrict dyb, float *restrict dxb,
                            int h, int w, const dp_axis *ah, const dp_axis *aw, const int B,
                            double sums[2])
{
    const int ho = ah->out, wo = aw->out;
    float q[4][16], best[16];
    int sel[16];
    double sh[16] = {0}, sw[16] = {0};
    const int whole = ah->whole && aw->whole;
    memset(dxb, 0, sizeof(float) * (size_t)h * w * B);
    for (int i = 0; i < ho; i++)
        for (int j = 0; j < wo; j++) {
            if (whole) blk_reads(xb, w, ah, aw, i, j, B, q);
            else blk_candidates(xb, w, ah, aw, i, j, B, q);
            blk_select(q, B, best, sel);
            const float *g = dyb + ((size_t)i * wo + j) * B;
            for (int c = 0; c < 4; c++) {
                const int a = c >> 1, b = c & 1, ku = a * ho + i, kv = b * wo + j;
                const float tu = ah->t[ku], tv = aw->t[kv];
                const float gu = ah->g[ku], gv = aw->g[kv];
                const size_t r0 = (size_t)ah->i0[ku] * w * B, r1 = (size_t)ah->i1[ku] * w * B;
                const int c0 = aw->i0[kv] * B, c1 = aw->i1[kv] * B;
                const float *x00 = xb + r0 + c0, *x01 = xb + r0 + c1;
                const float *x10 = xb + r1 + c0, *x11 = xb + r1 + c1;
                float *d00 = dxb + r0 + c0, *d01 = dxb + r0 + c1;
                float *d10 = dxb + r1 + c0, *d11 = dxb + r1 + c1;
                if (whole) { /* tu = tv = 0: one corner, plain differences */
                    for (int l = 0; l < B; l++) {
                        const float gl = sel[l] == c ? g[l] : 0.0f;
                        d00[l] += gl;
                        sh[l] += (double)(gl * (x10[l] - x00[l])) * gu;
                        sw[l] += (double)(gl * (x01[l] - x00[l])) * gv;
                    }
                    continue;
                }
                for (int l = 0; l < B; l++) {
                    const float gl = sel[l] == c ? g[l] : 0.0f;
                    d00[l] += (1.0f - tu) * ((1.0f - tv) * gl);
                    d01[l] += (1.0f - tu) * (tv * gl);
                    d10[l] += tu * ((1.0f - tv) * gl);
                    d11[l] += tu * (tv * gl);
                    const float du = lerp(x10[l] - x00[l], x11[l] - x01[l], tv);
                    const float dv = lerp(x00[l], x10[l], tu), dv1 = lerp(x01[l], x11[l], tu);
                    sh[l] += (double)(gl * du) * gu;
                    sw[l] += (double)(gl * (dv1 - dv)) * gv;
                }
            }
        }
    double th = 0.0, tw = 0.0;
    for (int l = 0; l < B; l++) th += sh[l], tw += sw[l];
    sums[0] = th;
    sums[1] = tw;
}

static int blk_tables(int h, int w, int ho, int wo, dp_axis *ah, dp_axis *aw, void **mem)
{
    dp_cells cl;
    *mem = alloc_tables(ho, wo, ah, aw, &cl);
    if (!*mem) return DP_ERR_NOMEM;
    build_axis(h, ho, ah);
    build_axis(w, wo, aw);
    return DP_OK;
}

int dp_dynopool_forward_blk(const float *x, int n, int cb, int h, int w, int blk, float alpha_h,
                            float alpha_w, float *y)
{
    if (blk == 1) return dp_dynopool_forward(x, n, cb, h, w, alpha_h, alpha_w, y);
    if (!x || !y) return DP_ERR_NULL;
    if (blk != 8 && blk != 16) return DP_ERR_ARG;
    if (cb <= 0 || cb > INT_MAX / blk) return DP_ERR_SIZE;
    int ho, wo, rc = check_shape(n, cb * blk, h, w, alpha_h, alpha_w, DP_AGG_MAX, &ho, &wo);
    if (rc) return rc;
    dp_axis ah, aw;
    void *mem;
    if ((rc = blk_tables(h, w, ho, wo, &ah, &aw, &mem))) return rc;
    const ptrdiff_t blocks = (ptrdiff_t)n * cb;
    const size_t in_b = (size_t)h * w * blk, out_b = (size_t)ho * wo * blk;
#pragma omp parallel for schedule(static)
    for (ptrdiff_t p = 0; p < blocks; p++) {
        if (blk == 16) blk_forward(x + p * in_b, y + p * out_b, w, &ah, &aw, 16);
        else blk_forward(x + p * in_b, y + p * out_b, w, &ah, &aw, 8);
    }
    free(mem);
    return DP_OK;
}

int dp_dynopool_backward_blk(const float *x, const float *dy, int n, int cb, int h, int w,
                             int blk, float alpha_h, float alpha_w, float *dx, float *dalpha)
{
    if (blk == 1) return dp_dynopool_backward(x, dy, n, cb, h, w, alpha_h, alpha_w, dx, dalpha);
    if (!x || !dy || !dx || !dalpha) return DP_ERR_NULL;
    if (blk != 8 && blk != 16) return DP_ERR_ARG;
    if (cb <= 0 || cb > INT_MAX / blk) return DP_ERR_SIZE;
    int ho, wo, rc = check_shape(n, cb * blk, h, w, alpha_h, alpha_w, DP_AGG_MAX, &ho, &wo);
    if (rc) return rc;
    const ptrdiff_t blocks = (ptrdiff_t)n * cb;
    double *sums = malloc(sizeof(double) * 2 * (size_t)blocks);
    if (!sums) return DP_ERR_NOMEM;
    dp_axis ah, aw;
    void *mem;
    if ((rc = blk_tables(h, w, ho, wo, &ah, &aw, &mem))) {
        free(sums);
        return rc;
    }
    const size_t in_b = (size_t)h * w * blk, out_b = (size_t)ho * wo * blk;
#pragma omp parallel for schedule(static)
    for (ptrdiff_t p = 0; p < blocks; p++) {
        if (blk == 16)
            blk_backward(x + p * in_b, dy + p * out_b, dx + p * in_b, h, w, &ah, &aw, 16, &sums[2 * p]);
        else
            blk_backward(x + p * in_b, dy + p * out_b, dx + p * in_b, h, w, &ah, &aw, 8, &sums[2 * p]);
    }
    double gh = 0.0, gw = 0.0;
    for (ptrdiff_t p = 0; p < blocks; p++) gh += sums[2 * p], gw += sums[2 * p + 1];
    const double sh = dp_dynopool_size_grad(h, alpha_h), sw = dp_dynopool_size_grad(w, alpha_w);
    dalpha[0] = sh != 0.0 ? (float)(gh * sh) : 0.0f;
    dalpha[1] = sw != 0.0 ? (float)(gw * sw) : 0.0f;
    free(sums);
    free(mem);
    return DP_OK;
}
