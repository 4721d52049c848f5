/* batchnorm.c — 2-D batch normalisation, optionally with ReLU (relu = 1),
 * SiLU (relu = 2, EfficientNet) or ReLU6 (relu = 6) fused after it.
 *
 *   shape   y like x
 *   MACs    2 * c * h * w                                         (per image; docs/operator.md)
 *   train   mean, var over (n, h, w) per channel (biased var for the normalisation);
 *           running_mean = 0.9 running_mean + 0.1 mean,
 *           running_var  = 0.9 running_var  + 0.1 var * m / (m - 1),  m = n h w
 *           (PyTorch's BatchNorm2d with momentum 0.1); num_batches_tracked += 1
 *   eval    the running averages
 *   rollback num_batches_tracked -= 1 (the running statistics live in the net's
 *           stats buffer, which the model restores as a whole)
 *   forward y = act(gamma (x - mean) / sqrt(var + eps) + beta)
 *   backward through act from y alone: ReLU passes where y > 0, ReLU6 where
 *           0 < y < 6 (the same set as 0 < x < 6), so no pre-activation copy is kept;
 *           SiLU's derivative s (1 + z (1 - s)), s = sigmoid(z), needs the BN output z,
 *           which is recomputed from x and the batch statistics (no copy kept either)
 *   params  weight = gamma (c), bias = beta (c); buffers running_mean, running_var (c)
 *   fold    (frozen nets) into the convolution before it: with s = gamma / sqrt(var + eps),
 *           w'[o] = s[o] w[o], b'[o] = beta[o] + s[o] (b[o] - mean[o]) (b = 0 without a
 *           bias; b' then lives in beta's slot), and the activation moves to the conv
 *
 * The workspace keeps the batch mean and var (2c floats) for the backward.
 *
 * Synchronised over data-parallel ranks (net->dist->sync_bn; docs/distributed.md):
 * mean and var are those of the global batch, M = sum of the ranks' n h w:
 * mean = (sum over ranks of sum x) / M, then var = (sum over ranks of
 * sum (x - mean)^2) / M, each a double sum per channel; the running var takes
 * M / (M - 1).  The backward needs the two per-channel reductions of the global
 * batch, Sb = sum d and Sg = sum d xh (d: dy through the activation, xh the
 * normalised x):  dx = gamma / sqrt(var + eps) (d - Sb / M - xh Sg / M).  Each
 * rank's dgamma, dbeta stay its own part (the gradient sum adds them).  Both
 * backends run these as plain loops over the layout (sync_forward, sync_backward). */
#include <math.h>
#include <string.h>

#include "engine/dnn.h"

/* dy *= silu'(z), z = g (x - mean) / sqrt(var + eps) + b recomputed per channel;
 * x, dy in x's layout (blocks of x->blk channels; blk 1 is NCHW). */
static void silu_backward_inplace(const dp_act *x, float *dy, const float *g, const float *b,
                                  const float *mean, const float *var, float eps)
{
    const int B = x->blk, cb = (x->c + B - 1) / B, c = x->c;
    const size_t hw = (size_t)x->h * x->w;
#pragma omp parallel for collapse(2) schedule(static)
    for (int in = 0; in < x->n; in++)
        for (int blk = 0; blk < cb; blk++) {
            const size_t base = ((size_t)in * cb + blk) * hw * B;
            for (int l = 0; l < B && blk * B + l < c; l++) {
                const int ch = blk * B + l;
                const float sc = g[ch] / sqrtf(var[ch] + eps), sh = b[ch] - sc * mean[ch];
                for (size_t i = 0; i < hw; i++) {
                    const size_t o = base + i * B + l;
                    const float z = sc * x->data[o] + sh, s = 1.0f / (1.0f + dp_exp_neg(z));
                    dy[o] *= s * (1.0f + z * (1.0f - s));
                }
            }
        }
}

/* The element of channel ch, sample in, position i of a layout of blocks of B channels. */
static inline size_t at(int in, int ch, size_t i, int cb, size_t hw, int B)
{
    return (((size_t)in * cb + ch / B) * hw + i) * B + ch % B;
}

