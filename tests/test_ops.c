/* test_ops.c — finite-difference gradient checks of every engine op, on both
 * backends (the plain-C reference on NCHW and oneDNN on its blocked layouts).
 *
 * Each case builds a tiny network by hand with the internal API (net.h):
 *
 *     input -> conv 3x3 (upstream parameters) -> OP UNDER TEST -> tail -> CE(fixed labels)
 *     tail = conv 3x3/2 pad 1 (no bias) -> global average pool -> linear
 *
 * The tail is linear up to the softmax: its stride-2 conv hands the op a gradient
 * that varies over the map (a stride-1 conv before the average pool would give a
 * constant one away from the borders) without adding kinks of its own.
 *
 * For every parameter tensor of the net (the op's own, the upstream conv's, which
 * only get a gradient through the op's dx, and the tail's) the engine's gradient
 * is compared with central differences of the loss (float forward, loss in double)
 * on a random sample: 64 entries of the op's tensors, 32 upstream, 12 in the tail.
 *
 *   step   h = 1e-2 * max(|p|, rms of the tensor).  The brief said ~1e-3, but the
 *          float forward puts 2e-8 .. 1.5e-7 of rounding noise into the loss
 *          (measured per net and per tensor, loss_noise), and at 1e-3 that noise
 *          alone made several-percent errors on ordinary entries.
 *   check  |analytic - fd| <= 2e-2 * max(|analytic|, |fd|, scale) + noise allowance,
 *          scale = 0.05 * rms of the sample (a floor for entries tiny next to the
 *          tensor's), allowance = 3 * noise / h.  An entry whose allowance exceeds
 *          the tolerance is a weak check; a tensor with more than half of its
 *          sample weak or skipped fails (a check that skips everything cannot fail).
 *   kinks  Every discrete decision of the forward (ReLU / ReLU6 masks, fused or
 *          not, max-pool winners, DynOPool's selected query points) is hashed
 *          after each evaluation; when p + h or p - h flips one, the step is cut
 *          to h/4, then h/16, and the entry is skipped if decisions still flip.
 *          As a second line, the two one-sided differences must agree to 2e-2;
 *          when they don't, a rerun at h/2 tells curvature (BN, the adaptor's
 *          sigma: the one-sided gap halves, the central difference stays) from a
 *          kink the hash missed (skipped).  Skips are counted and reported.
 *
 * DynOPool's alpha is not differenced (the forward is piecewise constant in
 * alpha): the engine's dalpha is compared with dp_dynopool_backward (the verified
 * NCHW operator, docs/operator.md, "Aggregation") on the node's input converted
 * to NCHW and dL/d(output) from an independent double-precision model of the
 * tail (ref_tail, whose logits must match the engine's), summed over the
 * DynOPools sharing the alpha.  The
 * Shape Adaptor's a enters smoothly through sigma and is differenced, with a
 * chosen so that the running size is far from a rounding boundary (asserted).
 *
 * Every case runs on DP_BACKEND_REF (blk 1), DP_BACKEND_DNNL with the engine's
 * block (16 on AVX-512) and, when that is 16, DNNL with blk forced to 8 (the
 * layout of machines without AVX-512).  Channel counts (6, 8, 12, 18, 20, and the
 * tail's 10) are not all multiples of 8 and none of 16, so padded lanes are live.
 * Also checked on each: every node's output keeps its padded lanes at zero; the
 * gradients do not depend on the thread count (the finite differences run on a
 * one-thread copy of the net, whose own gradients must match the ambient run's);
 * each DNNL run matches the REF run of the same weights and input, every node's
 * output and every gradient, to 1e-4 (relative to the entry, floored at 1% of
 * the tensor's largest).  Softmax cross-entropy, its per-pixel form with the
 * ignore label (seg_ce.c) and the bilinear resize's values (against PyTorch's
 * align_corners=False rule written out in double) are also checked on their own.
 *
 * That the checks catch bugs was verified on a scratch copy of the tree (never
 * committed), one mutation at a time; each made this test fail:
 *   maxpool.c ref backward: gradient to (arg + 1) % hw            9 failed checks
 *   batchnorm.c ref_backward: the "- xh * sg / m" term dropped   15
 *   conv2d.c ref_backward: dx reads the kernel transposed       187
 *   relu.c forward: leaky (0.01 x + 1e-3) below 0                  9 (padded lanes too)
 *   gap.c backward: first cell of each map gets 1.1 dy          278
 *   add.c relu backward: mask y >= 0 instead of y > 0             10
 *   batchnorm.c relu6 backward: mask y <= 6 instead of y < 6       9
 *   dynopool.c: dalpha of a shared alpha overwritten, not added    4 (shared-alpha case)
 *   shape_adaptor.c: da without the sigma (1 - sigma) factor       7
 *   dnn.c: bn backward with dgamma and dbeta swapped (DNNL only)  32
 *   dnn.c: linear dx (matmul) scaled by 0.99 (1%: below the
 *          finite-difference tolerance, caught by REF vs DNNL)   228
 *   this file: analytic gradients scaled by 1.05 before the check 423
 *   batchnorm.c silu backward: s (1 + z (1 - 0.9 s))               9 (bn + silu)
 *   squeeze_excite.c: the pooled gradient divided by hw + 1       12 (both SE cases)
 *   resize.c backward: one of the four taps given 1.01 of its share  13 (the resize cases)
 *   concat.c backward: b's gradient read one channel early        19 (both concat cases)
 * Dropout and stochastic depth are differenced at a fixed mask (seed and step
 * fixed); check_masks holds the masks themselves (rate, scale, per-sample draws,
 * the same mask for a repeated step, another for another step, identity in eval).
 *
 * Environment: DP_OPS_CASE=substring runs the matching cases only; DP_FD_STEP
 * overrides the relative step (experiments). */
#include "engine/dnn.h"
#include "engine/net.h"
#include "testutil.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FD_STEP 1e-2    /* relative step (see the header: 1e-3 drowns in float noise) */
#define FD_TOL 2e-2     /* relative error of a checked entry */
#define KINK_TOL 2e-2   /* one-sided differences further apart than this: a kink? */
#define SMOOTH_TOL 5e-3 /* the test at h/2 that tells a kink from curvature (see fd_tensor) */
#define XB_RTOL 1e-4    /* REF against DNNL */
#define TAIL_C 10       /* channels of the tail conv */
#define MAX_NODES 48

/* ---- building tiny nets --------------------------------------------------------- */

typedef struct {
    dp_net *net;
    int rc;
    float alpha[MAX_NODES][2]; /* initial alphas of DynOPool / shape adaptor nodes */
    float gain[MAX_NODES];     /* BN: gamma scale (0: 1) */
    int tail_in, tail_conv;    /* the node feeding the tail and the tail's conv (-1: none) */
    int focus;                 /* node of the op under test */
} tb;

static int t_node(tb *b, int type, int in0, int in1)
{
    if (b->rc) return -1;
    if (b->net->n_nodes >= MAX_NODES) {
        b->rc = DP_ERR_ARG;
        return -1;
    }
    char name[16];
    snprintf(name, sizeof name, "n%d", b->net->n_nodes);
    int id = dp_net_add(b->net, type, in0, in1, name);
    if (id < 0) b->rc = id;
    return id;
}

static long long t_param(tb *b, int id, const char *leaf, int ndim, const int *shape, int group)
{
    if (b->rc) return -1;
    char name[96];
    snprintf(name, sizeof name, "%.16s.%.16s", b->net->nodes[id].name, leaf);
    long long off = dp_net_param(b->net, name, ndim, shape, group);
    if (off < 0) b->rc = (int)off;
    return off;
}

static int t_conv(tb *b, int in, int cin, int cout, int k, int s, int p, int g, int bias)
{
    int id = t_node(b, DP_OP_CONV, in, -1);
    if (id < 0) return id;
    dp_node *nd = &b->net->nodes[id];
    nd->cout = cout, nd->k = k, nd->stride = s, nd->pad = p, nd->groups = g, nd->bias = bias;
    const int ws[4] = {cout, cin / g, k, k}, bs[1] = {cout};
    long long w = t_param(b, id, "weight", 4, ws, 0);
    long long bo = bias ? t_param(b, id, "bias", 1, bs, 0) : -1;
    b->net->nodes[id].w_off = w, b->net->nodes[id].b_off = bo;
    return id;
}

static int t_bn(tb *b, int in, int c, int relu)
{
    int id = t_node(b, DP_OP_BN, in, -1);
    if (id < 0) return id;
    const int cs[1] = {c};
    long long w = t_param(b, id, "weight", 1, cs, 0), bo = t_param(b, id, "bias", 1, cs, 0);
    dp_node *nd = &b->net->nodes[id];
    nd->relu = relu, nd->w_off = w, nd->b_off = bo;
    nd->s_off = dp_net_stat(b->net, "running_mean", c, id, 0);
    dp_net_stat(b->net, "running_var", c, id, 1);
    return id;
}

static int t_relu(tb *b, int in, float clip)
{
    int id = t_node(b, DP_OP_RELU, in, -1);
    if (id >= 0) b->net->nodes[id].clip = clip;
    return id;
}

static int t_maxpool(tb *b, int in, int k, int s, int p)
{
    int id = t_node(b, DP_OP_MAXPOOL, in, -1);
    if (id < 0) return id;
    dp_node *nd = &b->net->nodes[id];
    nd->k = k, nd->stride = s, nd->pad = p;
    return id;
}

/* A DynOPool with its own alpha (owner < 0) or sharing owner's. */
static int t_dyn(tb *b, int in, int owner, float ah, float aw)
{
    int id = t_node(b, DP_OP_DYNOPOOL, in, -1);
    if (id < 0) return id;
    if (owner >= 0) {
        b->net->nodes[id].owner = owner;
        return id;
    }
    const int as[1] = {2};
    long long w = t_param(b, id, "alpha", 1, as, 1);
    b->net->nodes[id].w_off = w;
    b->alpha[id][0] = ah, b->alpha[id][1] = aw;
    return id;
}

