/* test_bf16.c — mixed precision (docs/engine.md, "Mixed precision").
 *
 * The bf16 path of the convolution and of the classifier (src/engine/dnn.c) in
 * all three passes (forward, backward data, backward weights) against exact
 * double sums, and a whole small network's gradient against its float32 one.
 *
 * The bound, per output element.  An element is a dot product of K terms
 * sum_k a_k b_k (+ a bias in the forward), S = sum_k |a_k b_k| (+ |bias|) its
 * magnitude scale.  bf16 keeps 8 significant bits, so rounding an operand to
 * nearest gives a~ = a (1 + d), |d| <= u = 2^-8.  The product of two bf16
 * numbers has at most 16 significant bits and is exact in float32; the K
 * products are then summed in float32 in some order, which adds at most
 * gamma_K = K v / (1 - K v), v = 2^-24, times the sum of their magnitudes.  So
 *
 *   (B)  |bf16 result - exact| <= ((1 + u)^2 - 1) S + gamma_K (1 + u)^2 S
 *
 * with the exact sum over the float32 operands (the bias, float32 in the
 * primitive, is not rounded; the bias gradient sums bf16 copies of dy: u S +
 * gamma_K (1 + u) S).  This is a worst case; the typical error is about
 * sqrt(K) 2^-9 of the average |a_k b_k|, far below it.  Three more checks make
 * the test able to fail in every way that matters:
 *
 *   (R)  |bf16 result - exact over the operands rounded to nearest even| <= gamma_K S~:
 *        the conversions round to nearest even (truncation would miss by ~u S)
 *        and nothing else is rounded to bf16 (an output would miss by ~u |y|);
 *   (U)  max over elements of |bf16 - exact| / S > 4 gamma_K: the bf16 path did
 *        run in bf16 (float32 arithmetic cannot err by more than gamma_K S);
 *   (F)  the float32 path within gamma_K S, the harness's own check.
 *
 * Where oneDNN has no bf16 (DP_BF16_NONE: ONEDNN_MAX_CPU_ISA=AVX2 and below)
 * the bf16 calls must fail with DP_ERR_BACKEND, dp_model_set_precision must
 * refuse, and AUTO must resolve to float32; the numbers are skipped.  Where it
 * is emulated (AVX512_CORE) the same bounds hold.
 *
 * The whole network (VGG-16 with DynOPool at width 1/16, 16x16, batch 4): one
 * training step in bf16 against the same step in float32, on the same weights
 * and images.  No element-wise bound carries through 14 layers, batch norm over
 * a few values per channel and ReLU kinks: at a random initialisation such a
 * network amplifies any perturbation of its weights (moving every weight by a
 * random 2^-8 relative moves its gradients by 15-40%, measured with
 * DP_BF16_VERBOSE=1).  So the gradients are compared with the network's own
 * sensitivity, measured in the same run: a third copy in float32 with every
 * weight moved by a relative amount uniform in (-u, u).  bf16 rounds three
 * operands of every layer (x, w, dy) by at most u each, one of which is such a
 * perturbation of the weights; to first order its effect is at most about three
 * of them.  Checks: the gradients of all weights together move at most 3x the
 * perturbation's (normwise), each tensor's at most 6x, the alphas' task
 * gradients together at most 6x; the loss, a forward chain of L = 14 layers of
 * relative error <= 2u each (condition <= 2), within 2 L 2u = 0.219; and (U):
 * every weight gradient moves by more than 1e-4, which float32 reordering
 * alone never does (the gradient of a convolution's bias that a batch norm
 * follows is 0 exactly, rounding noise in both paths, and is left out).  The same
 * network frozen for inference (dp_infer_freeze, batch norm folded): its bf16
 * logits within the loss's forward-chain tolerance of the float32 ones, and
 * more than 1e-5 away (float32 reordering alone moves them ~1e-7). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dynopool.h"
#include "testutil.h"
#include "engine/dnn.h"
#include "engine/model.h"


static const double U = 0x1p-8; /* bf16's unit roundoff */

static double gamma_k(int k) { return k * 0x1p-24 / (1.0 - k * 0x1p-24); }