/* Global batch statistics over the ranks (see the top): mean, var (c) of x in
 * its layout; *mtot the global count n h w.  Collective. */
static int sync_stats(dp_net *net, const dp_act *x, float *mean, float *var, double *mtot)
{
    const int c = x->c, B = x->blk, cb = (c + B - 1) / B;
    const size_t hw = (size_t)x->h * x->w;
    double *s = (double *)(var + x->c); /* c + 1 doubles after mean, var (bn_forward reserved them) */
    for (int pass = 0; pass < 2; pass++) {
#pragma omp parallel for schedule(static)
        for (int ch = 0; ch < c; ch++) {
            const double mu = pass ? s[ch] : 0.0;
            double a = 0.0;
            for (int in = 0; in < x->n; in++)
                for (size_t i = 0; i < hw; i++) {
                    const double v = x->data[at(in, ch, i, cb, hw, B)];
                    a += pass ? (v - mu) * (v - mu) : v;
                }
            s[ch] = a; /* the pass's local sum */
        }
        if (pass) break;
        s[c] = (double)x->n * hw;
        int rc = dp_dist_sum(net, s, c + 1, DP_COMM_F64);
        if (rc) return rc;
        *mtot = s[c];
        if (!(*mtot >= 2)) return DP_ERR_SIZE; /* as unsynchronised: at least two values */
        for (int ch = 0; ch < c; ch++) {
            s[ch] /= *mtot; /* the global mean, in double for the second pass */
            mean[ch] = (float)s[ch];
        }
    }
    int rc = dp_dist_sum(net, s, c, DP_COMM_F64);
    for (int ch = 0; !rc && ch < c; ch++) var[ch] = (float)(s[ch] / *mtot);
    return rc;
}

/* Synchronised forward on any layout: y = act(gamma (x - mean) / sqrt(var + eps) + beta)
 * with the global statistics, ReLU (relu = 1) passing NaN as the reference does.
 * Plain loops on both backends (oneDNN's batch norm with given statistics is not
 * used: its AVX2 kernels did not match this formula). */
static void sync_forward(const dp_act *x, dp_act *y, const float *g, const float *b, const float *mean,
                         const float *var, float eps, int relu)
{
    const int c = x->c, B = x->blk, cb = (c + B - 1) / B;
    const size_t hw = (size_t)x->h * x->w;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        const float inv = 1.0f / sqrtf(var[ch] + eps);
        for (int in = 0; in < x->n; in++)
            for (size_t i = 0; i < hw; i++) {
                const size_t o = at(in, ch, i, cb, hw, B);
                const float v = g[ch] * ((x->data[o] - mean[ch]) * inv) + b[ch];
                y->data[o] = relu && v <= 0.0f ? 0.0f : v;
            }
    }
}

/* Synchronised backward on any layout (see the top): this rank's dg = sum d xh and
 * db = sum d (d: dy through a fused ReLU; ReLU6 and SiLU were applied to dy
 * before), the ranks' sums Sg, Sb of them, then dx = gamma inv (d - Sb / M -
 * xh Sg / M) (dx may be dy's buffer, or NULL).  Collective. */
