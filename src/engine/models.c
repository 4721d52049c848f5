/* models.c — VGG-16, ResNet-50, MobileNetV2 and EfficientNet-B0/B1 (docs/models.md), each as human,
 * dynopool and shape-adaptor, and HRNetV2 for segmentation (human and dynopool); architecture and
 * names in docs/models.md. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engine/net.h"

typedef struct {
    dp_net *net;
    const dp_arch_cfg *cfg;
    int rc;    /* first error */
    int shapes_only; /* dp_build_shapes: weights are named and counted, not stored */
} bld;

static int make_div(double v)
{
    int r = (int)(v + 4.0) / 8 * 8;
    if (r < 8) r = 8;
    if (r < 0.9 * v) r += 8;
    return r;
}

static int ch(const bld *b, int c) { return make_div(c * (double)b->cfg->width); }

/* The module path of a printf-style builder call, into the char array buf. */
#define NAME_FROM_ARGS(buf, f)                 \
    do {                                       \
        va_list ap_;                           \
        va_start(ap_, f);                      \
        vsnprintf(buf, sizeof buf, f, ap_);    \
        va_end(ap_);                           \
    } while (0)

static int node(bld *b, int type, int in0, int in1, const char *name)
{
    if (b->rc) return -1;
    int id = dp_net_add(b->net, type, in0, in1, name);
    if (id < 0) b->rc = id;
    return id;
}

static long long param(bld *b, const char *prefix, const char *leaf, int ndim, const int *shape,
                       int group)
{
    char name[128];
    snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "", leaf);
    const long long end = b->net->n_params;
    long long off = dp_net_param(b->net, name, ndim, shape, group);
    if (off < 0 && !b->rc) b->rc = (int)off;
    if (off >= 0 && b->shapes_only && group == 0) { /* a view without storage: off -1 */
        b->net->n_params = end;
        b->net->pv[b->net->n_pv - 1].off = -1;
        return -1;
    }
    return off;
}

static int conv(bld *b, int in, int cin, int cout, int k, int s, int p, int g, int bias,
                const char *f, ...)
{
    char name[64];
    NAME_FROM_ARGS(name, f);
    int id = node(b, DP_OP_CONV, in, -1, name);
    if (id < 0) return id;
    dp_node *nd = &b->net->nodes[id];
    nd->cout = cout, nd->k = k, nd->stride = s, nd->pad = p, nd->groups = g, nd->bias = bias;
    const int ws[4] = {cout, cin / g, k, k}, bs[1] = {cout};
    b->net->nodes[id].w_off = param(b, name, "weight", 4, ws, 0);
    if (bias) b->net->nodes[id].b_off = param(b, name, "bias", 1, bs, 0);
    return id;
}

static int bn(bld *b, int in, int c, int relu, const char *f, ...)
{
    char name[64], s[128];
    NAME_FROM_ARGS(name, f);
    int id = node(b, DP_OP_BN, in, -1, name);
    if (id < 0) return id;
    const int cs[1] = {c};
    b->net->nodes[id].relu = relu;
    b->net->nodes[id].w_off = param(b, name, "weight", 1, cs, 0);
    b->net->nodes[id].b_off = param(b, name, "bias", 1, cs, 0);
    snprintf(s, sizeof s, "%s.running_mean", name);
    b->net->nodes[id].s_off = dp_net_stat(b->net, s, c, id, 0);
    snprintf(s, sizeof s, "%s.running_var", name);
    dp_net_stat(b->net, s, c, id, 1);
    return id;
}

static int maxpool(bld *b, int in, int k, int s, int p, int stage, const char *name)
{
    int id = node(b, DP_OP_MAXPOOL, in, -1, name);
    if (id < 0) return id;
    dp_node *nd = &b->net->nodes[id];
    nd->k = k, nd->stride = s, nd->pad = p, nd->stage = stage;
    return id;
}

/* A DynOPool with its own alpha (owner < 0) or sharing owner's. */
static int dynopool(bld *b, int in, int owner, const char *f, ...)
{
    char name[64];
    NAME_FROM_ARGS(name, f);
    int id = node(b, DP_OP_DYNOPOOL, in, -1, name);
    if (id < 0) return id;
    dp_node *nd = &b->net->nodes[id];
    if (owner >= 0) {
        nd->owner = owner;
        return id;
    }
    const int as[1] = {2};
    nd->stage = 1;
    nd->w_off = param(b, name, "alpha", 1, as, 1);
    if (!b->rc) b->net->pv[b->net->n_pv - 1].positive = 1;
    return id;
}

