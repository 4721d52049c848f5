/* maxpool.c — max pooling, square kernel k, stride s, padding p.
 *
 *   shape   ho = (h + 2p - k) / s + 1, likewise wo; layout kept
 *   MACs    0 (pooling is not counted: docs/operator.md)
 *   forward y = max over the window (padding never wins; ties to the first in
 *           row-major order, NaN wins as in PyTorch)
 *   backward dy goes to the winner
 * Reference path: loops on NCHW with the winners' indices in the workspace;
 * fast path: oneDNN on the blocked layout. */
#include <limits.h>
#include <math.h>
#include <string.h>

#include "engine/dnn.h"

static int pool_infer(dp_net *net, dp_node *nd)
{
    const dp_act *x = &dp_in(net, nd, 0)->y;
    int ho, wo;
    const int rc = dp_window_size(x, nd, &ho, &wo);
    if (rc) return rc;
    dp_set_shape(&nd->y, x->n, x->c, ho, wo, x->blk);
    return DP_OK;
}

/* oneDNN's max pooling lets a number win over NaN; PyTorch's NaN wins (it
 * must show, not hide, a diverged network).  After oneDNN's kernel, each NaN
 * of x makes every output whose window holds it NaN.  x: (n, c, h, w) and
 * y: (n, c, ho, wo), both in blocks of B = x->blk channels.  A scan for NaN
 * costs one read of x; the repair runs only when one is found. */
static void nan_windows(const dp_act *x, dp_act *y, int k, int s, int p)
{
    const size_t n = dp_act_numel(x);
    int any = 0;
#pragma omp parallel for simd schedule(static) reduction(| : any)
    for (size_t i = 0; i < n; i++) any |= x->data[i] != x->data[i];
    if (!any) return;
    const int B = x->blk, cb = (x->c + B - 1) / B;
    for (size_t q = 0; q < (size_t)x->n * cb; q++) /* one block of B channels of one image */
        for (int ii = 0; ii < x->h; ii++)
            for (int jj = 0; jj < x->w; jj++)
                for (int l = 0; l < B; l++) {
                    if (!isnan(x->data[((q * x->h + ii) * x->w + jj) * B + l])) continue;
                    /* outputs i with i*s - p <= ii <= i*s - p + k - 1 */
                    const int i0 = ii + p - k + 1 > 0 ? (ii + p - k + 1 + s - 1) / s : 0;
                    const int j0 = jj + p - k + 1 > 0 ? (jj + p - k + 1 + s - 1) / s : 0;
                    for (int i = i0; i <= (ii + p) / s && i < y->h; i++)
                        for (int j = j0; j <= (jj + p) / s && j < y->w; j++)
                            y->data[((q * y->h + i) * y->w + j) * B + l] = NAN;
                }
}

static int pool_forward(dp_net *net, dp_node *nd, int train)
{
    const dp_act *x = &dp_in(net, nd, 0)->y;
    if (net->backend == DP_BACKEND_DNNL) {
        const int rc = dnn_pool_forward(&nd->be, x, nd->k, nd->stride, nd->pad, train, &nd->y);
        if (!rc) nan_windows(x, &nd->y, nd->k, nd->stride, nd->pad);
        return rc;
    }
    const int ho = nd->y.h, wo = nd->y.w, k = nd->k, s = nd->stride, p = nd->pad;
    const size_t planes = (size_t)x->n * x->c;
    int *arg = dp_node_ws(nd, sizeof(int) * planes * ho * wo);
    if (!arg) return DP_ERR_NOMEM;
#pragma omp parallel for schedule(static)
    for (size_t pl = 0; pl < planes; pl++) {
        const float *xp = x->data + pl * x->h * x->w;
        for (int i = 0; i < ho; i++)
            for (int j = 0; j < wo; j++) {
                float best = -INFINITY;
                int bi = -1;
                for (int a = 0; a < k; a++)
                    for (int b = 0; b < k; b++) {
                        const int ii = i * s - p + a, jj = j * s - p + b;
                        if (ii < 0 || ii >= x->h || jj < 0 || jj >= x->w) continue;
                        const float v = xp[ii * x->w + jj];
                        if (bi < 0 || v > best || (isnan(v) && !isnan(best))) best = v, bi = ii * x->w + jj;
                    }
                const size_t o = (pl * ho + i) * wo + j;
                nd->y.data[o] = best;
                arg[o] = bi;
            }
    }
    return DP_OK;
}

static int pool_backward(dp_net *net, dp_node *nd)
{
    dp_node *xn = dp_in(net, nd, 0);
    if (!xn->need_dx) return DP_OK;
    int acc, rc = DP_OK;
    float *dx = dp_dx_target(net, nd, 0, &acc);
    if (!dx) return DP_ERR_NOMEM;
    if (net->backend == DP_BACKEND_DNNL) {
        rc = dnn_pool_backward(&nd->be, &nd->dy, dx, &xn->y);
    } else {
        const size_t planes = (size_t)xn->y.n * xn->y.c, hw = (size_t)xn->y.h * xn->y.w;
        const size_t ohw = (size_t)nd->y.h * nd->y.w;
        const int *arg = (const int *)nd->ws;
        memset(dx, 0, sizeof(float) * planes * hw);
        for (size_t pl = 0; pl < planes; pl++)
            for (size_t o = 0; o < ohw; o++) dx[pl * hw + arg[pl * ohw + o]] += nd->dy.data[pl * ohw + o];
    }
    if (!rc) dp_dx_done(net, nd, 0, dx, acc);
    return rc;
}

const dp_op dp_op_maxpool = {.name = "maxpool", .infer = pool_infer, .forward = pool_forward,
                             .backward = pool_backward, .size_grad = dp_size_grad_strided};