static int sync_backward(dp_net *net, dp_node *nd, const dp_act *x, const float *dy, float *dx, const float *g,
                         float *dg, float *db)
{
    const int c = x->c, B = x->blk, cb = (c + B - 1) / B, relu = nd->relu == 1;
    const size_t hw = (size_t)x->h * x->w;
    const float *mean = nd->ws, *var = nd->ws + c, *y = nd->y.data;
    double *s = (double *)(nd->ws + 2 * (size_t)c); /* 2c doubles (bn_forward reserved them) */
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        const double inv = 1.0 / sqrt((double)var[ch] + net->bn_eps);
        double sg = 0.0, sb = 0.0;
        for (int in = 0; in < x->n; in++)
            for (size_t i = 0; i < hw; i++) {
                const size_t o = at(in, ch, i, cb, hw, B);
                const double d = relu && y[o] <= 0.0f ? 0.0 : dy[o];
                sb += d;
                sg += d * (x->data[o] - mean[ch]) * inv;
            }
        dg[ch] = (float)sg, db[ch] = (float)sb;
        s[ch] = sg, s[c + ch] = sb;
    }
    int rc = dp_dist_sum(net, s, 2 * c, DP_COMM_F64);
    if (rc || !dx) return rc;
    const double M = nd->run[0];
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        const double inv = 1.0 / sqrt((double)var[ch] + net->bn_eps);
        for (int in = 0; in < x->n; in++)
            for (size_t i = 0; i < hw; i++) {
                const size_t o = at(in, ch, i, cb, hw, B);
                const double d = relu && y[o] <= 0.0f ? 0.0 : dy[o];
                const double xh = (x->data[o] - mean[ch]) * inv;
                dx[o] = (float)(g[ch] * inv * (d - s[c + ch] / M - xh * s[ch] / M));
            }
    }
    return DP_OK;
}

static int bn_infer(dp_net *net, dp_node *nd)
{
    const dp_act *x = &dp_in(net, nd, 0)->y;
    dp_set_shape(&nd->y, x->n, x->c, x->h, x->w, x->blk);
    return DP_OK;
}

static double bn_macs(const dp_net *net, const dp_node *nd)
{
    (void)net;
    return 2.0 * nd->y.c * nd->y.h * nd->y.w;
}

/* Reference forward on NCHW.  x, y: (n, c, hw)  mean, var: (c) */
void dp_bn_ref_forward(const float *x, float *y, int n, int c, size_t hw, const float *g,
                        const float *b, float *mean, float *var, float eps, int train, int relu)
{
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        if (train) {
            double s = 0.0, s2 = 0.0;
            for (int in = 0; in < n; in++) {
                const float *xc = x + ((size_t)in * c + ch) * hw;
                for (size_t i = 0; i < hw; i++) s += xc[i];
            }
            const double m = s / ((double)n * hw);
            for (int in = 0; in < n; in++) {
                const float *xc = x + ((size_t)in * c + ch) * hw;
                for (size_t i = 0; i < hw; i++) s2 += (xc[i] - m) * (xc[i] - m);
            }
            mean[ch] = (float)m;
            var[ch] = (float)(s2 / ((double)n * hw));
        }
        const float inv = 1.0f / sqrtf(var[ch] + eps);
        for (int in = 0; in < n; in++) {
            const float *xc = x + ((size_t)in * c + ch) * hw;
            float *yc = y + ((size_t)in * c + ch) * hw;
            for (size_t i = 0; i < hw; i++) {
                const float v = g[ch] * ((xc[i] - mean[ch]) * inv) + b[ch];
                yc[i] = relu && v <= 0.0f ? 0.0f : v; /* NaN passes */
            }
        }
    }
}

/* Reference backward: dx overwritten, dg, db overwritten. */
void dp_bn_ref_backward(const float *x, const float *y, const float *dy, float *dx, int n, int c,
                         size_t hw, const float *g, const float *mean, const float *var,
                         float eps, int relu, float *dg, float *db)
{
    const double m = (double)n * hw;
#pragma omp parallel for schedule(static)
    for (int ch = 0; ch < c; ch++) {
        const double inv = 1.0 / sqrt((double)var[ch] + eps);
        double sg = 0.0, sb = 0.0;
        for (int in = 0; in < n; in++) {
            const size_t o = ((size_t)in * c + ch) * hw;
            for (size_t i = 0; i < hw; i++) {
                const double d = relu && y[o + i] <= 0.0f ? 0.0 : dy[o + i];
                sb += d;
                sg += d * (x[o + i] - mean[ch]) * inv;
            }
        }
        dg[ch] = (float)sg;
        db[ch] = (float)sb;
        if (!dx) continue;
        for (int in = 0; in < n; in++) {
            const size_t o = ((size_t)in * c + ch) * hw;
            for (size_t i = 0; i < hw; i++) {
                const double d = relu && y[o + i] <= 0.0f ? 0.0 : dy[o + i];
                const double xh = (x[o + i] - mean[ch]) * inv;
                dx[o + i] = (float)(g[ch] * inv * (d - sb / m - xh * sg / m));
            }
        }
    }
}

