/* concat.c — channel concatenation y = cat(a, b) along C (torch.cat(..., 1));
 * HRNetV2's head concatenates four branches as three of these.
 *
 *   shape   a (n, ca, h, w), b (n, cb, h, w), one layout -> y (n, ca + cb, h, w)
 *   MACs    0; no parameters
 *   forward y[:, :ca] = a, y[:, ca:] = b.  In a blocked layout b's channels start
 *           inside a block when ca is not a multiple of it; the padded lanes of y
 *           are written 0.
 *   backward da = dy[:, :ca], db = dy[:, ca:]   (OVERWRITES both)
 *   size gradient: through a (b has the same size) */
#include <string.h>

#include "engine/engine.h"

static int concat_infer(dp_net *net, dp_node *nd)
{
    if (nd->in[1] < 0) return DP_ERR_ARG;
    const dp_act *a = &dp_in(net, nd, 0)->y, *b = &dp_in(net, nd, 1)->y;
    if (a->n != b->n || a->h != b->h || a->w != b->w || a->blk != b->blk) return DP_ERR_SIZE;
    if (a->c > 0x7fffffff - b->c) return DP_ERR_OVERFLOW;
    dp_set_shape(&nd->y, a->n, a->c + b->c, a->h, a->w, a->blk);
    return DP_OK;
}

/* Channels [0, c) of the plane set s (n, c, hw, blk B) to channels [off, off + c)
 * of d (n, cd, hw, B), or back when to_src; whole blocks at once when off is a
 * multiple of B. */
static void move_channels(float *d, int cd, const float *s, int c, int off, int n, size_t hw,
                          int B, int to_src)
{
    const int sb = dp_cpad(c, B) / B, db = dp_cpad(cd, B) / B;
    if (off % B == 0) {
        const size_t blk = hw * B;
#pragma omp parallel for collapse(2) schedule(static)
        for (int in = 0; in < n; in++)
            for (int k = 0; k < sb; k++) {
                float *dp = d + ((size_t)in * db + off / B + k) * blk;
                float *sp = (float *)s + ((size_t)in * sb + k) * blk;
                /* the source's padded lanes (zeros) land in the destination's:
                 * b's are y's; a's last block is whole whenever off = ca is aligned */
                if (to_src) memcpy(sp, dp, sizeof(float) * blk);
                else memcpy(dp, sp, sizeof(float) * blk);
            }
        return;
    }
#pragma omp parallel for collapse(2) schedule(static)
    for (int in = 0; in < n; in++)
        for (int ch = 0; ch < c; ch++) {
            const int dc = off + ch;
            float *dp = d + ((size_t)in * db + dc / B) * hw * B + dc % B;
            float *sp = (float *)s + ((size_t)in * sb + ch / B) * hw * B + ch % B;
            for (size_t p = 0; p < hw; p++) {
                if (to_src) sp[p * B] = dp[p * B];
                else dp[p * B] = sp[p * B];
            }
        }
}

/* Zeroes the padded lanes of a from channel c on. */
static void zero_pad(float *a, int c, int n, size_t hw, int B)
{
    const int cb = dp_cpad(c, B) / B;
    if (c % B == 0) return;
#pragma omp parallel for schedule(static)
    for (int in = 0; in < n; in++) {
        float *p = a + ((size_t)in * cb + cb - 1) * hw * B;
        for (size_t q = 0; q < hw; q++)
            for (int l = c % B; l < B; l++) p[q * B + l] = 0.0f;
    }
}

static int concat_forward(dp_net *net, dp_node *nd, int train)
{
    (void)train;
    const dp_act *a = &dp_in(net, nd, 0)->y, *b = &dp_in(net, nd, 1)->y;
    const size_t hw = (size_t)a->h * a->w;
    const int B = a->blk, c = nd->y.c;
    move_channels(nd->y.data, c, a->data, a->c, 0, a->n, hw, B, 0);
    move_channels(nd->y.data, c, b->data, b->c, a->c, a->n, hw, B, 0);
    zero_pad(nd->y.data, c, a->n, hw, B);
    return DP_OK;
}

static int concat_backward(dp_net *net, dp_node *nd)
{
    for (int s = 1; s >= 0; s--) {
        dp_node *p = dp_in(net, nd, s);
        if (!p->need_dx) continue;
        int acc;
        float *dx = dp_dx_target(net, nd, s, &acc);
        if (!dx) return DP_ERR_NOMEM;
        const dp_act *x = &p->y;
        const size_t hw = (size_t)x->h * x->w;
        move_channels(nd->dy.data, nd->y.c, dx, x->c, s ? dp_in(net, nd, 0)->y.c : 0, x->n, hw,
                      x->blk, 1);
        zero_pad(dx, x->c, x->n, hw, x->blk);
        dp_dx_done(net, nd, s, dx, acc);
    }
    return DP_OK;
}

const dp_op dp_op_concat = {.name = "concat", .infer = concat_infer, .forward = concat_forward,
                            .backward = concat_backward, .size_grad = dp_size_grad_same};
