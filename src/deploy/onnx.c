/* onnx.c — a frozen network as an ONNX model (dynopool/deploy.h).
 *
 * The message types are those of Debian's onnx.proto (libonnx-dev), compiled
 * to C by protoc-c when the library is built (CMakeLists.txt); protobuf-c
 * encodes them.  The graph follows the frozen, folded network node by node
 * (src/engine/infer.c); every op of the engine has its ONNX form in EMIT below,
 * indexed by its type, and an op without one is refused by name.  Every
 * message and array is allocated in one arena and freed after packing. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dynopool/deploy.h"
#include "dynopool/store.h"
#include "engine/model.h"
#include "onnx/onnx.pb-c.h" /* generated from onnx.proto at build time */

enum { IR_VERSION = 8, OPSET = 17 }; /* ONNX 1.12 (Debian's onnx.proto): IR 8, opsets up to 17 */
enum { T_FLOAT = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, T_INT64 = ONNX__TENSOR_PROTO__DATA_TYPE__INT64 };

/* ---- an arena of calloc'ed blocks, freed at once --------------------------------- */

typedef struct {
    void **blk;
    size_t n, cap;
    int oom;
} arena;

static void *az(arena *a, size_t bytes)
{
    if (a->oom) return NULL;
    if (a->n == a->cap) {
        const size_t cap = a->cap ? 2 * a->cap : 256;
        void **b = realloc(a->blk, cap * sizeof *b);
        if (!b) return a->oom = 1, NULL;
        a->blk = b, a->cap = cap;
    }
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p) return a->oom = 1, NULL;
    return a->blk[a->n++] = p;
}

static char *astr(arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = len >= 0 ? az(a, (size_t)len + 1) : NULL;
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)len + 1, fmt, ap);
    va_end(ap);
    return s;
}

static void arena_free(arena *a)
{
    for (size_t i = 0; i < a->n; i++) free(a->blk[i]);
    free(a->blk);
}

/* A growing array of pointers in the arena (the old block stays until the end). */
static int push(arena *a, void ***arr, size_t *n, size_t *cap, void *item)
{
    if (!item) return a->oom = 1, DP_ERR_NOMEM;
    if (*n == *cap) {
        const size_t c = *cap ? 2 * *cap : 64;
        void **b = az(a, c * sizeof *b);
        if (!b) return DP_ERR_NOMEM;
        if (*n) memcpy(b, *arr, *n * sizeof *b);
        *arr = b, *cap = c;
    }
    (*arr)[(*n)++] = item;
    return DP_OK;
}

/* ---- the graph being built --------------------------------------------------------- */

typedef struct {
    arena a;
    const dp_net *net;
    Onnx__NodeProto **nodes;
    size_t n_nodes, cap_nodes;
    Onnx__TensorProto **inits;
    size_t n_inits, cap_inits;
    char **vname;      /* the value each engine node's output is, by node index */
    char **uname;      /* each engine node's module path, made unique: the names of its
                          ONNX nodes and initializers */
    const char *path;  /* the file, which err names first */
    char *err;
    size_t errlen;
} graph;

