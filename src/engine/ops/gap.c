/* gap.c — global average pooling to a plain (n, c) matrix.
 *
 *   shape   x (n, c, h, w) in any layout -> y (n, c, 1, 1), NCHW
 *   MACs    0 (pooling is not counted: docs/operator.md)
 *   forward y[n, c] = mean over (h, w) of x[n, c]
 *   backward dx[n, c, i, j] = dy[n, c] / (h w)   (padded lanes 0) */
#include <string.h>

#include "engine/engine.h"

static int gap_infer(dp_net *net, dp_node *nd)
{
    const dp_act *x = &dp_in(net, nd, 0)->y;
    dp_set_shape(&nd->y, x->n, x->c, 1, 1, 1);
    return DP_OK;
}

static int gap_forward(dp_net *net, dp_node *nd, int train)
{
    (void)train;
    const dp_act *x = &dp_in(net, nd, 0)->y;
    const int n = x->n, c = x->c, B = x->blk, cb = (c + B - 1) / B;
    const size_t hw = (size_t)x->h * x->w;
    const float inv = 1.0f / (float)hw;
    float *y = nd->y.data;
#pragma omp parallel for collapse(2) schedule(static)
    for (int in = 0; in < n; in++)
        for (int b = 0; b < cb; b++) {
            const float *xb = x->data + ((size_t)in * cb + b) * hw * B;
            float acc[16] = {0};
            for (size_t i = 0; i < hw; i++)
                for (int l = 0; l < B; l++) acc[l] += xb[i * B + l];
            for (int l = 0; l < B && b * B + l < c; l++) y[(size_t)in * c + b * B + l] = acc[l] * inv;
        }
    return DP_OK;
}

static int gap_backward(dp_net *net, dp_node *nd)
{
    dp_node *xn = dp_in(net, nd, 0);
    if (!xn->need_dx) return DP_OK;
    int acc;
    float *dx = dp_dx_target(net, nd, 0, &acc);
    if (!dx) return DP_ERR_NOMEM;
    const dp_act *x = &xn->y;
    const int n = x->n, c = x->c, B = x->blk, cb = (c + B - 1) / B;
    const size_t hw = (size_t)x->h * x->w;
    const float inv = 1.0f / (float)hw;
    const float *dy = nd->dy.data;
#pragma omp parallel for collapse(2) schedule(static)
    for (int in = 0; in < n; in++)
        for (int b = 0; b < cb; b++) {
            float v[16] = {0};
            for (int l = 0; l < B && b * B + l < c; l++) v[l] = dy[(size_t)in * c + b * B + l] * inv;
            float *db = dx + ((size_t)in * cb + b) * hw * B;
            for (size_t i = 0; i < hw; i++)
                for (int l = 0; l < B; l++) db[i * B + l] = v[l];
        }
    dp_dx_done(net, nd, 0, dx, acc);
    return DP_OK;
}

/* size gradient: none (the output is 1 x 1 whatever the input) */
const dp_op dp_op_gap = {.name = "global_avg_pool", .infer = gap_infer, .forward = gap_forward,
                         .backward = gap_backward};