/* float -> bf16 -> float, round to nearest even (finite inputs) */
static float bf16r(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    b += 0x7fffu + ((b >> 16) & 1u);
    b &= 0xffff0000u;
    memcpy(&f, &b, 4);
    return f;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float urand(void) /* in (-1, 1) */
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) * 0x1p-52 - 1.0);
}
static float *rnd(size_t n)
{
    float *p = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) p[i] = urand();
    return p;
}
static float *rounded(const float *p, size_t n)
{
    float *q = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) q[i] = bf16r(p[i]);
    return q;
}

/* ---- one result against its references -------------------------------------- */
typedef struct {
    const char *what;
    int k;                   /* terms per element */
    double rel_u;            /* rounding of operands in (B): (1+u)^2-1, or u for the bias gradient */
} pass_spec;

/* got: (nel) results; ex, sc: exact sums and scales over float32 operands;
 * exr, scr: over the bf16-rounded operands.  bf16: which bounds apply. */
static void judge(const char *tag, const pass_spec *ps, const float *got, const double *ex, const double *sc,
                  const double *exr, const double *scr, size_t nel, int bf16)
{
    const double g = gamma_k(ps->k), b16 = ps->rel_u + g * (1 + U) * (1 + U);
    double worst = 0, worst_r = 0, used = 0;
    int bad = 0;
    for (size_t i = 0; i < nel; i++) {
        const double e = fabs(got[i] - ex[i]), s = sc[i] > 0 ? sc[i] : 1e-300;
        worst = fmax(worst, e / s);
        used = fmax(used, e / s);
        if (bf16) {
            const double er = fabs(got[i] - exr[i]);
            worst_r = fmax(worst_r, er / (scr[i] > 0 ? scr[i] : 1e-300));
            if ((e > b16 * sc[i] || er > g * scr[i]) && bad++ < 3)
                fprintf(stderr, "  %s %s[%zu]: %.9g, exact %.9g (rounded operands %.9g), scale %.3g\n", tag,
                        ps->what, i, got[i], ex[i], exr[i], sc[i]);
        } else if (e > g * sc[i] && bad++ < 3) {
            fprintf(stderr, "  %s %s[%zu]: %.9g, exact %.9g, scale %.3g\n", tag, ps->what, i, got[i], ex[i], sc[i]);
        }
    }
    if (bf16) {
        CHECK(bad == 0, "%s %s: %d elements outside (B) %.3g S or (R) %.3g S~ (worst %.3g, %.3g)", tag, ps->what,
              bad, b16, g, worst, worst_r);
        CHECK(used > 4 * g, "%s %s: largest error %.3g S is within float32's %.3g S: bf16 did not run (U)", tag,
              ps->what, used, g);
        printf("  %-22s %-3s K %4d: error/S %.2e (bound (B) %.2e); against rounded operands %.2e (gamma_K %.2e)\n",
               tag, ps->what, ps->k, worst, b16, worst_r, g);
    } else {
        CHECK(bad == 0, "%s %s: %d elements outside gamma_K S = %.3g S (worst %.3g)", tag, ps->what, bad, g, worst);
    }
}

/* ---- convolution: NCHW double references and the blocked layout -------------- */
typedef struct { int n, ci, co, h, w, k, s, p, g, bias, xnchw; const char *name; } conv_case; /* xnchw: x as the input image (NCHW) */

static int out_size(int h, int k, int s, int p) { return (h + 2 * p - k) / s + 1; }

/* y = conv(x, w) + b; dx = conv^T(dy, w); dw = corr(x, dy); db = sum dy, with
 * each element's scale (sum of |terms|).  All NCHW, double. */