static int fail(graph *g, int rc, const char *fmt, ...)
{
    if (g->err && g->errlen) {
        const int k = snprintf(g->err, g->errlen, "%s: ", g->path);
        va_list ap;
        va_start(ap, fmt);
        if (k >= 0 && (size_t)k < g->errlen) vsnprintf(g->err + k, g->errlen - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Little-endian bytes of n values of elem bytes each (ONNX's raw_data order). */
static void *le_bytes(arena *a, const void *src, size_t n, size_t elem)
{
    unsigned char *d = az(a, n * elem);
    if (!d) return NULL;
    memcpy(d, src, n * elem);
    const uint16_t one = 1;
    if (*(const unsigned char *)&one == 0) /* a big-endian host: swap each value */
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; k < elem / 2; k++) {
                unsigned char t = d[i * elem + k];
                d[i * elem + k] = d[i * elem + elem - 1 - k], d[i * elem + elem - 1 - k] = t;
            }
    return d;
}

/* An initializer `name` of type T_FLOAT or T_INT64, shape dims[0..ndim), data. */
static int init(graph *g, const char *name, int type, int ndim, const int64_t *dims, const void *data)
{
    arena *a = &g->a;
    Onnx__TensorProto *t = az(a, sizeof *t);
    if (!t) return DP_ERR_NOMEM;
    onnx__tensor_proto__init(t);
    size_t n = 1;
    t->dims = az(a, sizeof(int64_t) * (size_t)(ndim ? ndim : 1));
    if (!t->dims) return DP_ERR_NOMEM;
    for (int i = 0; i < ndim; i++) t->dims[i] = dims[i], n *= (size_t)dims[i];
    t->n_dims = (size_t)ndim;
    t->has_data_type = 1, t->data_type = type;
    t->name = astr(a, "%s", name);
    const size_t elem = type == T_FLOAT ? sizeof(float) : sizeof(int64_t);
    t->has_raw_data = 1, t->raw_data.len = n * elem;
    t->raw_data.data = le_bytes(a, data, n, elem);
    if (!t->name || !t->raw_data.data) return DP_ERR_NOMEM;
    return push(a, (void ***)&g->inits, &g->n_inits, &g->cap_inits, t);
}

/* A node op_type(in[0..nin)) -> out, named name; NULL when out of memory.  Its
 * attributes are added with attr_*. */
static Onnx__NodeProto *node(graph *g, const char *op_type, const char *name, const char *out, int nin,
                             const char *const *in)
{
    arena *a = &g->a;
    Onnx__NodeProto *n = name ? az(a, sizeof *n) : NULL;
    if (!n) return NULL;
    onnx__node_proto__init(n);
    n->op_type = astr(a, "%s", op_type);
    n->name = astr(a, "%s", name);
    n->input = az(a, sizeof(char *) * (size_t)nin);
    n->output = az(a, sizeof(char *));
    if (!n->op_type || !n->name || !n->input || !n->output) return NULL;
    n->n_input = (size_t)nin;
    for (int i = 0; i < nin; i++)
        if (!(n->input[i] = astr(a, "%s", in[i]))) return NULL;
    n->n_output = 1;
    if (!(n->output[0] = astr(a, "%s", out))) return NULL;
    if (push(a, (void ***)&g->nodes, &g->n_nodes, &g->cap_nodes, n)) return NULL;
    return n;
}

static Onnx__AttributeProto *attr(graph *g, Onnx__NodeProto *n, const char *name, int type)
{
    arena *a = &g->a;
    Onnx__AttributeProto *at = az(a, sizeof *at);
    Onnx__AttributeProto **arr = n ? az(a, sizeof *arr * (n->n_attribute + 1)) : NULL;
    if (!at || !arr) return NULL;
    onnx__attribute_proto__init(at);
    at->name = astr(a, "%s", name);
    if (!at->name) return NULL;
    at->has_type = 1, at->type = type;
    if (n->n_attribute) memcpy(arr, n->attribute, sizeof *arr * n->n_attribute);
    arr[n->n_attribute++] = at;
    n->attribute = arr;
    return at;
}

static int attr_int(graph *g, Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *at = attr(g, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (!at) return DP_ERR_NOMEM;
    at->has_i = 1, at->i = v;
    return DP_OK;
}

static int attr_float(graph *g, Onnx__NodeProto *n, const char *name, float v)
{
    Onnx__AttributeProto *at = attr(g, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (!at) return DP_ERR_NOMEM;
    at->has_f = 1, at->f = v;
    return DP_OK;
}

static int attr_str(graph *g, Onnx__NodeProto *n, const char *name, const char *v)
{
    Onnx__AttributeProto *at = attr(g, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    char *s = at ? astr(&g->a, "%s", v) : NULL;
    if (!s) return DP_ERR_NOMEM;
    at->has_s = 1, at->s.data = (uint8_t *)s, at->s.len = strlen(s);
    return DP_OK;
}

/* ints = (v, v) or (v, v, v, v): kernel_shape, strides, pads of a square window */
static int attr_ints(graph *g, Onnx__NodeProto *n, const char *name, int count, int64_t v)
{
    Onnx__AttributeProto *at = attr(g, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *p = at ? az(&g->a, sizeof(int64_t) * (size_t)count) : NULL;
    if (!p) return DP_ERR_NOMEM;
    for (int i = 0; i < count; i++) p[i] = v;
    at->ints = p, at->n_ints = (size_t)count;
    return DP_OK;
}

/* The window attributes of a Conv or MaxPool of square kernel k, stride s, padding p. */
static int window(graph *g, Onnx__NodeProto *n, int k, int s, int p)
{
    if (!n) return DP_ERR_NOMEM;
    int rc = attr_ints(g, n, "kernel_shape", 2, k);
    if (!rc) rc = attr_ints(g, n, "strides", 2, s);
    if (!rc) rc = attr_ints(g, n, "pads", 4, p);
    return rc;
}

/* out = Relu(x) (clip 0), or x clipped to [0, clip] (ReLU6: clip 6). */
static int activation(graph *g, const char *name, const char *x, const char *out, float clip)
{
    if (!name) return DP_ERR_NOMEM;
    if (clip <= 0.0f) return node(g, "Relu", name, out, 1, &x) ? DP_OK : DP_ERR_NOMEM;
    char *lo = astr(&g->a, "%s.clip_min", name), *hi = astr(&g->a, "%s.clip_max", name);
    if (!lo || !hi) return DP_ERR_NOMEM;
    const float zero = 0.0f;
    int rc = init(g, lo, T_FLOAT, 0, NULL, &zero);
    if (!rc) rc = init(g, hi, T_FLOAT, 0, NULL, &clip);
    const char *in[3] = {x, lo, hi};
    return rc ? rc : node(g, "Clip", name, out, 3, in) ? DP_OK : DP_ERR_NOMEM;
}

/* out = x Sigmoid(x): SiLU (opset 17 has no operator of its own for it). */
static int silu(graph *g, const char *name, const char *x, const char *out)
{
    char *sg = name ? astr(&g->a, "%s/sigmoid", out) : NULL, *mn = name ? astr(&g->a, "%s.mul", name) : NULL;
    if (!sg || !mn || !node(g, "Sigmoid", name, sg, 1, &x)) return DP_ERR_NOMEM;
    const char *in[2] = {x, sg};
    return node(g, "Mul", mn, out, 2, in) ? DP_OK : DP_ERR_NOMEM;
}

/* The activation fused after a batch norm or folded into a convolution (DP_ACT_*). */
static int fused_act(graph *g, const char *name, const char *x, const char *out, int act)
{
    if (act == DP_ACT_SILU) return silu(g, name, x, out);
    return activation(g, name, x, out, act == DP_ACT_RELU6 ? 6.0f : 0.0f);
}

/* ---- one function per op of the engine: its ONNX form ----------------------------- */

typedef int (*emit_fn)(graph *g, int i);

static const dp_node *nd_of(graph *g, int i) { return &g->net->nodes[i]; }
static const char *in_of(graph *g, int i, int s) { return g->vname[nd_of(g, i)->in[s]]; }
static const float *par(graph *g, long long off) { return g->net->params + off; }

static int emit_input(graph *g, int i)
{
    (void)g, (void)i;
    return DP_OK; /* the graph's input "input" */
}

/* Conv (weights OIHW, as the engine keeps them), then the activation of a batch
 * norm folded into it. */
static int emit_conv(graph *g, int i)
{
    const dp_node *nd = nd_of(g, i);
    const dp_act *x = &g->net->nodes[nd->in[0]].y;
    const int64_t wd[4] = {nd->cout, x->c / nd->groups, nd->k, nd->k}, bd[1] = {nd->cout};
    char *w = astr(&g->a, "%s.weight", g->uname[i]), *b = astr(&g->a, "%s.bias", g->uname[i]);
    char *y = nd->relu ? astr(&g->a, "%s/conv", g->vname[i]) : g->vname[i];
    if (!w || !b || !y) return DP_ERR_NOMEM;
    int rc = init(g, w, T_FLOAT, 4, wd, par(g, nd->w_off));
    if (!rc && nd->bias) rc = init(g, b, T_FLOAT, 1, bd, par(g, nd->b_off));
    const char *in[3] = {in_of(g, i, 0), w, b};
    Onnx__NodeProto *n = rc ? NULL : node(g, "Conv", g->uname[i], y, nd->bias ? 3 : 2, in);
    if (!rc) rc = window(g, n, nd->k, nd->stride, nd->pad);
    if (!rc) rc = attr_int(g, n, "group", nd->groups);
    if (!rc && nd->relu) rc = fused_act(g, astr(&g->a, "%s.act", g->uname[i]), y, g->vname[i], nd->relu);
    return rc;
}

/* A batch norm that was not folded (its producer is no convolution read by it alone). */
static int emit_bn(graph *g, int i)
{
    const dp_node *nd = nd_of(g, i);
    const int64_t d[1] = {nd->y.c};
    char *nm[4] = {astr(&g->a, "%s.weight", g->uname[i]), astr(&g->a, "%s.bias", g->uname[i]),
                   astr(&g->a, "%s.running_mean", g->uname[i]), astr(&g->a, "%s.running_var", g->uname[i])};
    char *y = nd->relu ? astr(&g->a, "%s/bn", g->vname[i]) : g->vname[i];
    if (!nm[0] || !nm[1] || !nm[2] || !nm[3] || !y) return DP_ERR_NOMEM;
    const float *st = g->net->stats + nd->s_off;
    int rc = init(g, nm[0], T_FLOAT, 1, d, par(g, nd->w_off));
    if (!rc) rc = init(g, nm[1], T_FLOAT, 1, d, par(g, nd->b_off));
    if (!rc) rc = init(g, nm[2], T_FLOAT, 1, d, st);
    if (!rc) rc = init(g, nm[3], T_FLOAT, 1, d, st + nd->y.c);
    const char *in[5] = {in_of(g, i, 0), nm[0], nm[1], nm[2], nm[3]};
    Onnx__NodeProto *n = rc ? NULL : node(g, "BatchNormalization", g->uname[i], y, 5, in);
    if (!rc) rc = n ? attr_float(g, n, "epsilon", g->net->bn_eps) : DP_ERR_NOMEM;
    if (!rc && nd->relu) rc = fused_act(g, astr(&g->a, "%s.act", g->uname[i]), y, g->vname[i], nd->relu);
    return rc;
}

static int emit_relu(graph *g, int i)
{
    const dp_node *nd = nd_of(g, i);
    return activation(g, g->uname[i], in_of(g, i, 0), g->vname[i], nd->clip);
}

static int emit_silu(graph *g, int i) { return silu(g, g->uname[i], in_of(g, i, 0), g->vname[i]); }

/* Dropout and stochastic depth are the identity in inference. */
static int emit_identity(graph *g, int i)
{
    const char *x = in_of(g, i, 0);
    return node(g, "Identity", g->uname[i], g->vname[i], 1, &x) ? DP_OK : DP_ERR_NOMEM;
}

/* Squeeze-and-excitation as torchvision writes it: GlobalAveragePool, Conv 1x1
 * (fc1), SiLU, Conv 1x1 (fc2), Sigmoid, and the channel-wise Mul with x. */
static int emit_se(graph *g, int i)
{
    const dp_node *nd = nd_of(g, i);
    const int c = nd->y.c, q = nd->cout;
    const char *x = in_of(g, i, 0), *u = g->uname[i], *v = g->vname[i];
    char *pool = astr(&g->a, "%s/pool", v), *z1 = astr(&g->a, "%s/fc1", v), *a1 = astr(&g->a, "%s/act", v),
         *z2 = astr(&g->a, "%s/fc2", v), *sc = astr(&g->a, "%s/scale", v);
    if (!pool || !z1 || !a1 || !z2 || !sc) return DP_ERR_NOMEM;
    if (!node(g, "GlobalAveragePool", astr(&g->a, "%s.avgpool", u), pool, 1, &x)) return DP_ERR_NOMEM;
    const long long woff[2] = {nd->w_off, nd->w2_off}, boff[2] = {nd->b_off, nd->b2_off};
    const char *fc[2] = {"fc1", "fc2"}, *fin[2] = {pool, a1}, *fout[2] = {z1, z2};
    for (int k = 0; k < 2; k++) {
        const int64_t wd[4] = {k ? c : q, k ? q : c, 1, 1}, bd[1] = {k ? c : q};
        char *w = astr(&g->a, "%s.%s.weight", u, fc[k]), *b = astr(&g->a, "%s.%s.bias", u, fc[k]);
        if (!w || !b) return DP_ERR_NOMEM;
        int rc = init(g, w, T_FLOAT, 4, wd, par(g, woff[k]));
        if (!rc) rc = init(g, b, T_FLOAT, 1, bd, par(g, boff[k]));
        const char *in[3] = {fin[k], w, b};
        if (!rc) rc = node(g, "Conv", astr(&g->a, "%s.%s", u, fc[k]), fout[k], 3, in) ? DP_OK : DP_ERR_NOMEM;
        if (rc) return rc;
        if (!k && (rc = silu(g, astr(&g->a, "%s.activation", u), z1, a1))) return rc;
    }
    if (!node(g, "Sigmoid", astr(&g->a, "%s.scale_activation", u), sc, 1, (const char *const *)&z2))
        return DP_ERR_NOMEM;
    const char *in[2] = {x, sc};
    return node(g, "Mul", u, v, 2, in) ? DP_OK : DP_ERR_NOMEM;
}

static int emit_maxpool(graph *g, int i)
{
    const dp_node *nd = nd_of(g, i);
    const char *x = in_of(g, i, 0);
    return window(g, node(g, "MaxPool", g->uname[i], g->vname[i], 1, &x), nd->k, nd->stride, nd->pad);
}

/* GlobalAveragePool, then Flatten to the (N, C) matrix the classifier reads. */
static int emit_gap(graph *g, int i)
{
    const char *x = in_of(g, i, 0), *p = astr(&g->a, "%s/pool", g->vname[i]);
    if (!p || !node(g, "GlobalAveragePool", g->uname[i], p, 1, &x)) return DP_ERR_NOMEM;
    Onnx__NodeProto *n = node(g, "Flatten", astr(&g->a, "%s.flatten", g->uname[i]), g->vname[i], 1, &p);
    return n ? attr_int(g, n, "axis", 1) : DP_ERR_NOMEM;
}

/* y = x W^T + b: Gemm with transB, W (cout, cin) as the engine keeps it. */
static int emit_linear(graph *g, int i)
{
    const dp_node *nd = nd_of(g, i);
    const int64_t wd[2] = {nd->cout, g->net->nodes[nd->in[0]].y.c}, bd[1] = {nd->cout};
    char *w = astr(&g->a, "%s.weight", g->uname[i]), *b = astr(&g->a, "%s.bias", g->uname[i]);
    if (!w || !b) return DP_ERR_NOMEM;
    int rc = init(g, w, T_FLOAT, 2, wd, par(g, nd->w_off));
    if (!rc) rc = init(g, b, T_FLOAT, 1, bd, par(g, nd->b_off));
    const char *in[3] = {in_of(g, i, 0), w, b};
    Onnx__NodeProto *n = rc ? NULL : node(g, "Gemm", g->uname[i], g->vname[i], 3, in);
    return rc ? rc : n ? attr_int(g, n, "transB", 1) : DP_ERR_NOMEM;
}

static int emit_add(graph *g, int i)
{
    const dp_node *nd = nd_of(g, i);
    const char *in[2] = {in_of(g, i, 0), in_of(g, i, 1)};
    char *y = nd->relu ? astr(&g->a, "%s/sum", g->vname[i]) : g->vname[i];
    if (!y || !node(g, "Add", g->uname[i], y, 2, in)) return DP_ERR_NOMEM;
    return nd->relu ? activation(g, astr(&g->a, "%s.act", g->uname[i]), y, g->vname[i], 0.0f) : DP_OK;
}

/* One axis (2: height, 3: width) of DynOPool's sampling: x -> out of 2 * size
 * query coordinates along that axis, sample q = (1 - t[q]) x[i0[q]] + t[q] x[i1[q]]
 * (dp_dynopool_taps; the kernel's own weights and order of operations).  A
 * whole-pixel axis (every t = 0) is one Gather; one that reads every cell in
 * order (alpha = 2 on an even side) is nothing: out is x. */
static int sample_axis(graph *g, const char *base, const char *x, int in, float alpha, int axis, const char **out)
{
    const int n = dp_dynopool_size(in, alpha);
    if (n < 0) return n;
    const size_t m = 2 * (size_t)n;
    int *i0 = az(&g->a, sizeof(int) * m), *i1 = az(&g->a, sizeof(int) * m);
    float *t = az(&g->a, sizeof(float) * m), *w0 = az(&g->a, sizeof(float) * m);
    int64_t *j0 = az(&g->a, sizeof(int64_t) * m), *j1 = az(&g->a, sizeof(int64_t) * m);
    if (!i0 || !i1 || !t || !w0 || !j0 || !j1) return DP_ERR_NOMEM;
    int rc = dp_dynopool_taps(in, alpha, i0, i1, t);
    if (rc < 0) return rc;
    int whole = 1, ident = (int)m == in;
    for (size_t q = 0; q < m; q++) {
        j0[q] = i0[q], j1[q] = i1[q], w0[q] = 1.0f - t[q];
        whole &= t[q] == 0.0f;
        ident &= i0[q] == (int)q;
    }
    if (whole && ident) return *out = x, DP_OK;
    const char *ax = axis == 2 ? "h" : "w";
    char *n0 = astr(&g->a, "%s.%s.index0", base, ax), *n1 = astr(&g->a, "%s.%s.index1", base, ax);
    char *nw0 = astr(&g->a, "%s.%s.weight0", base, ax), *nw1 = astr(&g->a, "%s.%s.weight1", base, ax);
    char *g0 = astr(&g->a, "%s/%s.gather0", base, ax), *g1 = astr(&g->a, "%s/%s.gather1", base, ax);
    char *m0 = astr(&g->a, "%s/%s.mul0", base, ax), *m1 = astr(&g->a, "%s/%s.mul1", base, ax);
    char *s = astr(&g->a, "%s/%s.sample", base, ax);
    if (!n0 || !n1 || !nw0 || !nw1 || !g0 || !g1 || !m0 || !m1 || !s) return DP_ERR_NOMEM;
    const int64_t d1[1] = {(int64_t)m}, dw[2] = {(int64_t)m, 1}; /* weights broadcast along the axis */
    const int64_t *wd = axis == 2 ? dw : d1;
    const int wn = axis == 2 ? 2 : 1;
    rc = init(g, n0, T_INT64, 1, d1, j0);
    const char *a0[2] = {x, n0};
    Onnx__NodeProto *nd = rc ? NULL : node(g, "Gather", astr(&g->a, "%s.%s.gather0", base, ax), whole ? s : g0, 2, a0);
    if (!rc) rc = nd ? attr_int(g, nd, "axis", axis) : DP_ERR_NOMEM;
    if (rc || whole) return *out = s, rc;
    rc = init(g, n1, T_INT64, 1, d1, j1);
    if (!rc) rc = init(g, nw0, T_FLOAT, wn, wd, w0);
    if (!rc) rc = init(g, nw1, T_FLOAT, wn, wd, t);
    const char *a1[2] = {x, n1}, *b0[2] = {g0, nw0}, *b1[2] = {g1, nw1}, *c[2] = {m0, m1};
    nd = rc ? NULL : node(g, "Gather", astr(&g->a, "%s.%s.gather1", base, ax), g1, 2, a1);
    if (!rc) rc = nd ? attr_int(g, nd, "axis", axis) : DP_ERR_NOMEM;
    if (!rc && !(node(g, "Mul", astr(&g->a, "%s.%s.mul0", base, ax), m0, 2, b0) &&
                 node(g, "Mul", astr(&g->a, "%s.%s.mul1", base, ax), m1, 2, b1) &&
                 node(g, "Add", astr(&g->a, "%s.%s.add", base, ax), s, 2, c)))
        rc = DP_ERR_NOMEM;
    return *out = s, rc;
}

/* DynOPool at its constant alpha (docs/operator.md): the height sampled first,
 * then the width, as the kernel does, giving (N, C, 2 ho, 2 wo) whose 2x2
 * blocks are each cell's four candidates; MaxPool 2x2 stride 2 takes their max. */
static int emit_dynopool(graph *g, int i)
{
    const dp_node *nd = nd_of(g, i);
    const dp_act *x = &g->net->nodes[nd->in[0]].y;
    const float *al = par(g, g->net->nodes[nd->owner].w_off);
    const char *r, *s;
    int rc = sample_axis(g, g->uname[i], in_of(g, i, 0), x->h, al[0], 2, &r);
    if (!rc) rc = sample_axis(g, g->uname[i], r, x->w, al[1], 3, &s);
    if (rc) return rc;
    return window(g, node(g, "MaxPool", g->uname[i], g->vname[i], 1, &s), 2, 2, 0);
}

/* Shape Adaptor at its constant scale: both branches resized to the fixed output
 * size (Resize, linear, align_corners, as the engine's bilinear resize), then
 * y = (1 - sigma) resize(reduced) + sigma resize(identity).  The sizes input of
 * Resize names every axis: the batch and channels come from Shape. */
static int emit_shape_adaptor(graph *g, int i)
{
    const dp_node *nd = nd_of(g, i);
    arena *a = &g->a;
    const float sg = 1.0f / (1.0f + expf(-par(g, nd->w_off)[0])), w[2] = {sg, 1.0f - sg};
    const int64_t hw[2] = {nd->y.h, nd->y.w}, one[1] = {1}, two[1] = {2}, zero[1] = {0};
    char *nhw = astr(a, "%s.size", g->uname[i]), *n0 = astr(a, "%s.slice_start", g->uname[i]);
    char *n2 = astr(a, "%s.slice_end", g->uname[i]), *shp = astr(a, "%s/shape", g->vname[i]);
    char *nc = astr(a, "%s/nc", g->vname[i]), *sizes = astr(a, "%s/sizes", g->vname[i]);
    if (!nhw || !n0 || !n2 || !shp || !nc || !sizes) return DP_ERR_NOMEM;
    const int64_t d2[1] = {2};
    int rc = init(g, nhw, T_INT64, 1, d2, hw);
    if (!rc) rc = init(g, n0, T_INT64, 1, one, zero);
    if (!rc) rc = init(g, n2, T_INT64, 1, one, two);
    if (rc) return rc;
    const char *x0 = in_of(g, i, 0), *sl[3] = {shp, n0, n2}, *cc[2] = {nc, nhw};
    Onnx__NodeProto *n;
    if (!node(g, "Shape", astr(a, "%s.shape", g->uname[i]), shp, 1, &x0) ||
        !node(g, "Slice", astr(a, "%s.slice", g->uname[i]), nc, 3, sl) ||
        !(n = node(g, "Concat", astr(a, "%s.concat", g->uname[i]), sizes, 2, cc)) || attr_int(g, n, "axis", 0))
        return DP_ERR_NOMEM;
    const char *mixed[2];
    for (int s = 0; s < 2; s++) {
        char *rz = astr(a, "%s/resize%d", g->vname[i], s), *wn = astr(a, "%s.mix%d", g->uname[i], s);
        char *m = astr(a, "%s/mix%d", g->vname[i], s);
        if (!rz || !wn || !m) return DP_ERR_NOMEM;
        const char *ri[4] = {in_of(g, i, s), "", "", sizes}, *mi[2] = {rz, wn};
        n = node(g, "Resize", astr(a, "%s.resize%d", g->uname[i], s), rz, 4, ri);
        if (!n || attr_str(g, n, "mode", "linear") ||
            attr_str(g, n, "coordinate_transformation_mode", "align_corners"))
            return DP_ERR_NOMEM;
        if ((rc = init(g, wn, T_FLOAT, 0, NULL, &w[s]))) return rc;
        if (!node(g, "Mul", astr(a, "%s.mul%d", g->uname[i], s), m, 2, mi)) return DP_ERR_NOMEM;
        mixed[s] = m;
    }
    const char *ad[2] = {mixed[1], mixed[0]};
    return node(g, "Add", g->uname[i], g->vname[i], 2, ad) ? DP_OK : DP_ERR_NOMEM;
}

static const emit_fn EMIT[DP_OP_COUNT] = {
    [DP_OP_INPUT] = emit_input,   [DP_OP_CONV] = emit_conv,       [DP_OP_BN] = emit_bn,
    [DP_OP_RELU] = emit_relu,     [DP_OP_MAXPOOL] = emit_maxpool, [DP_OP_GAP] = emit_gap,
    [DP_OP_LINEAR] = emit_linear, [DP_OP_ADD] = emit_add,         [DP_OP_DYNOPOOL] = emit_dynopool,
    [DP_OP_SHAPE_ADAPTOR] = emit_shape_adaptor, [DP_OP_SILU] = emit_silu, [DP_OP_SE] = emit_se,
    [DP_OP_DROPOUT] = emit_identity, [DP_OP_DROP_PATH] = emit_identity,
};

/* ---- the model ------------------------------------------------------------------------ */

/* A graph input or output: float32 of shape (N, dims...), N symbolic. */
static Onnx__ValueInfoProto *value_info(arena *a, const char *name, int nd, const int64_t *dims)
{
    Onnx__ValueInfoProto *v = az(a, sizeof *v);
    Onnx__TypeProto *tp = az(a, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = az(a, sizeof *tt);
    Onnx__TensorShapeProto *sh = az(a, sizeof *sh);
    Onnx__TensorShapeProto__Dimension **dim = az(a, sizeof *dim * (size_t)(nd + 1));
    if (!v || !tp || !tt || !sh || !dim) return NULL;
    onnx__value_info_proto__init(v), onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt), onnx__tensor_shape_proto__init(sh);
    for (int k = 0; k <= nd; k++) {
        if (!(dim[k] = az(a, sizeof **dim))) return NULL;
        onnx__tensor_shape_proto__dimension__init(dim[k]);
        if (k == 0) {
            dim[k]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            if (!(dim[k]->dim_param = astr(a, "N"))) return NULL;
        } else {
            dim[k]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dim[k]->dim_value = dims[k - 1];
        }
    }
    sh->dim = dim, sh->n_dim = (size_t)nd + 1;
    tt->has_elem_type = 1, tt->elem_type = T_FLOAT, tt->shape = sh;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE, tp->tensor_type = tt;
    v->name = astr(a, "%s", name), v->type = tp;
    return v->name ? v : NULL;
}

/* "[[a, b], ...]" of n integer or float pairs */
static char *pairs(arena *a, int n, const int (*iv)[2], const float (*fv)[2])
{
    size_t cap = 16 + (size_t)n * 64, len = 0;
    char *s = az(a, cap);
    if (!s) return NULL;
    len += (size_t)snprintf(s + len, cap - len, "[");
    for (int k = 0; k < n; k++) {
        if (iv) len += (size_t)snprintf(s + len, cap - len, "%s[%d, %d]", k ? ", " : "", iv[k][0], iv[k][1]);
        else len += (size_t)snprintf(s + len, cap - len, "%s[%.9g, %.9g]", k ? ", " : "", fv[k][0], fv[k][1]);
    }
    snprintf(s + len, cap - len, "]");
    return s;
}

static int meta_add(arena *a, Onnx__ModelProto *mp, size_t *cap, const char *k, const char *v)
{
    for (size_t i = 0; i < mp->n_metadata_props; i++)
        if (!strcmp(mp->metadata_props[i]->key, k)) return DP_ERR_ARG;
    Onnx__StringStringEntryProto *e = az(a, sizeof *e);
    if (!e) return DP_ERR_NOMEM;
    onnx__string_string_entry_proto__init(e);
    e->key = astr(a, "%s", k), e->value = astr(a, "%s", v ? v : "");
    if (!e->key || !e->value) return DP_ERR_NOMEM;
    return push(a, (void ***)&mp->metadata_props, &mp->n_metadata_props, cap, e);
}

/* Every node's output value: its module path, made unique (uname), except the
 * input's, "input", and the logits', "logits". */
static int value_names(graph *g)
{
    const dp_net *net = g->net;
    g->vname = az(&g->a, sizeof(char *) * (size_t)net->n_nodes);
    g->uname = az(&g->a, sizeof(char *) * (size_t)net->n_nodes);
    if (!g->vname || !g->uname) return DP_ERR_NOMEM;
    for (int i = 0; i < net->n_nodes; i++) {
        const char *nm = net->nodes[i].name;
        int dup = !nm[0] || !strcmp(nm, "input") || !strcmp(nm, "logits");
        for (int k = 0; k < i && !dup; k++) dup = !strcmp(g->uname[k], nm);
        if (!(g->uname[i] = dup ? astr(&g->a, "%s#%d", nm[0] ? nm : dp_op_of(net->nodes[i].type)->name, i)
                                : astr(&g->a, "%s", nm)))
            return DP_ERR_NOMEM;
        g->vname[i] = i == 0 ? "input" : i == net->out ? "logits" : g->uname[i];
    }
    return DP_OK;
}

static int build(graph *g, const dp_infer *h, const dp_onnx_opts *o, Onnx__ModelProto *mp)
{
    arena *a = &g->a;
    const dp_model *m = dp_infer_model(h);
    const dp_net *net = &m->net;
    dp_infer_info in;
    dp_infer_info_get(h, &in);
    g->net = net;
    const dp_node *x0 = &net->nodes[0];
    if (net->n_nodes < 2 || x0->type != DP_OP_INPUT || x0->y.c != in.cfg.in_ch || x0->y.h != in.cfg.size ||
        x0->y.w != in.cfg.size || net->nodes[net->out].type != DP_OP_LINEAR)
        return fail(g, DP_ERR_ARG, "the network does not start with its input or end with its classifier");
    int rc = value_names(g);
    for (int i = 0; !rc && i < net->n_nodes; i++) {
        const dp_node *nd = &net->nodes[i];
        const emit_fn f = nd->type >= 0 && nd->type < DP_OP_COUNT ? EMIT[nd->type] : NULL;
        if (!f) return fail(g, DP_ERR_ARG, "node %s: op %s has no ONNX form", nd->name, dp_op_of(nd->type)->name);
        if ((rc = f(g, i)) == DP_ERR_NOMEM || a->oom) rc = DP_ERR_NOMEM;
        if (rc) return fail(g, rc, "node %s (%s): %s", nd->name, dp_op_of(nd->type)->name, dp_strerror(rc));
    }
    if (rc) return rc;

    Onnx__GraphProto *gp = az(a, sizeof *gp);
    Onnx__OperatorSetIdProto *ops = az(a, sizeof *ops), **opsv = az(a, sizeof *opsv);
    Onnx__ValueInfoProto **gi = az(a, sizeof *gi), **go = az(a, sizeof *go);
    if (!gp || !ops || !opsv || !gi || !go) return DP_ERR_NOMEM;
    onnx__graph_proto__init(gp);
    onnx__operator_set_id_proto__init(ops);
    const int64_t xd[3] = {in.cfg.in_ch, in.cfg.size, in.cfg.size}, yd[1] = {in.cfg.classes};
    gi[0] = value_info(a, "input", 3, xd), go[0] = value_info(a, "logits", 1, yd);
    if (!gi[0] || !go[0]) return DP_ERR_NOMEM;
    gp->name = astr(a, "%s_%s", dp_arch_name(in.cfg.arch), dp_pool_name(in.cfg.pool));
    gp->node = g->nodes, gp->n_node = g->n_nodes;
    gp->initializer = g->inits, gp->n_initializer = g->n_inits;
    gp->input = gi, gp->n_input = 1, gp->output = go, gp->n_output = 1;
    ops->domain = astr(a, ""), ops->has_version = 1, ops->version = OPSET, opsv[0] = ops;

    mp->has_ir_version = 1, mp->ir_version = IR_VERSION;
    mp->opset_import = opsv, mp->n_opset_import = 1;
    mp->producer_name = astr(a, "dynopool"), mp->producer_version = astr(a, "%s", dp_version());
    mp->has_model_version = 1, mp->model_version = 1;
    mp->doc_string = o && o->doc ? astr(a, "%s", o->doc)
                                 : astr(a, "%s (%s pooling), width %g, %d classes, input %dx%dx%d; frozen by dynopool",
                                        dp_arch_name(in.cfg.arch), dp_pool_name(in.cfg.pool), in.cfg.width,
                                        in.cfg.classes, in.cfg.in_ch, in.cfg.size, in.cfg.size);
    mp->graph = gp;
    size_t cap = 0;
    char num[8][64];
    snprintf(num[0], 64, "%d", in.cfg.in_ch), snprintf(num[1], 64, "%d", in.cfg.size);
    snprintf(num[2], 64, "%d", in.cfg.classes), snprintf(num[3], 64, "%.9g", in.cfg.width);
    snprintf(num[4], 64, "%.9g", in.model.gmacs), snprintf(num[5], 64, "%d", in.folded);
    const char *keys[] = {"model", "pool", "in_channels", "input_size", "classes", "width", "sizes", "alphas",
                          "gmacs", "batch_norms_folded"};
    const char *vals[] = {dp_arch_name(in.cfg.arch), dp_pool_name(in.cfg.pool), num[0], num[1], num[2], num[3],
                          pairs(a, in.model.n_stages, (const int(*)[2])in.model.sizes, NULL),
                          pairs(a, in.model.n_alphas, NULL, (const float(*)[2])in.model.alphas), num[4], num[5]};
    for (size_t k = 0; !rc && k < sizeof keys / sizeof keys[0]; k++) rc = meta_add(a, mp, &cap, keys[k], vals[k]);
    for (int k = 0; !rc && o && k < o->n_meta; k++) {
        if (!o->keys || !o->vals || !o->keys[k]) return fail(g, DP_ERR_NULL, "metadata pair %d is NULL", k);
        if ((rc = meta_add(a, mp, &cap, o->keys[k], o->vals[k])) == DP_ERR_ARG)
            return fail(g, rc, "metadata key '%s' given twice (or one of the library's own)", o->keys[k]);
    }
    return rc ? rc : a->oom ? DP_ERR_NOMEM : DP_OK;
}

int dp_export_onnx(const dp_infer *h, const char *path, const dp_onnx_opts *opts, char *err, size_t errlen)
{
    if (err && errlen) err[0] = 0;
    if (!h || !path) return DP_ERR_NULL;
    graph g = {.path = path, .err = err, .errlen = errlen};
    Onnx__ModelProto mp;
    onnx__model_proto__init(&mp);
    int rc = build(&g, h, opts, &mp);
    uint8_t *buf = NULL;
    if (!rc) {
        const size_t n = onnx__model_proto__get_packed_size(&mp);
        if (n > (size_t)INT32_MAX) rc = fail(&g, DP_ERR_OVERFLOW, "%zu bytes: over the 2 GiB of a protobuf message", n);
        else if (!(buf = malloc(n ? n : 1))) rc = DP_ERR_NOMEM;
        else if (onnx__model_proto__pack(&mp, buf) != n) rc = fail(&g, DP_ERR_ARG, "protobuf-c packed a wrong size");
        else if ((rc = dp_write_file_atomic(path, buf, n)))
            fail(&g, rc, "cannot write: %s", strerror(errno));
    }
    if (rc == DP_ERR_NOMEM && err && errlen && !err[0]) fail(&g, rc, "out of memory");
    free(buf);
    arena_free(&g.a);
    return rc;
}
