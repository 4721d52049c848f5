/* bench_backend — chooses compute backends by measurement.  Times, on layer
 * shapes of VGG-16 and MobileNetV2 at 32x32 input, the median milliseconds of
 *
 *   conv  forward, backward-data, backward-weights with
 *           dnnl-nChw16c  oneDNN on the engine's blocked layout (nChw8c where
 *                         dnn_blk() says 8), through dnn.h exactly as the engine calls it
 *           dnnl-nchw     oneDNN on plain NCHW (blk = 1 for x and y)
 *           im2col-sgemm  im2col / col2im + OpenBLAS cblas_sgemm, one GEMM per image
 *                         (per group), images spread over the OpenMP threads (OpenBLAS's
 *                         OpenMP build runs single-threaded inside a parallel region)
 *   bn    batch norm forward + backward (training) with ReLU fused, oneDNN blocked,
 *         oneDNN NCHW, and the plain-C loops of src/engine/ops/batchnorm.c
 *
 * and checks that the methods agree: "maxrel" is max|a - r| / max|r| against the
 * reference r (conv: im2col-sgemm, or the plain-C loops of src/engine/ops/conv2d.c with
 * --check-ref; bn: the plain-C loops), and "MISMATCH" is printed above 1e-3.
 *
 * oneDNN's backward-data cannot be called alone through dnn.h (dnn_conv_backward
 * runs data then weights when dx is given): its bwd-data is, per repetition, the
 * time of the full backward minus that of a weights-only backward (dx = NULL).
 * Weight reorders (OIHW <-> oneDNN's format) are included, as in the engine.
 *
 *   bench_backend [--batch N] [--reps R] [--only conv|bn] [--check-ref] [--json FILE]
 *   threads: OMP_NUM_THREADS.  Exit status 1 when any check fails. */
#include <cblas.h>
#include <dnnl.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "engine/dnn.h"
#include "engine/net.h"

#define TOL 1e-3

/* ---- timing, data --------------------------------------------------------- */


static double median(const double *v, int n)
{
    double *t = malloc(sizeof(double) * (size_t)n);
    if (!t) return NAN;
    memcpy(t, v, sizeof(double) * (size_t)n);
    const double m = median_inplace(t, n);
    free(t);
    return m;
}

static float *falloc(size_t n)
{
    const size_t bytes = ((n ? n : 1) * sizeof(float) + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes);
    if (!p) {
        fprintf(stderr, "bench_backend: out of memory (%zu bytes)\n", bytes);
        exit(1);
    }
    memset(p, 0, bytes);
    return p;
}

static unsigned g_seed = 12345u;
static void fill(float *p, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++) {
        g_seed = g_seed * 1103515245u + 12345u;
        p[i] = scale * ((float)(g_seed >> 8) / 8388608.0f - 1.0f); /* [-scale, scale) */
    }
}

/* max|a - r| / max|r| over n floats (skipping i with skip[i] when given) */
static double maxrel(const float *a, const float *r, size_t n, const unsigned char *skip)
{
    double d = 0.0, m = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (skip && skip[i]) continue;
        const double e = fabs((double)a[i] - r[i]), v = fabs((double)r[i]);
        if (e > d || e != e) d = e;
        if (v > m) m = v;
    }
    return d / (m > 0.0 ? m : 1.0);
}

/* NCHW <-> nChw{blk}c, padded lanes zero */
static void to_blk(const float *s, float *d, int n, int c, size_t hw, int blk)
{
    const int cb = dp_cpad(c, blk) / blk;
#pragma omp parallel for collapse(2) schedule(static)
    for (int in = 0; in < n; in++)
        for (int b = 0; b < cb; b++)
            for (size_t i = 0; i < hw; i++)
                for (int l = 0; l < blk; l++) {
                    const int ch = b * blk + l;
                    d[(((size_t)in * cb + b) * hw + i) * blk + l] =
                        ch < c ? s[((size_t)in * c + ch) * hw + i] : 0.0f;
                }
}

