/* linear.c — fully connected layer on a plain (n, cin) matrix.
 *
 *   shape   x (n, cin, 1, 1) NCHW -> y (n, cout, 1, 1)
 *   MACs    cin * cout                                    (the bias is not counted; docs/operator.md)
 *   forward y = x W^T + b
 *   params  weight (cout, cin), bias (cout)
 *   backward dW = dy^T x, db = sum_n dy, dx = dy W
 * Reference backend: loops accumulating in double.  oneDNN backend: three
 * oneDNN matmuls on the plain matrices (dnn_linear_*, float accumulation, no
 * reorder; chosen over OpenBLAS sgemm and oneDNN inner product by
 * bench/bench_linear.c, docs/engine.md).  db is the same double loop on both.
 * Mixed precision (net->bf16): the matmuls multiply bf16 copies of x, W and dy
 * and accumulate in f32; db stays the double loop over the f32 dy. */
#include "engine/dnn.h"
#include "engine/engine.h"

static int linear_infer(dp_net *net, dp_node *nd)
{
    const dp_act *x = &dp_in(net, nd, 0)->y;
    if (x->h != 1 || x->w != 1 || x->blk != 1) return DP_ERR_SIZE;
    dp_set_shape(&nd->y, x->n, nd->cout, 1, 1, 1);
    return DP_OK;
}

static double linear_macs(const dp_net *net, const dp_node *nd)
{
    return (double)net->nodes[nd->in[0]].y.c * nd->cout;
}

static int linear_forward(dp_net *net, dp_node *nd, int train)
{
    (void)train;
    const dp_act *x = &dp_in(net, nd, 0)->y;
    const int n = x->n, ci = x->c, co = nd->cout;
    const float *w = dp_param(net, nd->w_off), *b = dp_param(net, nd->b_off);
    float *y = nd->y.data;
    if (net->backend == DP_BACKEND_DNNL) return dnn_linear_forward(&nd->be, x->data, w, b, n, ci, co, net->bf16, y);
    for (int i = 0; i < n; i++)
        for (int o = 0; o < co; o++) {
            double acc = b[o];
            for (int k = 0; k < ci; k++) acc += (double)x->data[(size_t)i * ci + k] * w[(size_t)o * ci + k];
            y[(size_t)i * co + o] = (float)acc;
        }
    return DP_OK;
}

static int linear_backward(dp_net *net, dp_node *nd)
{
    dp_node *xn = dp_in(net, nd, 0);
    const dp_act *x = &xn->y;
    const int n = x->n, ci = x->c, co = nd->cout;
    const float *w = dp_param(net, nd->w_off), *dy = nd->dy.data;
    float *dw = dp_grad(net, nd->w_off), *db = dp_grad(net, nd->b_off);
    int acc = 0;
    float *dx = xn->need_dx ? dp_dx_target(net, nd, 0, &acc) : NULL;
    for (int o = 0; o < co; o++) {
        double s = 0.0;
        for (int i = 0; i < n; i++) s += dy[(size_t)i * co + o];
        db[o] = (float)s;
    }
    if (net->backend == DP_BACKEND_DNNL) {
        const int rc = dnn_linear_backward(&nd->be, x->data, w, dy, n, ci, co, net->bf16, dx, dw);
        if (rc) return rc;
    } else {
        for (int o = 0; o < co; o++)
            for (int k = 0; k < ci; k++) {
                double s = 0.0;
                for (int i = 0; i < n; i++) s += (double)dy[(size_t)i * co + o] * x->data[(size_t)i * ci + k];
                dw[(size_t)o * ci + k] = (float)s;
            }
        if (dx)
            for (int i = 0; i < n; i++)
                for (int k = 0; k < ci; k++) {
                    double s = 0.0;
                    for (int o = 0; o < co; o++) s += (double)dy[(size_t)i * co + o] * w[(size_t)o * ci + k];
                    dx[(size_t)i * ci + k] = (float)s;
                }
    }
    if (dx) dp_dx_done(net, nd, 0, dx, acc);
    return DP_OK;
}

/* size gradient: none (1 x 1 in and out) */
const dp_op dp_op_linear = {.name = "linear", .infer = linear_infer, .macs = linear_macs,
                            .cost_in_loss = 1, .forward = linear_forward,
                            .backward = linear_backward};