static int t_sa(tb *b, int x, int r, float a)
{
    int id = t_node(b, DP_OP_SHAPE_ADAPTOR, x, r);
    if (id < 0) return id;
    const int as[1] = {1};
    long long w = t_param(b, id, "alpha", 1, as, 1);
    b->net->nodes[id].w_off = w;
    b->alpha[id][0] = a;
    return id;
}

static int t_add(tb *b, int x, int y, int relu)
{
    int id = t_node(b, DP_OP_ADD, x, y);
    if (id >= 0) b->net->nodes[id].relu = relu;
    return id;
}

static int t_head(tb *b, int in, int cin, int classes)
{
    int g = t_node(b, DP_OP_GAP, in, -1);
    int id = t_node(b, DP_OP_LINEAR, g, -1);
    if (id < 0) return id;
    const int ws[2] = {classes, cin}, bs[1] = {classes};
    long long w = t_param(b, id, "weight", 2, ws, 0), bo = t_param(b, id, "bias", 1, bs, 0);
    dp_node *nd = &b->net->nodes[id];
    nd->cout = classes, nd->w_off = w, nd->b_off = bo;
    b->net->out = id;
    return id;
}

/* conv 3x3/2 pad 1 (no bias) -> GAP -> linear, modelled by ref_tail(). */
static int t_tail(tb *b, int in, int c, int classes)
{
    b->tail_in = in;
    b->tail_conv = t_conv(b, in, c, TAIL_C, 3, 2, 1, 1, 0);
    return t_head(b, b->tail_conv, TAIL_C, classes);
}

/* ---- the cases ------------------------------------------------------------------------ */

typedef struct tcase {
    const char *name;
    int n, c, h, w, classes;
    float in_scale;
    void (*build)(tb *b, const struct tcase *tc);
    int iarg[4];   /* case parameters */
    float farg[2];
} tcase;

#define FOCUS(b, x) ((b)->focus = (x))

/* input -> conv(3x3 pad 1, bias) -> conv under test (conv_geos[iarg[0]]) -> tail */
typedef struct { int cin, cout, k, s, p, g, bias; } convgeo;
static const convgeo conv_geos[] = {
    {6, 12, 3, 1, 1, 1, 1},   /* plain 3x3, bias */
    {12, 20, 3, 2, 1, 1, 0},  /* 3x3 stride 2 pad 1, no bias */
    {12, 18, 1, 2, 0, 1, 1},  /* 1x1 stride 2 (ResNet downsample), bias */
    {12, 18, 3, 1, 1, 3, 1},  /* grouped (3 groups of 4 -> 6), bias */
    {12, 12, 3, 1, 1, 12, 0}, /* depthwise, no bias */
    {20, 20, 3, 2, 1, 20, 1}, /* depthwise stride 2, bias */
    {12, 8, 5, 1, 2, 2, 0},   /* 5x5 pad 2, 2 groups of 6 -> 4 */
    {20, 20, 5, 1, 2, 20, 0}, /* depthwise 5x5 (EfficientNet), no bias */
    {12, 12, 5, 2, 2, 12, 1}, /* depthwise 5x5 stride 2, bias */
};

static void b_conv(tb *b, const tcase *tc)
{
    const convgeo *g = &conv_geos[tc->iarg[0]];
    int x = t_conv(b, 0, tc->c, g->cin, 3, 1, 1, 1, 1);
    x = FOCUS(b, t_conv(b, x, g->cin, g->cout, g->k, g->s, g->p, g->g, g->bias));
    t_tail(b, x, g->cout, tc->classes);
}

/* iarg[0] channels, iarg[1] bn relu mode (0, 1, 6); farg[0] gamma scale */
static void b_bn(tb *b, const tcase *tc)
{
    int x = t_conv(b, 0, tc->c, tc->iarg[0], 3, 1, 1, 1, 0); /* no bias: BN cancels it */
    x = FOCUS(b, t_bn(b, x, tc->iarg[0], tc->iarg[1]));
    if (x >= 0) b->gain[x] = tc->farg[0];
    t_tail(b, x, tc->iarg[0], tc->classes);
}

/* iarg[0] channels; farg[0] clip */
static void b_relu(tb *b, const tcase *tc)
{
    int x = t_conv(b, 0, tc->c, tc->iarg[0], 3, 1, 1, 1, 1);
    x = FOCUS(b, t_relu(b, x, tc->farg[0]));
    t_tail(b, x, tc->iarg[0], tc->classes);
}

/* iarg[0] channels */
static void b_silu(tb *b, const tcase *tc)
{
    int x = t_conv(b, 0, tc->c, tc->iarg[0], 3, 1, 1, 1, 1);
    x = FOCUS(b, t_node(b, DP_OP_SILU, x, -1));
    t_tail(b, x, tc->iarg[0], tc->classes);
}

/* iarg[0] channels, iarg[1] squeezed channels */
static void b_se(tb *b, const tcase *tc)
{
    const int c = tc->iarg[0], q = tc->iarg[1];
    int x = t_conv(b, 0, tc->c, c, 3, 1, 1, 1, 1);
    int id = FOCUS(b, t_node(b, DP_OP_SE, x, -1));
    if (id >= 0) {
        const int w1[4] = {q, c, 1, 1}, b1[1] = {q}, w2[4] = {c, q, 1, 1}, b2[1] = {c};
        long long o1 = t_param(b, id, "fc1.weight", 4, w1, 0), o2 = t_param(b, id, "fc1.bias", 1, b1, 0);
        long long o3 = t_param(b, id, "fc2.weight", 4, w2, 0), o4 = t_param(b, id, "fc2.bias", 1, b2, 0);
        dp_node *nd = &b->net->nodes[id];
        nd->cout = q, nd->w_off = o1, nd->b_off = o2, nd->w2_off = o3, nd->b2_off = o4;
    }
    t_tail(b, id, c, tc->classes);
}

/* iarg[0] channels, iarg[1]: 0 dropout on the map, 1 stochastic depth on a residual
 * branch, add(sd(conv(x)), x), working in place over the conv's output as in the
 * model; farg[0] the probability */
static void b_drop(tb *b, const tcase *tc)
{
    const int c = tc->iarg[0];
    int x = t_conv(b, 0, tc->c, c, 3, 1, 1, 1, 1);
    int y = tc->iarg[1] ? t_conv(b, x, c, c, 3, 1, 1, 1, 0) : x;
    y = FOCUS(b, t_node(b, tc->iarg[1] ? DP_OP_DROP_PATH : DP_OP_DROPOUT, y, -1));
    if (y >= 0) b->net->nodes[y].drop = tc->farg[0];
    if (y >= 0 && tc->iarg[1]) b->net->nodes[y].inplace = 1; /* over the conv's output, as in EfficientNet */
    if (tc->iarg[1]) y = t_add(b, y, x, 0);
    t_tail(b, y, c, tc->classes);
}

/* iarg: channels, k, s, p */
static void b_maxpool(tb *b, const tcase *tc)
{
    int x = t_conv(b, 0, tc->c, tc->iarg[0], 3, 1, 1, 1, 1);
    x = FOCUS(b, t_maxpool(b, x, tc->iarg[1], tc->iarg[2], tc->iarg[3]));
    t_tail(b, x, tc->iarg[0], tc->classes);
}

/* GAP and linear alone: input -> conv -> GAP -> linear */
static void b_gap(tb *b, const tcase *tc)
{
    int x = t_conv(b, 0, tc->c, tc->iarg[0], 3, 1, 1, 1, 1);
    FOCUS(b, t_head(b, x, tc->iarg[0], tc->classes));
}

/* iarg[0] channels; iarg[1]: 0 add(conv(x), x), 1 add(x, x); iarg[2] relu after the add */
static void b_add(tb *b, const tcase *tc)
{
    const int c = tc->iarg[0];
    int x = t_conv(b, 0, tc->c, c, 3, 1, 1, 1, 1);
    int y = tc->iarg[1] ? x : t_conv(b, x, c, c, 3, 1, 1, 1, 0);
    x = FOCUS(b, t_add(b, y, x, tc->iarg[2]));
    t_tail(b, x, c, tc->classes);
}

/* iarg[0] channels; farg alpha */
static void b_dyn(tb *b, const tcase *tc)
{
    int x = t_conv(b, 0, tc->c, tc->iarg[0], 3, 1, 1, 1, 1);
    x = FOCUS(b, t_dyn(b, x, -1, tc->farg[0], tc->farg[1]));
    t_tail(b, x, tc->iarg[0], tc->classes);
}

/* DynOPool straight on the input (NCHW even on DNNL; no dx needed): dalpha alone */
static void b_dyn_input(tb *b, const tcase *tc)
{
    int x = FOCUS(b, t_dyn(b, 0, -1, tc->farg[0], tc->farg[1]));
    t_tail(b, x, tc->c, tc->classes);
}

/* ResNet's shared alpha: add(dyn_A(x), dyn_B(conv1x1(x))) with B using A's alpha */
static void b_dyn_shared(tb *b, const tcase *tc)
{
    const int c = tc->iarg[0];
    int x = t_conv(b, 0, tc->c, c, 3, 1, 1, 1, 1);
    int a = FOCUS(b, t_dyn(b, x, -1, tc->farg[0], tc->farg[1]));
    int s = t_dyn(b, t_conv(b, x, c, c, 1, 1, 0, 1, 0), a, 0.0f, 0.0f);
    t_tail(b, t_add(b, a, s, 0), c, tc->classes);
}

/* iarg[0] channels, iarg[1]: 0 max-pool 2x2/2 branch, 1 conv 1x1/2 + BN branch; farg[0] a */
static void b_sa(tb *b, const tcase *tc)
{
    const int c = tc->iarg[0];
    int x = t_conv(b, 0, tc->c, c, 3, 1, 1, 1, 1);
    int r = tc->iarg[1] ? t_bn(b, t_conv(b, x, c, c, 1, 2, 0, 1, 0), c, 0)
                        : t_maxpool(b, x, 2, 2, 0);
    x = FOCUS(b, t_sa(b, x, r, tc->farg[0]));
    t_tail(b, x, c, tc->classes);
}

/* iarg[0] channels; iarg[1]: 0 up-sample a stride-2 conv's map to the input's size
 * (HRNet's fusion and head), 1 down-sample to a 3x3/2 max-pool's size of the input,
 * 2 to a 3x3/3 max-pool's (a ratio of 11/3 by 8/2).  The reference's data is never
 * read: a max-pool of the input gives a size without parameters of its own */
