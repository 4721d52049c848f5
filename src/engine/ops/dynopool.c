/* dynopool.c — the DynOPool node: the operator of src/op/dynopool.c (docs/operator.md) on the
 * engine's layout, with a learned alpha = (alpha_h, alpha_w).
 *
 *   shape   ho = floor(max(h / alpha_h, 1.5) + 0.5), likewise wo; layout kept
 *   MACs    0 in the model's count (docs/operator.md, "How MACs are counted"); its
 *           own cost 16 c ho wo per image is reported apart (own_macs; Table 5.5)
 *   size gradient  out = in / alpha, straight through: to the input and to alpha
 *   alphas  its own or its owner's; cap: raises its own (a sharer has none)
 *   params  alpha (2), held by the node itself or shared with another DynOPool
 *           (nd->owner: ResNet's shortcut uses its block's alpha)
 *   backward dx, and dalpha ADDED to the owner's gradient (two users may share it) */
#include <math.h>

#include "engine/engine.h"

static const float *alpha_of(dp_net *net, const dp_node *nd)
{
    return dp_param(net, net->nodes[nd->owner].w_off);
}

static int dyn_infer(dp_net *net, dp_node *nd)
{
    const dp_act *x = &dp_in(net, nd, 0)->y;
    const float *al = alpha_of(net, nd);
    const int ho = dp_dynopool_size(x->h, al[0]), wo = dp_dynopool_size(x->w, al[1]);
    if (ho < 0) return ho;
    if (wo < 0) return wo;
    dp_set_shape(&nd->y, x->n, x->c, ho, wo, x->blk);
    return DP_OK;
}

/* Four bilinear samples of four weighted corners per output cell (the 4-way max
 * is comparisons); dp_dynopool_macs counts the same for a whole batch. */
static double dyn_own_macs(const dp_net *net, const dp_node *nd)
{
    (void)net;
    return 16.0 * nd->y.c * nd->y.h * nd->y.w;
}

static int dyn_forward(dp_net *net, dp_node *nd, int train)
{
    (void)train;
    const dp_act *x = &dp_in(net, nd, 0)->y;
    const float *al = alpha_of(net, nd);
    return dp_dynopool_forward_blk(x->data, x->n, (x->c + x->blk - 1) / x->blk, x->h, x->w,
                                   x->blk, al[0], al[1], nd->y.data);
}

static int dyn_backward(dp_net *net, dp_node *nd)
{
    dp_node *xn = dp_in(net, nd, 0);
    const dp_act *x = &xn->y;
    const float *al = alpha_of(net, nd);
    int acc = 0;
    float *dx = xn->need_dx ? dp_dx_target(net, nd, 0, &acc) : dp_net_tmp(net, dp_act_numel(x));
    if (!dx) return DP_ERR_NOMEM;
    float da[2];
    int rc = dp_dynopool_backward_blk(x->data, nd->dy.data, x->n, (x->c + x->blk - 1) / x->blk,
                                      x->h, x->w, x->blk, al[0], al[1], dx, da);
    if (rc) return rc;
    float *g = dp_grad(net, net->nodes[nd->owner].w_off);
    g[0] += da[0];
    g[1] += da[1];
    if (xn->need_dx) dp_dx_done(net, nd, 0, dx, acc);
    return DP_OK;
}

/* The straight-through chain: out = in / alpha, so d out / d in = 1 / alpha and
 * d out / d alpha = dp_dynopool_size_grad; both 0 on an axis held at the floor. */
static void dyn_size_grad(dp_net *net, dp_node *nd, float scale, float *galpha)
{
    dp_node *x = dp_in(net, nd, 0);
    const long long off = net->nodes[nd->owner].w_off;
    const float *al = dp_param(net, off);
    const double ah = al[0], aw = al[1];
    if (x->y.h / ah > 1.5) {
        x->gh += nd->gh / ah;
        if (galpha) galpha[off] += (float)(scale * nd->gh * dp_dynopool_size_grad(x->y.h, al[0]));
    }
    if (x->y.w / aw > 1.5) {
        x->gw += nd->gw / aw;
        if (galpha) galpha[off + 1] += (float)(scale * nd->gw * dp_dynopool_size_grad(x->y.w, al[1]));
    }
}

static int dyn_alphas(const dp_net *net, const dp_node *nd, float alpha[2])
{
    const float *a = net->params + net->nodes[nd->owner].w_off;
    alpha[0] = a[0], alpha[1] = a[1];
    return 1;
}

/* The smallest alpha (>= a) whose output side from `in` is at most cap. */
static float alpha_for_cap(int in, float a, int cap)
{
    if (dp_dynopool_size(in, a) <= cap) return a;
    float b = (float)in / ((float)cap + 0.5f); /* the boundary; then up to the first float inside */
    while (dp_dynopool_size(in, b) > cap) b = nextafterf(b, INFINITY);
    return b > a ? b : a;
}

static int dyn_cap(dp_net *net, dp_node *nd, int max_side)
{
    if (nd->w_off < 0) return 0; /* a shared alpha: its owner, which sees the same size, caps it */
    const dp_act *x = &dp_in(net, nd, 0)->y;
    float *a = net->params + nd->w_off;
    const float ah = alpha_for_cap(x->h, a[0], max_side), aw = alpha_for_cap(x->w, a[1], max_side);
    const int raised = ah != a[0] || aw != a[1];
    a[0] = ah, a[1] = aw;
    return raised;
}

const dp_op dp_op_dynopool = {.name = "dynopool", .infer = dyn_infer, .own_macs = dyn_own_macs,
                              .forward = dyn_forward, .backward = dyn_backward,
                              .size_grad = dyn_size_grad, .alphas = dyn_alphas, .cap = dyn_cap};
