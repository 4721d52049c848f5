/* net.c — the network: nodes in topological order, flat parameter buffers,
 * shape inference every step, forward, backward, the complexity loss
 * (docs/operator.md, "The complexity loss").  It knows ops only through their
 * dp_op tables (engine.h). */
#include "engine/net.h"

#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/dnn.h"

/* ---- buffers ------------------------------------------------------------------ */

/* A buffer that must grow gets a quarter more than it needs when it held
 * something already: maps that follow moving alphas grow a little at many
 * steps, and each regrowth is an allocation, a memset and page faults over the
 * whole buffer (docs/engine.md, "Shapes that change").  A first allocation is
 * exact, so a network of fixed shapes holds what it did. */
static void *grow(void *p, size_t *cap, size_t bytes)
{
    if (bytes <= *cap && p) return p;
    size_t want = (bytes + 63) & ~(size_t)63;
    if (p && *cap > 0 && want < *cap + *cap / 4 && *cap + *cap / 4 > *cap)
        want = (*cap + *cap / 4 + 63) & ~(size_t)63;
    void *q = aligned_alloc(64, want ? want : 64);
    if (!q) return NULL;
    memset(q, 0, want);
    free(p);
    *cap = want;
    return q;
}

int dp_act_reserve(dp_act *a)
{
    size_t bytes = dp_act_numel(a) * sizeof(float), cap = a->cap * sizeof(float);
    if (bytes <= cap && a->data) return DP_OK;
    float *q = grow(a->data, &cap, bytes);
    if (!q) return DP_ERR_NOMEM;
    a->data = q;
    a->cap = cap / sizeof(float);
    return DP_OK;
}

void dp_act_free(dp_act *a)
{
    free(a->data);
    a->data = NULL;
    a->cap = 0;
}

void *dp_node_ws(dp_node *nd, size_t bytes)
{
    void *q = grow(nd->ws, &nd->ws_cap, bytes);
    if (q) nd->ws = q;
    return q;
}

float *dp_net_tmp(dp_net *net, size_t n)
{
    size_t cap = net->tmp_cap * sizeof(float);
    float *q = grow(net->tmp, &cap, n * sizeof(float));
    if (!q) return NULL;
    net->tmp = q;
    net->tmp_cap = cap / sizeof(float);
    return q;
}

/* Appends a pool slot: owned (data NULL, grown on use) or borrowing data. */
static int pool_slot(dp_net *net, float *data, size_t cap)
{
    const size_t n = (size_t)net->n_gpool + 1;
    dp_act *q = realloc(net->gpool, sizeof(*q) * n);
    if (!q) return DP_ERR_NOMEM;
    net->gpool = q;
    int *b = realloc(net->gbusy, sizeof(*b) * n);
    if (!b) return DP_ERR_NOMEM;
    net->gbusy = b;
    int *o = realloc(net->gown, sizeof(*o) * n);
    if (!o) return DP_ERR_NOMEM;
    net->gown = o;
    const int i = net->n_gpool++;
    memset(&net->gpool[i], 0, sizeof(dp_act));
    net->gpool[i].data = data;
    net->gpool[i].cap = cap;
    net->gbusy[i] = 0;
    net->gown[i] = data == NULL;
    return i;
}

/* Drops the borrowed slots (owned ones keep their order and memory). */
static void pool_unborrow(dp_net *net)
{
    int k = 0;
    for (int i = 0; i < net->n_gpool; i++)
        if (net->gown[i]) net->gpool[k] = net->gpool[i], net->gbusy[k] = net->gbusy[i], net->gown[k++] = 1;
    net->n_gpool = k;
}

static int pool_take(dp_net *net, size_t need);

/* Lends node p a gradient buffer for its dy: the smallest free one that fits,
 * else the largest free one grown, else a new one. */
static int lend_dy(dp_net *net, dp_node *p)
{
    dp_set_shape(&p->dy, p->y.n, p->y.c, p->y.h, p->y.w, p->y.blk);
    const int k = pool_take(net, dp_act_numel(&p->dy));
    if (k < 0) return k;
    p->gslot = k;
    p->dy.data = net->gpool[k].data;
    p->dy.cap = net->gpool[k].cap;
    return DP_OK;
}

static void return_dy(dp_net *net, dp_node *p)
{
    if (p->gslot >= 0) net->gbusy[p->gslot] = 0;
    p->gslot = -1;
    p->dy.data = NULL;
    p->dy.cap = 0;
}

