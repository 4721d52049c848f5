/* dropout.c — dropout (torchvision's classifier.0 in EfficientNet: docs/models.md).
 *
 *   shape   y like x (any layout); nd->drop = p, the probability of zeroing
 *   MACs    0
 *   train   y = x m,  m = 1 / (1 - p) with probability 1 - p, else 0, drawn per
 *           element from (net->seed, net->step, node, the element's NCHW index)
 *           (dp_rand_u01): no generator state, the same mask on both backends and
 *           any thread count, and a resumed run draws what the first run drew
 *   eval    y = x  (also in training when p = 0)
 *   backward dx = dy m (the mask recomputed from the same draws; overwrites) */
#include <string.h>

#include "engine/engine.h"

static int dropout_infer(dp_net *net, dp_node *nd)
{
    const dp_act *x = &dp_in(net, nd, 0)->y;
    if (!(nd->drop >= 0.0f && nd->drop < 1.0f)) return DP_ERR_ARG;
    dp_set_shape(&nd->y, x->n, x->c, x->h, x->w, x->blk);
    return DP_OK;
}

/* out = in m over the logical elements; padded lanes left as they are in in (0) */
static void apply(const dp_net *net, const dp_node *nd, const float *in, float *out)
{
    const dp_act *y = &nd->y;
    const int B = y->blk, cb = (y->c + B - 1) / B, c = y->c, id = (int)(nd - net->nodes);
    const size_t hw = (size_t)y->h * y->w;
    const double p = nd->drop;
    const float keep = (float)(1.0 / (1.0 - p));
#pragma omp parallel for collapse(2) schedule(static)
    for (int in_ = 0; in_ < y->n; in_++)
        for (int b = 0; b < cb; b++) {
            const size_t o = ((size_t)in_ * cb + b) * hw * B;
            for (size_t i = 0; i < hw; i++)
                for (int l = 0; l < B; l++) {
                    const int ch = b * B + l;
                    const size_t e = o + i * B + l;
                    if (ch >= c) {
                        out[e] = in[e];
                        continue;
                    }
                    const size_t logical = ((size_t)in_ * c + ch) * hw + i;
                    out[e] = dp_rand_u01(net->seed, net->step, id, logical) < p ? 0.0f : in[e] * keep;
                }
        }
}

static int dropout_forward(dp_net *net, dp_node *nd, int train) { return dp_masked_forward(net, nd, train, apply); }

static int dropout_backward(dp_net *net, dp_node *nd) { return dp_masked_backward(net, nd, apply); }

const dp_op dp_op_dropout = {.name = "dropout", .infer = dropout_infer, .forward = dropout_forward,
                             .backward = dropout_backward, .size_grad = dp_size_grad_same};