static void from_blk(const float *s, float *d, int n, int c, size_t hw, int blk)
{
    const int cb = dp_cpad(c, blk) / blk;
#pragma omp parallel for collapse(2) schedule(static)
    for (int in = 0; in < n; in++)
        for (int ch = 0; ch < c; ch++)
            for (size_t i = 0; i < hw; i++)
                d[((size_t)in * c + ch) * hw + i] =
                    s[(((size_t)in * cb + ch / blk) * hw + i) * blk + ch % blk];
}

/* ---- results ---------------------------------------------------------------- */

typedef struct {
    char kase[32];
    const char *kind, *method, *pass;
    double ms, ratio, err; /* err < 0: this is the reference */
} result;

static result *g_res;
static int g_nres, g_capres, g_bad;

static void add_result(const char *kase, const char *kind, const char *method, const char *pass,
                       double ms, double err)
{
    if (g_nres == g_capres) {
        g_capres = g_capres ? 2 * g_capres : 64;
        g_res = realloc(g_res, sizeof(result) * (size_t)g_capres);
        if (!g_res) exit(1);
    }
    result *r = &g_res[g_nres++];
    snprintf(r->kase, sizeof r->kase, "%s", kase);
    r->kind = kind, r->method = method, r->pass = pass, r->ms = ms, r->err = err, r->ratio = 0;
}

/* Fills ratio to the fastest method of each pass among results [from, g_nres) and prints them. */
static void print_results(int from, const char *const *passes, int npass)
{
    for (int p = 0; p < npass; p++) {
        double best = INFINITY;
        for (int i = from; i < g_nres; i++)
            if (!strcmp(g_res[i].pass, passes[p]) && g_res[i].ms < best) best = g_res[i].ms;
        for (int i = from; i < g_nres; i++) {
            result *r = &g_res[i];
            if (strcmp(r->pass, passes[p])) continue;
            r->ratio = r->ms / best;
            char chk[48];
            if (r->err < 0) snprintf(chk, sizeof chk, "reference");
            else {
                const int bad = !(r->err < TOL);
                g_bad |= bad;
                snprintf(chk, sizeof chk, "maxrel %.1e%s", r->err, bad ? " MISMATCH" : "");
            }
            printf("%-4s %-16s %-12s %-14s %10.3f ms  x%-6.2f %s\n", r->kind, r->kase, r->pass,
                   r->method, r->ms, r->ratio, chk);
        }
    }
    fflush(stdout);
}

/* ---- convolution: the plain-C reference is src/engine/ops/conv2d.c's (engine.h) ---- */

/* ---- convolution: im2col + sgemm ---------------------------------------------- */

typedef struct {
    const char *name, *model;
    int cin, cout, h, w, k, s, p, g;
} conv_case;

typedef struct {
    int n, cin, cout, h, w, k, s, p, g, ho, wo;
    int nt;          /* threads: one col buffer and one dW accumulator each */
    float *col;      /* nt * (cin/g * k * k) * ho * wo */
    float *dwt;      /* nt * cout * cin/g * k * k */
} i2c;

static int is_1x1(const i2c *c) { return c->k == 1 && c->s == 1 && c->p == 0; }

/* col (c k k, ho wo) from x (c, h, w) */
static void im2col(const float *x, int c, int h, int w, int k, int s, int p, int ho, int wo,
                   float *col)
{
    for (int ci = 0; ci < c; ci++)
        for (int pp = 0; pp < k; pp++)
            for (int q = 0; q < k; q++) {
                float *cr = col + ((size_t)(ci * k + pp) * k + q) * ho * wo;
                const float *xc = x + (size_t)ci * h * w;
                for (int i = 0; i < ho; i++) {
                    const int ii = i * s - p + pp;
                    float *cri = cr + (size_t)i * wo;
                    if (ii < 0 || ii >= h) {
                        memset(cri, 0, sizeof(float) * (size_t)wo);
                        continue;
                    }
                    for (int j = 0; j < wo; j++) {
                        const int jj = j * s - p + q;
                        cri[j] = jj >= 0 && jj < w ? xc[(size_t)ii * w + jj] : 0.0f;
                    }
                }
            }
}