/* A shape adaptor mixing x and its reduced branch r. */
static int adaptor(bld *b, int x, int r, const char *f, ...)
{
    char name[64];
    NAME_FROM_ARGS(name, f);
    int id = node(b, DP_OP_SHAPE_ADAPTOR, x, r, name);
    if (id < 0) return id;
    const int as[1] = {1};
    b->net->nodes[id].stage = 1;
    b->net->nodes[id].w_off = param(b, name, "alpha", 1, as, 1);
    return id;
}

static int head(bld *b, int x, int cin, const char *name)
{
    int g = node(b, DP_OP_GAP, x, -1, "");
    int id = node(b, DP_OP_LINEAR, g, -1, name);
    if (id < 0) return id;
    const int ws[2] = {b->cfg->classes, cin}, bs[1] = {b->cfg->classes};
    b->net->nodes[id].cout = b->cfg->classes;
    b->net->nodes[id].w_off = param(b, name, "weight", 2, ws, 0);
    b->net->nodes[id].b_off = param(b, name, "bias", 1, bs, 0);
    b->net->out = id;
    return id;
}

/* ---- VGG-16 ---- */
static void vgg16(bld *b)
{
    static const int cfg[] = {64, 64, 0, 128, 128, 0, 256, 256, 256, 0,
                              512, 512, 512, 0, 512, 512, 512, 0};
    const int n = b->cfg->size > 64 ? 18 : 17;
    int x = 0, cin = b->cfg->in_ch, idx = 0;
    for (int i = 0; i < n; i++) {
        if (cfg[i]) {
            const int c = ch(b, cfg[i]);
            x = conv(b, x, cin, c, 3, 1, 1, 1, 1, "features.%d", idx);
            x = bn(b, x, c, 1, "features.%d", idx + 1);
            cin = c, idx += 3;
            continue;
        }
        char name[32];
        snprintf(name, sizeof name, "features.%d", idx++);
        if (b->cfg->pool == DP_POOL_HUMAN) x = maxpool(b, x, 2, 2, 0, 1, name);
        else if (b->cfg->pool == DP_POOL_DYNOPOOL) x = dynopool(b, x, -1, "%s", name);
        else x = adaptor(b, x, maxpool(b, x, 2, 2, 0, 0, ""), "%s", name);
    }
    head(b, x, cin, "classifier");
}

/* ---- ResNet-50 ---- */
static void resnet50(bld *b)
{
    const int pool = b->cfg->pool, big = b->cfg->size > 64;
    const int c64 = ch(b, 64);
    int x;
    if (!big) {
        x = conv(b, 0, b->cfg->in_ch, c64, 3, 1, 1, 1, 0, "conv1");
        x = bn(b, x, c64, 1, "bn1");
    } else if (pool == DP_POOL_DYNOPOOL) {
        x = conv(b, 0, b->cfg->in_ch, c64, 7, 1, 3, 1, 0, "conv1");
        x = bn(b, x, c64, 1, "bn1");
        x = dynopool(b, x, -1, "pool");
    } else {
        x = conv(b, 0, b->cfg->in_ch, c64, 7, 2, 3, 1, 0, "conv1");
        x = bn(b, x, c64, 1, "bn1");
        x = maxpool(b, x, 3, 2, 1, 1, "maxpool");
    }
    static const int blocks[4] = {3, 4, 6, 3};
    int inpl = c64;
    for (int l = 0; l < 4; l++) {
        const int planes = ch(b, 64 << l), out = 4 * planes;
        for (int k = 0; k < blocks[l]; k++) {
            const int s = (l > 0 && k == 0) ? 2 : 1, human = pool == DP_POOL_HUMAN || s == 1;
            char p[32];
            snprintf(p, sizeof p, "layer%d.%d", l + 1, k);
            const int xin = x;
            int m = conv(b, xin, inpl, planes, 1, 1, 0, 1, 0, "%s.conv1", p);
            m = bn(b, m, planes, 1, "%s.bn1", p);
            m = conv(b, m, planes, planes, 3, human ? s : 1, 1, 1, 0, "%s.conv2", p);
            if (human && s == 2 && m >= 0) b->net->nodes[m].stage = 1;
            m = bn(b, m, planes, 1, "%s.bn2", p);
            int owner = -1;
            if (!human && pool == DP_POOL_DYNOPOOL) m = owner = dynopool(b, m, -1, "%s.pool", p);
            m = conv(b, m, planes, out, 1, 1, 0, 1, 0, "%s.conv3", p);
            m = bn(b, m, out, 0, "%s.bn3", p);
            int sc = xin;
            if (k == 0) {
                sc = conv(b, xin, inpl, out, 1, human ? s : 1, 0, 1, 0, "%s.downsample.0", p);
                sc = bn(b, sc, out, 0, "%s.downsample.1", p);
                if (owner >= 0) sc = dynopool(b, sc, owner, "%s.pool", p);
            }
            x = node(b, DP_OP_ADD, m, sc, "");
            if (x >= 0) /* out += identity; relu(out): over bn3's output */
                b->net->nodes[x].relu = 1, b->net->nodes[x].inplace = 1;
            if (!human && pool == DP_POOL_SHAPE_ADAPTOR) {
                int r = conv(b, x, out, out, 1, 2, 0, 1, 0, "%s.sa.reduce.0", p);
                r = bn(b, r, out, 0, "%s.sa.reduce.1", p);
                x = adaptor(b, x, r, "%s.sa", p);
            }
            inpl = out;
        }
    }
    head(b, x, inpl, "fc");
}

