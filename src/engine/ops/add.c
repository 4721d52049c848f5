/* add.c — residual addition y = a + b of two maps of one shape and layout,
 * optionally followed by ReLU in place (ResNet's "out += identity; relu(out)").
 *
 *   shape   y like a (b must match: ResNet's two branches share one
 *           alpha, docs/models.md, "Where DynOPool goes")
 *   MACs    0
 *   size gradient: through a (the main path; b has the same size)
 *   forward y = a + b, or max(a + b, 0) when nd->relu
 *   backward da = db = dy (times [y > 0] when nd->relu) */
#include <string.h>

#include "engine/engine.h"

static int add_infer(dp_net *net, dp_node *nd)
{
    const dp_act *a = &dp_in(net, nd, 0)->y, *b = &dp_in(net, nd, 1)->y;
    if (a->n != b->n || a->c != b->c || a->h != b->h || a->w != b->w || a->blk != b->blk)
        return DP_ERR_SIZE;
    dp_set_shape(&nd->y, a->n, a->c, a->h, a->w, a->blk);
    return DP_OK;
}

static int add_forward(dp_net *net, dp_node *nd, int train)
{
    (void)train;
    const float *a = dp_in(net, nd, 0)->y.data, *b = dp_in(net, nd, 1)->y.data;
    float *y = nd->y.data;
    const size_t n = dp_act_numel(&nd->y);
    if (nd->relu) {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) {
            const float v = a[i] + b[i];
            y[i] = v <= 0.0f ? 0.0f : v; /* NaN passes, as in PyTorch */
        }
    } else {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
    }
    return DP_OK;
}

static int add_backward(dp_net *net, dp_node *nd)
{
    const size_t n = dp_act_numel(&nd->y);
    if (nd->relu) { /* dy is this node's own buffer: mask it in place */
        float *dy = nd->dy.data;
        const float *y = nd->y.data;
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) dy[i] = y[i] <= 0.0f ? 0.0f : dy[i];
    }
    /* input 1 gets a copy, input 0 (the main path) the buffer itself */
    for (int s = 1; s >= 0; s--) {
        if (!dp_in(net, nd, s)->need_dx) continue;
        if (s == 0 && dp_dy_hand_over(net, nd, 0)) break;
        int acc;
        float *dx = dp_dx_target(net, nd, s, &acc);
        if (!dx) return DP_ERR_NOMEM;
        memcpy(dx, nd->dy.data, sizeof(float) * n);
        dp_dx_done(net, nd, s, dx, acc);
    }
    return DP_OK;
}

const dp_op dp_op_add = {.name = "add", .infer = add_infer, .forward = add_forward,
                         .backward = add_backward, .size_grad = dp_size_grad_same};