/* x (c, h, w) += col2im(col), x zeroed by the caller */
static void col2im(const float *col, int c, int h, int w, int k, int s, int p, int ho, int wo,
                   float *x)
{
    for (int ci = 0; ci < c; ci++)
        for (int pp = 0; pp < k; pp++)
            for (int q = 0; q < k; q++) {
                const float *cr = col + ((size_t)(ci * k + pp) * k + q) * ho * wo;
                float *xc = x + (size_t)ci * h * w;
                for (int i = 0; i < ho; i++) {
                    const int ii = i * s - p + pp;
                    if (ii < 0 || ii >= h) continue;
                    for (int j = 0; j < wo; j++) {
                        const int jj = j * s - p + q;
                        if (jj >= 0 && jj < w) xc[(size_t)ii * w + jj] += cr[(size_t)i * wo + j];
                    }
                }
            }
}

/* y = W x, one GEMM per (image, group); a 1x1 stride-1 unpadded conv uses x as col. */
static void i2c_forward(const i2c *c, const float *x, const float *w, float *y)
{
    const int cig = c->cin / c->g, cog = c->cout / c->g, K = cig * c->k * c->k;
    const int hw = c->h * c->w, howo = c->ho * c->wo;
#pragma omp parallel
    {
        float *col = c->col + (size_t)omp_get_thread_num() * K * howo;
#pragma omp for schedule(static)
        for (int in = 0; in < c->n; in++)
            for (int gi = 0; gi < c->g; gi++) {
                const float *xg = x + ((size_t)in * c->cin + (size_t)gi * cig) * hw;
                const float *src = xg;
                if (!is_1x1(c)) {
                    im2col(xg, cig, c->h, c->w, c->k, c->s, c->p, c->ho, c->wo, col);
                    src = col;
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cog, howo, K, 1.0f,
                            w + (size_t)gi * cog * K, K, src, howo, 0.0f,
                            y + ((size_t)in * c->cout + (size_t)gi * cog) * howo, howo);
            }
    }
}

/* dx = col2im(W^T dy) */
static void i2c_backward_data(const i2c *c, const float *w, const float *dy, float *dx)
{
    const int cig = c->cin / c->g, cog = c->cout / c->g, K = cig * c->k * c->k;
    const int hw = c->h * c->w, howo = c->ho * c->wo;
#pragma omp parallel
    {
        float *col = c->col + (size_t)omp_get_thread_num() * K * howo;
#pragma omp for schedule(static)
        for (int in = 0; in < c->n; in++)
            for (int gi = 0; gi < c->g; gi++) {
                float *dxg = dx + ((size_t)in * c->cin + (size_t)gi * cig) * hw;
                const float *dyg = dy + ((size_t)in * c->cout + (size_t)gi * cog) * howo;
                const float *wg = w + (size_t)gi * cog * K;
                if (is_1x1(c)) {
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, howo, cog, 1.0f, wg,
                                K, dyg, howo, 0.0f, dxg, howo);
                    continue;
                }
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, howo, cog, 1.0f, wg, K,
                            dyg, howo, 0.0f, col, howo);
                memset(dxg, 0, sizeof(float) * (size_t)cig * hw);
                col2im(col, cig, c->h, c->w, c->k, c->s, c->p, c->ho, c->wo, dxg);
            }
    }
}

/* dW = sum over images of dy col^T: per-thread accumulators, then summed */
static void i2c_backward_weights(const i2c *c, const float *x, const float *dy, float *dw)
{
    const int cig = c->cin / c->g, cog = c->cout / c->g, K = cig * c->k * c->k;
    const int hw = c->h * c->w, howo = c->ho * c->wo;
    const size_t nw = (size_t)c->cout * K;
#pragma omp parallel
    {
        const int t = omp_get_thread_num();
        float *col = c->col + (size_t)t * K * howo, *acc = c->dwt + (size_t)t * nw;
        memset(acc, 0, sizeof(float) * nw);
#pragma omp for schedule(static)
        for (int in = 0; in < c->n; in++)
            for (int gi = 0; gi < c->g; gi++) {
                const float *xg = x + ((size_t)in * c->cin + (size_t)gi * cig) * hw;
                const float *src = xg;
                if (!is_1x1(c)) {
                    im2col(xg, cig, c->h, c->w, c->k, c->s, c->p, c->ho, c->wo, col);
                    src = col;
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, cog, K, howo, 1.0f,
                            dy + ((size_t)in * c->cout + (size_t)gi * cog) * howo, howo, src,
                            howo, 1.0f, acc + (size_t)gi * cog * K, K);
            }
        /* implicit barrier of the omp for */
#pragma omp for schedule(static)
        for (size_t i = 0; i < nw; i++) {
            float sum = 0.0f;
            for (int u = 0; u < c->nt; u++) sum += c->dwt[(size_t)u * nw + i];
            dw[i] = sum;
        }
    }
}