static void conv_exact(const conv_case *c, const float *x, const float *w, const float *b, const float *dy,
                       double *y, double *sy, double *dx, double *sdx, double *dw, double *sdw, double *db,
                       double *sdb)
{
    const int ho = out_size(c->h, c->k, c->s, c->p), wo = out_size(c->w, c->k, c->s, c->p);
    const int cig = c->ci / c->g, cog = c->co / c->g, K = c->k;
    const size_t nx = (size_t)c->n * c->ci * c->h * c->w, nw = (size_t)c->co * cig * K * K;
    memset(dx, 0, sizeof(double) * nx), memset(sdx, 0, sizeof(double) * nx);
    memset(dw, 0, sizeof(double) * nw), memset(sdw, 0, sizeof(double) * nw);
    for (int o = 0; o < c->co; o++) db[o] = sdb[o] = 0;
    for (int n = 0; n < c->n; n++)
        for (int o = 0; o < c->co; o++)
            for (int i = 0; i < ho; i++)
                for (int j = 0; j < wo; j++) {
                    const size_t yi = (((size_t)n * c->co + o) * ho + i) * wo + j;
                    double acc = b ? b[o] : 0, sa = b ? fabs(b[o]) : 0;
                    const double d = dy[yi];
                    db[o] += d, sdb[o] += fabs(d);
                    for (int cc = 0; cc < cig; cc++) {
                        const int ch = o / cog * cig + cc;
                        for (int pp = 0; pp < K; pp++)
                            for (int q = 0; q < K; q++) {
                                const int ii = i * c->s - c->p + pp, jj = j * c->s - c->p + q;
                                if (ii < 0 || ii >= c->h || jj < 0 || jj >= c->w) continue;
                                const size_t xi = (((size_t)n * c->ci + ch) * c->h + ii) * c->w + jj;
                                const size_t wi = (((size_t)o * cig + cc) * K + pp) * K + q;
                                acc += (double)w[wi] * x[xi], sa += fabs((double)w[wi] * x[xi]);
                                dx[xi] += d * w[wi], sdx[xi] += fabs(d * w[wi]);
                                dw[wi] += d * x[xi], sdw[wi] += fabs(d * x[xi]);
                            }
                    }
                    y[yi] = acc, sy[yi] = sa;
                }
}

static size_t blk_index(int blk, int c, int h, int w, int in, int ic, int ih, int iw)
{
    const int cb = (c + blk - 1) / blk;
    return ((((size_t)in * cb + ic / blk) * h + ih) * w + iw) * blk + ic % blk;
}
static void act_make(dp_act *a, int n, int c, int h, int w, int blk, const float *nchw)
{
    memset(a, 0, sizeof *a);
    dp_set_shape(a, n, c, h, w, blk);
    dp_act_reserve(a);
    if (nchw)
        for (int in = 0; in < n; in++)
            for (int ic = 0; ic < c; ic++)
                for (int i = 0; i < h; i++)
                    for (int j = 0; j < w; j++)
                        a->data[blk_index(blk, c, h, w, in, ic, i, j)] = nchw[(((size_t)in * c + ic) * h + i) * w + j];
}
static void act_read(const dp_act *a, const float *buf, float *nchw)
{
    for (int in = 0; in < a->n; in++)
        for (int ic = 0; ic < a->c; ic++)
            for (int i = 0; i < a->h; i++)
                for (int j = 0; j < a->w; j++)
                    nchw[(((size_t)in * a->c + ic) * a->h + i) * a->w + j] =
                        buf[blk_index(a->blk, a->c, a->h, a->w, in, ic, i, j)];
}

/* The conv's three passes through dnn.c on net (bf16 or not), results NCHW. */
static int conv_run(dp_net *net, const conv_case *c, const float *x, const float *w, const float *b,
                    const float *dy, float *y, float *dx, float *dw, float *db)
{
    const int blk = net->blk, xb = c->xnchw ? 1 : blk, ho = out_size(c->h, c->k, c->s, c->p), wo = out_size(c->w, c->k, c->s, c->p);
    dp_act ax, ay, ady, adx;
    act_make(&ax, c->n, c->ci, c->h, c->w, xb, x);
    act_make(&ay, c->n, c->co, ho, wo, blk, NULL);
    act_make(&ady, c->n, c->co, ho, wo, blk, dy);
    act_make(&adx, c->n, c->ci, c->h, c->w, xb, NULL);
    void *be = NULL;
    int rc = dnn_conv_forward(net, &be, &ax, w, b, c->k, c->s, c->p, c->g, 0, &ay);
    if (!rc) rc = dnn_conv_backward(net, &be, &ax, w, &ady, adx.data, dw, b ? db : NULL);
    if (!rc) act_read(&ay, ay.data, y), act_read(&adx, adx.data, dx);
    dnn_free(&be);
    dp_act_free(&ax), dp_act_free(&ay), dp_act_free(&ady), dp_act_free(&adx);
    return rc;
}

