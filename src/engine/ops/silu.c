/* silu.c — SiLU (swish), elementwise: EfficientNet's activation (docs/models.md).
 * Where it follows a batch norm it is fused into that node instead (batchnorm.c,
 * relu = DP_ACT_SILU), as ReLU is.
 *
 *   shape   y like x (any layout: padded lanes stay 0, since silu(0) = 0)
 *   MACs    0 (activations are not counted: docs/operator.md, "How MACs are counted")
 *   forward y = x sigmoid(x)
 *   backward dx = dy s (1 + x (1 - s)),  s = sigmoid(x)   (overwrites; PyTorch's silu_backward)
 *   NaN     passes through both ways */
#include <math.h>

#include "engine/engine.h"

static inline float sigm(float x) { return 1.0f / (1.0f + dp_exp_neg(x)); }

static int silu_forward(dp_net *net, dp_node *nd, int train)
{
    (void)train;
    const float *x = dp_in(net, nd, 0)->y.data;
    float *y = nd->y.data;
    const size_t n = dp_act_numel(&nd->y);
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) y[i] = x[i] * sigm(x[i]);
    return DP_OK;
}

static int silu_backward(dp_net *net, dp_node *nd)
{
    dp_node *xn = dp_in(net, nd, 0);
    if (!xn->need_dx) return DP_OK;
    int acc;
    float *dx = dp_dx_target(net, nd, 0, &acc);
    if (!dx) return DP_ERR_NOMEM;
    const float *x = xn->y.data, *dy = nd->dy.data;
    const size_t n = dp_act_numel(&nd->y);
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        const float s = sigm(x[i]);
        dx[i] = dy[i] * s * (1.0f + x[i] * (1.0f - s));
    }
    dp_dx_done(net, nd, 0, dx, acc);
    return DP_OK;
}

const dp_op dp_op_silu = {.name = "silu", .infer = dp_infer_same, .forward = silu_forward,
                          .backward = silu_backward, .size_grad = dp_size_grad_same};