/* ---- convolution: the benchmark ---------------------------------------------- */

enum { CP_FWD, CP_BWD_DATA, CP_BWD_WEIGHTS, CP_TOTAL, CP_N };
static const char *const conv_pass[CP_N] = {"fwd", "bwd-data", "bwd-weights", "fwd+bwd"};

static int bench_conv(const conv_case *cc, int n, int reps, int blk, int check_ref,
                      const char *blk_name)
{
    const int ho = (cc->h + 2 * cc->p - cc->k) / cc->s + 1, wo = (cc->w + 2 * cc->p - cc->k) / cc->s + 1;
    const size_t hw = (size_t)cc->h * cc->w, howo = (size_t)ho * wo;
    const size_t nx = (size_t)n * cc->cin * hw, ny = (size_t)n * cc->cout * howo;
    const size_t nxb = (size_t)n * dp_cpad(cc->cin, blk) * hw;
    const size_t nyb = (size_t)n * dp_cpad(cc->cout, blk) * howo;
    const int K = cc->cin / cc->g * cc->k * cc->k;
    const size_t nw = (size_t)cc->cout * K;
    char kase[32];
    snprintf(kase, sizeof kase, "%s", cc->name);
    printf("# conv %s (%s): n %d, %d -> %d, %dx%d -> %dx%d, k %d, s %d, p %d, groups %d, "
           "%.2f GMAC fwd\n",
           cc->name, cc->model, n, cc->cin, cc->cout, cc->h, cc->w, ho, wo, cc->k, cc->s, cc->p,
           cc->g, (double)n * cc->cout * howo * K * 1e-9);

    float *x = falloc(nx), *dy = falloc(ny), *w = falloc(nw);
    fill(x, nx, 1.0f);
    fill(dy, ny, 1.0f);
    fill(w, nw, 1.0f / sqrtf((float)K));
    float *xb = falloc(nxb), *dyb = falloc(nyb), *yb = falloc(nyb), *dxb = falloc(nxb);
    to_blk(x, xb, n, cc->cin, hw, blk);
    to_blk(dy, dyb, n, cc->cout, howo, blk);
    /* outputs in NCHW per method: 0 blocked (converted back), 1 nchw, 2 im2col, 3 ref */
    float *y[4], *dx[4], *dw[4];
    for (int m = 0; m < 4; m++) {
        y[m] = falloc(m == 3 && !check_ref ? 0 : ny);
        dx[m] = falloc(m == 3 && !check_ref ? 0 : nx);
        dw[m] = falloc(nw);
    }
    double *t = malloc(sizeof(double) * (size_t)reps * CP_N);
    if (!t) exit(1);
    dp_net net;
    memset(&net, 0, sizeof net);
    int rc = DP_OK;
    double med[3][CP_N];

    /* (a), (b): oneDNN through dnn.h */
    for (int m = 0; m < 2 && !rc; m++) {
        void *be = NULL;
        const int b = m == 0 ? blk : 1;
        dp_act ax = {n, cc->cin, cc->h, cc->w, b, m == 0 ? xb : x, 0};
        dp_act ay = {n, cc->cout, ho, wo, b, m == 0 ? yb : y[1], 0};
        dp_act ady = {n, cc->cout, ho, wo, b, m == 0 ? dyb : dy, 0};
        float *dxm = m == 0 ? dxb : dx[1];
        for (int r = -1; r < reps && !rc; r++) { /* r = -1: warm-up (builds the primitives) */
            const double t0 = now_ms();
            rc = dnn_conv_forward(&net, &be, &ax, w, NULL, cc->k, cc->s, cc->p, cc->g, 0, &ay);
            const double t1 = now_ms();
            if (!rc) rc = dnn_conv_backward(&net, &be, &ax, w, &ady, dxm, dw[m], NULL);
            const double t2 = now_ms();
            if (!rc) rc = dnn_conv_backward(&net, &be, &ax, w, &ady, NULL, dw[m], NULL);
            const double t3 = now_ms();
            if (r < 0) continue;
            t[CP_FWD * reps + r] = t1 - t0;
            t[CP_BWD_WEIGHTS * reps + r] = t3 - t2;
            t[CP_BWD_DATA * reps + r] = (t2 - t1) - (t3 - t2);
            t[CP_TOTAL * reps + r] = t2 - t0;
        }
        dnn_free(&be);
        if (rc) {
            fprintf(stderr, "bench_backend: oneDNN (%s) failed: %s\n", m ? "nchw" : blk_name,
                    dp_strerror(rc));
            break;
        }
        for (int p = 0; p < CP_N; p++) med[m][p] = median(t + (size_t)p * reps, reps);
    }
    if (!rc) {
        from_blk(yb, y[0], n, cc->cout, howo, blk);
        from_blk(dxb, dx[0], n, cc->cin, hw, blk);
    }

    /* (c): im2col + sgemm */
    i2c ic = {n, cc->cin, cc->cout, cc->h, cc->w, cc->k, cc->s, cc->p, cc->g, ho, wo,
              omp_get_max_threads(), NULL, NULL};
    ic.col = falloc((size_t)ic.nt * K * howo);
    ic.dwt = falloc((size_t)ic.nt * nw);
    for (int r = -1; r < reps && !rc; r++) {
        const double t0 = now_ms();
        i2c_forward(&ic, x, w, y[2]);
        const double t1 = now_ms();
        i2c_backward_data(&ic, w, dy, dx[2]);
        const double t2 = now_ms();
        i2c_backward_weights(&ic, x, dy, dw[2]);
        const double t3 = now_ms();
        if (r < 0) continue;
        t[CP_FWD * reps + r] = t1 - t0;
        t[CP_BWD_DATA * reps + r] = t2 - t1;
        t[CP_BWD_WEIGHTS * reps + r] = t3 - t2;
        t[CP_TOTAL * reps + r] = t3 - t0;
    }
    for (int p = 0; p < CP_N && !rc; p++) med[2][p] = median(t + (size_t)p * reps, reps);

    if (!rc) {
        const int ref = check_ref ? 3 : 2;
        if (check_ref) {
            dp_conv2d_ref_forward(x, w, NULL, y[3], n, cc->cin, cc->h, cc->w, cc->cout, ho, wo, cc->k,
                             cc->s, cc->p, cc->g);
            dp_conv2d_ref_backward(x, w, dy, dx[3], dw[3], NULL, n, cc->cin, cc->h, cc->w, cc->cout, ho,
                              wo, cc->k, cc->s, cc->p, cc->g);
        }
        static const char *const names[3] = {NULL, "dnnl-nchw", "im2col-sgemm"};
        const int from = g_nres;
        for (int m = 0; m < 3; m++) {
            double e[CP_N];
            e[CP_FWD] = maxrel(y[m], y[ref], ny, NULL);
            e[CP_BWD_DATA] = maxrel(dx[m], dx[ref], nx, NULL);
            e[CP_BWD_WEIGHTS] = maxrel(dw[m], dw[ref], nw, NULL);
            e[CP_TOTAL] = fmax(e[CP_FWD], fmax(e[CP_BWD_DATA], e[CP_BWD_WEIGHTS]));
            for (int p = 0; p < CP_N; p++)
                add_result(kase, "conv", m ? names[m] : blk_name, conv_pass[p], med[m][p],
                           m == ref ? -1.0 : e[p]);
        }
        print_results(from, conv_pass, CP_N);
    }

    free(ic.col), free(ic.dwt), free(t);
    for (int m = 0; m < 4; m++) free(y[m]), free(dx[m]), free(dw[m]);
    free(x), free(dy), free(w), free(xb), free(dyb), free(yb), free(dxb);
    free(net.wscr); /* what dnn.c put in the zeroed net */
    free(net.cscr[0]);
    free(net.cscr[1]);
    return rc;
}