static void check_conv(const conv_case *c, int sup)
{
    const int ho = out_size(c->h, c->k, c->s, c->p), wo = out_size(c->w, c->k, c->s, c->p);
    const size_t nx = (size_t)c->n * c->ci * c->h * c->w, ny = (size_t)c->n * c->co * ho * wo,
                 nw = (size_t)c->co * (c->ci / c->g) * c->k * c->k;
    float *x = rnd(nx), *w = rnd(nw), *b = c->bias ? rnd(c->co) : NULL, *dy = rnd(ny);
    float *xr = rounded(x, nx), *wr = rounded(w, nw), *dyr = rounded(dy, ny);
    double *e[8], *er[8];
    const size_t sz[4] = {ny, nx, nw, (size_t)c->co};
    for (int i = 0; i < 8; i++) e[i] = malloc(sizeof(double) * sz[i / 2]), er[i] = malloc(sizeof(double) * sz[i / 2]);
    conv_exact(c, x, w, b, dy, e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7]);
    conv_exact(c, xr, wr, b, dyr, er[0], er[1], er[2], er[3], er[4], er[5], er[6], er[7]);
    float *y = malloc(sizeof(float) * ny), *dx = malloc(sizeof(float) * nx), *dw = malloc(sizeof(float) * nw),
          *db = malloc(sizeof(float) * c->co);
    const pass_spec ps[4] = {{"y", c->ci / c->g * c->k * c->k + c->bias, 2 * U + U * U},
                             {"dx", c->co / c->g * c->k * c->k, 2 * U + U * U},
                             {"dw", c->n * ho * wo, 2 * U + U * U},
                             {"db", c->n * ho * wo, U}};
    const float *got[4] = {y, dx, dw, db};
    /* Depthwise convolutions run in f32 under net.bf16 (docs/engine.md, "Mixed
     * precision"): float32's bounds, and no bf16 needed from oneDNN. */
    const int depthwise = c->g > 1 && c->g == c->ci && c->g == c->co;
    for (int bf = 0; bf < 2; bf++) {
        dp_net net;
        dp_net_init(&net, DP_BACKEND_DNNL);
        net.bf16 = bf;
        const int rc = conv_run(&net, c, x, w, b, dy, y, dx, dw, db);
        if (bf && depthwise) {
            CHECK(rc == DP_OK, "%s (bf16 net, f32 depthwise): %s", c->name, dp_strerror(rc));
            for (int p = 0; rc == DP_OK && p < (c->bias ? 4 : 3); p++)
                judge(c->name, &ps[p], got[p], e[2 * p], e[2 * p + 1], er[2 * p], er[2 * p + 1], sz[p], 0);
        } else if (bf && sup == DP_BF16_NONE) {
            CHECK(rc == DP_ERR_BACKEND, "%s: bf16 where oneDNN has none gave %s, not DP_ERR_BACKEND", c->name,
                  dp_strerror(rc));
        } else {
            CHECK(rc == DP_OK, "%s (%s): %s", c->name, bf ? "bf16" : "fp32", dp_strerror(rc));
            for (int p = 0; rc == DP_OK && p < (c->bias ? 4 : 3); p++)
                judge(c->name, &ps[p], got[p], e[2 * p], e[2 * p + 1], er[2 * p], er[2 * p + 1], sz[p], bf);
        }
        dp_net_free(&net);
    }
    for (int i = 0; i < 8; i++) free(e[i]), free(er[i]);
    free(x), free(w), free(b), free(dy), free(xr), free(wr), free(dyr), free(y), free(dx), free(dw), free(db);
}