/* Sets every element of channel ch of y to NaN where mean[ch] or var[ch] is
 * not finite.  y: (n, c, h, w) in blocks of y->blk channels. */
static void nan_channels(dp_act *y, const float *mean, const float *var)
{
    const int B = y->blk, cb = (y->c + B - 1) / B;
    const size_t hw = (size_t)y->h * y->w;
    for (int ch = 0; ch < y->c; ch++) {
        if (isfinite(mean[ch]) && isfinite(var[ch])) continue;
        for (int in = 0; in < y->n; in++) {
            float *p = y->data + (((size_t)in * cb + ch / B) * hw) * B + ch % B;
            for (size_t i = 0; i < hw; i++) p[i * B] = NAN;
        }
    }
}

static int bn_forward(dp_net *net, dp_node *nd, int train)
{
    const dp_act *x = &dp_in(net, nd, 0)->y;
    const int c = x->c;
    const size_t hw = (size_t)x->h * x->w;
    double m = (double)x->n * hw;
    const int sync = train && net->dist && net->dist->sync_bn;
    if (train && !sync && m < 2) return DP_ERR_SIZE; /* PyTorch refuses this too */
    /* mean, var; when synchronised, 2c + 2 doubles of sums after them */
    float *ws = dp_node_ws(nd, sizeof(float) * 2 * (size_t)c + (sync ? sizeof(double) * (2 * (size_t)c + 2) : 0));
    if (!ws) return DP_ERR_NOMEM;
    float *rm = net->stats + nd->s_off, *rv = rm + c;
    float *mean = train ? ws : rm, *var = train ? ws + c : rv;
    const float *g = dp_param(net, nd->w_off), *b = dp_param(net, nd->b_off);
    int rc = DP_OK;
    if (sync) { /* the global batch's statistics, then normalise with them as given */
        if ((rc = sync_stats(net, x, mean, var, &m))) return rc;
        nd->run[0] = m;
    }
    if (sync) {
        sync_forward(x, &nd->y, g, b, mean, var, net->bn_eps, nd->relu == 1);
    } else if (net->backend == DP_BACKEND_DNNL) {
        /* oneDNN's fused ReLU maps NaN to 0, where PyTorch's passes it on.  In
         * training a NaN input makes its channel's batch statistics NaN, and
         * PyTorch then outputs NaN over the whole channel: done here after the
         * fused kernel.  In evaluation (running statistics) a NaN stays in its
         * element, so the ReLU runs unfused, as our own NaN-passing loop. */
        const int fuse = nd->relu == 1 && train;
        rc = dnn_bn_forward(&nd->be, x, g, b, mean, var, net->bn_eps, train, fuse, &nd->y);
        if (!rc && fuse) nan_channels(&nd->y, mean, var);
        if (!rc && nd->relu == 1 && !fuse) dp_act_inplace(&nd->y, 1);
    } else
        dp_bn_ref_forward(x->data, nd->y.data, x->n, c, hw, g, b, mean, var, net->bn_eps, train,
                    nd->relu == 1);
    if (!rc && (nd->relu == DP_ACT_SILU || nd->relu == 6)) dp_act_inplace(&nd->y, nd->relu);
    if (rc || !train) return rc;
    const float mo = net->bn_momentum, unb = (float)(m / (m - 1));
    for (int ch = 0; ch < c; ch++) {
        rm[ch] = (1.0f - mo) * rm[ch] + mo * mean[ch];
        rv[ch] = (1.0f - mo) * rv[ch] + mo * (var[ch] * unb);
    }
    nd->nbt++;
    return DP_OK;
}