/* ---- batch norm + ReLU: the plain-C loops are src/engine/ops/batchnorm.c's (engine.h) ---- */

/* ---- batch norm: the benchmark ------------------------------------------------- */

typedef struct { const char *name; int c, h, w; } bn_case;

enum { BP_FWD, BP_BWD, BP_TOTAL, BP_N };
static const char *const bn_pass[BP_N] = {"fwd", "bwd", "fwd+bwd"};

static int bench_bn(const bn_case *bc, int n, int reps, int blk, const char *blk_name)
{
    const int c = bc->c;
    const size_t hw = (size_t)bc->h * bc->w, nx = (size_t)n * c * hw;
    const size_t nxb = (size_t)n * dp_cpad(c, blk) * hw;
    const float eps = 1e-5f;
    char kase[32];
    snprintf(kase, sizeof kase, "%s", bc->name);
    printf("# bn+relu %s: n %d, c %d, %dx%d, training forward + backward, eps %g\n", bc->name, n,
           c, bc->h, bc->w, (double)eps);

    float *x = falloc(nx), *dy = falloc(nx), *gam = falloc((size_t)c), *bet = falloc((size_t)c);
    fill(x, nx, 1.0f);
    fill(dy, nx, 1.0f);
    for (int ch = 0; ch < c; ch++) gam[ch] = 1.0f + 0.5f * (float)(ch % 7) / 7.0f;
    for (int ch = 0; ch < c; ch++) bet[ch] = 0.1f * (float)(ch % 5 - 2);
    /* give the channels different means and spreads */
#pragma omp parallel for collapse(2) schedule(static)
    for (int in = 0; in < n; in++)
        for (int ch = 0; ch < c; ch++) {
            float *xc = x + ((size_t)in * c + ch) * hw;
            for (size_t i = 0; i < hw; i++) xc[i] = xc[i] * (1.0f + (float)(ch % 3)) + 0.1f * (float)(ch % 11);
        }
    float *xb = falloc(nxb), *dyb = falloc(nxb), *yb = falloc(nxb), *dxb = falloc(nxb);
    to_blk(x, xb, n, c, hw, blk);
    to_blk(dy, dyb, n, c, hw, blk);
    /* outputs per method: 0 blocked, 1 nchw, 2 plain C (the reference) */
    float *y[3], *dx[3], *mean[3], *var[3], *dg[3], *db[3];
    for (int m = 0; m < 3; m++) {
        y[m] = falloc(nx), dx[m] = falloc(nx);
        mean[m] = falloc((size_t)c), var[m] = falloc((size_t)c);
        dg[m] = falloc((size_t)c), db[m] = falloc((size_t)c);
    }
    double *t = malloc(sizeof(double) * (size_t)reps * BP_N);
    if (!t) exit(1);
    double med[3][BP_N];
    int rc = DP_OK;

    for (int m = 0; m < 3 && !rc; m++) {
        void *be = NULL;
        const int b = m == 0 ? blk : 1;
        dp_act ax = {n, c, bc->h, bc->w, b, m == 0 ? xb : x, 0};
        dp_act ay = {n, c, bc->h, bc->w, b, m == 0 ? yb : y[m], 0};
        dp_act ady = {n, c, bc->h, bc->w, b, m == 0 ? dyb : dy, 0};
        float *dxm = m == 0 ? dxb : dx[m];
        for (int r = -1; r < reps && !rc; r++) {
            const double t0 = now_ms();
            if (m < 2)
                rc = dnn_bn_forward(&be, &ax, gam, bet, mean[m], var[m], eps, 1, 1, &ay);
            else
                dp_bn_ref_forward(x, y[2], n, c, hw, gam, bet, mean[2], var[2], eps, 1, 1);
            const double t1 = now_ms();
            if (m < 2 && !rc)
                rc = dnn_bn_backward(&be, &ax, gam, bet, mean[m], var[m], &ady, dxm, dg[m], db[m]);
            else if (m == 2)
                dp_bn_ref_backward(x, y[2], dy, dx[2], n, c, hw, gam, mean[2], var[2], eps, 1, dg[2],
                                db[2]);
            const double t2 = now_ms();
            if (r < 0) continue;
            t[BP_FWD * reps + r] = t1 - t0;
            t[BP_BWD * reps + r] = t2 - t1;
            t[BP_TOTAL * reps + r] = t2 - t0;
        }
        dnn_free(&be);
        if (rc) {
            fprintf(stderr, "bench_backend: oneDNN bn (%s) failed: %s\n", m ? "nchw" : blk_name,
                    dp_strerror(rc));
            break;
        }
        for (int p = 0; p < BP_N; p++) med[m][p] = median(t + (size_t)p * reps, reps);
    }

    if (!rc) {
        from_blk(yb, y[0], n, c, hw, blk);
        from_blk(dxb, dx[0], n, c, hw, blk);
        /* Elements whose pre-activation lies within 1e-5 of zero may fall on either
         * side of the ReLU with a different rounding: left out of the dx check. */
        unsigned char *skip = malloc(nx);
        if (!skip) exit(1);
        size_t nskip = 0;
        for (int in = 0; in < n; in++)
            for (int ch = 0; ch < c; ch++) {
                const float inv = 1.0f / sqrtf(var[2][ch] + eps);
                for (size_t i = 0; i < hw; i++) {
                    const size_t o = ((size_t)in * c + ch) * hw + i;
                    const float v = gam[ch] * ((x[o] - mean[2][ch]) * inv) + bet[ch];
                    skip[o] = fabsf(v) < 1e-5f;
                    nskip += skip[o];
                }
            }
        static const char *const names[3] = {NULL, "dnnl-nchw", "plain-c"};
        const int from = g_nres;
        for (int m = 0; m < 3; m++) {
            double e[BP_N];
            e[BP_FWD] = fmax(maxrel(y[m], y[2], nx, NULL),
                             fmax(maxrel(mean[m], mean[2], (size_t)c, NULL),
                                  maxrel(var[m], var[2], (size_t)c, NULL)));
            e[BP_BWD] = fmax(maxrel(dx[m], dx[2], nx, skip),
                             fmax(maxrel(dg[m], dg[2], (size_t)c, NULL),
                                  maxrel(db[m], db[2], (size_t)c, NULL)));
            e[BP_TOTAL] = fmax(e[BP_FWD], e[BP_BWD]);
            for (int p = 0; p < BP_N; p++)
                add_result(kase, "bn", m ? names[m] : blk_name, bn_pass[p], med[m][p],
                           m == 2 ? -1.0 : e[p]);
        }
        printf("# (dx check leaves out %zu of %zu elements at the ReLU boundary)\n", nskip, nx);
        print_results(from, bn_pass, BP_N);
        free(skip);
    }

    free(t);
    for (int m = 0; m < 3; m++)
        free(y[m]), free(dx[m]), free(mean[m]), free(var[m]), free(dg[m]), free(db[m]);
    free(x), free(dy), free(gam), free(bet), free(xb), free(dyb), free(yb), free(dxb);
    return rc;
}