/* ---- the classifier ----------------------------------------------------------- */
static void check_linear(int n, int ci, int co, int sup)
{
    float *x = rnd((size_t)n * ci), *w = rnd((size_t)co * ci), *b = rnd(co), *dy = rnd((size_t)n * co);
    float *xr = rounded(x, (size_t)n * ci), *wr = rounded(w, (size_t)co * ci), *dyr = rounded(dy, (size_t)n * co);
    const size_t sz[3] = {(size_t)n * co, (size_t)n * ci, (size_t)co * ci};
    double *e[6], *er[6];
    for (int i = 0; i < 6; i++) e[i] = calloc(sz[i / 2], sizeof(double)), er[i] = calloc(sz[i / 2], sizeof(double));
    for (int r = 0; r < 2; r++) {
        const float *X = r ? xr : x, *W = r ? wr : w, *D = r ? dyr : dy;
        double **E = r ? er : e;
        for (int i = 0; i < n; i++)
            for (int o = 0; o < co; o++) {
                double a = b[o], s = fabs(b[o]);
                for (int k = 0; k < ci; k++) {
                    const double t = (double)X[(size_t)i * ci + k] * W[(size_t)o * ci + k];
                    a += t, s += fabs(t);
                    E[2][(size_t)i * ci + k] += (double)D[(size_t)i * co + o] * W[(size_t)o * ci + k];
                    E[3][(size_t)i * ci + k] += fabs((double)D[(size_t)i * co + o] * W[(size_t)o * ci + k]);
                    E[4][(size_t)o * ci + k] += (double)D[(size_t)i * co + o] * X[(size_t)i * ci + k];
                    E[5][(size_t)o * ci + k] += fabs((double)D[(size_t)i * co + o] * X[(size_t)i * ci + k]);
                }
                E[0][(size_t)i * co + o] = a, E[1][(size_t)i * co + o] = s;
            }
    }
    float *y = malloc(sizeof(float) * sz[0]), *dx = malloc(sizeof(float) * sz[1]), *dw = malloc(sizeof(float) * sz[2]);
    const pass_spec ps[3] = {{"y", ci + 1, 2 * U + U * U}, {"dx", co, 2 * U + U * U}, {"dw", n, 2 * U + U * U}};
    const float *got[3] = {y, dx, dw};
    char tag[64];
    snprintf(tag, sizeof tag, "linear %dx%d->%d", n, ci, co);
    for (int bf = 0; bf < 2; bf++) {
        void *be = NULL;
        int rc = dnn_linear_forward(&be, x, w, b, n, ci, co, bf, y);
        if (!rc) rc = dnn_linear_backward(&be, x, w, dy, n, ci, co, bf, dx, dw);
        dnn_free(&be);
        if (bf && sup == DP_BF16_NONE) {
            CHECK(rc == DP_ERR_BACKEND, "%s: bf16 where oneDNN has none gave %s", tag, dp_strerror(rc));
            continue;
        }
        CHECK(rc == DP_OK, "%s (%s): %s", tag, bf ? "bf16" : "fp32", dp_strerror(rc));
        for (int p = 0; rc == DP_OK && p < 3; p++) judge(tag, &ps[p], got[p], e[2 * p], e[2 * p + 1], er[2 * p], er[2 * p + 1], sz[p], bf);
    }
    for (int i = 0; i < 6; i++) free(e[i]), free(er[i]);
    free(x), free(w), free(b), free(dy), free(xr), free(wr), free(dyr), free(y), free(dx), free(dw);
}

/* ---- a whole network ------------------------------------------------------------ */
static double rel_diff(const float *a, const float *b, long long n)
{
    double d = 0, s = 0;
    for (long long i = 0; i < n; i++) d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), s += (double)b[i] * b[i];
    return s > 0 ? sqrt(d / s) : sqrt(d);
}

/* A convolution's bias that a batch norm follows: its exact gradient is 0 (the
 * norm removes any constant), so both paths give rounding noise there. */
static int zero_grad(const dp_net *net, long long off)
{
    for (int i = 0; i < net->n_nodes; i++) {
        const dp_node *nd = &net->nodes[i];
        if (nd->type != DP_OP_CONV || !nd->bias || nd->b_off != off) continue;
        for (int j = i + 1; j < net->n_nodes; j++)
            if (net->nodes[j].in[0] == i && net->nodes[j].type == DP_OP_BN) return 1;
    }
    return 0;
}