/* The smallest free pool buffer that holds need floats (growing an owned one
 * if none does), marked busy; its index, or a negative status. */
static int pool_take(dp_net *net, size_t need)
{
    int best = -1, big = -1;
    for (int i = 0; i < net->n_gpool; i++) { /* a dead activation first, then an owned slot */
        if (net->gbusy[i]) continue;
        const size_t cap = net->gpool[i].cap;
        const int better = best < 0 || net->gown[best] > net->gown[i] ||
                           (net->gown[best] == net->gown[i] && cap < net->gpool[best].cap);
        if (cap >= need && better) best = i;
        if (net->gown[i] && (big < 0 || cap > net->gpool[big].cap)) big = i;
    }
    if (best < 0) best = big;
    if (best < 0 && (best = pool_slot(net, NULL, 0)) < 0) return best;
    dp_act *g = &net->gpool[best];
    if (net->gown[best]) {
        if (need > (size_t)INT32_MAX) return DP_ERR_OVERFLOW;
        g->n = (int)need, g->c = g->h = g->w = g->blk = 1;
        if (dp_act_reserve(g)) return DP_ERR_NOMEM;
    }
    net->gbusy[best] = 1;
    return best;
}

float *dp_dx_target(dp_net *net, dp_node *nd, int slot, int *accumulate)
{
    dp_node *p = dp_in(net, nd, slot);
    if (!p->dy_set && lend_dy(net, p)) return NULL;
    *accumulate = p->dy_set;
    if (!p->dy_set) return p->dy.data;
    /* a second writer: into a pool buffer, added in dp_dx_done */
    const int k = pool_take(net, dp_act_numel(&p->dy));
    if (k < 0) return NULL;
    net->acc_slot = k;
    return net->gpool[k].data;
}

int dp_dy_hand_over(dp_net *net, dp_node *nd, int slot)
{
    dp_node *p = dp_in(net, nd, slot);
    if (p->dy_set || nd->gslot < 0) return 0;
    p->dy = nd->dy; /* same shape and layout: an elementwise op */
    p->gslot = nd->gslot;
    p->dy_set = 1;
    nd->gslot = -1;
    nd->dy.data = NULL;
    return 1;
}

void dp_dx_done(dp_net *net, dp_node *nd, int slot, float *buf, int accumulate)
{
    dp_node *p = dp_in(net, nd, slot);
    if (accumulate) {
        float *d = p->dy.data;
        const size_t n = dp_act_numel(&p->dy);
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) d[i] += buf[i];
        net->gbusy[net->acc_slot] = 0;
    }
    p->dy_set = 1;
}

const dp_op *dp_op_of(int type)
{
    static const dp_op *const ops[DP_OP_COUNT] = {
#define DP_OP_ROW(e, f) [DP_OP_##e] = &dp_op_##f,
        DP_OPS(DP_OP_ROW)
#undef DP_OP_ROW
    };
    return type >= 0 && type < DP_OP_COUNT ? ops[type] : NULL;
}

int dp_window_size(const dp_act *x, const dp_node *nd, int *ho, int *wo)
{
    /* in 64 bits: a side near INT_MAX plus the padding must not wrap */
    const long long hp = (long long)x->h + 2LL * nd->pad, wp = (long long)x->w + 2LL * nd->pad;
    if (hp < nd->k || wp < nd->k) return DP_ERR_SIZE;
    const long long h = (hp - nd->k) / nd->stride + 1, w = (wp - nd->k) / nd->stride + 1;
    if (h > INT_MAX || w > INT_MAX) return DP_ERR_OVERFLOW;
    *ho = (int)h, *wo = (int)w;
    return DP_OK;
}

int dp_infer_same(dp_net *net, dp_node *nd)
{
    const dp_act *x = &dp_in(net, nd, 0)->y;
    dp_set_shape(&nd->y, x->n, x->c, x->h, x->w, x->blk);
    return DP_OK;
}

int dp_masked_forward(dp_net *net, dp_node *nd, int train, dp_mask_fn mask)
{
    const float *x = dp_in(net, nd, 0)->y.data;
    if (train && nd->drop > 0.0f)
        mask(net, nd, x, nd->y.data);
    else if (nd->y.data != x) /* in place (nd->inplace): nothing to do */
        memcpy(nd->y.data, x, sizeof(float) * dp_act_numel(&nd->y));
    return DP_OK;
}

