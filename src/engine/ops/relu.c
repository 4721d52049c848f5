/* relu.c — ReLU and ReLU6 (clip > 0: y = min(max(x, 0), clip)), elementwise.
 *
 *   shape   y like x (any layout: padded lanes stay 0)
 *   MACs    0 (activations are not counted: docs/operator.md,
 *           "How MACs are counted")
 *   forward y = max(x, 0)              (clip == 0)
 *           y = min(max(x, 0), clip)   (ReLU6: clip == 6)
 *   backward dx = dy where 0 < x (< clip), else 0   (PyTorch's relu / hardtanh rule)
 *   NaN     passes through both ways, as in PyTorch (written as "x <= 0 ? 0 : x",
 *           never "x > 0 ? x : 0", so that divergence is not hidden) */
#include <math.h>

#include "engine/engine.h"

static int relu_forward(dp_net *net, dp_node *nd, int train)
{
    (void)train;
    const float *x = dp_in(net, nd, 0)->y.data;
    float *y = nd->y.data;
    const size_t n = dp_act_numel(&nd->y);
    const float hi = nd->clip;
    if (hi > 0.0f) {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) y[i] = x[i] <= 0.0f ? 0.0f : x[i] >= hi ? hi : x[i];
    } else {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) y[i] = x[i] <= 0.0f ? 0.0f : x[i];
    }
    return DP_OK;
}

static int relu_backward(dp_net *net, dp_node *nd)
{
    dp_node *xn = dp_in(net, nd, 0);
    if (!xn->need_dx) return DP_OK;
    int acc;
    float *dx = dp_dx_target(net, nd, 0, &acc);
    if (!dx) return DP_ERR_NOMEM;
    const float *x = xn->y.data, *dy = nd->dy.data;
    const size_t n = dp_act_numel(&nd->y);
    const float hi = nd->clip > 0.0f ? nd->clip : INFINITY;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) dx[i] = x[i] <= 0.0f || x[i] >= hi ? 0.0f : dy[i];
    dp_dx_done(net, nd, 0, dx, acc);
    return DP_OK;
}

const dp_op dp_op_relu = {.name = "relu", .infer = dp_infer_same, .forward = relu_forward,
                          .backward = relu_backward, .size_grad = dp_size_grad_same};
