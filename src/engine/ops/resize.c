/* resize.c — bilinear resize of in[0] to the size that in[1] has, as HRNet's
 * F.interpolate(x, size=ref.shape[2:], mode='bilinear', align_corners=False)
 * (every configuration of the official HRNet segmentation code sets
 * ALIGN_CORNERS: False; docs/models.md, "HRNetV2").
 *
 *   shape   x (n, c, h, w), ref (., ., H, W) -> y (n, c, H, W), x's layout.  ref's
 *           data is never read: only its size (a fusion resamples to the size the
 *           target branch actually has, whatever its alphas made it)
 *   MACs    0 (resizing is not counted: docs/operator.md, "How MACs are counted")
 *   forward per axis (PyTorch's area_pixel_compute_source_index, align_corners=False):
 *             s = (i + 1/2) h / H - 1/2, clamped below at 0;  i0 = floor(s),
 *             i1 = min(i0 + 1, h - 1), t = s - i0
 *           y[i, j] = (1-t)(1-u) x[i0, j0] + (1-t) u x[i0, j1] + t (1-u) x[i1, j0]
 *                     + t u x[i1, j1]          (u, j0, j1 the same along w)
 *           The positions and weights are computed in double and rounded once.
 *   backward dx = the transpose: each dy[i, j] added to its four taps with those
 *           weights (OVERWRITES dx).  The taps depend on the sizes alone, never on
 *           the values: no kinks.  ref gets no gradient.
 *   size gradient: the output size is ref's, so nd->gh, gw go to in[1].
 *   params none; workspace: the per-axis tap tables. */
#include <string.h>

#include "engine/engine.h"

typedef struct { int i0, i1; float t; } tap;

static int resize_infer(dp_net *net, dp_node *nd)
{
    if (nd->in[1] < 0) return DP_ERR_ARG;
    const dp_act *x = &dp_in(net, nd, 0)->y, *r = &dp_in(net, nd, 1)->y;
    if (x->h <= 0 || x->w <= 0 || r->h <= 0 || r->w <= 0) return DP_ERR_SIZE;
    dp_set_shape(&nd->y, x->n, x->c, r->h, r->w, x->blk);
    return DP_OK;
}

static void taps(tap *t, int in, int out)
{
    const double scale = (double)in / out;
    for (int i = 0; i < out; i++) {
        double s = (i + 0.5) * scale - 0.5;
        if (s < 0.0) s = 0.0;
        int i0 = (int)s;
        if (i0 > in - 1) i0 = in - 1;
        t[i].i0 = i0;
        t[i].i1 = i0 + 1 < in ? i0 + 1 : in - 1;
        t[i].t = (float)(s - i0);
    }
}

/* The tap tables of both axes in the node's workspace: H entries, then W. */
static tap *tables(dp_net *net, dp_node *nd)
{
    const dp_act *x = &dp_in(net, nd, 0)->y;
    const int H = nd->y.h, W = nd->y.w;
    tap *t = dp_node_ws(nd, sizeof(tap) * ((size_t)H + W));
    if (!t) return NULL;
    taps(t, x->h, H);
    taps(t + H, x->w, W);
    return t;
}

static int resize_forward(dp_net *net, dp_node *nd, int train)
{
    (void)train;
    const dp_act *x = &dp_in(net, nd, 0)->y;
    const tap *th = tables(net, nd);
    if (!th) return DP_ERR_NOMEM;
    const int H = nd->y.h, W = nd->y.w, h = x->h, w = x->w, B = x->blk;
    const tap *tw = th + H;
    const long long planes = (long long)x->n * (dp_cpad(x->c, B) / B);
    float *y = nd->y.data;
#pragma omp parallel for collapse(2) schedule(static)
    for (long long pl = 0; pl < planes; pl++)
        for (int i = 0; i < H; i++) {
            const float *xp = x->data + (size_t)pl * h * w * B;
            const float t = th[i].t;
            const float *r0 = xp + (size_t)th[i].i0 * w * B, *r1 = xp + (size_t)th[i].i1 * w * B;
            float *yr = y + ((size_t)pl * H + i) * W * B;
            for (int j = 0; j < W; j++) {
                const float u = tw[j].t;
                const size_t a = (size_t)tw[j].i0 * B, b = (size_t)tw[j].i1 * B;
                for (int l = 0; l < B; l++)
                    yr[(size_t)j * B + l] = (1.0f - t) * ((1.0f - u) * r0[a + l] + u * r0[b + l]) +
                                            t * ((1.0f - u) * r1[a + l] + u * r1[b + l]);
            }
        }
    return DP_OK;
}

static int resize_backward(dp_net *net, dp_node *nd)
{
    dp_node *xn = dp_in(net, nd, 0);
    if (!xn->need_dx) return DP_OK;
    const tap *th = tables(net, nd); /* the sizes are those of the forward */
    if (!th) return DP_ERR_NOMEM;
    int acc;
    float *dx = dp_dx_target(net, nd, 0, &acc);
    if (!dx) return DP_ERR_NOMEM;
    const dp_act *x = &xn->y;
    const int H = nd->y.h, W = nd->y.w, h = x->h, w = x->w, B = x->blk;
    const tap *tw = th + H;
    const long long planes = (long long)x->n * (dp_cpad(x->c, B) / B);
    const float *dy = nd->dy.data;
    /* one plane (n, channel block) per iteration: its dx is written by it alone */
#pragma omp parallel for schedule(static)
    for (long long pl = 0; pl < planes; pl++) {
        float *dp = dx + (size_t)pl * h * w * B;
        memset(dp, 0, sizeof(float) * (size_t)h * w * B);
        for (int i = 0; i < H; i++) {
            const float t = th[i].t;
            float *r0 = dp + (size_t)th[i].i0 * w * B, *r1 = dp + (size_t)th[i].i1 * w * B;
            const float *dr = dy + ((size_t)pl * H + i) * W * B;
            for (int j = 0; j < W; j++) {
                const float u = tw[j].t;
                const size_t a = (size_t)tw[j].i0 * B, b = (size_t)tw[j].i1 * B;
                for (int l = 0; l < B; l++) {
                    const float g = dr[(size_t)j * B + l], g0 = (1.0f - t) * g, g1 = t * g;
                    r0[a + l] += (1.0f - u) * g0;
                    r0[b + l] += u * g0;
                    r1[a + l] += (1.0f - u) * g1;
                    r1[b + l] += u * g1;
                }
            }
        }
    }
    dp_dx_done(net, nd, 0, dx, acc);
    return DP_OK;
}

/* The output size is in[1]'s: the gradient of L_GMACs by the size goes there. */
static void resize_size_grad(dp_net *net, dp_node *nd, float scale, float *galpha)
{
    (void)scale, (void)galpha;
    dp_node *r = dp_in(net, nd, 1);
    r->gh += nd->gh;
    r->gw += nd->gw;
}

const dp_op dp_op_resize = {.name = "resize_bilinear", .infer = resize_infer, .forward = resize_forward,
                            .backward = resize_backward, .size_grad = resize_size_grad};