void dp_act_inplace(dp_act *y, int act)
{
    float *p = y->data;
    const size_t n = dp_act_numel(y);
    if (act == 6) {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) p[i] = p[i] <= 0.0f ? 0.0f : p[i] >= 6.0f ? 6.0f : p[i];
    } else if (act == DP_ACT_SILU) {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) p[i] = p[i] / (1.0f + dp_exp_neg(p[i]));
    } else if (act) {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) p[i] = p[i] <= 0.0f ? 0.0f : p[i];
    }
}

int dp_masked_backward(dp_net *net, dp_node *nd, dp_mask_fn mask)
{
    dp_node *xn = dp_in(net, nd, 0);
    if (!xn->need_dx) return DP_OK;
    if (nd->drop > 0.0f) mask(net, nd, nd->dy.data, nd->dy.data); /* own buffer: in place */
    if (dp_dy_hand_over(net, nd, 0)) return DP_OK;
    int acc;
    float *dx = dp_dx_target(net, nd, 0, &acc);
    if (!dx) return DP_ERR_NOMEM;
    memcpy(dx, nd->dy.data, sizeof(float) * dp_act_numel(&nd->y));
    dp_dx_done(net, nd, 0, dx, acc);
    return DP_OK;
}

void dp_size_grad_same(dp_net *net, dp_node *nd, float scale, float *galpha)
{
    (void)scale, (void)galpha;
    dp_node *x = dp_in(net, nd, 0);
    x->gh += nd->gh;
    x->gw += nd->gw;
}

void dp_size_grad_strided(dp_net *net, dp_node *nd, float scale, float *galpha)
{
    (void)scale, (void)galpha;
    dp_node *x = dp_in(net, nd, 0);
    x->gh += nd->gh / nd->stride;
    x->gw += nd->gw / nd->stride;
}

/* ---- building ------------------------------------------------------------------------ */

int dp_net_init(dp_net *net, int backend)
{
    memset(net, 0, sizeof(*net));
    net->backend = backend;
    net->bn_eps = 1e-5f;
    net->bn_momentum = 0.1f;
    net->out = -1;
    if (backend == DP_BACKEND_DNNL) {
        net->blk = dnn_blk();
        if (!net->blk) return DP_ERR_BACKEND;
    } else {
        net->blk = 1;
    }
    return DP_OK;
}

/* arr with room for one more element of size elem (count n, capacity *cap,
 * doubling from 64): arr itself, or its reallocation, or NULL (arr untouched). */
static void *grow_array(void *arr, int n, int *cap, size_t elem)
{
    if (n < *cap) return arr;
    const int c = *cap ? 2 * *cap : 64;
    void *q = realloc(arr, elem * (size_t)c);
    if (q) *cap = c;
    return q;
}

int dp_net_add(dp_net *net, int type, int in0, int in1, const char *name)
{
    dp_node *nodes_ = grow_array(net->nodes, net->n_nodes, &net->cap_nodes, sizeof(dp_node));
    if (!nodes_) return DP_ERR_NOMEM;
    net->nodes = nodes_;
    const int id = net->n_nodes++;
    dp_node *nd = &net->nodes[id];
    memset(nd, 0, sizeof(*nd));
    nd->type = type;
    nd->in[0] = in0, nd->in[1] = in1;
    nd->w_off = nd->b_off = nd->s_off = nd->w2_off = nd->b2_off = -1;
    nd->owner = id;
    nd->groups = 1;
    nd->gslot = -1;
    snprintf(nd->name, sizeof nd->name, "%s", name ? name : "");
    return id;
}

long long dp_net_param(dp_net *net, const char *name, int ndim, const int *shape, int group)
{
    dp_pview *pv_ = grow_array(net->pv, net->n_pv, &net->cap_pv, sizeof(dp_pview));
    if (!pv_) return DP_ERR_NOMEM;
    net->pv = pv_;
    dp_pview *v = &net->pv[net->n_pv++];
    memset(v, 0, sizeof(*v));
    snprintf(v->name, sizeof v->name, "%s", name);
    v->ndim = ndim;
    v->numel = 1;
    for (int i = 0; i < ndim; i++) v->shape[i] = shape[i], v->numel *= shape[i];
    /* each tensor starts on a 64-byte boundary */
    v->off = (net->n_params + 15) & ~15LL;
    v->group = group;
    net->n_params = v->off + v->numel;
    return v->off;
}

