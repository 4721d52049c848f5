/* input.c — the graph's first node: holds the batch.
 *
 *   shape   set by dp_net_shapes from the caller's (n, c, h, w), NCHW
 *   MACs    0; no parameters; forward and backward do nothing */
#include "engine/engine.h"

static int input_infer(dp_net *net, dp_node *nd)
{
    (void)net, (void)nd;
    return DP_OK;
}

static int input_forward(dp_net *net, dp_node *nd, int train)
{
    (void)net, (void)nd, (void)train;
    return DP_OK;
}

static int input_backward(dp_net *net, dp_node *nd)
{
    (void)net, (void)nd;
    return DP_OK;
}

const dp_op dp_op_input = {.name = "input", .infer = input_infer, .forward = input_forward,
                           .backward = input_backward};
