/* shape_adaptor.c — Shape Adaptor (Liu et al., ECCV 2020; docs/models.md, "Shape Adaptor"):
 * a learned mix of a reduced and an identity branch, both resized bilinearly
 * (align_corners=True) to the running size.
 *
 *   inputs  in[0] = x (identity branch), in[1] = reduce(x) (max-pool or conv/2 + BN)
 *   params  alpha (1) = a;  sigma = sigmoid(a), scale s = 0.5 + 0.5 sigma
 *   shape   the running size D (per axis, nd->run) becomes D s; out = dp_size_round(D)
 *   forward y = (1 - sigma) resize(in1) + sigma resize(in0)
 *   backward d in0 = sigma resize^T(dy), d in1 = (1 - sigma) resize^T(dy),
 *            da = sum dy (resize(in0) - resize(in1)) sigma (1 - sigma)   (not through the size)
 *   MACs    0 (resizing is not counted)
 * The workspace keeps both resized branches for the backward. */
#include <math.h>
#include <string.h>

#include "engine/engine.h"

static float sigma_of(dp_net *net, const dp_node *nd)
{
    return 1.0f / (1.0f + dp_exp_neg(dp_param(net, nd->w_off)[0]));
}

/* The running size is a chain through the model's adaptors, in node order: the
 * first starts from its input's size, each later one from the previous one's
 * continuous size (nd->run), so rounding does not accumulate. */
static int sa_infer(dp_net *net, dp_node *nd)
{
    const dp_act *x = &dp_in(net, nd, 0)->y, *r = &dp_in(net, nd, 1)->y;
    if (x->n != r->n || x->c != r->c || x->blk != r->blk) return DP_ERR_SIZE;
    const dp_node *prev = NULL;
    for (const dp_node *p = nd - 1; p > net->nodes && !prev; p--)
        if (p->type == nd->type) prev = p;
    const double d0[2] = {prev ? prev->run[0] : x->h, prev ? prev->run[1] : x->w};
    const double s = 0.5 + 0.5 * (double)sigma_of(net, nd);
    int out[2];
    for (int a = 0; a < 2; a++) {
        nd->run[a] = d0[a] * s;
        if ((out[a] = dp_size_round(nd->run[a])) < 0) return out[a];
    }
    dp_set_shape(&nd->y, x->n, x->c, out[0], out[1], x->blk);
    return DP_OK;
}

/* Reported as alpha = 1 / scale on both axes. */
static int sa_alphas(const dp_net *net, const dp_node *nd, float alpha[2])
{
    const double sg = 1.0 / (1.0 + exp(-(double)net->params[nd->w_off]));
    alpha[0] = alpha[1] = (float)(1.0 / (0.5 + 0.5 * sg));
    return 1;
}

/* Taps of one axis for align_corners=True: i0, i1 and the weight of i1. */
static void taps(int in, int out, int *i0, int *i1, float *t)
{
    const float scale = out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.0f;
    for (int i = 0; i < out; i++) {
        const float src = scale * (float)i;
        int k = (int)src;
        if (k > in - 1) k = in - 1;
        i0[i] = k;
        i1[i] = k < in - 1 ? k + 1 : k;
        t[i] = src - (float)k;
    }
}

/* out (n, cb, H, W, B) = (blocked) bilinear resize of x; scale times, added
 * when add is set. */
static void resize(const dp_act *x, int H, int W, const int *ih0, const int *ih1, const float *th,
                   const int *iw0, const int *iw1, const float *tw, float *out)
{
    const int B = x->blk, cb = (x->c + B - 1) / B;
    const size_t inb = (size_t)x->h * x->w * B, outb = (size_t)H * W * B;
#pragma omp parallel for schedule(static)
    for (ptrdiff_t p = 0; p < (ptrdiff_t)x->n * cb; p++) {
        const float *xb = x->data + p * inb;
        float *ob = out + p * outb;
        for (int i = 0; i < H; i++) {
            const float *r0 = xb + (size_t)ih0[i] * x->w * B, *r1 = xb + (size_t)ih1[i] * x->w * B;
            for (int j = 0; j < W; j++) {
                const int c0 = iw0[j] * B, c1 = iw1[j] * B;
                float *o = ob + ((size_t)i * W + j) * B;
                for (int l = 0; l < B; l++)
                    o[l] = (1.0f - th[i]) * ((1.0f - tw[j]) * r0[c0 + l] + tw[j] * r0[c1 + l]) +
                           th[i] * ((1.0f - tw[j]) * r1[c0 + l] + tw[j] * r1[c1 + l]);
            }
        }
    }
}