static void b_resize(tb *b, const tcase *tc)
{
    const int c = tc->iarg[0];
    int x = t_conv(b, 0, tc->c, c, 3, 1, 1, 1, 1), ref = 0;
    if (tc->iarg[1] == 0) x = t_conv(b, x, c, c, 3, 2, 1, 1, 0);
    if (tc->iarg[1] == 1) ref = t_maxpool(b, 0, 3, 2, 1);
    if (tc->iarg[1] == 2) ref = t_maxpool(b, 0, 3, 3, 0);
    x = FOCUS(b, t_node(b, DP_OP_RESIZE, x, ref));
    t_tail(b, x, c, tc->classes);
}

/* iarg[0], iarg[1]: the channels of the two parts; cat(conv(x), conv(conv(x))) */
static void b_concat(tb *b, const tcase *tc)
{
    const int c0 = tc->iarg[0], c1 = tc->iarg[1];
    int a = t_conv(b, 0, tc->c, c0, 3, 1, 1, 1, 1);
    int d = t_conv(b, a, c0, c1, 3, 1, 1, 1, 0);
    int x = FOCUS(b, t_node(b, DP_OP_CONCAT, a, d));
    t_tail(b, x, c0 + c1, tc->classes);
}

static const tcase cases[] = {
    {"conv 3x3/1 p1 bias", 2, 3, 7, 7, 5, 1.0f, b_conv, {0}, {0}},
    {"conv 3x3/2 p1", 2, 3, 9, 9, 5, 1.0f, b_conv, {1}, {0}},
    {"conv 1x1/2 bias", 3, 3, 9, 7, 5, 1.0f, b_conv, {2}, {0}},
    {"conv 3x3 groups 3 bias", 2, 3, 7, 7, 5, 1.0f, b_conv, {3}, {0}},
    {"conv depthwise 3x3", 2, 3, 9, 7, 5, 1.0f, b_conv, {4}, {0}},
    {"conv depthwise 3x3/2 bias", 2, 3, 9, 9, 5, 1.0f, b_conv, {5}, {0}},
    {"conv 5x5 p2 groups 2", 2, 3, 5, 7, 5, 1.0f, b_conv, {6}, {0}},
    {"bn", 2, 3, 9, 7, 5, 1.0f, b_bn, {12, 0}, {0}},
    {"bn + relu", 3, 3, 7, 7, 5, 1.0f, b_bn, {20, 1}, {0}},
    {"bn + relu6", 2, 3, 9, 7, 5, 1.0f, b_bn, {12, 6}, {5.0f}}, /* gamma ~ 5: y > 6 often */
    {"relu", 2, 3, 9, 7, 5, 1.0f, b_relu, {12}, {0.0f}},
    {"relu6", 2, 3, 9, 7, 5, 4.0f, b_relu, {20}, {6.0f}},
    {"maxpool 2x2/2", 2, 3, 9, 7, 5, 1.0f, b_maxpool, {12, 2, 2, 0}, {0}},
    {"maxpool 3x3/2 p1", 2, 3, 9, 9, 5, 1.0f, b_maxpool, {20, 3, 2, 1}, {0}},
    {"gap + linear", 3, 3, 7, 5, 6, 1.0f, b_gap, {20}, {0}},
    {"add(conv(x), x)", 2, 3, 9, 7, 5, 1.0f, b_add, {12, 0, 0}, {0}},
    {"add(x, x)", 2, 3, 7, 7, 5, 1.0f, b_add, {6, 1, 0}, {0}},
    {"add + relu", 2, 3, 9, 7, 5, 1.0f, b_add, {20, 0, 1}, {0}},
    {"dynopool (2,2)", 2, 3, 9, 7, 5, 1.0f, b_dyn, {12}, {2.0f, 2.0f}},
    {"dynopool (1.7,2.6)", 2, 3, 9, 9, 5, 1.0f, b_dyn, {20}, {1.7f, 2.6f}},
    {"dynopool (0.8,1.3)", 2, 3, 7, 9, 5, 1.0f, b_dyn, {6}, {0.8f, 1.3f}},
    {"dynopool (6,1.9): h at the 1.5 floor", 2, 3, 7, 9, 5, 1.0f, b_dyn, {12}, {6.0f, 1.9f}},
    {"dynopool shared alpha", 2, 3, 9, 7, 5, 1.0f, b_dyn_shared, {12}, {1.7f, 2.6f}},
    {"dynopool on the input", 2, 3, 9, 9, 5, 1.0f, b_dyn_input, {0}, {1.3f, 2.2f}},
    {"shape adaptor max-pool", 2, 3, 9, 7, 5, 1.0f, b_sa, {12, 0}, {-0.4f}},
    {"shape adaptor conv/2+bn", 2, 3, 9, 9, 5, 1.0f, b_sa, {20, 1}, {0.8f}},
    /* EfficientNet's ops (appended: a case's seed follows its index) */
    {"conv depthwise 5x5", 2, 3, 9, 7, 5, 1.0f, b_conv, {7}, {0}},
    {"conv depthwise 5x5/2 bias", 2, 3, 9, 9, 5, 1.0f, b_conv, {8}, {0}},
    {"bn + silu", 2, 3, 9, 7, 5, 1.0f, b_bn, {20, 2}, {2.0f}}, /* gamma ~ 2: silu' from -0.1 to 1.1 */
    {"silu", 2, 3, 9, 7, 5, 2.0f, b_silu, {12}, {0}},
    {"squeeze-excite 20 -> 6", 3, 3, 7, 5, 5, 3.0f, b_se, {20, 6}, {0}},
    {"squeeze-excite 12 -> 4, 3x3 map", 2, 3, 3, 3, 5, 3.0f, b_se, {12, 4}, {0}},
    {"dropout 0.3", 2, 3, 9, 7, 5, 1.0f, b_drop, {12, 0}, {0.3f}},
    {"stochastic depth 0.5", 4, 3, 9, 7, 5, 1.0f, b_drop, {12, 1}, {0.5f}},
    /* HRNet's ops */
    {"resize up 5x4 -> 9x7", 2, 3, 9, 7, 5, 1.0f, b_resize, {12, 0}, {0}},
    {"resize down 9x7 -> 5x4", 2, 3, 9, 7, 5, 1.0f, b_resize, {20, 1}, {0}},
    {"resize down 11x8 -> 3x2", 2, 3, 11, 8, 5, 1.0f, b_resize, {6, 2}, {0}},
    {"concat 6 + 12", 2, 3, 7, 5, 5, 1.0f, b_concat, {6, 12}, {0}},
    {"concat 16 + 4", 2, 3, 5, 7, 5, 1.0f, b_concat, {16, 4}, {0}},
};

/* ---- one network on one backend ----------------------------------------------------- */

typedef struct {
    dp_net net;
    tb b;
    const tcase *tc;
    float *x;
    int *labels;
    float *dlog;
    double loss;
    int ok;
} trun;

static void init_params(trun *r, unsigned long long seed)
{
    tu_rng g = {seed};
    dp_net *net = &r->net;
    /* parameters by view, in registration order (the same on every backend) */
    for (int v = 0; v < net->n_pv; v++) {
        const dp_pview *pv = &net->pv[v];
        float *p = net->params + pv->off;
        const dp_node *owner = NULL;
        int is_bias = 0;
        for (int i = 0; i < net->n_nodes; i++) {
            if (net->nodes[i].w_off == pv->off) owner = &net->nodes[i];
            if (net->nodes[i].b_off == pv->off) owner = &net->nodes[i], is_bias = 1;
            if (net->nodes[i].w2_off == pv->off) owner = &net->nodes[i];
            if (net->nodes[i].b2_off == pv->off) owner = &net->nodes[i], is_bias = 1;
        }
        const int id = (int)(owner - net->nodes);
        for (long long k = 0; k < pv->numel; k++) {
            const float z = tu_normal(&g);
            float val = 0.0f;
            switch (owner->type) {
            case DP_OP_CONV:
            case DP_OP_SE: /* two 1x1 convolutions */
                val = is_bias ? 0.2f * z
                              : z * (float)sqrt(2.0 / ((double)pv->shape[1] * pv->shape[2] * pv->shape[3]));
                break;
            case DP_OP_BN:
                val = is_bias ? 0.3f * z : 0.5f + (float)tu_uniform(&g);
                if (!is_bias && r->b.gain[id] > 0.0f) val *= r->b.gain[id];
                break;
            case DP_OP_LINEAR:
                val = is_bias ? 0.1f * z : 1.5f * z / sqrtf((float)pv->shape[1]);
                break;
            case DP_OP_DYNOPOOL:
            case DP_OP_SHAPE_ADAPTOR:
                val = r->b.alpha[id][k];
                break;
            default:
                break;
            }
            p[k] = val;
        }
    }
    for (long long k = 0; k < net->n_stats; k++) net->stats[k] = 0.0f;
    for (int v = 0; v < net->n_sv; v++)
        if (net->sv[v].kind == 1)
            for (long long k = 0; k < net->sv[v].numel; k++) net->stats[net->sv[v].off + k] = 1.0f;
}

static const char *backend_name(int backend, int blk)
{
    if (backend == DP_BACKEND_REF) return "ref";
    return blk == 16 ? "dnnl/16" : "dnnl/8";
}

/* Builds and initialises the case's net.  blk: 0 the backend's own, else forced. */
static int run_init(trun *r, const tcase *tc, int backend, int blk, unsigned long long seed)
{
    memset(r, 0, sizeof(*r));
    r->tc = tc;
    int rc = dp_net_init(&r->net, backend);
    if (rc) return rc;
    if (blk) r->net.blk = blk;
    r->b.net = &r->net;
    r->b.tail_in = r->b.tail_conv = -1;
    t_node(&r->b, DP_OP_INPUT, -1, -1);
    tc->build(&r->b, tc);
    if (r->b.rc) return r->b.rc;
    if ((rc = dp_net_alloc(&r->net))) return rc;
    init_params(r, seed);
    const size_t nx = (size_t)tc->n * tc->c * tc->h * tc->w;
    r->x = malloc(sizeof(float) * nx);
    r->labels = malloc(sizeof(int) * (size_t)tc->n);
    r->dlog = malloc(sizeof(float) * (size_t)tc->n * tc->classes);
    if (!r->x || !r->labels || !r->dlog) return DP_ERR_NOMEM;
    tu_rng g = {seed ^ 0x5eedULL};
    for (size_t i = 0; i < nx; i++) r->x[i] = tc->in_scale * tu_normal(&g);
    for (int i = 0; i < tc->n; i++) r->labels[i] = (3 * i + 1) % tc->classes;
    r->ok = 1;
    return DP_OK;
}

