/* squeeze_excite.c — squeeze-and-excitation, torchvision's SqueezeExcitation as
 * EfficientNet uses it (docs/models.md, "EfficientNet"): one node, since its
 * inner tensors are (n, c) vectors that no other op would read.
 *
 *   shape   y like x (n, c, h, w), any layout; nd->cout = q, the squeezed channels
 *   params  fc1.weight (q, c, 1, 1) at w_off, fc1.bias (q) at b_off,
 *           fc2.weight (c, q, 1, 1) at w2_off, fc2.bias (c) at b2_off
 *   forward p[n,c]  = mean over (h, w) of x[n,c], summed in double (AdaptiveAvgPool2d(1))
 *           z1      = fc1(p), a1 = silu(z1)                       (Conv2d 1x1, SiLU)
 *           s[n,c]  = sigmoid(fc2(a1)[n,c])                       (Conv2d 1x1, Sigmoid)
 *           y       = s[n,c] x[n,c,:,:]
 *   backward ds[n,c] = sum_hw dy x;  dz2 = ds s (1 - s);  da1 = fc2^T dz2;
 *           dz1 = da1 silu'(z1);  dp = fc1^T dz1;
 *           dx = s dy + dp / (h w);  weight and bias gradients overwritten
 *   MACs    the two 1x1 convolutions on their 1x1 maps, by the convolution's rule:
 *           q (c + 1) + c (q + 1); the pooling, the activations and the scaling
 *           count 0 (docs/operator.md, "How MACs are counted")
 *   size gradient: through x (y has x's size); its MACs do not depend on the
 *           size, so they are no term of L_GMACs
 *
 * The workspace keeps p (n c), z1 (n q) and s (n c) for the backward, and a1 (n q). */
#include <math.h>
#include <string.h>

#include "engine/engine.h"

static int se_infer(dp_net *net, dp_node *nd)
{
    const dp_act *x = &dp_in(net, nd, 0)->y;
    if (nd->cout <= 0) return DP_ERR_ARG;
    dp_set_shape(&nd->y, x->n, x->c, x->h, x->w, x->blk);
    return DP_OK;
}

static double se_macs(const dp_net *net, const dp_node *nd)
{
    (void)net;
    const double c = nd->y.c, q = nd->cout;
    return q * (c + 1.0) + c * (q + 1.0);
}

static inline float sigm(float v) { return 1.0f / (1.0f + dp_exp_neg(v)); }

static int se_forward(dp_net *net, dp_node *nd, int train)
{
    (void)train;
    const dp_act *x = &dp_in(net, nd, 0)->y;
    const int n = x->n, c = x->c, q = nd->cout, B = x->blk, cb = (c + B - 1) / B;
    const size_t hw = (size_t)x->h * x->w;
    /* p, z1, s for the backward; a1 = silu(z1) only here */
    float *ws = dp_node_ws(nd, sizeof(float) * ((size_t)n * (2 * (size_t)c + 2 * (size_t)q)));
    if (!ws) return DP_ERR_NOMEM;
    float *p = ws, *z1 = p + (size_t)n * c, *s = z1 + (size_t)n * q, *a1 = s + (size_t)n * c;
    const float *w1 = dp_param(net, nd->w_off), *b1 = dp_param(net, nd->b_off);
    const float *w2 = dp_param(net, nd->w2_off), *b2 = dp_param(net, nd->b2_off);
#pragma omp parallel for collapse(2) schedule(static)
    for (int in = 0; in < n; in++)
        for (int b = 0; b < cb; b++) {
            const float *xb = x->data + ((size_t)in * cb + b) * hw * B;
            /* in double: a float sum over a 28x28 map is off by tens of ulps, and
             * the scale s carries that error into every element of y */
            double acc[16] = {0};
            for (size_t i = 0; i < hw; i++)
                for (int l = 0; l < B; l++) acc[l] += xb[i * B + l];
            for (int l = 0; l < B && b * B + l < c; l++)
                p[(size_t)in * c + b * B + l] = (float)(acc[l] / (double)hw);
        }
    /* the two 1x1 convolutions, one output each per iteration (batch 1 too
     * spreads over the threads) */
#pragma omp parallel for collapse(2) schedule(static)
    for (int in = 0; in < n; in++)
        for (int j = 0; j < q; j++) {
            const float *pn = p + (size_t)in * c;
            float acc = b1[j];
            for (int k = 0; k < c; k++) acc += w1[(size_t)j * c + k] * pn[k];
            z1[(size_t)in * q + j] = acc;
            a1[(size_t)in * q + j] = acc * sigm(acc);
        }
#pragma omp parallel for collapse(2) schedule(static)
    for (int in = 0; in < n; in++)
        for (int k = 0; k < c; k++) {
            const float *an = a1 + (size_t)in * q;
            float acc = b2[k];
            for (int j = 0; j < q; j++) acc += w2[(size_t)k * q + j] * an[j];
            s[(size_t)in * c + k] = sigm(acc);
        }
    float *y = nd->y.data;
#pragma omp parallel for collapse(2) schedule(static)
    for (int in = 0; in < n; in++)
        for (int b = 0; b < cb; b++) {
            float sv[16] = {0};
            for (int l = 0; l < B && b * B + l < c; l++) sv[l] = s[(size_t)in * c + b * B + l];
            const size_t o = ((size_t)in * cb + b) * hw * B;
            for (size_t i = 0; i < hw; i++)
                for (int l = 0; l < B; l++) y[o + i * B + l] = sv[l] * x->data[o + i * B + l];
        }
    return DP_OK;
}