/* dx (layout of x) overwritten with scale * resize^T(g). */
static void resize_back(const float *g, float scale, const dp_act *x, int H, int W, const int *ih0,
                        const int *ih1, const float *th, const int *iw0, const int *iw1,
                        const float *tw, float *dx)
{
    const int B = x->blk, cb = (x->c + B - 1) / B;
    const size_t inb = (size_t)x->h * x->w * B, outb = (size_t)H * W * B;
#pragma omp parallel for schedule(static)
    for (ptrdiff_t p = 0; p < (ptrdiff_t)x->n * cb; p++) {
        float *db = dx + p * inb;
        const float *gb = g + p * outb;
        memset(db, 0, sizeof(float) * inb);
        for (int i = 0; i < H; i++) {
            float *r0 = db + (size_t)ih0[i] * x->w * B, *r1 = db + (size_t)ih1[i] * x->w * B;
            for (int j = 0; j < W; j++) {
                const int c0 = iw0[j] * B, c1 = iw1[j] * B;
                const float *o = gb + ((size_t)i * W + j) * B;
                for (int l = 0; l < B; l++) {
                    const float v = scale * o[l];
                    r0[c0 + l] += (1.0f - th[i]) * (1.0f - tw[j]) * v;
                    r0[c1 + l] += (1.0f - th[i]) * tw[j] * v;
                    r1[c0 + l] += th[i] * (1.0f - tw[j]) * v;
                    r1[c1 + l] += th[i] * tw[j] * v;
                }
            }
        }
    }
}

typedef struct {
    int *i0, *i1;
    float *t;
} sa_taps;

/* Taps for both axes of input slot s, carved from mem (4 * (H + W) words). */
static void sa_make_taps(const dp_act *x, int H, int W, int *mem, sa_taps *th, sa_taps *tw)
{
    th->i0 = mem, th->i1 = mem + H, th->t = (float *)(mem + 2 * H);
    tw->i0 = mem + 3 * H, tw->i1 = mem + 3 * H + W, tw->t = (float *)(mem + 3 * H + 2 * W);
    taps(x->h, H, th->i0, th->i1, th->t);
    taps(x->w, W, tw->i0, tw->i1, tw->t);
}

static int sa_forward(dp_net *net, dp_node *nd, int train)
{
    (void)train;
    const int H = nd->y.h, W = nd->y.w;
    const size_t m = dp_act_numel(&nd->y);
    float *ws = dp_node_ws(nd, sizeof(float) * 2 * m + sizeof(int) * 8 * (size_t)(H + W));
    if (!ws) return DP_ERR_NOMEM;
    int *tm = (int *)(ws + 2 * m);
    const float sg = sigma_of(net, nd);
    for (int s = 0; s < 2; s++) {
        const dp_act *x = &dp_in(net, nd, s)->y;
        sa_taps th, tw;
        sa_make_taps(x, H, W, tm + 4 * (H + W) * s, &th, &tw);
        resize(x, H, W, th.i0, th.i1, th.t, tw.i0, tw.i1, tw.t, ws + m * s);
    }
    const float *r0 = ws, *r1 = ws + m;
    float *y = nd->y.data;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < m; i++) y[i] = (1.0f - sg) * r1[i] + sg * r0[i];
    return DP_OK;
}

static int sa_backward(dp_net *net, dp_node *nd)
{
    const int H = nd->y.h, W = nd->y.w;
    const size_t m = dp_act_numel(&nd->y);
    const float *r0 = nd->ws, *r1 = nd->ws + m, *dy = nd->dy.data;
    int *tm = (int *)(nd->ws + 2 * m);
    const float sg = sigma_of(net, nd);
    double ds = 0.0;
#pragma omp parallel for reduction(+ : ds) schedule(static)
    for (size_t i = 0; i < m; i++) ds += (double)dy[i] * (double)(r0[i] - r1[i]);
    dp_grad(net, nd->w_off)[0] = (float)(ds * sg * (1.0 - sg));
    for (int s = 0; s < 2; s++) {
        dp_node *xn = dp_in(net, nd, s);
        if (!xn->need_dx) continue;
        int acc;
        float *dx = dp_dx_target(net, nd, s, &acc);
        if (!dx) return DP_ERR_NOMEM;
        sa_taps th, tw;
        sa_make_taps(&xn->y, H, W, tm + 4 * (H + W) * s, &th, &tw);
        resize_back(dy, s == 0 ? sg : 1.0f - sg, &xn->y, H, W, th.i0, th.i1, th.t, tw.i0, tw.i1,
                    tw.t, dx);
        dp_dx_done(net, nd, s, dx, acc);
    }
    return DP_OK;
}

/* size gradient: none (the paper's comparison: Shape Adaptor learns its scale
 * from the task loss only, not through its size) */
const dp_op dp_op_shape_adaptor = {.name = "shape_adaptor", .infer = sa_infer,
                                   .forward = sa_forward, .backward = sa_backward,
                                   .alphas = sa_alphas};
