/* dynopool.c — the DynOPool node: the operator of dynopool_op.c (SPEC 1) on the
 * engine's layout, with a learned alpha = (alpha_h, alpha_w).
 *
 *   shape   ho = floor(max(h / alpha_h, 1.5) + 0.5), likewise wo; layout kept
 *   MACs    0 in the model's count (SPEC 2); its own cost 16 c ho wo per image is
 *           reported apart (dp_dynopool_macs, Table 5.5)
 *   params  alpha (2), held by the node itself or shared with another DynOPool
 *           (nd->owner: ResNet's shortcut uses its block's alpha)
 *   backward dx, and dalpha ADDED to the owner's gradient (two users may share it) */
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

static double dyn_macs(const dp_net *net, const dp_node *nd)
{
    (void)net, (void)nd;
    return 0.0;
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

const dp_op dp_op_dynopool = {"dynopool", dyn_infer, dyn_macs, dyn_forward, dyn_backward};
