/* conv2d.c — 2-D convolution: square kernel k, stride, padding, groups (depthwise
 * when groups == cin == cout), optional bias.
 *
 *   shape   ho = (h + 2 pad - k) / stride + 1, likewise wo
 *   MACs    cout * ho * wo * (cin / groups * k * k + bias)        (per image; docs/operator.md)
 *   forward y[n,o,i,j] = b[o] + sum_{c in group(o), p, q} w[o, c', p, q] x[n, c, i s - pad + p, j s - pad + q]
 *   params  weight (cout, cin/groups, k, k) OIHW, bias (cout)
 *   frozen  a batch norm folded into it (batchnorm.c, bn_fold) brings its bias and its
 *           activation (relu: 1 ReLU, 2 SiLU, 6 ReLU6), applied after the convolution (oneDNN:
 *           fused into it as a post-op)
 *
 * The reference path is plain loops on NCHW; the fast path is oneDNN (dnn.h). */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "engine/dnn.h"

static int conv_infer(dp_net *net, dp_node *nd)
{
    const dp_act *x = &dp_in(net, nd, 0)->y;
    int ho, wo;
    const int rc = dp_window_size(x, nd, &ho, &wo);
    if (rc) return rc;
    if (x->c % nd->groups || nd->cout % nd->groups) return DP_ERR_ARG;
    dp_set_shape(&nd->y, x->n, nd->cout, ho, wo, net->blk);
    return DP_OK;
}

static double conv_macs(const dp_net *net, const dp_node *nd)
{
    const int cin = net->nodes[nd->in[0]].y.c;
    return (double)nd->cout * nd->y.h * nd->y.w *
           ((double)cin / nd->groups * nd->k * nd->k + (nd->bias ? 1 : 0));
}

/* Reference forward.  x: (n, cin, h, w)  w: (cout, cin/g, k, k)  b: (cout) or NULL
 * y: (n, cout, ho, wo), all NCHW. */
void dp_conv2d_ref_forward(const float *x, const float *w, const float *b, float *y, int n,
                           int cin, int h, int wd, int cout, int ho, int wo, int k, int s, int p,
                           int g)
{
    const int cig = cin / g, cog = cout / g;
#pragma omp parallel for collapse(2) schedule(static)
    for (int in = 0; in < n; in++)
        for (int o = 0; o < cout; o++) {
            const int c0 = o / cog * cig;
            float *yo = y + ((size_t)in * cout + o) * ho * wo;
            for (int i = 0; i < ho; i++)
                for (int j = 0; j < wo; j++) {
                    float acc = b ? b[o] : 0.0f;
                    for (int c = 0; c < cig; c++) {
                        const float *xc = x + ((size_t)in * cin + c0 + c) * h * wd;
                        const float *wc = w + ((size_t)o * cig + c) * k * k;
                        for (int pp = 0; pp < k; pp++) {
                            const int ii = i * s - p + pp;
                            if (ii < 0 || ii >= h) continue;
                            for (int q = 0; q < k; q++) {
                                const int jj = j * s - p + q;
                                if (jj < 0 || jj >= wd) continue;
                                acc += wc[pp * k + q] * xc[(size_t)ii * wd + jj];
                            }
                        }
                    }
                    yo[(size_t)i * wo + j] = acc;
                }
        }
}