static void check_net(int sup)
{
    dp_model_config c = dp_model_defaults();
    c.arch = DP_VGG16, c.pool = DP_POOL_DYNOPOOL, c.in_ch = 1, c.size = 16, c.classes = 10, c.width = 0.0625f;
    int n = 4;
    if (getenv("DP_BF16_NET")) sscanf(getenv("DP_BF16_NET"), "%d,%d,%f,%d", &c.pool, &c.size, &c.width, &n);
    if (n > 64) n = 64;
    dp_model *m[3] = {NULL, NULL, NULL};
    float *x = rnd((size_t)n * c.size * c.size);
    int labels[64];
    for (int i = 0; i < n; i++) labels[i] = (i * 7 + 3) % 10;
    dp_train_config tc = dp_train_defaults(c.arch);
    tc.lambda = 0.1f;
    dp_step_stats st[3];
    /* 0: float32; 1: bf16; 2: float32 with every weight (not the alphas) moved by a
     * relative amount uniform in (-u, u), u = 2^-8: bf16's rounding of the weights
     * alone, as a measure of how much the network amplifies such a perturbation */
    for (int k = 0; k < 3; k++) {
        c.precision = k == 1 ? DP_PRECISION_BF16 : DP_PRECISION_FP32;
        const int rc = dp_model_create(&c, &m[k]);
        if (k == 1 && sup == DP_BF16_NONE) {
            CHECK(rc == DP_ERR_BACKEND, "a bf16 model where oneDNN has no bf16: %s", dp_strerror(rc));
            CHECK(dp_model_set_precision(m[0], DP_PRECISION_BF16) == DP_ERR_BACKEND, "set_precision accepted bf16");
            goto out;
        }
        CHECK(rc == DP_OK, "create (%s): %s", k == 1 ? "bf16" : "fp32", dp_strerror(rc));
        if (rc) goto out;
        CHECK(dp_model_config_of(m[k])->precision == c.precision, "precision not kept");
        if (k == 2)
            for (int v = 0; v < m[k]->net.n_pv; v++)
                for (long long i = 0; !m[k]->net.pv[v].group && i < m[k]->net.pv[v].numel; i++)
                    m[k]->net.params[m[k]->net.pv[v].off + i] *= (float)(1.0 + U * urand());
        /* learning rates 0: the gradients stay in grads, the weights as they were */
        CHECK(dp_model_train_step(m[k], x, labels, n, &tc, 0.0f, 0.0f, &st[k]) == DP_OK, "step");
    }
    const double dl = fabs(st[1].loss - st[0].loss) / fabs(st[0].loss), tol_loss = 2 * 14 * 2 * U;
    CHECK(dl <= tol_loss, "loss %.9g in bf16, %.9g in fp32: relative %.3g > %.3g", st[1].loss, st[0].loss, dl,
          tol_loss);
    double least = 1, worst = 0, sb = 0, sp = 0;
    const char *wname = "";
    for (int v = 0; v < m[0]->net.n_pv; v++) {
        const dp_pview *pv = &m[0]->net.pv[v];
        if (pv->group || zero_grad(&m[0]->net, pv->off)) continue; /* alphas: printed below */
        const double db = rel_diff(m[1]->net.grads + pv->off, m[0]->net.grads + pv->off, pv->numel);
        const double dp = rel_diff(m[2]->net.grads + pv->off, m[0]->net.grads + pv->off, pv->numel);
        sb += db * db, sp += dp * dp;
        CHECK(db <= 6 * dp, "gradient of %s: bf16 moves it by %.3g relative, 6x more than the weights' "
              "perturbation does (%.3g)", pv->name, db, dp);
        if (getenv("DP_BF16_VERBOSE")) printf("    %-24s bf16 %.3e  perturbed %.3e\n", pv->name, db, dp);
        if (db / dp > worst) worst = db / dp, wname = pv->name;
        if (db < least) least = db;
    }
    CHECK(sb <= 9 * sp, "over all weight gradients bf16 moves them %.3g times as much as the perturbation (> 3)",
          sqrt(sb / sp));
    /* (U) for the net: float32 reordering alone moves a gradient by ~1e-6 */
    CHECK(least > 1e-4, "the least-changed weight gradient differs by only %.3g: bf16 did not run", least);
    printf("  vgg16 %s x%g, %dx%d, batch %d: loss relative %.2e (tolerance %.3g); weight gradients: bf16 moves "
           "them %.2f times as much as the perturbation overall (tolerance 3), at most %.2f (%s; tolerance 6)\n",
           dp_pool_name(c.pool), (double)c.width, c.size, c.size, n, dl, tol_loss, sqrt(sb / sp), worst, wname);
    double ab = 0, ap = 0;
    for (int a = 0; a < st[0].n_galpha; a++)
        for (int j = 0; j < 2; j++)
            ab += pow(st[1].galpha_task[a][j] - st[0].galpha_task[a][j], 2),
                ap += pow(st[2].galpha_task[a][j] - st[0].galpha_task[a][j], 2);
    CHECK(ab <= 36 * ap, "the alphas' task gradients: bf16 moves them %.3g, 6x more than the perturbation (%.3g)",
          sqrt(ab), sqrt(ap));
    for (int a = 0; a < st[0].n_galpha; a++)
        printf("    alpha %d: dL_task/dalpha fp32 (%.6g, %.6g), bf16 (%.6g, %.6g), perturbed fp32 (%.6g, %.6g)\n", a,
               st[0].galpha_task[a][0], st[0].galpha_task[a][1], st[1].galpha_task[a][0], st[1].galpha_task[a][1],
               st[2].galpha_task[a][0], st[2].galpha_task[a][1]);
    /* the frozen network (dp_infer: batch norm folded, bf16 weights reordered once):
     * bf16 logits against float32 ones, a forward chain as the loss above */
    dp_infer *h[2] = {NULL, NULL};
    float *z[2] = {malloc(sizeof(float) * n * c.classes), malloc(sizeof(float) * n * c.classes)};
    for (int k = 0; k < 2; k++) {
        int rc = dp_infer_freeze(m[0], &h[k]);
        if (!rc && k) rc = dp_infer_set_precision(h[k], DP_PRECISION_BF16);
        if (!rc) rc = dp_infer_run(h[k], x, n, z[k]);
        CHECK(rc == DP_OK, "frozen (%s): %s", k ? "bf16" : "fp32", dp_strerror(rc));
    }
    const double dz = rel_diff(z[1], z[0], (long long)n * c.classes);
    CHECK(dz <= tol_loss && dz > 1e-5, "frozen logits: bf16 differs from fp32 by %.3g relative: not in (1e-5, %.3g]",
          dz, tol_loss);
    printf("  frozen (dp_infer) logits: bf16 against fp32 %.2e relative (tolerance %.3g)\n", dz, tol_loss);
    dp_infer_free(h[0]), dp_infer_free(h[1]);
    free(z[0]), free(z[1]);
out:
    for (int k = 0; k < 3; k++) dp_model_free(m[k]);
    free(x);
}