static int bn_backward(dp_net *net, dp_node *nd)
{
    dp_node *xn = dp_in(net, nd, 0);
    const dp_act *x = &xn->y;
    const int c = x->c;
    const float *mean = nd->ws, *var = nd->ws + c;
    const float *g = dp_param(net, nd->w_off), *b = dp_param(net, nd->b_off);
    float *dg = dp_grad(net, nd->w_off), *db = dp_grad(net, nd->b_off);
    int acc = 0, rc = DP_OK;
    if (nd->relu == 6) { /* through ReLU6, in place on this node's own dy */
        float *dy = nd->dy.data;
        const float *y = nd->y.data;
        const size_t n = dp_act_numel(&nd->y);
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) dy[i] = y[i] <= 0.0f || y[i] >= 6.0f ? 0.0f : dy[i];
    }
    if (nd->relu == DP_ACT_SILU) /* through SiLU, in place on this node's own dy */
        silu_backward_inplace(x, nd->dy.data, g, b, mean, var, net->bn_eps);
    const dp_act dy = nd->dy;
    /* Both backends may write dx over dy (oneDNN documents in-place batch norm
     * backward; the loops read each element before writing it): the producer
     * takes this node's gradient buffer when it has none yet. */
    int handed = 0;
    float *dx = NULL;
    if (xn->need_dx) {
        handed = dp_dy_hand_over(net, nd, 0);
        dx = handed ? dy.data : dp_dx_target(net, nd, 0, &acc);
        if (!dx) return DP_ERR_NOMEM;
    }
    if (net->dist && net->dist->sync_bn) {
        rc = sync_backward(net, nd, x, dy.data, dx, g, dg, db);
    } else if (net->backend == DP_BACKEND_DNNL) {
        float *t = dx ? dx : dp_net_tmp(net, dp_act_numel(x)); /* oneDNN always writes dx */
        if (!t) return DP_ERR_NOMEM;
        rc = dnn_bn_backward(&nd->be, x, g, b, mean, var, &dy, t, dg, db);
    } else {
        dp_bn_ref_backward(x->data, nd->y.data, dy.data, dx, x->n, c, (size_t)x->h * x->w, g, mean, var,
                     net->bn_eps, nd->relu == 1, dg, db);
    }
    if (dx && !handed && !rc) dp_dx_done(net, nd, 0, dx, acc);
    return rc;
}

/* A rolled-back training step did not happen: its batch is not counted. */
static void bn_rollback(dp_net *net, dp_node *nd)
{
    (void)net;
    nd->nbt--;
}

/* Folds the running statistics and the affine transform into the convolution
 * before it (computed in double, each folded value rounded once).  Needs the
 * shapes inferred (the convolution's input channels). */
static int bn_fold(dp_net *net, dp_node *nd)
{
    dp_node *cv = dp_in(net, nd, 0);
    if (cv->type != DP_OP_CONV || cv->relu || cv->cout != nd->y.c || nd->y.c <= 0) return 0;
    const int c = cv->cout;
    const size_t per = (size_t)(dp_in(net, cv, 0)->y.c / cv->groups) * cv->k * cv->k; /* weights per output */
    const float *g = dp_param(net, nd->w_off), *rm = net->stats + nd->s_off, *rv = rm + c;
    float *beta = dp_param(net, nd->b_off), *w = dp_param(net, cv->w_off);
    float *b = cv->bias ? dp_param(net, cv->b_off) : beta; /* the folded bias goes here */
    for (int o = 0; o < c; o++) {
        const double sc = (double)g[o] / sqrt((double)rv[o] + (double)net->bn_eps);
        for (size_t i = 0; i < per; i++) w[o * per + i] = (float)(sc * w[o * per + i]);
        const double b0 = cv->bias ? b[o] : 0.0;
        b[o] = (float)((double)beta[o] + sc * (b0 - (double)rm[o]));
    }
    if (!cv->bias) cv->b_off = nd->b_off, cv->bias = 1;
    cv->relu = nd->relu;
    return 1;
}

const dp_op dp_op_batchnorm = {.name = "batchnorm", .infer = bn_infer, .macs = bn_macs,
                               .forward = bn_forward, .backward = bn_backward,
                               .size_grad = dp_size_grad_same, .rollback = bn_rollback,
                               .fold = bn_fold};