static void run_free(trun *r)
{
    dp_net_free(&r->net);
    free(r->x), free(r->labels), free(r->dlog);
}

/* Forward (training mode) and the loss; dlogits when wanted.  NAN on an error. */
static double run_loss(trun *r, float *dlogits)
{
    const tcase *tc = r->tc;
    int bad = -1;
    int rc = dp_net_forward(&r->net, r->x, tc->n, tc->c, tc->h, tc->w, 1, &bad);
    if (rc) {
        CHECK(0, "%s: forward failed at node %d: %s", tc->name, bad, dp_strerror(rc));
        return NAN;
    }
    double loss;
    rc = dp_softmax_ce(r->net.nodes[r->net.out].y.data, r->labels, tc->n, tc->classes, &loss,
                       dlogits);
    CHECK(rc == DP_OK, "%s: softmax_ce: %s", tc->name, dp_strerror(rc));
    return loss;
}

static int run_grads(trun *r)
{
    r->loss = run_loss(r, r->dlog);
    if (isnan(r->loss)) return DP_ERR_BACKEND;
    int bad = -1, rc = dp_net_backward(&r->net, r->dlog, &bad);
    CHECK(rc == DP_OK, "%s: backward failed at node %d: %s", r->tc->name, bad, dp_strerror(rc));
    /* The backward lends dead activations out as gradient buffers: a second
     * forward (same weights, same batch statistics) restores every node's
     * output for the checks that read them. */
    if (!rc && isnan(run_loss(r, NULL))) rc = DP_ERR_BACKEND;
    return rc;
}

/* ---- layout helpers -------------------------------------------------------------------- */

/* a as NCHW floats (malloc'ed) */
static float *to_nchw(const dp_act *a)
{
    const size_t hw = (size_t)a->h * a->w;
    float *o = malloc(sizeof(float) * (size_t)a->n * a->c * hw);
    if (!o) return NULL;
    const int B = a->blk, cb = dp_cpad(a->c, B) / B;
    for (int n = 0; n < a->n; n++)
        for (int c = 0; c < a->c; c++)
            for (size_t i = 0; i < hw; i++)
                o[((size_t)n * a->c + c) * hw + i] =
                    B == 1 ? a->data[((size_t)n * a->c + c) * hw + i]
                           : a->data[(((size_t)n * cb + c / B) * hw + i) * B + c % B];
    return o;
}

/* Non-zero floats in the padded channel lanes of a. */
static size_t padded_nonzero(const dp_act *a)
{
    if (a->blk == 1 || a->c % a->blk == 0 || !a->data) return 0;
    const int B = a->blk, cb = dp_cpad(a->c, B) / B;
    const size_t hw = (size_t)a->h * a->w;
    size_t bad = 0;
    for (int n = 0; n < a->n; n++)
        for (int l = a->c % B; l < B; l++)
            for (size_t i = 0; i < hw; i++)
                bad += a->data[(((size_t)n * cb + cb - 1) * hw + i) * B + l] != 0.0f;
    return bad;
}

/* ---- an independent model of the tail, in double ------------------------------------
 * From the tail's input (node tail_in's output), the tail's weights and the labels:
 * the logits and dL/d(tail input), NCHW. */
static void ref_tail(trun *r, double *logits, float *dy)
{
    dp_net *net = &r->net;
    const dp_node *t = &net->nodes[r->b.tail_in], *cv = &net->nodes[r->b.tail_conv];
    const dp_node *ln = &net->nodes[net->out];
    const int n = t->y.n, c = t->y.c, h = t->y.h, w = t->y.w, c2 = cv->cout, k = ln->cout;
    const int hw = h * w, ho = (h - 1) / 2 + 1, wo = (w - 1) / 2 + 1; /* 3x3/2 pad 1 */
    float *y = to_nchw(&t->y);
    const float *W = net->params + cv->w_off, *L = net->params + ln->w_off;
    const float *lb = net->params + ln->b_off;
    double *g = calloc((size_t)n * c2, sizeof(double)), *dg = calloc((size_t)n * c2, sizeof(double));
    double *dl = calloc((size_t)n * k, sizeof(double));
    for (int in = 0; in < n; in++) /* conv, global average */
        for (int o = 0; o < c2; o++)
            for (int i = 0; i < ho; i++)
                for (int j = 0; j < wo; j++)
                    for (int ci = 0; ci < c; ci++)
                        for (int p = 0; p < 3; p++)
                            for (int q = 0; q < 3; q++) {
                                const int ii = 2 * i - 1 + p, jj = 2 * j - 1 + q;
                                if (ii < 0 || ii >= h || jj < 0 || jj >= w) continue;
                                g[in * c2 + o] += (double)W[((o * c + ci) * 3 + p) * 3 + q] *
                                                  y[((size_t)in * c + ci) * hw + ii * w + jj] /
                                                  (ho * wo);
                            }
    for (int in = 0; in < n; in++) { /* linear, softmax cross-entropy */
        double mx = -INFINITY, s = 0.0;
        for (int o = 0; o < k; o++) {
            double v = lb[o];
            for (int ci = 0; ci < c2; ci++) v += (double)L[o * c2 + ci] * g[in * c2 + ci];
            logits[in * k + o] = v;
            mx = v > mx ? v : mx;
        }
        for (int o = 0; o < k; o++) s += exp(logits[in * k + o] - mx);
        for (int o = 0; o < k; o++)
            dl[in * k + o] = (exp(logits[in * k + o] - mx) / s - (o == r->labels[in])) / n;
        for (int ci = 0; ci < c2; ci++)
            for (int o = 0; o < k; o++) dg[in * c2 + ci] += dl[in * k + o] * L[o * c2 + ci];
    }
    for (int in = 0; in < n; in++) /* conv transposed of dg / (ho wo) on every output cell */
        for (int ci = 0; ci < c; ci++)
            for (int ii = 0; ii < h; ii++)
                for (int jj = 0; jj < w; jj++) {
                    double s = 0.0;
                    for (int p = 0; p < 3; p++)
                        for (int q = 0; q < 3; q++) {
                            const int i2 = ii + 1 - p, j2 = jj + 1 - q; /* = 2 i, 2 j */
                            if (i2 < 0 || j2 < 0 || i2 % 2 || j2 % 2 || i2 / 2 >= ho || j2 / 2 >= wo)
                                continue;
                            for (int o = 0; o < c2; o++)
                                s += dg[in * c2 + o] / (ho * wo) * W[((o * c + ci) * 3 + p) * 3 + q];
                        }
                    dy[((size_t)in * c + ci) * hw + ii * w + jj] = (float)s;
                }
    free(y), free(g), free(dg), free(dl);
}

/* The engine's dalpha of every alpha-owning DynOPool against dp_dynopool_backward on
 * NCHW data with dL/d(output) from ref_tail.  Supported wiring: the DynOPool feeds
 * the tail, or an add that feeds the tail. */
static void check_dalpha(trun *r, const char *tag)
{
    dp_net *net = &r->net;
    const tcase *tc = r->tc;
    const dp_node *t = &net->nodes[r->b.tail_in];
    const size_t tn = (size_t)t->y.n * t->y.c * t->y.h * t->y.w;
    float *dy = malloc(sizeof(float) * tn);
    double *lg = malloc(sizeof(double) * (size_t)tc->n * tc->classes);
    ref_tail(r, lg, dy);
    /* the model of the tail is right: its logits are the engine's */
    const float *el = net->nodes[net->out].y.data;
    double worst = 0.0;
    for (int i = 0; i < tc->n * tc->classes; i++) {
        const double e = fabs(el[i] - lg[i]) / fmax(1.0, fabs(lg[i]));
        worst = e > worst ? e : worst;
    }
    CHECK(worst < 1e-4, "%s [%s]: tail model logits differ from the engine's by %.3g", tc->name,
          tag, worst);
    double want[MAX_NODES][2] = {{0}};
    for (int d = 0; d < net->n_nodes; d++) {
        const dp_node *nd = &net->nodes[d];
        if (nd->type != DP_OP_DYNOPOOL) continue;
        int uses = (d == r->b.tail_in);
        if (t->type == DP_OP_ADD) uses += (t->in[0] == d) + (t->in[1] == d);
        CHECK(uses > 0, "%s: DynOPool node %d does not feed the tail (test wiring)", tc->name, d);
        const dp_act *x = &net->nodes[nd->in[0]].y;
        float *xn = to_nchw(x);
        float *dx = malloc(sizeof(float) * (size_t)x->n * x->c * x->h * x->w);
        const float *al = net->params + net->nodes[nd->owner].w_off;
        float da[2] = {0, 0};
        int rc = dp_dynopool_backward(xn, dy, x->n, x->c, x->h, x->w, al[0], al[1], dx, da);
        CHECK(rc == DP_OK, "%s: dp_dynopool_backward: %s", tc->name, dp_strerror(rc));
        want[nd->owner][0] += uses * (double)da[0];
        want[nd->owner][1] += uses * (double)da[1];
        free(xn), free(dx);
    }
    for (int d = 0; d < net->n_nodes; d++) {
        const dp_node *nd = &net->nodes[d];
        if (nd->type != DP_OP_DYNOPOOL || nd->owner != d) continue;
        const float *got = net->grads + nd->w_off;
        for (int a = 0; a < 2; a++) {
            const double tol = 2e-3 * fabs(want[d][a]) + 1e-6;
            CHECK(fabs(got[a] - want[d][a]) <= tol,
                  "%s [%s]: dalpha[%d] of node %d = %.7g, dp_dynopool_backward gives %.7g",
                  tc->name, tag, a, d, got[a], want[d][a]);
        }
        printf("    dalpha node %d: engine (%+.6f, %+.6f), operator (%+.6f, %+.6f)\n", d, got[0],
               got[1], want[d][0], want[d][1]);
    }
    free(dy), free(lg);
}