long long dp_net_stat(dp_net *net, const char *name, long long numel, int node, int kind)
{
    dp_sview *sv_ = grow_array(net->sv, net->n_sv, &net->cap_sv, sizeof(dp_sview));
    if (!sv_) return DP_ERR_NOMEM;
    net->sv = sv_;
    dp_sview *v = &net->sv[net->n_sv++];
    snprintf(v->name, sizeof v->name, "%s", name);
    v->off = net->n_stats;
    v->numel = numel;
    v->node = node;
    v->kind = kind;
    net->n_stats += numel;
    return v->off;
}

int dp_net_alloc(dp_net *net)
{
    size_t cap = 0;
    const size_t np = (size_t)(net->n_params ? net->n_params : 1);
    net->params = grow(NULL, &cap, np * sizeof(float));
    cap = 0;
    net->grads = grow(NULL, &cap, np * sizeof(float));
    cap = 0;
    net->stats = grow(NULL, &cap, (size_t)(net->n_stats ? net->n_stats : 1) * sizeof(float));
    if (!net->params || !net->grads || !net->stats) return DP_ERR_NOMEM;
    /* which nodes need dL/dy: those with parameters and everything downstream */
    for (int i = 0; i < net->n_nodes; i++) {
        dp_node *nd = &net->nodes[i];
        nd->need_dx = nd->w_off >= 0 || nd->owner != i; /* own or shared parameters */
        for (int s = 0; s < 2; s++)
            if (nd->in[s] >= 0 && net->nodes[nd->in[s]].need_dx) nd->need_dx = 1;
    }
    return DP_OK;
}

int dp_net_alloc_frozen(dp_net *net)
{
    size_t cap = 0;
    net->params = grow(NULL, &cap, (size_t)(net->n_params ? net->n_params : 1) * sizeof(float));
    cap = 0;
    net->stats = grow(NULL, &cap, (size_t)(net->n_stats ? net->n_stats : 1) * sizeof(float));
    if (!net->params || !net->stats) return DP_ERR_NOMEM;
    for (int i = 0; i < net->n_nodes; i++) net->nodes[i].need_dx = 0;
    net->frozen = 1;
    return DP_OK;
}

/* Frees what a node holds of its own (not its parameters, which live in the net). */
static void node_release(dp_node *nd)
{
    if (!nd->inplace) dp_act_free(&nd->y);
    free(nd->ws);
    nd->ws = NULL;
    nd->ws_cap = 0;
    dnn_free(&nd->be);
}

int dp_net_fold(dp_net *net)
{
    const int n = net->n_nodes;
    int *readers = calloc((size_t)n, sizeof(int)), *alias = malloc(sizeof(int) * (size_t)n);
    if (!readers || !alias) {
        free(readers), free(alias);
        return DP_ERR_NOMEM;
    }
    for (int i = 0; i < n; i++)
        for (int s = 0; s < 2; s++)
            if (net->nodes[i].in[s] >= 0) readers[net->nodes[i].in[s]]++;
    /* alias[i]: the node whose output stands for node i's (itself, or the
     * producer it was folded into) */
    int folded = 0;
    for (int i = 0; i < n; i++) {
        dp_node *nd = &net->nodes[i];
        const dp_op *op = dp_op_of(nd->type);
        alias[i] = i;
        if (i == 0 || i == net->out || !op->fold || nd->in[0] < 0 || nd->in[1] >= 0 || nd->owner != i ||
            readers[nd->in[0]] != 1 || alias[nd->in[0]] != nd->in[0] || !op->fold(net, nd))
            continue;
        alias[i] = nd->in[0];
        folded++;
    }
    /* compact: kept nodes move down, readers follow the aliases */
    int *idx = readers; /* reused: the new index of each kept node */
    int k = 0;
    for (int i = 0; i < n; i++) idx[i] = alias[i] == i ? k++ : -1;
    for (int i = 0; i < n; i++) {
        dp_node *nd = &net->nodes[i];
        if (alias[i] != i) {
            node_release(nd);
            continue;
        }
        for (int s = 0; s < 2; s++)
            if (nd->in[s] >= 0) nd->in[s] = idx[alias[nd->in[s]]];
        nd->owner = idx[alias[nd->owner]];
        if (idx[i] != i) net->nodes[idx[i]] = *nd;
    }
    net->out = idx[alias[net->out]];
    net->n_nodes = k;
    free(readers);
    free(alias);
    return folded;
}