/* ---- MobileNetV2 ---- */
static void mobilenetv2(bld *b)
{
    const int pool = b->cfg->pool, big = b->cfg->size > 64;
    const int c32 = ch(b, 32);
    const int s0 = big ? 2 : 1, dyn_stem = big && pool == DP_POOL_DYNOPOOL;
    int x = conv(b, 0, b->cfg->in_ch, c32, 3, dyn_stem ? 1 : s0, 1, 1, 0, "features.0.0");
    if (big && !dyn_stem && x >= 0) b->net->nodes[x].stage = 1;
    x = bn(b, x, c32, 6, "features.0.1");
    if (dyn_stem) x = dynopool(b, x, -1, "features.0.3");
    static const int tab[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
                                  {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
    int inp = c32, idx = 1;
    for (int g = 0; g < 7; g++) {
        const int t = tab[g][0], out = ch(b, tab[g][1]);
        const int sg = g == 1 ? (big ? 2 : 1) : tab[g][3];
        for (int i = 0; i < tab[g][2]; i++, idx++) {
            const int s = i == 0 ? sg : 1, hidden = (int)lround(inp * (double)t);
            const int human = pool == DP_POOL_HUMAN || s == 1, xin = x;
            int j = 0;
            if (t != 1) {
                x = conv(b, x, inp, hidden, 1, 1, 0, 1, 0, "features.%d.conv.0.0", idx);
                x = bn(b, x, hidden, 6, "features.%d.conv.0.1", idx);
                j = 1;
            }
            x = conv(b, x, hidden, hidden, 3, human ? s : 1, 1, hidden, 0, "features.%d.conv.%d.0",
                     idx, j);
            if (human && s == 2 && x >= 0) b->net->nodes[x].stage = 1;
            x = bn(b, x, hidden, 6, "features.%d.conv.%d.1", idx, j);
            if (!human && pool == DP_POOL_DYNOPOOL)
                x = dynopool(b, x, -1, "features.%d.conv.%d.3", idx, j);
            else if (!human)
                x = adaptor(b, x, maxpool(b, x, 2, 2, 0, 0, ""), "features.%d.conv.%d.3", idx, j);
            x = conv(b, x, hidden, out, 1, 1, 0, 1, 0, "features.%d.conv.%d", idx, j + 1);
            x = bn(b, x, out, 0, "features.%d.conv.%d", idx, j + 2);
            if (s == 1 && inp == out && (x = node(b, DP_OP_ADD, x, xin, "")) >= 0)
                b->net->nodes[x].inplace = 1; /* over the projection BN's output */
            inp = out;
        }
    }
    const double wl = b->cfg->width > 1.0f ? b->cfg->width : 1.0;
    const int last = make_div(1280 * wl);
    x = conv(b, x, inp, last, 1, 1, 0, 1, 0, "features.18.0");
    x = bn(b, x, last, 6, "features.18.1");
    /* torchvision's classifier is Sequential(Dropout, Linear): the Linear is
     * "classifier.1" (docs/models.md, "Names against torchvision") */
    head(b, x, last, "classifier.1");
}

/* ---- EfficientNet-B0 / B1 ---- */

/* A node without parameters of its own, with a drop probability. */
static int drop_node(bld *b, int type, int in, float p, const char *f, ...)
{
    char name[64];
    NAME_FROM_ARGS(name, f);
    int id = node(b, type, in, -1, name);
    if (id >= 0) b->net->nodes[id].drop = p;
    return id;
}

/* torchvision's SqueezeExcitation(c, q) with SiLU, as one node (squeeze_excite.c). */
static int squeeze_excite(bld *b, int in, int c, int q, const char *f, ...)
{
    char name[64];
    NAME_FROM_ARGS(name, f);
    int id = node(b, DP_OP_SE, in, -1, name);
    if (id < 0) return id;
    const int w1[4] = {q, c, 1, 1}, b1[1] = {q}, w2[4] = {c, q, 1, 1}, b2[1] = {c};
    const long long o1 = param(b, name, "fc1.weight", 4, w1, 0), o2 = param(b, name, "fc1.bias", 1, b1, 0);
    const long long o3 = param(b, name, "fc2.weight", 4, w2, 0), o4 = param(b, name, "fc2.bias", 1, b2, 0);
    dp_node *nd = &b->net->nodes[id];
    nd->cout = q, nd->w_off = o1, nd->b_off = o2, nd->w2_off = o3, nd->b2_off = o4;
    return id;
}

/* torchvision's efficientnet_b0 / _b1 (docs/models.md, "EfficientNet"): width 1,
 * depth 1 (B0) or 1.1 (B1), dropout 0.2 before the classifier, stochastic depth
 * 0.2 * block / blocks on the residual branches (both off with cfg->no_drop).
 * The stem and the first 24-channel block stride only for inputs above 64
 * pixels, as MobileNetV2's. */
static void efficientnet(bld *b)
{
    const int pool = b->cfg->pool, big = b->cfg->size > 64;
    const double depth = b->cfg->arch == DP_EFFICIENTNET_B1 ? 1.1 : 1.0;
    /* (expand, kernel, stride, in, out, layers): torchvision's _efficientnet_conf */
    static const int tab[7][6] = {{1, 3, 1, 32, 16, 1},  {6, 3, 2, 16, 24, 2},  {6, 5, 2, 24, 40, 2},
                                  {6, 3, 2, 40, 80, 3},  {6, 5, 1, 80, 112, 3}, {6, 5, 2, 112, 192, 4},
                                  {6, 3, 1, 192, 320, 1}};
    int layers[7], total = 0;
    for (int g = 0; g < 7; g++) total += layers[g] = (int)ceil(tab[g][5] * depth - 1e-9);
    const int c0 = ch(b, tab[0][3]), dyn_stem = big && pool == DP_POOL_DYNOPOOL;
    int x = conv(b, 0, b->cfg->in_ch, c0, 3, dyn_stem ? 1 : (big ? 2 : 1), 1, 1, 0, "features.0.0");
    if (big && !dyn_stem && x >= 0) b->net->nodes[x].stage = 1;
    x = bn(b, x, c0, DP_ACT_SILU, "features.0.1");
    if (dyn_stem) x = dynopool(b, x, -1, "features.0.3");
    int inp = c0, id = 0;
    for (int g = 0; g < 7; g++) {
        const int t = tab[g][0], k = tab[g][1], out = ch(b, tab[g][4]);
        const int sg = g == 1 ? (big ? 2 : 1) : tab[g][2];
        for (int i = 0; i < layers[g]; i++, id++) {
            const int s = i == 0 ? sg : 1, hidden = make_div(inp * (double)t), q = inp / 4 > 1 ? inp / 4 : 1;
            const int human = pool == DP_POOL_HUMAN || s == 1, xin = x;
            char p[48];
            snprintf(p, sizeof p, "features.%d.%d.block", g + 1, i);
            int j = 0;
            if (hidden != inp) {
                x = conv(b, x, inp, hidden, 1, 1, 0, 1, 0, "%s.0.0", p);
                x = bn(b, x, hidden, DP_ACT_SILU, "%s.0.1", p);
                j = 1;
            }
            x = conv(b, x, hidden, hidden, k, human ? s : 1, (k - 1) / 2, hidden, 0, "%s.%d.0", p, j);
            if (human && s == 2 && x >= 0) b->net->nodes[x].stage = 1;
            x = bn(b, x, hidden, DP_ACT_SILU, "%s.%d.1", p, j);
            if (!human && pool == DP_POOL_DYNOPOOL)
                x = dynopool(b, x, -1, "%s.%d.3", p, j);
            else if (!human)
                x = adaptor(b, x, maxpool(b, x, 2, 2, 0, 0, ""), "%s.%d.3", p, j);
            x = squeeze_excite(b, x, hidden, q, "%s.%d", p, j + 1);
            x = conv(b, x, hidden, out, 1, 1, 0, 1, 0, "%s.%d.0", p, j + 2);
            x = bn(b, x, out, 0, "%s.%d.1", p, j + 2);
            if (s == 1 && inp == out) {
                const float sd = b->cfg->no_drop ? 0.0f : (float)(0.2 * id / total);
                if (sd > 0.0f && (x = drop_node(b, DP_OP_DROP_PATH, x, sd, "features.%d.%d.stochastic_depth",
                                                g + 1, i)) >= 0)
                    b->net->nodes[x].inplace = 1; /* over the projection BN's output */
                if ((x = node(b, DP_OP_ADD, x, xin, "")) >= 0) b->net->nodes[x].inplace = 1;
            }
            inp = out;
        }
    }
    const int last = 4 * inp;
    x = conv(b, x, inp, last, 1, 1, 0, 1, 0, "features.8.0");
    x = bn(b, x, last, DP_ACT_SILU, "features.8.1");
    /* classifier = Sequential(Dropout(0.2), Linear): torchvision's names */
    const int gp = node(b, DP_OP_GAP, x, -1, "");
    const int dr = drop_node(b, DP_OP_DROPOUT, gp, b->cfg->no_drop ? 0.0f : 0.2f, "classifier.0");
    const int id_ = node(b, DP_OP_LINEAR, dr, -1, "classifier.1");
    if (id_ < 0) return;
    const int ws[2] = {b->cfg->classes, last}, bs[1] = {b->cfg->classes};
    b->net->nodes[id_].cout = b->cfg->classes;
    b->net->nodes[id_].w_off = param(b, "classifier.1", "weight", 2, ws, 0);
    b->net->nodes[id_].b_off = param(b, "classifier.1", "bias", 1, bs, 0);
    b->net->out = id_;
}

/* ---- HRNetV2 for segmentation (docs/models.md, "HRNetV2") ---- */

/* HRNet's own width C: 1 (the default) is W48, else an integer in [2, 64]; 0 when
 * the width is none of these. */
static int hr_width(float w)
{
    if (w == 1.0f) return 48;
    return w >= 2.0f && w <= 64.0f && w == floorf(w) ? (int)w : 0;
}

/* The one resizing op of each HRNet level (0: the stem's first, 1: its second,
 * 2-4: branches 1-3) is a stride-2 3x3 conv in the human design and DynOPool
 * then the stride-1 conv in the dynopool one (paper eq. 5.3); every stream that
 * enters a level shares that level's alpha.  level[] holds the level's first
 * such node (its alpha's owner), -1 before. */
typedef struct { int level[5]; } hr_levels;

/* Into level lv: conv 3x3 (stride 2, or DynOPool then stride 1) + BN (+ ReLU). */
static int hr_down(bld *b, hr_levels *L, int x, int cin, int cout, int lv, int relu, const char *cname,
                   const char *bname, const char *pname)
{
    const int first = L->level[lv] < 0;
    if (b->cfg->pool == DP_POOL_DYNOPOOL) {
        x = dynopool(b, x, first ? -1 : L->level[lv], "%s", pname);
        if (first) L->level[lv] = x;
        x = conv(b, x, cin, cout, 3, 1, 1, 1, 0, "%s", cname);
    } else {
        x = conv(b, x, cin, cout, 3, 2, 1, 1, 0, "%s", cname);
        if (first && x >= 0) b->net->nodes[x].stage = 1, L->level[lv] = x;
    }
    return bn(b, x, cout, relu, "%s", bname);
}

/* y = relu(a + b), in place over a when a is a BN output that only the add reads. */
static int add_relu(bld *b, int a, int c, int relu, int inplace)
{
    int x = node(b, DP_OP_ADD, a, c, "");
    if (x >= 0) b->net->nodes[x].relu = relu, b->net->nodes[x].inplace = inplace;
    return x;
}

/* A bilinear resize of x to ref's size (resize.c). */
static int resize(bld *b, int x, int ref) { return node(b, DP_OP_RESIZE, x, ref, ""); }

/* The official HighResolutionModule: four BasicBlocks per branch, then every
 * branch i fuses all j: j > i through conv 1x1 + BN up-sampled to branch i's
 * size, j < i through i - j stride-2 3x3 convs + BN (ReLU between them). */
static void hr_module(bld *b, hr_levels *L, int *br, const int *ch, int nb, const char *p)
{
    for (int i = 0; i < nb; i++)
        for (int k = 0; k < 4; k++) {
            const int c = ch[i], xin = br[i];
            int x = conv(b, xin, c, c, 3, 1, 1, 1, 0, "%s.branches.%d.%d.conv1", p, i, k);
            x = bn(b, x, c, 1, "%s.branches.%d.%d.bn1", p, i, k);
            x = conv(b, x, c, c, 3, 1, 1, 1, 0, "%s.branches.%d.%d.conv2", p, i, k);
            x = bn(b, x, c, 0, "%s.branches.%d.%d.bn2", p, i, k);
            br[i] = add_relu(b, x, xin, 1, 1);
        }
    int out[4];
    for (int i = 0; i < nb; i++) {
        int y = -1;
        for (int j = 0; j < nb; j++) {
            int t = br[j];
            char q[96];
            snprintf(q, sizeof q, "%s.fuse_layers.%d.%d", p, i, j);
            if (j > i) {
                t = conv(b, t, ch[j], ch[i], 1, 1, 0, 1, 0, "%s.0", q);
                t = resize(b, bn(b, t, ch[i], 0, "%s.1", q), br[i]);
            } else if (j < i) {
                for (int k = 0; k < i - j; k++) {
                    const int last = k == i - j - 1, co = last ? ch[i] : ch[j];
                    char cn[112], bnn[112], pn[112];
                    snprintf(cn, sizeof cn, "%s.%d.0", q, k);
                    snprintf(bnn, sizeof bnn, "%s.%d.1", q, k);
                    snprintf(pn, sizeof pn, "%s.%d.pool", q, k);
                    t = hr_down(b, L, t, ch[j], co, j + k + 2, !last, cn, bnn, pn);
                }
            }
            y = y < 0 ? t : add_relu(b, y, t, j == nb - 1, 0);
        }
        out[i] = y;
    }
    memcpy(br, out, sizeof(int) * (size_t)nb);
}

static void hrnet(bld *b)
{
    const int C = hr_width(b->cfg->width), st = 4 * C < 64 ? 4 * C : 64;
    hr_levels L = {{-1, -1, -1, -1, -1}};
    int x = hr_down(b, &L, 0, b->cfg->in_ch, st, 0, 1, "conv1", "bn1", "pool1");
    x = hr_down(b, &L, x, st, st, 1, 1, "conv2", "bn2", "pool2");
    int cin = st; /* stage 1: four Bottlenecks of width st (expansion 4) */
    for (int k = 0; k < 4; k++) {
        const int xin = x;
        int m = conv(b, x, cin, st, 1, 1, 0, 1, 0, "layer1.%d.conv1", k);
        m = bn(b, m, st, 1, "layer1.%d.bn1", k);
        m = conv(b, m, st, st, 3, 1, 1, 1, 0, "layer1.%d.conv2", k);
        m = bn(b, m, st, 1, "layer1.%d.bn2", k);
        m = conv(b, m, st, 4 * st, 1, 1, 0, 1, 0, "layer1.%d.conv3", k);
        m = bn(b, m, 4 * st, 0, "layer1.%d.bn3", k);
        int sc = xin;
        if (k == 0) {
            sc = conv(b, xin, cin, 4 * st, 1, 1, 0, 1, 0, "layer1.0.downsample.0");
            sc = bn(b, sc, 4 * st, 0, "layer1.0.downsample.1");
        }
        x = add_relu(b, m, sc, 1, 1);
        cin = 4 * st;
    }
    const int ch[4] = {C, 2 * C, 4 * C, 8 * C};
    int br[4];
    if (cin != C) { /* transition1.0: conv 3x3 + BN + ReLU at the same size */
        br[0] = conv(b, x, cin, C, 3, 1, 1, 1, 0, "transition1.0.0");
        br[0] = bn(b, br[0], C, 1, "transition1.0.1");
    } else {
        br[0] = x;
    }
    br[1] = hr_down(b, &L, x, cin, ch[1], 2, 1, "transition1.1.0.0", "transition1.1.0.1", "transition1.1.0.pool");
    static const int modules[3] = {1, 4, 3};
    for (int s = 0; s < 3; s++) {
        const int nb = s + 2;
        if (s > 0) { /* transition{s+1}: a new branch from the lowest one */
            char cn[32], bnn[32], pn[32];
            snprintf(cn, sizeof cn, "transition%d.%d.0.0", s + 1, nb - 1);
            snprintf(bnn, sizeof bnn, "transition%d.%d.0.1", s + 1, nb - 1);
            snprintf(pn, sizeof pn, "transition%d.%d.0.pool", s + 1, nb - 1);
            br[nb - 1] = hr_down(b, &L, br[nb - 2], ch[nb - 2], ch[nb - 1], nb, 1, cn, bnn, pn);
        }
        for (int m = 0; m < modules[s]; m++) {
            char p[32];
            snprintf(p, sizeof p, "stage%d.%d", s + 2, m);
            hr_module(b, &L, br, ch, nb, p);
        }
    }
    /* the head: every branch up-sampled to branch 0's size, concatenated */
    int cat = br[0], cc = C;
    for (int j = 1; j < 4; j++) cat = node(b, DP_OP_CONCAT, cat, resize(b, br[j], br[0]), ""), cc += ch[j];
    x = conv(b, cat, cc, cc, 1, 1, 0, 1, 1, "last_layer.0");
    x = bn(b, x, cc, 1, "last_layer.1");
    x = conv(b, x, cc, b->cfg->classes, 1, 1, 0, 1, 1, "last_layer.3");
    /* scores at the input's size: the criterion's F.interpolate */
    x = resize(b, x, 0);
    if (x >= 0) b->net->out = x;
}

/* ---- initialisation (docs/models.md, "Initialisation") ---- */

/* Counter-based draws: element k of the tensor at offset off depends only on
 * (seed, off, k), so the initialisation is parallel and the same on any thread
 * count. */
static unsigned long long mix(unsigned long long z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static double unif_at(unsigned long long seed, unsigned long long i)
{
    return ((mix(seed ^ mix(i)) >> 11) + 0.5) * 0x1p-53;
}

/* w[k] = a * U(-1, 1) */
static void fill_uniform(float *w, long long n, double a, unsigned long long seed, long long off)
{
#pragma omp parallel for schedule(static) if (n > 65536)
    for (long long k = 0; k < n; k++) w[k] = (float)(a * (2.0 * unif_at(seed, (unsigned long long)(off + k)) - 1.0));
}

/* w[k] = sd * N(0, 1), Box-Muller: two values per pair of draws */
static void fill_normal(float *w, long long n, double sd, unsigned long long seed, long long off)
{
#pragma omp parallel for schedule(static) if (n > 65536)
    for (long long k = 0; k < (n + 1) / 2; k++) {
        const unsigned long long i = 2 * (unsigned long long)(off / 2 + k);
        const double r = sd * sqrt(-2.0 * log(unif_at(seed, i)));
        const double t = 6.283185307179586 * unif_at(seed, i + 1);
        w[2 * k] = (float)(r * cos(t));
        if (2 * k + 1 < n) w[2 * k + 1] = (float)(r * sin(t));
    }
}

static void init_params(dp_net *net, int arch, unsigned long long seed)
{
    const unsigned long long s = seed;
    for (int i = 0; i < net->n_nodes; i++) {
        dp_node *nd = &net->nodes[i];
        if (nd->w_off < 0) continue;
        float *w = net->params + nd->w_off;
        const dp_pview *v = NULL;
        for (int k = 0; k < net->n_pv; k++)
            if (net->pv[k].off == nd->w_off) v = &net->pv[k];
        const long long n = v ? v->numel : 0;
        switch (nd->type) {
        case DP_OP_CONV: {
            const double rf = (double)nd->k * nd->k;
            const double fan_in = rf * v->shape[1], fan_out = rf * v->shape[0];
            if (arch == DP_VGG16)
                fill_uniform(w, n, sqrt(6.0 / (fan_in + fan_out)), s, nd->w_off);
            else
                fill_normal(w, n, sqrt(2.0 / fan_out), s, nd->w_off);
            if (nd->bias) memset(net->params + nd->b_off, 0, sizeof(float) * (size_t)nd->cout);
            break;
        }
        case DP_OP_BN: {
            float *rm = net->stats + nd->s_off;
            for (long long k = 0; k < n; k++) w[k] = 1.0f, net->params[nd->b_off + k] = 0.0f,
                                               rm[k] = 0.0f, rm[n + k] = 1.0f;
            break;
        }
        case DP_OP_LINEAR: {
            const double fin = v->shape[1], fout = v->shape[0];
            float *bias = net->params + nd->b_off;
            if (arch == DP_RESNET50) { /* PyTorch's default Linear init */
                fill_uniform(w, n, 1.0 / sqrt(fin), s, nd->w_off);
                fill_uniform(bias, nd->cout, 1.0 / sqrt(fin), s, nd->b_off);
            } else if (arch == DP_VGG16) {
                fill_uniform(w, n, sqrt(6.0 / (fin + fout)), s, nd->w_off);
                memset(bias, 0, sizeof(float) * (size_t)nd->cout);
            } else if (arch >= DP_EFFICIENTNET_B0) { /* torchvision's EfficientNet */
                fill_uniform(w, n, 1.0 / sqrt(fout), s, nd->w_off);
                memset(bias, 0, sizeof(float) * (size_t)nd->cout);
            } else {
                fill_normal(w, n, 0.01, s, nd->w_off);
                memset(bias, 0, sizeof(float) * (size_t)nd->cout);
            }
            break;
        }
        case DP_OP_SE: { /* two 1x1 convolutions: Kaiming normal on fan-out, biases 0 */
            const double q = nd->cout, c = (double)(n / nd->cout);
            fill_normal(w, n, sqrt(2.0 / q), s, nd->w_off);
            fill_normal(net->params + nd->w2_off, n, sqrt(2.0 / c), s, nd->w2_off);
            memset(net->params + nd->b_off, 0, sizeof(float) * (size_t)nd->cout);
            memset(net->params + nd->b2_off, 0, sizeof(float) * (size_t)(n / nd->cout));
            break;
        }
        case DP_OP_DYNOPOOL:
            /* ResNet's stem conv/2 + max-pool/2 becomes one DynOPool at alpha 4 (paper,
             * section 5.2.1; docs/models.md, "Where DynOPool goes") */
            w[0] = w[1] = strcmp(nd->name, "pool") == 0 ? 4.0f : 2.0f;
            break;
        default:
            break;
        }
    }
}

/* All adaptors start at one scale so that the last map starts 8 cells wide. */
static int init_adaptors(dp_net *net, const dp_arch_cfg *cfg)
{
    int n = 0, first = -1;
    for (int i = 0; i < net->n_nodes; i++)
        if (net->nodes[i].type == DP_OP_SHAPE_ADAPTOR) {
            net->params[net->nodes[i].w_off] = 0.0f;
            if (first < 0) first = i;
            n++;
        }
    if (!n) return DP_OK;
    int rc = dp_net_shapes(net, 1, cfg->in_ch, cfg->size, cfg->size, 0, NULL);
    if (rc) return rc;
    const double d0 = net->nodes[net->nodes[first].in[0]].y.h;
    double s0 = pow(8.0 / d0, 1.0 / n);
    s0 = s0 < 0.51 ? 0.51 : s0 > 0.99 ? 0.99 : s0;
    const double p = 2.0 * s0 - 1.0;
    const float a0 = (float)log(p / (1.0 - p));
    for (int i = 0; i < net->n_nodes; i++)
        if (net->nodes[i].type == DP_OP_SHAPE_ADAPTOR) net->params[net->nodes[i].w_off] = a0;
    return DP_OK;
}

int dp_arch_width_ok(int arch, float w)
{
    return arch == DP_HRNET ? hr_width(w) > 0 : w > 0.0f && w <= 16.0f;
}

/* The graph of cfg: nodes, and the parameters' and buffers' names and shapes
 * (net->pv, net->sv), nothing allocated.  shapes_only: weights are views at
 * offset -1 that take no place in net->params (alphas keep theirs). */
static int layout(dp_net *net, const dp_arch_cfg *cfg, int shapes_only)
{
    if (cfg->in_ch <= 0 || cfg->size < 2 || cfg->classes <= 0) return DP_ERR_SIZE;
    if (cfg->arch == DP_HRNET && cfg->pool == DP_POOL_SHAPE_ADAPTOR) return DP_ERR_ARG; /* not built */
    if (!dp_arch_width_ok(cfg->arch, cfg->width)) return DP_ERR_ARG;
    bld b = {net, cfg, 0, shapes_only};
    int in = node(&b, DP_OP_INPUT, -1, -1, "input");
    (void)in;
    switch (cfg->arch) {
    case DP_VGG16: vgg16(&b); break;
    case DP_RESNET50: resnet50(&b); break;
    case DP_MOBILENETV2: mobilenetv2(&b); break;
    case DP_EFFICIENTNET_B0:
    case DP_EFFICIENTNET_B1: efficientnet(&b); break;
    case DP_HRNET: hrnet(&b); break;
    default: return DP_ERR_ARG;
    }
    return b.rc;
}

static int build(dp_net *net, const dp_arch_cfg *cfg, int shapes_only)
{
    int rc = layout(net, cfg, shapes_only);
    if (rc) return rc;
    if ((rc = dp_net_alloc(net))) return rc;
    init_params(net, cfg->arch, cfg->seed);
    if ((rc = init_adaptors(net, cfg))) return rc;
    return dp_net_record_initial(net, cfg->in_ch, cfg->size, cfg->size);
}

int dp_build_layout(dp_net *net, const dp_arch_cfg *cfg) { return layout(net, cfg, 0); }

int dp_build(dp_net *net, const dp_arch_cfg *cfg) { return build(net, cfg, 0); }

int dp_build_shapes(dp_net *net, const dp_arch_cfg *cfg) { return build(net, cfg, 1); }

int dp_net_stages(const dp_net *net, int *idx, int max)
{
    int n = 0;
    for (int i = 0; i < net->n_nodes; i++)
        if (net->nodes[i].stage) {
            if (n < max) idx[n] = i;
            n++;
        }
    return n;
}