/* ---- finite differences ------------------------------------------------------------- */

typedef struct {
    int tensors, checked, skipped, weak, odd; /* odd: skipped on the one-sided test alone */
    double worst;
} fdstat;

static double fd_step = FD_STEP;

/* The rounding noise of the float forward, as seen in the loss: the RMS of the
 * second difference L(p + d) - 2 L(p) + L(p - d) over sqrt(6), for entries of the
 * view (of every view but the alphas when v is NULL) and a step d = 1e-4 |p| so
 * small that curvature contributes nothing, yet large enough that every rounding
 * downstream changes (a step of a few ulps leaves most of them alone and
 * underestimates the noise).  Perturbing an early layer rounds differently all the
 * way down, so the noise depends on the tensor. */
static double loss_noise(trun *r, const dp_pview *v, int probes)
{
    dp_net *net = &r->net;
    tu_rng g = {4242 + (uint64_t)(v ? v->off : 0)};
    const double L0 = run_loss(r, NULL);
    double sum = 0.0;
    int done = 0;
    for (int k = 0; k < 4 * probes && done < probes; k++) {
        const dp_pview *w = v ? v : &net->pv[tu_int(&g, 0, net->n_pv - 1)];
        if (w->group == 1 && !v) continue; /* alphas */
        const long long i = w->off + tu_int(&g, 0, (int)w->numel - 1);
        const float p0 = net->params[i];
        const double d = 1e-4 * fmax(fabs(p0), 1e-2);
        net->params[i] = (float)(p0 + d);
        const double lp = run_loss(r, NULL);
        net->params[i] = (float)(p0 - d);
        const double lm = run_loss(r, NULL);
        net->params[i] = p0;
        const double e = lp - 2.0 * L0 + lm;
        sum += e * e / 6.0, done++;
    }
    return done ? sqrt(sum / done) : 0.0;
}

#define NOISE_K 3.0 /* noise allowance, in (generous) standard deviations */

/* ---- kinks: every discrete decision of the forward, hashed ----------------------------
 * ReLU / ReLU6 masks (relu nodes, BN and add with a fused activation), the max-pool
 * winners and DynOPool's selected query points, recomputed from the nodes' inputs
 * and outputs after a forward.  Two parameter values with the same signature lie on
 * one smooth piece of the loss (up to near-ties at float precision), so a central
 * difference between them is exact to O(h^2). */
static uint64_t mix(uint64_t hsh, uint64_t v) { return (hsh ^ v) * 0x100000001b3ULL; }

static uint64_t decisions(trun *r)
{
    dp_net *net = &r->net;
    uint64_t hsh = 0xcbf29ce484222325ULL;
    for (int id = 1; id < net->n_nodes; id++) {
        const dp_node *nd = &net->nodes[id];
        const dp_act *x = &net->nodes[nd->in[0]].y;
        const size_t numel = dp_act_numel(&nd->y);
        float hi = INFINITY;
        const float *v = NULL;
        if (nd->type == DP_OP_RELU) {
            v = x->data;
            if (nd->clip > 0.0f) hi = nd->clip;
        } else if ((nd->type == DP_OP_BN && (nd->relu == 1 || nd->relu == 6)) ||
                   (nd->type == DP_OP_ADD && nd->relu)) { /* SiLU is smooth: no decision */
            v = nd->y.data; /* y > 0 iff the pre-activation is */
            if (nd->relu == 6) hi = 6.0f;
        }
        if (v) {
            for (size_t i = 0; i < numel; i++)
                hsh = mix(hsh, (uint64_t)(v[i] > 0.0f) | (uint64_t)(v[i] < hi) << 1);
            continue;
        }
        if (nd->type != DP_OP_MAXPOOL && nd->type != DP_OP_DYNOPOOL) continue;
        float *xn = to_nchw(x);
        const int n = x->n, c = x->c, h = x->h, w = x->w, ho = nd->y.h, wo = nd->y.w;
        if (nd->type == DP_OP_MAXPOOL) {
            for (int pl = 0; pl < n * c; pl++)
                for (int i = 0; i < ho; i++)
                    for (int j = 0; j < wo; j++) {
                        int best = -1;
                        for (int p = 0; p < nd->k; p++)
                            for (int q = 0; q < nd->k; q++) {
                                const int ii = i * nd->stride - nd->pad + p;
                                const int jj = j * nd->stride - nd->pad + q;
                                if (ii < 0 || ii >= h || jj < 0 || jj >= w) continue;
                                const int at = ii * w + jj;
                                if (best < 0 || xn[(size_t)pl * h * w + at] > xn[(size_t)pl * h * w + best])
                                    best = at;
                            }
                        hsh = mix(hsh, (uint64_t)best);
                    }
        } else {
            const float *al = net->params + net->nodes[nd->owner].w_off;
            const size_t no = (size_t)n * c * ho * wo;
            double *yd = malloc(sizeof(double) * no);
            int *sel = malloc(sizeof(int) * no);
            tu_naive_forward(xn, n, c, h, w, al[0], al[1], DP_AGG_MAX, yd, sel, NULL);
            for (size_t o = 0; o < no; o++) hsh = mix(hsh, (uint64_t)sel[o]);
            free(yd), free(sel);
        }
        free(xn);
    }
    return hsh;
}

/* L(p0 + d) and L(p0 - d) for entry i; the steps actually taken in hp, hm; the
 * count of the two whose decisions differ from sig0 in *kinks. */
static void fd_pair(trun *r, float *P, int i, double h, uint64_t sig0, double *Lp, double *Lm,
                    double *hp, double *hm, int *kinks)
{
    const float p0 = P[i];
    P[i] = (float)(p0 + h);
    *hp = (double)P[i] - p0;
    *Lp = run_loss(r, NULL);
    *kinks = decisions(r) != sig0;
    P[i] = (float)(p0 - h);
    *hm = p0 - (double)P[i];
    *Lm = run_loss(r, NULL);
    *kinks += decisions(r) != sig0;
    P[i] = p0;
}

static void fd_tensor(trun *r, const dp_pview *v, const float *grad, int maxs, double noise,
                      tu_rng *g, const char *tag, fdstat *st)
{
    const tcase *tc = r->tc;
    float *P = r->net.params + v->off;
    const int total = (int)v->numel, m = total < maxs ? total : maxs;
    int *idx = malloc(sizeof(int) * (size_t)total), *kink = malloc(sizeof(int) * (size_t)m);
    double *fc = malloc(sizeof(double) * m), *fa = malloc(sizeof(double) * m);
    double *hs = malloc(sizeof(double) * m);
    for (int i = 0; i < total; i++) idx[i] = i;
    for (int i = 0; i < m; i++) { /* a random sample without repeats */
        const int j = tu_int(g, i, total - 1), s = idx[i];
        idx[i] = idx[j], idx[j] = s;
    }
    double prms = 0.0;
    for (int i = 0; i < total; i++) prms += (double)P[i] * P[i];
    prms = sqrt(prms / total);
    if (prms < 1e-2) prms = 1e-2;
    const double L0 = run_loss(r, NULL);
    const uint64_t sig0 = decisions(r);
    noise = fmax(noise, loss_noise(r, v, 8));
    for (int s = 0; s < m; s++) {
        double Lp, Lm, hp, hm;
        hs[s] = fd_step * fmax(fabs(P[idx[s]]), prms);
        /* a decision flipped within [p - h, p + h]: try a quarter of the step, twice
         * (more float noise, which the allowance and the weak count account for) */
        for (int t = 0;; t++) {
            fd_pair(r, P, idx[s], hs[s], sig0, &Lp, &Lm, &hp, &hm, &kink[s]);
            if (!kink[s] || t == 2) break;
            hs[s] /= 4;
        }
        fc[s] = (Lp - Lm) / (hp + hm);
        fa[s] = (Lp - L0) / hp - (L0 - Lm) / hm; /* one-sided right minus left */
    }
    double ra = 0.0, rf = 0.0;
    for (int s = 0; s < m; s++) ra += (double)grad[idx[s]] * grad[idx[s]], rf += fc[s] * fc[s];
    const double scale = 0.05 * fmax(sqrt(ra / m), sqrt(rf / m)) + 1e-12;
    int checked = 0, skipped = 0, bad = 0, weak = 0, odd = 0;
    double worst = 0.0;
    for (int s = 0; s < m; s++) {
        const double a = grad[idx[s]], den = fmax(fmax(fabs(a), fabs(fc[s])), scale);
        const double nc = NOISE_K * noise / hs[s]; /* allowance for the float noise of fc */
        if (kink[s]) { /* a decision flipped within [p - h, p + h] */
            skipped++;
            continue;
        }
        if (fabs(fa[s]) > KINK_TOL * den + 2.0 * nc) {
            /* The one-sided differences disagree with no decision flipped: curvature
             * (BN, the shape adaptor's sigma), or a kink the signature misses?  On a
             * smooth function the one-sided gap halves with the step and the central
             * difference barely moves; across a kink they don't. */
            double Lp, Lm, hp, hm;
            int k2;
            fd_pair(r, P, idx[s], hs[s] / 2, sig0, &Lp, &Lm, &hp, &hm, &k2);
            const double fc2 = (Lp - Lm) / (hp + hm), fa2 = (Lp - L0) / hp - (L0 - Lm) / hm;
            if (fabs(fa[s] - 2.0 * fa2) > SMOOTH_TOL * den + 10.0 * nc ||
                fabs(fc[s] - fc2) > SMOOTH_TOL * den + 2.0 * nc) {
                skipped++, odd++;
                continue;
            }
        }
        checked++;
        const int is_weak = nc > FD_TOL * den; /* the noise allowance exceeds the tolerance */
        weak += is_weak;
        const double e = fabs(a - fc[s]) / den;
        if (!is_weak) worst = e > worst ? e : worst;
        if (!(fabs(a - fc[s]) <= FD_TOL * den + nc) && bad++ < 4)
            fprintf(stderr, "  %s [%s] %s[%d]: analytic %.7g, finite difference %.7g (one-sided "
                    "gap %.3g, noise %.2g)\n", tc->name, tag, v->name, idx[s], a, fc[s], fa[s], nc);
    }
    CHECK(bad == 0, "%s [%s]: %d of %d entries of %s differ from finite differences (worst %.3g)",
          tc->name, tag, bad, checked, v->name, worst);
    CHECK(2 * skipped <= m, "%s [%s]: %d of %d entries of %s skipped as kinks", tc->name, tag,
          skipped, m, v->name);
    CHECK(2 * (skipped + weak) <= m, "%s [%s]: of %d entries of %s, %d skipped and %d drowned in "
          "float noise (%.2g)", tc->name, tag, m, v->name, skipped, weak, noise);
    st->tensors++, st->checked += checked, st->skipped += skipped, st->weak += weak;
    st->odd += odd;
    st->worst = worst > st->worst ? worst : st->worst;
    free(idx), free(kink), free(fc), free(fa), free(hs);
}