void dp_net_memory(const dp_net *net, dp_net_mem *m)
{
    memset(m, 0, sizeof *m);
    m->weights = sizeof(float) * (size_t)(net->params ? net->n_params : 0) +
                 sizeof(float) * (size_t)(net->stats ? net->n_stats : 0);
    m->grads = sizeof(float) * (size_t)(net->grads ? net->n_params : 0);
    for (int i = 0; i < net->n_gpool; i++)
        if (net->gown[i]) m->grads += sizeof(float) * net->gpool[i].cap;
    for (int i = 0; i < net->n_nodes; i++) {
        const dp_node *nd = &net->nodes[i];
        if (!nd->inplace) m->acts += sizeof(float) * nd->y.cap;
        m->work += nd->ws_cap;
    }
    m->work += sizeof(float) * net->tmp_cap + net->wscr_cap + net->cscr_cap[0] + net->cscr_cap[1];
}

void dp_net_free(dp_net *net)
{
    for (int i = 0; i < net->n_nodes; i++) node_release(&net->nodes[i]);
    free(net->nodes);
    free(net->params);
    free(net->grads);
    free(net->stats);
    free(net->pv);
    free(net->sv);
    free(net->tmp);
    dp_dist_free(net);
    for (int i = 0; i < net->n_gpool; i++)
        if (net->gown[i]) dp_act_free(&net->gpool[i]);
    free(net->gpool);
    free(net->gbusy);
    free(net->gown);
    free(net->wscr);
    free(net->cscr[0]);
    free(net->cscr[1]);
    memset(net, 0, sizeof(*net));
}

const dp_pview *dp_net_find(const dp_net *net, const char *name)
{
    for (int i = 0; i < net->n_pv; i++)
        if (strcmp(net->pv[i].name, name) == 0) return &net->pv[i];
    return NULL;
}

/* ---- running ---------------------------------------------------------------------------- */

/* A shape the engine can index and allocate: extents >= 0, the channels padded
 * to the block within int, and the element count within PTRDIFF_MAX bytes. */
static int shape_fits(const dp_act *a)
{
    if (a->n < 0 || a->c < 0 || a->h < 0 || a->w < 0 || a->blk < 1) return 0;
    const long long cp = ((long long)a->c + a->blk - 1) / a->blk * a->blk;
    if (cp > INT_MAX) return 0;
    const unsigned long long lim = (unsigned long long)PTRDIFF_MAX / sizeof(float);
    const unsigned long long f[3] = {(unsigned long long)cp, (unsigned long long)a->h,
                                     (unsigned long long)a->w};
    unsigned long long numel = (unsigned long long)a->n;
    for (int k = 0; k < 3; k++) {
        if (f[k] && numel > lim / f[k]) return 0;
        numel *= f[k];
    }
    return 1;
}

int dp_net_shapes(dp_net *net, int n, int c, int h, int w, int alloc, int *bad)
{
    dp_node *in = &net->nodes[0];
    dp_set_shape(&in->y, n, c, h, w, 1);
    for (int i = 0; i < net->n_nodes; i++) {
        dp_node *nd = &net->nodes[i];
        int rc = dp_op_of(nd->type)->infer(net, nd);
        if (!rc && !shape_fits(&nd->y)) rc = DP_ERR_OVERFLOW;
        if (!rc && alloc && nd->inplace) {
            nd->y.data = net->nodes[nd->in[0]].y.data; /* same shape and layout (add_infer) */
            nd->y.cap = net->nodes[nd->in[0]].y.cap;
        } else if (!rc && alloc) {
            rc = dp_act_reserve(&nd->y);
        }
        if (rc) {
            if (bad) *bad = i;
            return rc;
        }
    }
    return DP_OK;
}

/* Monotonic seconds, for net->prof. */
static double dp_wall_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int dp_net_forward(dp_net *net, const float *x, int n, int c, int h, int w, int train, int *bad)
{
    const double ts = net->prof ? dp_wall_s() : 0.0;
    int rc = dp_net_shapes(net, n, c, h, w, 1, bad);
    if (rc) return rc;
    memcpy(net->nodes[0].y.data, x, sizeof(float) * dp_act_numel(&net->nodes[0].y));
    if (net->prof) net->prof[2 * DP_OP_INPUT] += dp_wall_s() - ts; /* shapes, buffers, the input */
    for (int i = 1; i < net->n_nodes; i++) {
        dp_node *nd = &net->nodes[i];
        const double t0 = net->prof ? dp_wall_s() : 0.0;
        if ((rc = dp_op_of(nd->type)->forward(net, nd, train))) {
            if (bad) *bad = i;
            return rc;
        }
        if (net->prof) net->prof[2 * nd->type] += dp_wall_s() - t0;
    }
    return DP_OK;
}