static int se_backward(dp_net *net, dp_node *nd)
{
    dp_node *xn = dp_in(net, nd, 0);
    const dp_act *x = &xn->y;
    const int n = x->n, c = x->c, q = nd->cout, B = x->blk, cb = (c + B - 1) / B;
    const size_t hw = (size_t)x->h * x->w;
    const float *p = nd->ws, *z1 = p + (size_t)n * c, *s = z1 + (size_t)n * q;
    const float *w1 = dp_param(net, nd->w_off), *w2 = dp_param(net, nd->w2_off);
    float *dw1 = dp_grad(net, nd->w_off), *db1 = dp_grad(net, nd->b_off);
    float *dw2 = dp_grad(net, nd->w2_off), *db2 = dp_grad(net, nd->b2_off);
    /* scratch: dz2 (n c), dz1 (n q), dp (n c) */
    float *t = dp_net_tmp(net, (size_t)n * (2 * (size_t)c + q));
    if (!t) return DP_ERR_NOMEM;
    float *dz2 = t, *dz1 = t + (size_t)n * c, *dp = dz1 + (size_t)n * q;
    const float *dy = nd->dy.data;
#pragma omp parallel for collapse(2) schedule(static)
    for (int in = 0; in < n; in++)
        for (int b = 0; b < cb; b++) {
            const size_t o = ((size_t)in * cb + b) * hw * B;
            double acc[16] = {0};
            for (size_t i = 0; i < hw; i++)
                for (int l = 0; l < B; l++) acc[l] += (double)dy[o + i * B + l] * x->data[o + i * B + l];
            for (int l = 0; l < B && b * B + l < c; l++) {
                const size_t k = (size_t)in * c + b * B + l;
                dz2[k] = (float)acc[l] * s[k] * (1.0f - s[k]);
            }
        }
#pragma omp parallel for schedule(static)
    for (int in = 0; in < n; in++) {
        const float *d2 = dz2 + (size_t)in * c, *zn = z1 + (size_t)in * q;
        float *d1 = dz1 + (size_t)in * q, *dpn = dp + (size_t)in * c;
        for (int j = 0; j < q; j++) {
            float acc = 0.0f;
            for (int k = 0; k < c; k++) acc += w2[(size_t)k * q + j] * d2[k];
            const float sg = sigm(zn[j]);
            d1[j] = acc * sg * (1.0f + zn[j] * (1.0f - sg));
        }
        for (int k = 0; k < c; k++) {
            float acc = 0.0f;
            for (int j = 0; j < q; j++) acc += w1[(size_t)j * c + k] * d1[j];
            dpn[k] = acc / (float)hw;
        }
    }
    /* weight gradients: sums over the batch */
#pragma omp parallel for schedule(static)
    for (int k = 0; k < c; k++) {
        double sb = 0.0;
        for (int in = 0; in < n; in++) sb += dz2[(size_t)in * c + k];
        db2[k] = (float)sb;
        for (int j = 0; j < q; j++) {
            double acc = 0.0;
            for (int in = 0; in < n; in++) {
                const float z = z1[(size_t)in * q + j];
                acc += (double)dz2[(size_t)in * c + k] * (z * sigm(z));
            }
            dw2[(size_t)k * q + j] = (float)acc;
        }
    }
#pragma omp parallel for schedule(static)
    for (int j = 0; j < q; j++) {
        double sb = 0.0;
        for (int in = 0; in < n; in++) sb += dz1[(size_t)in * q + j];
        db1[j] = (float)sb;
        for (int k = 0; k < c; k++) {
            double acc = 0.0;
            for (int in = 0; in < n; in++) acc += (double)dz1[(size_t)in * q + j] * p[(size_t)in * c + k];
            dw1[(size_t)j * c + k] = (float)acc;
        }
    }
    if (!xn->need_dx) return DP_OK;
    int accum;
    float *dx = dp_dx_target(net, nd, 0, &accum);
    if (!dx) return DP_ERR_NOMEM;
#pragma omp parallel for collapse(2) schedule(static)
    for (int in = 0; in < n; in++)
        for (int b = 0; b < cb; b++) {
            float sv[16] = {0}, pv[16] = {0};
            for (int l = 0; l < B && b * B + l < c; l++) {
                sv[l] = s[(size_t)in * c + b * B + l];
                pv[l] = dp[(size_t)in * c + b * B + l];
            }
            const size_t o = ((size_t)in * cb + b) * hw * B;
            for (size_t i = 0; i < hw; i++)
                for (int l = 0; l < B; l++) dx[o + i * B + l] = sv[l] * dy[o + i * B + l] + pv[l];
        }
    dp_dx_done(net, nd, 0, dx, accum);
    return DP_OK;
}

const dp_op dp_op_squeeze_excite = {.name = "squeeze_excite", .infer = se_infer, .macs = se_macs,
                                    .forward = se_forward, .backward = se_backward,
                                    .size_grad = dp_size_grad_same};