/* The focus op's activation regimes: ReLU6 (a relu node with a clip, or a BN with
 * relu 6) must see both clipped and linear entries, or the clip goes untested. */
static void check_regimes(trun *r, const char *tag)
{
    const dp_node *nd = &r->net.nodes[r->b.focus];
    float hi = 0.0f;
    if (nd->type == DP_OP_RELU) hi = nd->clip;
    if (nd->type == DP_OP_BN && nd->relu == 6) hi = 6.0f;
    if (hi <= 0.0f) return;
    float *y = to_nchw(&nd->y);
    const size_t n = (size_t)nd->y.n * nd->y.c * nd->y.h * nd->y.w;
    size_t zero = 0, clip = 0, lin = 0;
    for (size_t i = 0; i < n; i++) zero += y[i] == 0.0f, clip += y[i] == hi, lin += y[i] > 0 && y[i] < hi;
    CHECK(zero * 20 > n && clip * 20 > n && lin * 20 > n,
          "%s [%s]: regimes too thin to test the clip: %zu zero, %zu clipped, %zu linear of %zu",
          r->tc->name, tag, zero, clip, lin, n);
    free(y);
}

/* The Shape Adaptor's continuous size must be well away from a rounding boundary,
 * or the finite difference of a would step over a change of shape. */
static void check_sa_margin(trun *r)
{
    for (int i = 0; i < r->net.n_nodes; i++) {
        const dp_node *nd = &r->net.nodes[i];
        if (nd->type != DP_OP_SHAPE_ADAPTOR) continue;
        const double a = r->net.params[nd->w_off], s = 0.5 + 0.5 / (1.0 + exp(-a));
        const dp_act *x = &r->net.nodes[nd->in[0]].y;
        const double d[2] = {x->h * s, x->w * s};
        for (int k = 0; k < 2; k++)
            CHECK(fabs(d[k] - floor(d[k]) - 0.5) > 0.05,
                  "%s: shape adaptor size %.4f is near a rounding boundary (test setup)",
                  r->tc->name, d[k]);
    }
}

/* Result of one backend's run, kept for the cross-backend comparison: every
 * node's output as NCHW (node i at acts + aoff[i]) and the gradients. */
typedef struct {
    float *acts, *grads;
    size_t aoff[MAX_NODES + 1];
    int n_nodes, ok;
} snap;

static int node_of_param(const dp_net *net, long long off)
{
    for (int i = 0; i < net->n_nodes; i++)
        if (net->nodes[i].w_off == off || net->nodes[i].b_off == off || net->nodes[i].w2_off == off ||
            net->nodes[i].b2_off == off) /* w2, b2: squeeze-excite's second convolution */
            return i;
    return -1;
}

static double compare_grads(const dp_net *net, const float *ga, const float *gb, const char *name,
                            const char *tag, const char *what, const char **wname);

/* One case on one backend: the finite-difference and dalpha checks; a snapshot of
 * the logits and gradients for the cross-backend comparison. */