/* Reference backward: dw, db overwritten; dx (or NULL) overwritten. */
void dp_conv2d_ref_backward(const float *x, const float *w, const float *dy, float *dx, float *dw,
                            float *db, int n, int cin, int h, int wd, int cout, int ho, int wo,
                            int k, int s, int p, int g)
{
    const int cig = cin / g, cog = cout / g;
#pragma omp parallel for schedule(static)
    for (int o = 0; o < cout; o++) {
        const int c0 = o / cog * cig;
        double bsum = 0.0;
        for (int c = 0; c < cig; c++)
            for (int pp = 0; pp < k; pp++)
                for (int q = 0; q < k; q++) {
                    double acc = 0.0;
                    for (int in = 0; in < n; in++) {
                        const float *xc = x + ((size_t)in * cin + c0 + c) * h * wd;
                        const float *dyo = dy + ((size_t)in * cout + o) * ho * wo;
                        for (int i = 0; i < ho; i++) {
                            const int ii = i * s - p + pp;
                            if (ii < 0 || ii >= h) continue;
                            for (int j = 0; j < wo; j++) {
                                const int jj = j * s - p + q;
                                if (jj < 0 || jj >= wd) continue;
                                acc += (double)dyo[(size_t)i * wo + j] * xc[(size_t)ii * wd + jj];
                            }
                        }
                    }
                    dw[(((size_t)o * cig + c) * k + pp) * k + q] = (float)acc;
                }
        if (db) {
            for (int in = 0; in < n; in++) {
                const float *dyo = dy + ((size_t)in * cout + o) * ho * wo;
                for (int i = 0; i < ho * wo; i++) bsum += dyo[i];
            }
            db[o] = (float)bsum;
        }
    }
    if (!dx) return;
#pragma omp parallel for collapse(2) schedule(static)
    for (int in = 0; in < n; in++)
        for (int c = 0; c < cin; c++) {
            const int grp = c / cig, cl = c - grp * cig;
            float *dxc = dx + ((size_t)in * cin + c) * h * wd;
            memset(dxc, 0, sizeof(float) * (size_t)h * wd);
            for (int o = grp * cog; o < (grp + 1) * cog; o++) {
                const float *dyo = dy + ((size_t)in * cout + o) * ho * wo;
                const float *wc = w + ((size_t)o * cig + cl) * k * k;
                for (int i = 0; i < ho; i++)
                    for (int j = 0; j < wo; j++) {
                        const float d = dyo[(size_t)i * wo + j];
                        for (int pp = 0; pp < k; pp++) {
                            const int ii = i * s - p + pp;
                            if (ii < 0 || ii >= h) continue;
                            for (int q = 0; q < k; q++) {
                                const int jj = j * s - p + q;
                                if (jj < 0 || jj >= wd) continue;
                                dxc[(size_t)ii * wd + jj] += d * wc[pp * k + q];
                            }
                        }
                    }
            }
        }
}

static int conv_forward(dp_net *net, dp_node *nd, int train)
{
    (void)train;
    const dp_act *x = &dp_in(net, nd, 0)->y;
    const float *w = dp_param(net, nd->w_off);
    const float *b = nd->bias ? dp_param(net, nd->b_off) : NULL;
    /* a folded BN's activation (only frozen nets have one), fused by oneDNN */
    const int fuse = net->backend == DP_BACKEND_DNNL ? nd->relu : 0;
    int rc = DP_OK;
    if (net->backend == DP_BACKEND_DNNL)
        rc = dnn_conv_forward(net, &nd->be, x, w, b, nd->k, nd->stride, nd->pad, nd->groups, fuse, &nd->y);
    else
        dp_conv2d_ref_forward(x->data, w, b, nd->y.data, x->n, x->c, x->h, x->w, nd->cout, nd->y.h, nd->y.w,
                              nd->k, nd->stride, nd->pad, nd->groups);
    if (!rc && !fuse) dp_act_inplace(&nd->y, nd->relu); /* as bn_forward applies it in evaluation */
    return rc;
}

static int conv_backward(dp_net *net, dp_node *nd)
{
    dp_node *xn = dp_in(net, nd, 0);
    const dp_act *x = &xn->y;
    const float *w = dp_param(net, nd->w_off);
    float *dw = dp_grad(net, nd->w_off), *db = nd->bias ? dp_grad(net, nd->b_off) : NULL;
    int acc = 0;
    float *dx = xn->need_dx ? dp_dx_target(net, nd, 0, &acc) : NULL;
    int rc = DP_OK;
    if (net->backend == DP_BACKEND_DNNL)
        rc = dnn_conv_backward(net, &nd->be, x, w, &nd->dy, dx, dw, db);
    else
        dp_conv2d_ref_backward(x->data, w, nd->dy.data, dx, dw, db, x->n, x->c, x->h, x->w, nd->cout,
                     nd->y.h, nd->y.w, nd->k, nd->stride, nd->pad, nd->groups);
    if (dx && !rc) dp_dx_done(net, nd, 0, dx, acc);
    return rc;
}

const dp_op dp_op_conv2d = {.name = "conv2d", .infer = conv_infer, .macs = conv_macs,
                            .cost_in_loss = 1, .forward = conv_forward, .backward = conv_backward,
                            .size_grad = dp_size_grad_strided};