/* ---- main ------------------------------------------------------------------------ */

static void write_json(const char *path, int n, int reps, int blk, int check_ref)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "w") : stdout;
    if (!f) {
        fprintf(stderr, "bench_backend: cannot write %s\n", path);
        g_bad = 1;
        return;
    }
    const dnnl_version_t *v = dnnl_version();
    fprintf(f, "{\n  \"batch\": %d, \"reps\": %d, \"threads\": %d, \"blk\": %d,\n", n, reps,
            omp_get_max_threads(), blk);
    fprintf(f, "  \"onednn\": \"%d.%d.%d\", \"openblas\": \"%s\", \"check_reference\": \"%s\",\n",
            v->major, v->minor, v->patch, openblas_get_config(),
            check_ref ? "plain-c" : "conv: im2col-sgemm, bn: plain-c");
    fprintf(f, "  \"tolerance\": %g,\n  \"results\": [\n", TOL);
    for (int i = 0; i < g_nres; i++) {
        const result *r = &g_res[i];
        fprintf(f,
                "    {\"kind\": \"%s\", \"case\": \"%s\", \"pass\": \"%s\", \"method\": \"%s\", "
                "\"ms\": %.4f, \"ratio\": %.4f, \"maxrel\": ",
                r->kind, r->kase, r->pass, r->method, r->ms, r->ratio);
        if (r->err < 0) fprintf(f, "null, \"reference\": true}");
        else fprintf(f, "%.3e, \"reference\": false}", r->err);
        fprintf(f, "%s\n", i + 1 < g_nres ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    if (f != stdout) fclose(f);
}

static void usage(const char *a0)
{
    fprintf(stderr,
            "usage: %s [--batch N (128)] [--reps R (5)] [--only conv|bn] [--check-ref] "
            "[--json FILE|-]\n"
            "  --check-ref  check conv against the plain-C loops (slow at batch 128)\n"
            "  threads: OMP_NUM_THREADS\n",
            a0);
}

int main(int argc, char **argv)
{
    int n = 128, reps = 5, check_ref = 0, do_conv = 1, do_bn = 1;
    const char *json = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--batch") && v) n = atoi(v), i++;
        else if (!strcmp(a, "--reps") && v) reps = atoi(v), i++;
        else if (!strcmp(a, "--json") && v) json = v, i++;
        else if (!strcmp(a, "--only") && v && !strcmp(v, "conv")) do_bn = 0, i++;
        else if (!strcmp(a, "--only") && v && !strcmp(v, "bn")) do_conv = 0, i++;
        else if (!strcmp(a, "--check-ref")) check_ref = 1;
        else {
            usage(argv[0]);
            return 2;
        }
    }
    if (n < 2 || n > 4096 || reps < 1 || reps > 1000) {
        usage(argv[0]);
        return 2;
    }
    const int blk = dnn_blk();
    if (!blk) {
        fprintf(stderr, "bench_backend: oneDNN cannot start\n");
        return 1;
    }
    const char *blk_name = blk == 16 ? "dnnl-nChw16c" : "dnnl-nChw8c";
    const dnnl_version_t *v = dnnl_version();
    printf("# bench_backend: batch %d, reps %d (median; one warm-up call first), "
           "omp_get_max_threads() %d\n", n, reps, omp_get_max_threads());
    printf("# oneDNN %d.%d.%d, dnn_blk() = %d -> blocked method %s; OpenBLAS %s\n", v->major,
           v->minor, v->patch, blk, blk_name, openblas_get_config());
    printf("# im2col-sgemm: one GEMM per image (and group), images over the OpenMP threads\n");
    printf("# oneDNN bwd-data = full backward - weights-only backward, per repetition\n");
    printf("# check: maxrel = max|a - ref| / max|ref|, ref = %s; tolerance %g\n",
           check_ref ? "plain-C loops" : "conv im2col-sgemm, bn plain-C loops", TOL);

    static const conv_case convs[] = {
        {"vgg-64@32", "VGG-16", 64, 64, 32, 32, 3, 1, 1, 1},
        {"vgg-128@16", "VGG-16", 128, 128, 16, 16, 3, 1, 1, 1},
        {"vgg-256@8", "VGG-16", 256, 256, 8, 8, 3, 1, 1, 1},
        {"vgg-512@4", "VGG-16", 512, 512, 4, 4, 3, 1, 1, 1},
        {"mbv2-expand@16", "MobileNetV2 1x1 expand", 24, 144, 16, 16, 1, 1, 0, 1},
        {"mbv2-dw@16", "MobileNetV2 depthwise", 144, 144, 16, 16, 3, 1, 1, 144},
    };
    static const bn_case bns[] = {
        {"bn-64@32", 64, 32, 32},
        {"bn-256@8", 256, 8, 8},
    };
    int rc = 0;
    if (do_conv)
        for (size_t i = 0; i < sizeof convs / sizeof convs[0] && !rc; i++)
            rc = bench_conv(&convs[i], n, reps, blk, check_ref, blk_name);
    if (do_bn)
        for (size_t i = 0; i < sizeof bns / sizeof bns[0] && !rc; i++)
            rc = bench_bn(&bns[i], n, reps, blk, blk_name);
    if (json) write_json(json, n, reps, blk, check_ref);
    free(g_res);
    if (rc) return 1;
    if (g_bad) {
        printf("# some checks FAILED (maxrel >= %g)\n", TOL);
        return 1;
    }
    printf("# all checks passed (maxrel < %g)\n", TOL);
    return 0;
}