static void run_case(const tcase *tc, int ci, int backend, int blk, snap *out, fdstat *st)
{
    trun r;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    memset(out, 0, sizeof(*out));
    int rc = run_init(&r, tc, backend, blk, 1000u + (unsigned)ci);
    const char *tag = backend_name(backend, r.net.blk);
    CHECK(rc == DP_OK, "%s [%s]: building the net: %s", tc->name, tag, dp_strerror(rc));
    if (rc || run_grads(&r)) {
        run_free(&r);
        return;
    }
    dp_net *net = &r.net;
    for (int i = 0; i < net->n_nodes; i++) {
        size_t nz = padded_nonzero(&net->nodes[i].y);
        CHECK(nz == 0, "%s [%s]: node %d (%s) has %zu non-zero floats in its padded lanes",
              tc->name, tag, i, dp_op_of(net->nodes[i].type)->name, nz);
    }
    check_regimes(&r, tag);
    check_sa_margin(&r);
    out->n_nodes = net->n_nodes;
    for (int i = 0; i < net->n_nodes; i++) {
        const dp_act *y = &net->nodes[i].y;
        out->aoff[i + 1] = out->aoff[i] + (size_t)y->n * y->c * y->h * y->w;
    }
    out->acts = malloc(sizeof(float) * out->aoff[net->n_nodes]);
    out->grads = malloc(sizeof(float) * (size_t)net->n_params);
    for (int i = 0; i < net->n_nodes; i++) {
        float *y = to_nchw(&net->nodes[i].y);
        memcpy(out->acts + out->aoff[i], y, sizeof(float) * (out->aoff[i + 1] - out->aoff[i]));
        free(y);
    }
    memcpy(out->grads, net->grads, sizeof(float) * (size_t)net->n_params);
    out->ok = 1;

    int has_dyn = 0;
    for (int i = 0; i < net->n_nodes; i++) has_dyn |= net->nodes[i].type == DP_OP_DYNOPOOL;
    if (has_dyn) check_dalpha(&r, tag); /* before the finite differences move the net */

    /* The finite differences run on one thread, on a second copy of the net built
     * under one thread (oneDNN fixes a primitive's thread count when it creates it):
     * they only need the forward as a function of the parameters, and on a loaded
     * two-core machine each OpenMP barrier of a tiny net can cost milliseconds.  The
     * gradients under test are those of the ambient thread count above; the copy's
     * own must match them (the result does not depend on the thread count). */
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    run_free(&r);
    rc = run_init(&r, tc, backend, blk, 1000u + (unsigned)ci);
    if (rc || run_grads(&r)) {
        CHECK(rc == DP_OK, "%s [%s]: building the net: %s", tc->name, tag, dp_strerror(rc));
        omp_set_num_threads(threads);
        run_free(&r);
        return;
    }
    net = &r.net;
    const char *wn = "";
    const double tworst = compare_grads(net, out->grads, net->grads, tc->name, tag,
                                        "the gradient with more threads", &wn);
    fdstat cs = {0, 0, 0, 0, 0, 0.0};
    const double noise = loss_noise(&r, NULL, 24);
    for (int v = 0; v < net->n_pv; v++) {
        const dp_pview *pv = &net->pv[v];
        const int nd = node_of_param(net, pv->off);
        if (net->nodes[nd].type == DP_OP_DYNOPOOL) continue; /* piecewise constant: dalpha above */
        /* sample sizes: the op's own tensors 64, upstream 32 (enough to see the op's
         * dx at work), the tail's 12 (every case covers them) */
        const int tail = r.b.tail_conv >= 0 && (nd == r.b.tail_conv || nd == net->out);
        const int nsamp = nd == r.b.focus ? 64 : tail ? 12 : 32;
        tu_rng g = {(uint64_t)ci * 131u + (uint64_t)v};
        fd_tensor(&r, pv, out->grads + pv->off, nsamp, noise, &g, tag, &cs);
    }
    omp_set_num_threads(threads);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("  %-8s %2d tensors, %4d entries checked (%d weak), %3d at kinks (%d by the one-sided "
           "test alone), worst error %.2e (not weak), loss noise %.1e; 1 thread vs %d: %.1e; "
           "%.2f s\n", tag,
           cs.tensors, cs.checked, cs.weak, cs.skipped, cs.odd, cs.worst, noise, threads, tworst,
           (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    st->tensors += cs.tensors, st->checked += cs.checked, st->skipped += cs.skipped;
    st->weak += cs.weak, st->odd += cs.odd;
    st->worst = cs.worst > st->worst ? cs.worst : st->worst;
    run_free(&r);
}

/* Gradients a (the reference) against b, tensor by tensor: relative to the entry
 * with a floor of 1% of the tensor's largest entry.  Returns the worst error. */
static double compare_grads(const dp_net *net, const float *ga, const float *gb, const char *name,
                            const char *tag, const char *what, const char **wname)
{
    double gworst = 0.0;
    for (int v = 0; v < net->n_pv; v++) {
        const dp_pview *pv = &net->pv[v];
        const float *a = ga + pv->off, *b = gb + pv->off;
        double mx = 0.0;
        for (long long k = 0; k < pv->numel; k++) mx = fmax(mx, fabs(a[k]));
        size_t bad = 0;
        for (long long k = 0; k < pv->numel; k++) {
            const double den = fmax(fmax(fabs(a[k]), fabs(b[k])), 1e-2 * mx) + 1e-30;
            const double e = fabs(a[k] - b[k]) / den;
            if (e > gworst) gworst = e, *wname = pv->name;
            if (!(e <= XB_RTOL) && bad++ < 3)
                fprintf(stderr, "  %s [%s] %s[%lld]: %s %.8g, got %.8g\n", name, tag, pv->name, k,
                        what, a[k], b[k]);
        }
        CHECK(bad == 0, "%s [%s]: %zu of %lld entries of d %s differ from %s", name, tag, bad,
              pv->numel, pv->name, what);
    }
    return gworst;
}

/* The DNNL run against the REF run of the same net, weights and input. */
static void compare_backends(const tcase *tc, int ci, const snap *ref, const snap *dnn,
                             const char *tag)
{
    if (!ref->ok || !dnn->ok) return;
    trun r; /* the parameter views */
    if (run_init(&r, tc, DP_BACKEND_REF, 0, 1000u + (unsigned)ci)) {
        run_free(&r);
        return;
    }
    /* every node's output, relative to the node's largest magnitude */
    double worst = 0.0;
    int wnode = 0;
    for (int i = 1; i < ref->n_nodes; i++) {
        const float *a = ref->acts + ref->aoff[i], *b = dnn->acts + dnn->aoff[i];
        const size_t n = ref->aoff[i + 1] - ref->aoff[i];
        CHECK(n == dnn->aoff[i + 1] - dnn->aoff[i], "%s [%s]: node %d has another shape", tc->name,
              tag, i);
        if (n != dnn->aoff[i + 1] - dnn->aoff[i]) continue;
        double mx = 0.0, e = 0.0;
        for (size_t k = 0; k < n; k++) mx = fmax(mx, fabs(a[k]));
        for (size_t k = 0; k < n; k++) e = fmax(e, fabs(a[k] - b[k]) / fmax(mx, 1e-30));
        CHECK(e <= XB_RTOL, "%s [%s]: node %d (%s) output differs from ref by %.3g (relative to "
              "its largest entry)", tc->name, tag, i, dp_op_of(r.net.nodes[i].type)->name, e);
        if (e > worst) worst = e, wnode = i;
    }
    const char *gname = "";
    const double gworst = compare_grads(&r.net, ref->grads, dnn->grads, tc->name, tag, "ref", &gname);
    printf("  %-8s vs ref: outputs %.1e (node %d), gradients %.1e (%s)\n", tag, worst, wnode, gworst,
           gname);
    run_free(&r);
}

/* ---- softmax cross-entropy on its own ----------------------------------------------- */
static void check_softmax_ce(void)
{
    enum { N = 3, K = 7 };
    tu_rng g = {99};
    float z[N * K], dl[N * K];
    int lab[N] = {2, 0, 6};
    for (int i = 0; i < N * K; i++) z[i] = 2.0f * tu_normal(&g);
    double loss, want = 0.0;
    CHECK(dp_softmax_ce(z, lab, N, K, &loss, dl) == DP_OK, "softmax_ce");
    for (int i = 0; i < N; i++) {
        double s = 0.0;
        for (int j = 0; j < K; j++) s += exp((double)z[i * K + j]);
        want += (log(s) - z[i * K + lab[i]]) / N;
    }
    CHECK(fabs(loss - want) <= 1e-12 * fabs(want), "softmax_ce loss %.15g, want %.15g", loss, want);
    double worst = 0.0;
    for (int i = 0; i < N * K; i++) {
        const float z0 = z[i];
        const double h = 1e-3 * fmax(fabs(z0), 1.0);
        double lp, lm;
        z[i] = (float)(z0 + h);
        const double hp = (double)z[i] - z0;
        dp_softmax_ce(z, lab, N, K, &lp, NULL);
        z[i] = (float)(z0 - h);
        const double hm = z0 - (double)z[i];
        dp_softmax_ce(z, lab, N, K, &lm, NULL);
        z[i] = z0;
        const double fd = (lp - lm) / (hp + hm);
        const double e = fabs(fd - dl[i]) / fmax(fmax(fabs(fd), fabs(dl[i])), 1e-3);
        worst = fmax(worst, e);
        CHECK(e < 1e-3, "softmax_ce dlogits[%d] = %.8g, finite difference %.8g", i, dl[i], fd);
    }
    int bad[N] = {2, 7, 0};
    CHECK(dp_softmax_ce(z, bad, N, K, &loss, dl) == DP_ERR_ARG, "softmax_ce: label 7 of 7 classes");
    printf("softmax cross-entropy: %d dlogits checked, worst error %.2e\n", N * K, worst);
}

/* ---- bilinear resize values against PyTorch's rule ------------------------------------
 * F.interpolate(mode='bilinear', align_corners=False), written out independently
 * in double: source s = (i + 1/2) in / out - 1/2, clamped below at 0, the upper
 * tap clamped to in - 1.  Up, down and non-integer ratios, both layouts. */
static double ref_bilinear(const float *x, int h, int w, int H, int W, int i, int j)
{
    double sy = ((double)i + 0.5) * h / H - 0.5, sx = ((double)j + 0.5) * w / W - 0.5;
    sy = sy < 0 ? 0 : sy, sx = sx < 0 ? 0 : sx;
    const int y0 = (int)floor(sy), x0 = (int)floor(sx);
    const int y1 = y0 + 1 < h ? y0 + 1 : h - 1, x1 = x0 + 1 < w ? x0 + 1 : w - 1;
    const double ty = sy - y0, tx = sx - x0;
    return (1 - ty) * ((1 - tx) * x[y0 * w + x0] + tx * x[y0 * w + x1]) +
           ty * ((1 - tx) * x[y1 * w + x0] + tx * x[y1 * w + x1]);
}

static void check_resize_values(void)
{
    static const int geo[][4] = {{5, 4, 9, 7}, {9, 7, 5, 4}, {3, 3, 12, 12}, {8, 6, 8, 6}, {7, 9, 2, 3}, {1, 2, 4, 5}};
    double worst = 0.0;
    for (size_t gi = 0; gi < sizeof geo / sizeof geo[0]; gi++) {
        const int h = geo[gi][0], w = geo[gi][1], H = geo[gi][2], W = geo[gi][3], n = 2, c = 5;
        /* the op driven by hand on a net input -> resize: x set in node 0 in each
         * layout, the output shape set as infer gives it for a reference of H x W */
        dp_net net;
        dp_net_init(&net, DP_BACKEND_REF);
        tb b = {.net = &net};
        t_node(&b, DP_OP_INPUT, -1, -1);
        const int id = t_node(&b, DP_OP_RESIZE, 0, 0);
        CHECK(!b.rc && !dp_net_alloc(&net), "resize values: build");
        if (b.rc) return;
        dp_node *nd = &net.nodes[id];
        float *x = malloc(sizeof(float) * (size_t)n * c * h * w);
        tu_rng g = {gi + 11};
        for (int i = 0; i < n * c * h * w; i++) x[i] = tu_normal(&g);
        for (int blk = 1; blk <= 16; blk *= (blk == 1 ? 8 : 2)) {
            const int cb = dp_cpad(c, blk) / blk;
            dp_act *xa = &net.nodes[0].y;
            dp_set_shape(xa, n, c, h, w, blk);
            dp_act_reserve(xa);
            memset(xa->data, 0, sizeof(float) * dp_act_numel(xa));
            for (int in = 0; in < n; in++)
                for (int ch = 0; ch < c; ch++)
                    for (int p = 0; p < h * w; p++)
                        xa->data[(((size_t)in * cb + ch / blk) * h * w + p) * blk + ch % blk] =
                            x[((size_t)in * c + ch) * h * w + p];
            dp_set_shape(&nd->y, n, c, H, W, blk);
            dp_act_reserve(&nd->y);
            CHECK(dp_op_of(DP_OP_RESIZE)->forward(&net, nd, 0) == DP_OK, "resize forward");
            for (int in = 0; in < n; in++)
                for (int ch = 0; ch < c; ch++)
                    for (int i = 0; i < H; i++)
                        for (int j = 0; j < W; j++) {
                            const double want = ref_bilinear(x + ((size_t)in * c + ch) * h * w, h, w, H, W, i, j);
                            const float got =
                                nd->y.data[(((size_t)in * cb + ch / blk) * H * W + (size_t)i * W + j) * blk + ch % blk];
                            /* (1-t)((1-u) a + u b) + t((1-u) c + u d) in float: 3 sums, 6
                             * products and the 4 rounded weights, each at most 2^-24 of
                             * a term bounded by max|x|: 16 u max|x| is a safe bound */
                            double mx = 0.0;
                            for (int p = 0; p < h * w; p++) mx = fmax(mx, fabs(x[((size_t)in * c + ch) * h * w + p]));
                            const double e = fabs(got - want), tol = 16 * 0x1p-24 * mx;
                            worst = fmax(worst, e / mx);
                            CHECK(e <= tol, "resize %dx%d -> %dx%d blk %d (%d,%d,%d,%d) = %.9g, want %.9g", h, w, H,
                                  W, blk, in, ch, i, j, got, want);
                        }
            /* padded lanes stay 0 */
            size_t nz = 0;
            for (size_t i = 0; i < dp_act_numel(&nd->y); i++) nz += (int)(i % blk) + (int)((i / blk / (H * W)) % cb) * blk >= c && nd->y.data[i] != 0.0f;
            CHECK(nz == 0, "resize blk %d: %zu padded lanes non-zero", blk, nz);
        }
        free(x);
        dp_net_free(&net);
    }
    printf("bilinear resize: values against PyTorch's rule on 3 layouts, worst |error| / max|x| %.2e\n", worst);
}

/* ---- per-pixel cross-entropy with ignore label 255 ------------------------------------ */
static void check_seg_ce(void)
{
    enum { N = 2, K = 5, H = 3, W = 4 };
    const int hw = H * W;
    tu_rng g = {77};
    for (int blk = 1; blk <= 16; blk *= (blk == 1 ? 8 : 2)) {
        const int cb = dp_cpad(K, blk) / blk;
        dp_act z = {N, K, H, W, blk, NULL, 0};
        dp_act_reserve(&z);
        const size_t numel = dp_act_numel(&z);
        float *d = calloc(numel, sizeof(float));
        double zz[N][K][H * W];
        int lab[N * H * W];
        for (int in = 0; in < N; in++)
            for (int p = 0; p < hw; p++) {
                lab[in * hw + p] = (p % 4 == 1) ? DP_SEG_IGNORE : (3 * p + in) % K;
                for (int k = 0; k < K; k++) {
                    const float v = 2.0f * tu_normal(&g);
                    zz[in][k][p] = v;
                    z.data[(((size_t)in * cb + k / blk) * hw + p) * blk + k % blk] = v;
                }
            }
        double loss, want = 0.0;
        long long valid = -1, nv = 0;
        CHECK(dp_seg_ce(&z, lab, &loss, &valid, d) == DP_OK, "seg_ce");
        for (int in = 0; in < N; in++)
            for (int p = 0; p < hw; p++) {
                if (lab[in * hw + p] == DP_SEG_IGNORE) continue;
                double s = 0.0;
                for (int k = 0; k < K; k++) s += exp(zz[in][k][p]);
                want += log(s) - zz[in][lab[in * hw + p]][p];
                nv++;
            }
        want /= (double)nv;
        CHECK(valid == nv, "seg_ce: %lld valid pixels, want %lld", valid, nv);
        CHECK(fabs(loss - want) <= 1e-12 * fabs(want), "seg_ce loss %.15g, want %.15g", loss, want);
        double worst = 0.0;
        for (size_t i = 0; i < numel; i++) {
            const size_t l = i % blk, q = (i / blk) % hw, kb = (i / blk / hw) % cb;
            const int k = (int)(kb * blk + l), in = (int)(i / blk / hw / cb);
            if (k >= K || lab[in * hw + q] == DP_SEG_IGNORE) { /* padded lane or ignored pixel */
                CHECK(d[i] == 0.0f, "seg_ce: dlogits[%zu] = %g on an ignored pixel or padded lane", i, d[i]);
                continue;
            }
            const float z0 = z.data[i];
            const double h = 1e-3 * fmax(fabs(z0), 1.0);
            double lp, lm;
            z.data[i] = (float)(z0 + h);
            const double hp = (double)z.data[i] - z0;
            dp_seg_ce(&z, lab, &lp, NULL, NULL);
            z.data[i] = (float)(z0 - h);
            const double hm = z0 - (double)z.data[i];
            dp_seg_ce(&z, lab, &lm, NULL, NULL);
            z.data[i] = z0;
            const double fd = (lp - lm) / (hp + hm);
            const double e = fabs(fd - d[i]) / fmax(fmax(fabs(fd), fabs(d[i])), 1e-3);
            worst = fmax(worst, e);
            CHECK(e < 1e-3, "seg_ce blk %d dlogits[%zu] = %.8g, finite difference %.8g", blk, i, d[i], fd);
        }
        int bad[N * H * W];
        memcpy(bad, lab, sizeof bad);
        bad[5] = K;
        CHECK(dp_seg_ce(&z, bad, &loss, NULL, d) == DP_ERR_ARG, "seg_ce: label %d of %d classes", K, K);
        for (int i = 0; i < N * hw; i++) bad[i] = DP_SEG_IGNORE;
        CHECK(dp_seg_ce(&z, bad, &loss, &valid, d) == DP_OK && loss == 0.0 && valid == 0,
              "seg_ce: every pixel ignored gives loss %g, %lld valid", loss, valid);
        int pred[N * H * W];
        dp_seg_argmax(&z, pred);
        int wrong = 0;
        for (int in = 0; in < N; in++)
            for (int p = 0; p < hw; p++) {
                int best = 0;
                for (int k = 1; k < K; k++)
                    if (zz[in][k][p] > zz[in][best][p]) best = k;
                wrong += pred[in * hw + p] != best;
            }
        CHECK(wrong == 0, "seg_argmax blk %d: %d pixels wrong", blk, wrong);
        printf("per-pixel cross-entropy (blk %d): %lld of %d pixels counted, worst dlogits error %.2e\n", blk, nv,
               N * hw, worst);
        free(d);
        dp_act_free(&z);
    }
}

/* Dropout and stochastic depth draw their masks from (seed, step, node) alone:
 * the forward at one step repeats bit for bit (a resumed run), another step
 * draws another mask, evaluation is the identity, the kept values are scaled by
 * 1 / (1 - p), and the share dropped is p within 5 binomial standard deviations. */
static void check_masks(const char *name, int per_sample)
{
    const tcase *tc = NULL;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (!strcmp(cases[i].name, name)) tc = &cases[i];
    CHECK(tc, "no case %s", name);
    if (!tc) return;
    trun r;
    CHECK(run_init(&r, tc, DP_BACKEND_REF, 0, 7) == DP_OK, "%s: build", name);
    dp_net *net = &r.net;
    dp_node *nd = &net->nodes[r.b.focus];
    const double p = nd->drop, keep = 1.0 / (1.0 - p);
    long dropped = 0, draws = 0, bad_scale = 0, differ = 0;
    /* the op's input, from a training forward at p = 0 (the node may work in place,
     * so its input's buffer holds its output) */
    nd->drop = 0.0f;
    run_loss(&r, NULL);
    nd->drop = (float)p;
    const size_t n = dp_act_numel(&nd->y), per = n / (size_t)nd->y.n;
    float *first = NULL, *x = malloc(sizeof(float) * n);
    memcpy(x, nd->y.data, sizeof(float) * n);
    for (long long step = 0; step < 16; step++) {
        net->seed = 99, net->step = step;
        run_loss(&r, NULL);
        const float *y = nd->y.data;
        if (!first) {
            first = malloc(sizeof(float) * n);
            memcpy(first, y, sizeof(float) * n);
        } else
            differ += memcmp(first, y, sizeof(float) * n) != 0;
        for (size_t i = 0; i < n; i++) {
            if (x[i] == 0.0f) continue;
            const int z = y[i] == 0.0f;
            if (!per_sample || i % per == 0) dropped += z, draws++;
            if (!z && fabs(y[i] - x[i] * keep) > 1e-6 * fabs(x[i] * keep)) bad_scale++;
            if (per_sample && (y[(i / per) * per] == 0.0f) != z) bad_scale++; /* one draw per sample */
        }
        if (step == 0) { /* the same step again: the same mask */
            run_loss(&r, NULL);
            CHECK(!memcmp(first, nd->y.data, sizeof(float) * n), "%s: step 0 repeated differs", name);
            dp_net_forward(net, r.x, tc->n, tc->c, tc->h, tc->w, 0, NULL);
            CHECK(!memcmp(x, nd->y.data, sizeof(float) * n), "%s: evaluation is not the identity", name);
        }
    }
    const double sd = sqrt(draws * p * (1.0 - p));
    CHECK(fabs(dropped - draws * p) <= 5.0 * sd, "%s: %ld of %ld dropped, expected %.1f +- %.1f", name,
          dropped, draws, draws * p, 5.0 * sd);
    CHECK(bad_scale == 0, "%s: %ld kept values not x / (1 - p) or masks not per sample", name, bad_scale);
    CHECK(differ >= 14, "%s: only %ld of 15 other steps drew another mask", name, differ);
    printf("%s masks: %ld of %ld draws dropped (p %.2f), %ld of 15 other steps differ\n", name, dropped,
           draws, p, differ);
    free(first), free(x);
    run_free(&r);
}

/* dp_exp_neg (engine.h) returns expf(-v)'s bits for every float: checked on
 * every float whose magnitude is in [64, 128) (where its shortcuts and glibc's
 * overflow and underflow branches begin), on the infinities, and on every
 * 4099th float elsewhere, NaNs among them. */
static void check_exp_neg(void)
{
    long bad = 0, n = 0;
    for (uint64_t u = 0; u < (1ull << 32); u++) {
        const uint32_t b = (uint32_t)u, e = (b >> 23) & 0xff; /* biased exponent: 133 = [64, 128) */
        if (e != 133 && (b & 0x7fffffffu) != 0x7f800000u && u % 4099) continue;
        float v, want, got;
        memcpy(&v, &b, 4);
        want = expf(-v), got = dp_exp_neg(v);
        n++;
        if (memcmp(&want, &got, 4) && !(isnan(want) && isnan(got)) && bad++ < 3)
            CHECK(0, "dp_exp_neg(%a) = %a, expf(-v) = %a", v, got, want);
    }
    CHECK(bad == 0, "dp_exp_neg: %ld of %ld floats differ from expf(-v)", bad, n);
    printf("dp_exp_neg: %ld floats, the same bits as expf(-v)\n", n);
}

int main(void)
{
    const clock_t t0 = clock();
    check_exp_neg();
    if (getenv("DP_FD_STEP")) fd_step = atof(getenv("DP_FD_STEP")); /* for experiments */
    const int native = dnn_blk();
    CHECK(native == 8 || native == 16, "dnn_blk() = %d", native);
    int blks[2] = {native, 0}, nblk = 1;
    if (native == 16) blks[nblk++] = 8; /* machines without AVX-512 run nChw8c */
    fdstat st = {0, 0, 0, 0, 0, 0.0};
    check_softmax_ce();
    check_seg_ce();
    check_resize_values();
    check_masks("dropout 0.3", 0);
    check_masks("stochastic depth 0.5", 1);
    const int ncases = (int)(sizeof cases / sizeof cases[0]);
    const char *only = getenv("DP_OPS_CASE"); /* a substring of case names, for debugging */
    for (int ci = 0; ci < ncases; ci++) {
        const tcase *tc = &cases[ci];
        if (only && !strstr(tc->name, only)) continue;
        struct timespec c0, c1;
        clock_gettime(CLOCK_MONOTONIC, &c0);
        printf("%s: (%d,%d,%d,%d)\n", tc->name, tc->n, tc->c, tc->h, tc->w);
        fflush(stdout);
        snap ref, dnn;
        run_case(tc, ci, DP_BACKEND_REF, 0, &ref, &st);
        for (int b = 0; b < nblk; b++) {
            run_case(tc, ci, DP_BACKEND_DNNL, blks[b], &dnn, &st);
            compare_backends(tc, ci, &ref, &dnn, backend_name(DP_BACKEND_DNNL, blks[b]));
            free(dnn.acts), free(dnn.grads);
        }
        free(ref.acts), free(ref.grads);
        clock_gettime(CLOCK_MONOTONIC, &c1);
        printf("  %.2f s\n", (double)(c1.tv_sec - c0.tv_sec) + 1e-9 * (double)(c1.tv_nsec - c0.tv_nsec));
        fflush(stdout);
    }
    printf("total: %d tensors, %d entries checked (%d weak), %d skipped at kinks (%d by the "
           "one-sided test alone), worst error %.2e; %.1f s CPU\n", st.tensors, st.checked,
           st.weak, st.skipped, st.odd, st.worst,
           (double)(clock() - t0) / CLOCKS_PER_SEC);
    return tu_finish("test_ops");
}