int main(void)
{
    const int sup = dp_bf16_support();
    const char *isa = getenv("ONEDNN_MAX_CPU_ISA");
    printf("bf16 support: %s (ONEDNN_MAX_CPU_ISA=%s)\n",
           sup == DP_BF16_NATIVE ? "native" : sup == DP_BF16_EMULATED ? "emulated" : "none", isa ? isa : "unset");
    /* AUTO: bf16 exactly where native; explicit bf16 refused exactly where there is none */
    CHECK(dp_precision_resolve(DP_PRECISION_AUTO) == (sup == DP_BF16_NATIVE ? DP_PRECISION_BF16 : DP_PRECISION_FP32),
          "auto resolved to %d", dp_precision_resolve(DP_PRECISION_AUTO));
    CHECK(dp_precision_resolve(7) == DP_ERR_ARG, "precision 7 accepted");
    CHECK(dp_precision_parse("bf16") == DP_PRECISION_BF16 && dp_precision_parse("BF16") == DP_ERR_ARG, "parse");
    /* oneDNN below AVX-512 has no bf16; the emulation exists exactly from AVX512_CORE on */
    if (isa && (!strcmp(isa, "AVX2") || !strcmp(isa, "SSE41") || !strcmp(isa, "AVX")))
        CHECK(sup == DP_BF16_NONE, "bf16 support %d under ONEDNN_MAX_CPU_ISA=%s", sup, isa);
    if (isa && !strcmp(isa, "AVX512_CORE"))
        CHECK(sup != DP_BF16_NATIVE, "native bf16 under ONEDNN_MAX_CPU_ISA=AVX512_CORE");
    const conv_case convs[] = {
        {2, 20, 24, 6, 5, 3, 1, 1, 1, 1, 0, "conv 3x3 20->24 bias"},
        {2, 16, 32, 7, 7, 1, 2, 0, 1, 0, 0, "conv 1x1/2 16->32"},
        {2, 24, 24, 6, 6, 3, 1, 1, 24, 0, 0, "conv depthwise 3x3"},
        {2, 3, 16, 8, 8, 3, 1, 1, 1, 1, 1, "conv 3x3 on NCHW 3->16"},
    };
    for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++) check_conv(&convs[i], sup);
    check_linear(8, 40, 12, sup);
    check_linear(5, 16, 3, sup);
    check_net(sup);
    return tu_finish("test_bf16");
}