int dp_net_backward(dp_net *net, const float *dlogits, int *bad)
{
    for (int i = 0; i < net->n_nodes; i++) {
        dp_node *nd = &net->nodes[i];
        nd->dy_set = 0;
        nd->gslot = -1;
        nd->dy.data = NULL;
        nd->dy.cap = 0;
    }
    pool_unborrow(net);
    for (int i = 0; i < net->n_gpool; i++) net->gbusy[i] = 0;
    for (int i = 0; i < net->n_pv; i++) /* alphas accumulate (shared); the rest is overwritten */
        if (net->pv[i].group == 1)
            memset(net->grads + net->pv[i].off, 0, sizeof(float) * (size_t)net->pv[i].numel);
    dp_node *o = &net->nodes[net->out];
    if (lend_dy(net, o)) return DP_ERR_NOMEM;
    memcpy(o->dy.data, dlogits, sizeof(float) * dp_act_numel(&o->dy));
    o->dy_set = 1;
    for (int i = net->out; i > 0; i--) {
        dp_node *nd = &net->nodes[i];
        if (net->dist && dp_dist_node_done(net, i + 1)) { /* nodes > i are done: their gradient buckets go */
            pool_unborrow(net);
            return DP_ERR_IO;
        }
        if (!nd->dy_set || !nd->need_dx) continue;
        const double t0 = net->prof ? dp_wall_s() : 0.0;
        int rc = dp_op_of(nd->type)->backward(net, nd);
        if (net->prof) net->prof[2 * nd->type + 1] += dp_wall_s() - t0;
        return_dy(net, nd);
        if (rc) {
            pool_unborrow(net);
            if (bad) *bad = i;
            return rc;
        }
        /* Every reader of y (this node and its consumers, all later in the
         * order) is done: its memory serves as a gradient buffer until the
         * pass ends.  An in-place node's memory is its producer's, lent later. */
        if (!nd->inplace && i != net->out && nd->y.data && pool_slot(net, nd->y.data, nd->y.cap) < 0) {
            pool_unborrow(net);
            return DP_ERR_NOMEM;
        }
    }
    pool_unborrow(net);
    return DP_OK;
}

/* ---- cost (docs/operator.md, "The complexity loss") ------------------------------------------------------------------------- */

int dp_net_record_initial(dp_net *net, int c, int h, int w)
{
    int rc = dp_net_shapes(net, 1, c, h, w, 0, NULL);
    if (rc) return rc;
    for (int i = 0; i < net->n_nodes; i++) {
        dp_node *nd = &net->nodes[i];
        const dp_op *op = dp_op_of(nd->type);
        nd->h0 = nd->y.h, nd->w0 = nd->y.w;
        nd->macs0 = op->cost_in_loss && op->macs ? op->macs(net, nd) : 0.0;
    }
    return DP_OK;
}

double dp_net_macs(dp_net *net, double *own_macs)
{
    double total = 0.0, own = 0.0;
    for (int i = 0; i < net->n_nodes; i++) {
        const dp_node *nd = &net->nodes[i];
        const dp_op *op = dp_op_of(nd->type);
        if (op->macs) total += op->macs(net, nd);
        if (op->own_macs) own += op->own_macs(net, nd);
    }
    if (own_macs) *own_macs = own;
    return total;
}

/* L_GMACs = sum over the costed nodes of GMACs0 * (h w) / (h0 w0); its gradient
 * runs back along the sizes, each op passing d/d(its output size) to its input
 * (and to its alphas) by its own rule (dp_op.size_grad). */
double dp_net_gmacs_loss(dp_net *net, float scale, float *galpha)
{
    double loss = 0.0;
    for (int i = 0; i < net->n_nodes; i++) net->nodes[i].gh = net->nodes[i].gw = 0.0;
    for (int i = 0; i < net->n_nodes; i++) {
        dp_node *nd = &net->nodes[i];
        if (nd->macs0 == 0.0) continue;
        const double g0 = nd->macs0 * 1e-9, a0 = (double)nd->h0 * nd->w0;
        loss += (double)nd->y.h * nd->y.w / a0 * g0;
        nd->gh += nd->y.w / a0 * g0;
        nd->gw += nd->y.h / a0 * g0;
    }
    for (int i = net->n_nodes - 1; i > 0; i--) {
        dp_node *nd = &net->nodes[i];
        const dp_op *op = dp_op_of(nd->type);
        if ((nd->gh == 0.0 && nd->gw == 0.0) || nd->in[0] < 0 || !op->size_grad) continue;
        op->size_grad(net, nd, scale, galpha);
    }
    return loss;
}
