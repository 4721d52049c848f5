/* stochastic_depth.c — stochastic depth on a residual branch (torchvision's
 * StochasticDepth(p, "row") in EfficientNet's MBConv blocks: docs/models.md).
 *
 *   shape   y like x (any layout); nd->drop = p, the probability of dropping the branch
 *   MACs    0
 *   train   y[n] = x[n] m[n],  m[n] = 1 / (1 - p) with probability 1 - p, else 0, one
 *           draw per sample from (net->seed, net->step, node, n) (dp_rand_u01): no
 *           generator state, so a resumed run draws what the first run drew
 *   eval    y = x  (also in training when p = 0)
 *   backward dx[n] = dy[n] m[n] (the draws repeated; overwrites); reads neither x nor y,
 *           so the node may work in place over its input (nd->inplace: EfficientNet's
 *           blocks, over the projection BN's output, which nothing else reads) */
#include <string.h>

#include "engine/engine.h"

static int sd_infer(dp_net *net, dp_node *nd)
{
    const dp_act *x = &dp_in(net, nd, 0)->y;
    if (!(nd->drop >= 0.0f && nd->drop < 1.0f)) return DP_ERR_ARG;
    dp_set_shape(&nd->y, x->n, x->c, x->h, x->w, x->blk);
    return DP_OK;
}

/* out[n] = in[n] m[n] */
static void apply(const dp_net *net, const dp_node *nd, const float *in, float *out)
{
    const size_t per = dp_act_numel(&nd->y) / (size_t)nd->y.n;
    const int id = (int)(nd - net->nodes);
    for (int n = 0; n < nd->y.n; n++) {
        const float m = dp_rand_u01(net->seed, net->step, id, (size_t)n) < nd->drop
                            ? 0.0f : (float)(1.0 / (1.0 - (double)nd->drop));
        const float *a = in + (size_t)n * per;
        float *b = out + (size_t)n * per;
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < per; i++) b[i] = a[i] * m;
    }
}

static int sd_forward(dp_net *net, dp_node *nd, int train) { return dp_masked_forward(net, nd, train, apply); }

static int sd_backward(dp_net *net, dp_node *nd) { return dp_masked_backward(net, nd, apply); }

const dp_op dp_op_stochastic_depth = {.name = "stochastic_depth", .infer = sd_infer,
                                      .forward = sd_forward, .backward = sd_backward,
                                      .size_grad = dp_size_grad_same};
