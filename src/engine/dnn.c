/* dnn.c — oneDNN 2.x behind dnn.h.  Activations are described to oneDNN with
 * explicit tags (nchw / nChw8c / nChw16c, the layout the engine chose); weights
 * are left to oneDNN ("any") and reordered from and to the flat OIHW parameter
 * buffers around each use, since the weights change every step anyway.  The
 * fully connected layer is three matmuls on plain row-major matrices, with no
 * reorder at all. */
#include "engine/dnn.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <dnnl.h>

static dnnl_engine_t g_eng;
static dnnl_stream_t g_strm;
static int g_blk;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void init_once(void)
{
    if (dnnl_engine_create(&g_eng, dnnl_cpu, 0) != dnnl_success) return;
    if (dnnl_stream_create(&g_strm, g_eng, dnnl_stream_default_flags) != dnnl_success) return;
    const unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    const unsigned avx512 = (unsigned)dnnl_cpu_isa_avx512_core;
    g_blk = (isa & avx512) == avx512 ? 16 : 8;
}

int dnn_blk(void)
{
    pthread_once(&g_once, init_once);
    return g_blk;
}

#ifdef DP_DNN_TRACE
#include <stdio.h>
#define DNN_TRACE(s) fprintf(stderr, "dnn.c:%d: %s failed\n", __LINE__, s)
#else
#define DNN_TRACE(s) ((void)0)
#endif
#define TRY(call)                                                   \
    do {                                                            \
        if ((call) != dnnl_success) { DNN_TRACE(#call); rc = DP_ERR_BACKEND; goto out; } \
    } while (0)

static dnnl_format_tag_t tag_of(int blk)
{
    return blk == 16 ? dnnl_nChw16c : blk == 8 ? dnnl_nChw8c : dnnl_nchw;
}

static int act_md(dnnl_memory_desc_t *md, const dp_act *a)
{
    const dnnl_dims_t d = {a->n, a->c, a->h, a->w};
    return dnnl_memory_desc_init_by_tag(md, 4, d, dnnl_f32, tag_of(a->blk)) == dnnl_success
               ? DP_OK
               : DP_ERR_BACKEND;
}

static float *alloc_md(const dnnl_memory_desc_t *md)
{
    size_t bytes = dnnl_memory_desc_get_size(md);
    bytes = (bytes + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes ? bytes : 64);
    if (p) memset(p, 0, bytes);
    return p;
}

/* Runs prim with up to 10 (arg, md, pointer) triples on the engine's stream. */
typedef struct { int arg; const dnnl_memory_desc_t *md; const void *ptr; } dnn_arg;

static int run(dnnl_primitive_t prim, const dnn_arg *a, int n)
{
    dnnl_exec_arg_t args[10];
    dnnl_memory_t mem[10];
    int made = 0, rc = DP_OK;
    for (; made < n; made++) {
        if (!a[made].ptr) DNN_TRACE("null argument");
        TRY(dnnl_memory_create(&mem[made], a[made].md, g_eng, (void *)a[made].ptr));
        args[made].arg = a[made].arg;
        args[made].memory = mem[made];
    }
    TRY(dnnl_primitive_execute(prim, g_strm, n, args));
    TRY(dnnl_stream_wait(g_strm));
out:
    for (int i = 0; i < made; i++) dnnl_memory_destroy(mem[i]);
    return rc;
}

static int reorder_make(dnnl_primitive_t *r, const dnnl_memory_desc_t *from,
                        const dnnl_memory_desc_t *to)
{
    dnnl_primitive_desc_t pd = NULL;
    int rc = DP_OK;
    TRY(dnnl_reorder_primitive_desc_create(&pd, from, g_eng, to, g_eng, NULL));
    TRY(dnnl_primitive_create(r, pd));
out:
    if (pd) dnnl_primitive_desc_destroy(pd);
    return rc;
}

static int reorder_run(dnnl_primitive_t r, const dnnl_memory_desc_t *from, const void *src,
                       const dnnl_memory_desc_t *to, void *dst)
{
    const dnn_arg a[2] = {{DNNL_ARG_FROM, from, src}, {DNNL_ARG_TO, to, dst}};
    return run(r, a, 2);
}

/* ---- per-node state ------------------------------------------------------- */
enum { ST_CONV = 1, ST_BN, ST_POOL, ST_LINEAR };
#define KEYLEN 16

typedef struct {
    int kind;
    int key[KEYLEN];
    dnnl_primitive_desc_t pd[3];      /* forward, backward data, backward weights */
    dnnl_primitive_t prim[3];
    dnnl_primitive_t reo[3];          /* user w -> fwd w, user w -> bwd-data w, diff w -> user */
    dnnl_memory_desc_t x, y, w_user, w_fwd, w_bwd, dw, b, ws;
    void *wsb;                        /* workspace (bn relu mask, pool indices) */
    /* conv only, when oneDNN has no JIT kernel for the engine's layout at this
     * shape (see conv_build): the layouts oneDNN chose (xi, yi), reorders
     * between them and ours, and one buffer for each */
    int alt;
    dnnl_memory_desc_t xi, yi;
    dnnl_primitive_t rx, rxb, ry, ryb; /* x -> xi, xi -> x, y -> yi, yi -> y */
    float *bx, *by;
    float *wkeep;                     /* conv in a frozen net: the forward's weights, reordered once */
    /* linear only: memory objects of the three matmuls (forward: x, W^T, b, y;
     * backward data: dy, W, dx; backward weights: dy^T, x, dW), created once
     * and pointed at the caller's buffers on each call */
    dnnl_memory_t mem[3][4];
} dnn_state;

void dnn_free(void **be)
{
    dnn_state *st = *be;
    if (!st) return;
    for (int i = 0; i < 3; i++) {
        if (st->prim[i]) dnnl_primitive_destroy(st->prim[i]);
        if (st->pd[i]) dnnl_primitive_desc_destroy(st->pd[i]);
        if (st->reo[i]) dnnl_primitive_destroy(st->reo[i]);
    }
    dnnl_primitive_t alt[4] = {st->rx, st->rxb, st->ry, st->ryb};
    for (int i = 0; i < 4; i++)
        if (alt[i]) dnnl_primitive_destroy(alt[i]);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++)
            if (st->mem[i][j]) dnnl_memory_destroy(st->mem[i][j]);
    free(st->bx);
    free(st->by);
    free(st->wkeep);
    free(st->wsb);
    free(st);
    *be = NULL;
}

/* Returns the node's state when it was built for key, else a fresh zeroed one
 * (the old one freed).  NULL when out of memory. */
static dnn_state *state_for(void **be, int kind, const int key[KEYLEN], int *fresh)
{
    dnn_state *st = *be;
    if (st && st->kind == kind && memcmp(st->key, key, sizeof(st->key)) == 0) {
        *fresh = 0;
        return st;
    }
    dnn_free(be);
    st = calloc(1, sizeof(*st));
    if (!st) return NULL;
    st->kind = kind;
    memcpy(st->key, key, sizeof(st->key));
    *be = st;
    *fresh = 1;
    return st;
}

static const dnnl_memory_desc_t *pd_md(dnnl_primitive_desc_t pd, dnnl_query_t q)
{
    return dnnl_primitive_desc_query_md(pd, q, 0);
}

/* ---- convolution ------------------------------------------------------------- */

/* oneDNN's reference implementations ("ref:any") are correct but 10-100x
 * slower than its JIT kernels. */
static int is_ref(const_dnnl_primitive_desc_t pd)
{
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success || !impl)
        return 0;
    return strncmp(impl, "ref", 3) == 0;
}

/* The three primitive descriptors of a convolution (forward, backward data,
 * backward weights) for the given activation descriptors; returns how many of
 * them oneDNN could only serve with a reference implementation, or -1. */
static int conv_pds(dnnl_primitive_desc_t pd[3], const dnnl_memory_desc_t *x, const dnnl_memory_desc_t *w,
                    const dnnl_memory_desc_t *b, const dnnl_memory_desc_t *y, const dnnl_dims_t s,
                    const dnnl_dims_t pl, const dnnl_dims_t pr, int fwd_only, const_dnnl_primitive_attr_t attr)
{
    dnnl_convolution_desc_t cd;
    int rc = DP_OK;
    TRY(dnnl_convolution_forward_desc_init(&cd, fwd_only ? dnnl_forward_inference : dnnl_forward_training,
                                           dnnl_convolution_direct, x, w, b, y, s, pl, pr));
    TRY(dnnl_primitive_desc_create(&pd[0], &cd, attr, g_eng, NULL));
    if (fwd_only) return is_ref(pd[0]);
    TRY(dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, x, w, y, s, pl, pr));
    TRY(dnnl_primitive_desc_create(&pd[1], &cd, NULL, g_eng, pd[0]));
    TRY(dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, x, w, b, y, s, pl,
                                                    pr));
    TRY(dnnl_primitive_desc_create(&pd[2], &cd, NULL, g_eng, pd[0]));
    return is_ref(pd[0]) + is_ref(pd[1]) + is_ref(pd[2]);
out:
    (void)rc;
    return -1;
}

static void pds_free(dnnl_primitive_desc_t pd[3])
{
    for (int i = 0; i < 3; i++)
        if (pd[i]) dnnl_primitive_desc_destroy(pd[i]), pd[i] = NULL;
}

/* A convolution on the engine's blocked layout where oneDNN has a JIT kernel
 * for it.  Some shapes have none on that layout (oneDNN 2.6 on AVX-512: 8
 * input channels padded to a 16-lane block, which narrow networks such as
 * VGG-16 at width 0.125 have; depthwise weight gradients on 2x2 maps): there
 * the convolution runs on another layout that has them, with reorders to and
 * from ours around it (docs/engine.md, "Layouts"). */
static int conv_build(dnn_state *st, const dp_act *x, const dp_act *y, int k, int s, int p,
                      int g, int bias, int fwd_only, int act)
{
    int rc = DP_OK;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    if ((rc = act_md(&st->x, x)) || (rc = act_md(&st->y, y))) return rc;
    if (act) { /* a frozen net's folded activation, fused as a post-op (forward only) */
        const dnnl_alg_kind_t alg = act == DP_ACT_SILU ? dnnl_eltwise_swish
                                    : act == 6         ? dnnl_eltwise_clip
                                                       : dnnl_eltwise_relu;
        const float alpha = act == DP_ACT_SILU ? 1.0f : 0.0f, beta = act == 6 ? 6.0f : 0.0f;
        TRY(dnnl_primitive_attr_create(&attr));
        TRY(dnnl_post_ops_create(&po));
        TRY(dnnl_post_ops_append_eltwise(po, 1.0f, alg, alpha, beta));
        TRY(dnnl_primitive_attr_set_post_ops(attr, po));
    }
    const dnnl_dims_t st2 = {s, s}, pad = {p, p};
    const dnnl_dims_t pr = {(y->h - 1) * s + k - x->h - p, (y->w - 1) * s + k - x->w - p};
    dnnl_memory_desc_t w_any, b_md;
    if (g == 1) {
        const dnnl_dims_t wd = {y->c, x->c, k, k};
        TRY(dnnl_memory_desc_init_by_tag(&st->w_user, 4, wd, dnnl_f32, dnnl_oihw));
        TRY(dnnl_memory_desc_init_by_tag(&w_any, 4, wd, dnnl_f32, dnnl_format_tag_any));
    } else {
        const dnnl_dims_t wd = {g, y->c / g, x->c / g, k, k};
        TRY(dnnl_memory_desc_init_by_tag(&st->w_user, 5, wd, dnnl_f32, dnnl_goihw));
        TRY(dnnl_memory_desc_init_by_tag(&w_any, 5, wd, dnnl_f32, dnnl_format_tag_any));
    }
    const dnnl_dims_t bd = {y->c};
    TRY(dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_x));
    st->b = b_md;
    const dnnl_memory_desc_t *bp = bias ? &b_md : NULL;
    int refs = conv_pds(st->pd, &st->x, &w_any, bp, &st->y, st2, pad, pr, fwd_only, attr);
    if (refs < 0) {
        rc = DP_ERR_BACKEND;
        goto out;
    }
    if (refs > 0) {
        /* the same convolution on other activation layouts (x and y alike):
         * the first on which all three passes have JIT kernels */
        static const dnnl_format_tag_t cand[] = {dnnl_nChw8c, dnnl_nhwc, dnnl_nchw, dnnl_nChw16c};
        const dnnl_dims_t xd = {x->n, x->c, x->h, x->w}, yd = {y->n, y->c, y->h, y->w};
        dnnl_primitive_desc_t alt[3] = {NULL, NULL, NULL};
        int r = -1;
        for (size_t c = 0; c < sizeof cand / sizeof cand[0]; c++) {
            if (cand[c] == tag_of(x->blk)) continue;
            TRY(dnnl_memory_desc_init_by_tag(&st->xi, 4, xd, dnnl_f32, cand[c]));
            TRY(dnnl_memory_desc_init_by_tag(&st->yi, 4, yd, dnnl_f32, cand[c]));
            r = conv_pds(alt, &st->xi, &w_any, bp, &st->yi, st2, pad, pr, fwd_only, attr);
            if (r == 0) break;
            pds_free(alt);
        }
        if (r == 0) {
            pds_free(st->pd);
            memcpy(st->pd, alt, sizeof alt);
            st->alt = 1;
            if ((rc = reorder_make(&st->rx, &st->x, &st->xi)) || (rc = reorder_make(&st->rxb, &st->xi, &st->x)) ||
                (rc = reorder_make(&st->ry, &st->y, &st->yi)) || (rc = reorder_make(&st->ryb, &st->yi, &st->y)))
                goto out;
            if (!(st->bx = alloc_md(&st->xi)) || !(st->by = alloc_md(&st->yi))) {
                rc = DP_ERR_NOMEM;
                goto out;
            }
        } else {
            pds_free(alt);
        }
    }
    st->w_fwd = *pd_md(st->pd[0], dnnl_query_weights_md);
    TRY(dnnl_primitive_create(&st->prim[0], st->pd[0]));
    if (!dnnl_memory_desc_equal(&st->w_fwd, &st->w_user) &&
        (rc = reorder_make(&st->reo[0], &st->w_user, &st->w_fwd)))
        goto out;
    if (fwd_only) goto out; /* a frozen net: no backward */
    /* backward data (built for the network's first conv too, whose x needs no
     * gradient: it costs little and keeps one code path) */
    st->w_bwd = *pd_md(st->pd[1], dnnl_query_weights_md);
    TRY(dnnl_primitive_create(&st->prim[1], st->pd[1]));
    if (!dnnl_memory_desc_equal(&st->w_bwd, &st->w_user) &&
        (rc = reorder_make(&st->reo[1], &st->w_user, &st->w_bwd)))
        goto out;
    st->dw = *pd_md(st->pd[2], dnnl_query_diff_weights_md);
    TRY(dnnl_primitive_create(&st->prim[2], st->pd[2]));
    if (!dnnl_memory_desc_equal(&st->dw, &st->w_user) &&
        (rc = reorder_make(&st->reo[2], &st->dw, &st->w_user)))
        goto out;
out:
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return rc;
}

static int conv_state(void **be, const dp_act *x, const dp_act *y, int k, int s, int p, int g,
                      int bias, int fwd_only, int act, dnn_state **out)
{
    if (!dnn_blk()) return DP_ERR_BACKEND;
    const int key[KEYLEN] = {x->n, x->c, x->h, x->w, x->blk, y->c, y->h, y->w, y->blk,
                             k, s, p, g, bias, fwd_only, act};
    int fresh;
    dnn_state *st = state_for(be, ST_CONV, key, &fresh);
    if (!st) return DP_ERR_NOMEM;
    if (fresh) {
        int rc = conv_build(st, x, y, k, s, p, g, bias, fwd_only, act);
        if (rc) { dnn_free(be); return rc; }
    }
    *out = st;
    return DP_OK;
}

/* The net's weight scratch, grown to hold md; NULL if out of memory.  Weights
 * in oneDNN's formats live there only for the duration of one primitive. */
static float *scratch(dp_net *net, const dnnl_memory_desc_t *md)
{
    const size_t bytes = (dnnl_memory_desc_get_size(md) + 63) & ~(size_t)63;
    if (bytes > net->wscr_cap || !net->wscr) {
        float *q = aligned_alloc(64, bytes);
        if (!q) return NULL;
        memset(q, 0, bytes);
        free(net->wscr);
        net->wscr = q;
        net->wscr_cap = bytes;
    }
    return net->wscr;
}

/* w (OIHW) in the layout pass (0 forward, 1 backward data) wants: w itself, or
 * its reorder into the shared scratch; NULL when out of memory or failing.  A
 * frozen net's weights never change (dnn.h), so there the forward's reorder
 * is made once and kept with the node. */
static const float *weights_for(dp_net *net, dnn_state *st, int pass, const float *w)
{
    if (!st->reo[pass]) return w;
    const dnnl_memory_desc_t *md = pass ? &st->w_bwd : &st->w_fwd;
    if (net->frozen && pass == 0) {
        if (!st->wkeep) {
            float *t = alloc_md(md);
            if (!t) return NULL;
            if (reorder_run(st->reo[0], &st->w_user, w, md, t)) {
                free(t);
                return NULL;
            }
            st->wkeep = t;
        }
        return st->wkeep;
    }
    float *t = scratch(net, md);
    if (!t || reorder_run(st->reo[pass], &st->w_user, w, md, t)) return NULL;
    return t;
}

int dnn_conv_forward(dp_net *net, void **be, const dp_act *x, const float *w, const float *b,
                     int k, int s, int p, int g, int act, dp_act *y)
{
    dnn_state *st;
    if (!net->frozen && act) return DP_ERR_ARG; /* fused activations: forward-only primitives */
    int rc = conv_state(be, x, y, k, s, p, g, b != NULL, net->frozen, act, &st);
    if (rc) return rc;
    const float *wf = weights_for(net, st, 0, w);
    if (!wf) return DP_ERR_NOMEM;
    if (st->alt) {
        if ((rc = reorder_run(st->rx, &st->x, x->data, &st->xi, st->bx))) return rc;
        const dnn_arg a[4] = {{DNNL_ARG_SRC, &st->xi, st->bx}, {DNNL_ARG_WEIGHTS, &st->w_fwd, wf},
                              {DNNL_ARG_DST, &st->yi, st->by}, {DNNL_ARG_BIAS, &st->b, b}};
        if ((rc = run(st->prim[0], a, b ? 4 : 3))) return rc;
        return reorder_run(st->ryb, &st->yi, st->by, &st->y, y->data);
    }
    const dnn_arg a[4] = {{DNNL_ARG_SRC, &st->x, x->data}, {DNNL_ARG_WEIGHTS, &st->w_fwd, wf},
                          {DNNL_ARG_DST, &st->y, y->data}, {DNNL_ARG_BIAS, &st->b, b}};
    return run(st->prim[0], a, b ? 4 : 3);
}

/* The backward on oneDNN's own layouts: x and dy reordered into bx and by,
 * the weight gradient first (it reads bx), then dx into bx and back to ours. */
static int conv_backward_alt(dp_net *net, dnn_state *st, const dp_act *x, const float *w,
                             const dp_act *dy, float *dx, float *dw, float *db)
{
    int rc;
    if ((rc = reorder_run(st->rx, &st->x, x->data, &st->xi, st->bx)) ||
        (rc = reorder_run(st->ry, &st->y, dy->data, &st->yi, st->by)))
        return rc;
    float *dwt = dw;
    if (st->reo[2] && !(dwt = scratch(net, &st->dw))) return DP_ERR_NOMEM;
    const dnn_arg a[4] = {{DNNL_ARG_SRC, &st->xi, st->bx}, {DNNL_ARG_DIFF_DST, &st->yi, st->by},
                          {DNNL_ARG_DIFF_WEIGHTS, &st->dw, dwt}, {DNNL_ARG_DIFF_BIAS, &st->b, db}};
    if ((rc = run(st->prim[2], a, db ? 4 : 3))) return rc;
    if (st->reo[2] && (rc = reorder_run(st->reo[2], &st->dw, dwt, &st->w_user, dw))) return rc;
    if (!dx) return DP_OK;
    const float *wb = weights_for(net, st, 1, w);
    if (!wb) return DP_ERR_NOMEM;
    const dnn_arg b[3] = {{DNNL_ARG_DIFF_DST, &st->yi, st->by}, {DNNL_ARG_WEIGHTS, &st->w_bwd, wb},
                          {DNNL_ARG_DIFF_SRC, &st->xi, st->bx}};
    if ((rc = run(st->prim[1], b, 3))) return rc;
    return reorder_run(st->rxb, &st->xi, st->bx, &st->x, dx);
}

int dnn_conv_backward(dp_net *net, void **be, const dp_act *x, const float *w, const dp_act *dy,
                      float *dx, float *dw, float *db)
{
    dnn_state *st = *be;
    if (!st || st->kind != ST_CONV || !st->prim[2]) return DP_ERR_BACKEND; /* forward first; not frozen */
    if (st->alt) return conv_backward_alt(net, st, x, w, dy, dx, dw, db);
    int rc;
    if (dx) {
        const float *wb = weights_for(net, st, 1, w);
        if (!wb) return DP_ERR_NOMEM;
        const dnn_arg a[3] = {{DNNL_ARG_DIFF_DST, &st->y, dy->data},
                              {DNNL_ARG_WEIGHTS, &st->w_bwd, wb}, {DNNL_ARG_DIFF_SRC, &st->x, dx}};
        if ((rc = run(st->prim[1], a, 3))) return rc;
    }
    float *dwt = dw;
    if (st->reo[2] && !(dwt = scratch(net, &st->dw))) return DP_ERR_NOMEM;
    const dnn_arg a[4] = {{DNNL_ARG_SRC, &st->x, x->data}, {DNNL_ARG_DIFF_DST, &st->y, dy->data},
                          {DNNL_ARG_DIFF_WEIGHTS, &st->dw, dwt}, {DNNL_ARG_DIFF_BIAS, &st->b, db}};
    if ((rc = run(st->prim[2], a, db ? 4 : 3))) return rc;
    if (st->reo[2]) return reorder_run(st->reo[2], &st->dw, dwt, &st->w_user, dw);
    return DP_OK;
}

/* ---- batch norm ---------------------------------------------------------------- */

static int bn_state(void **be, const dp_act *x, float eps, int train, int relu, dnn_state **out)
{
    if (!dnn_blk()) return DP_ERR_BACKEND;
    union { float f; int i; } e = {eps};
    const int key[KEYLEN] = {x->n, x->c, x->h, x->w, x->blk, train, relu, e.i};
    int fresh, rc = DP_OK;
    dnn_state *st = state_for(be, ST_BN, key, &fresh);
    if (!st) return DP_ERR_NOMEM;
    *out = st;
    if (!fresh) return DP_OK;
    unsigned flags = dnnl_use_scale | dnnl_use_shift | (relu ? dnnl_fuse_norm_relu : 0u);
    if (!train) flags |= dnnl_use_global_stats;
    dnnl_batch_normalization_desc_t bd;
    if ((rc = act_md(&st->x, x))) goto out;
    const dnnl_dims_t cd = {x->c};
    TRY(dnnl_memory_desc_init_by_tag(&st->b, 1, cd, dnnl_f32, dnnl_x));
    TRY(dnnl_batch_normalization_forward_desc_init(
        &bd, train ? dnnl_forward_training : dnnl_forward_inference, &st->x, eps, flags));
    TRY(dnnl_primitive_desc_create(&st->pd[0], &bd, NULL, g_eng, NULL));
    TRY(dnnl_primitive_create(&st->prim[0], st->pd[0]));
    if (train) {
        st->ws = *pd_md(st->pd[0], dnnl_query_workspace_md);
        if (relu && !(st->wsb = alloc_md(&st->ws))) { rc = DP_ERR_NOMEM; goto out; }
        TRY(dnnl_batch_normalization_backward_desc_init(&bd, dnnl_backward, &st->x, &st->x, eps,
                                                        flags));
        TRY(dnnl_primitive_desc_create(&st->pd[1], &bd, NULL, g_eng, st->pd[0]));
        TRY(dnnl_primitive_create(&st->prim[1], st->pd[1]));
    }
out:
    if (rc) dnn_free(be);
    return rc;
}

int dnn_bn_forward(void **be, const dp_act *x, const float *gamma, const float *beta,
                   float *mean, float *var, float eps, int train, int relu, dp_act *y)
{
    dnn_state *st;
    int rc = bn_state(be, x, eps, train, relu, &st);
    if (rc) return rc;
    dnn_arg a[7] = {{DNNL_ARG_SRC, &st->x, x->data}, {DNNL_ARG_DST, &st->x, y->data},
                    {DNNL_ARG_SCALE, &st->b, gamma}, {DNNL_ARG_SHIFT, &st->b, beta},
                    {DNNL_ARG_MEAN, &st->b, mean}, {DNNL_ARG_VARIANCE, &st->b, var},
                    {DNNL_ARG_WORKSPACE, &st->ws, st->wsb}};
    return run(st->prim[0], a, train && relu ? 7 : 6);
}

int dnn_bn_backward(void **be, const dp_act *x, const float *gamma, const float *beta,
                    const float *mean, const float *var, const dp_act *dy, float *dx,
                    float *dgamma, float *dbeta)
{
    dnn_state *st = *be;
    if (!st || st->kind != ST_BN || !st->prim[1]) return DP_ERR_BACKEND;
    const int relu = st->wsb != NULL;
    dnn_arg a[10] = {{DNNL_ARG_SRC, &st->x, x->data},     {DNNL_ARG_DIFF_DST, &st->x, dy->data},
                     {DNNL_ARG_MEAN, &st->b, mean},        {DNNL_ARG_VARIANCE, &st->b, var},
                     {DNNL_ARG_SCALE, &st->b, gamma},      {DNNL_ARG_SHIFT, &st->b, beta},
                     {DNNL_ARG_DIFF_SRC, &st->x, dx},      {DNNL_ARG_DIFF_SCALE, &st->b, dgamma},
                     {DNNL_ARG_DIFF_SHIFT, &st->b, dbeta}, {DNNL_ARG_WORKSPACE, &st->ws, st->wsb}};
    return run(st->prim[1], a, relu ? 10 : 9);
}

/* ---- max pooling ----------------------------------------------------------------- */

int dnn_pool_forward(void **be, const dp_act *x, int k, int s, int p, int train, dp_act *y)
{
    if (!dnn_blk()) return DP_ERR_BACKEND;
    const int key[KEYLEN] = {x->n, x->c, x->h, x->w, x->blk, y->h, y->w, k, s, p, train};
    int fresh, rc = DP_OK;
    dnn_state *st = state_for(be, ST_POOL, key, &fresh);
    if (!st) return DP_ERR_NOMEM;
    if (fresh) {
        const dnnl_dims_t st2 = {s, s}, ker = {k, k}, pl = {p, p};
        const dnnl_dims_t pr = {(y->h - 1) * s + k - x->h - p, (y->w - 1) * s + k - x->w - p};
        dnnl_pooling_desc_t pd;
        if ((rc = act_md(&st->x, x)) || (rc = act_md(&st->y, y))) goto out;
        TRY(dnnl_pooling_forward_desc_init(&pd, train ? dnnl_forward_training : dnnl_forward_inference,
                                           dnnl_pooling_max, &st->x, &st->y, st2, ker, pl, pr));
        TRY(dnnl_primitive_desc_create(&st->pd[0], &pd, NULL, g_eng, NULL));
        TRY(dnnl_primitive_create(&st->prim[0], st->pd[0]));
        if (train) {
            st->ws = *pd_md(st->pd[0], dnnl_query_workspace_md);
            if (!(st->wsb = alloc_md(&st->ws))) { rc = DP_ERR_NOMEM; goto out; }
            TRY(dnnl_pooling_backward_desc_init(&pd, dnnl_pooling_max, &st->x, &st->y, st2, ker,
                                                pl, pr));
            TRY(dnnl_primitive_desc_create(&st->pd[1], &pd, NULL, g_eng, st->pd[0]));
            TRY(dnnl_primitive_create(&st->prim[1], st->pd[1]));
        }
    }
    const dnn_arg a[3] = {{DNNL_ARG_SRC, &st->x, x->data}, {DNNL_ARG_DST, &st->y, y->data},
                          {DNNL_ARG_WORKSPACE, &st->ws, st->wsb}};
    return run(st->prim[0], a, train ? 3 : 2);
out:
    dnn_free(be);
    return rc;
}

int dnn_pool_backward(void **be, const dp_act *dy, float *dx, const dp_act *x)
{
    dnn_state *st = *be;
    (void)x;
    if (!st || st->kind != ST_POOL || !st->prim[1]) return DP_ERR_BACKEND;
    const dnn_arg a[3] = {{DNNL_ARG_DIFF_DST, &st->y, dy->data}, {DNNL_ARG_DIFF_SRC, &st->x, dx},
                          {DNNL_ARG_WORKSPACE, &st->ws, st->wsb}};
    return run(st->prim[1], a, 3);
}

/* ---- fully connected ------------------------------------------------------------- */

/* The matmul dst = src x wei (+ bias) of pass, on the descriptors given (tags ab
 * or ba: a row-major matrix or the same bytes read as its transpose, so nothing
 * is copied); bias may be NULL.  Its memory objects go to st->mem[pass] in the
 * order src, wei, [bias,] dst. */
static int matmul_make(dnn_state *st, int pass, const dnnl_memory_desc_t *src,
                       const dnnl_memory_desc_t *wei, const dnnl_memory_desc_t *bias,
                       const dnnl_memory_desc_t *dst)
{
    dnnl_matmul_desc_t md;
    int rc = DP_OK;
    TRY(dnnl_matmul_desc_init(&md, src, wei, bias, dst));
    TRY(dnnl_primitive_desc_create(&st->pd[pass], &md, NULL, g_eng, NULL));
    TRY(dnnl_primitive_create(&st->prim[pass], st->pd[pass]));
    const dnnl_memory_desc_t *mds[4] = {src, wei, bias ? bias : dst, dst};
    for (int i = 0; i < (bias ? 4 : 3); i++)
        TRY(dnnl_memory_create(&st->mem[pass][i], mds[i], g_eng, DNNL_MEMORY_NONE));
out:
    return rc;
}

static int linear_state(void **be, int n, int cin, int cout, dnn_state **out)
{
    if (!dnn_blk()) return DP_ERR_BACKEND;
    const int key[KEYLEN] = {n, cin, cout};
    int fresh, rc = DP_OK;
    dnn_state *st = state_for(be, ST_LINEAR, key, &fresh);
    if (!st) return DP_ERR_NOMEM;
    *out = st;
    if (!fresh) return DP_OK;
    const dnnl_dims_t xd = {n, cin}, wtd = {cin, cout}, bd = {1, cout}, yd = {n, cout},
                      wd = {cout, cin}, dyt = {cout, n};
    dnnl_memory_desc_t x, wt, b, y, w, dyT;
    TRY(dnnl_memory_desc_init_by_tag(&x, 2, xd, dnnl_f32, dnnl_ab));
    TRY(dnnl_memory_desc_init_by_tag(&wt, 2, wtd, dnnl_f32, dnnl_ba)); /* W (cout, cin) read as W^T */
    TRY(dnnl_memory_desc_init_by_tag(&b, 2, bd, dnnl_f32, dnnl_ab));
    TRY(dnnl_memory_desc_init_by_tag(&y, 2, yd, dnnl_f32, dnnl_ab));
    TRY(dnnl_memory_desc_init_by_tag(&w, 2, wd, dnnl_f32, dnnl_ab));
    TRY(dnnl_memory_desc_init_by_tag(&dyT, 2, dyt, dnnl_f32, dnnl_ba)); /* dy (n, cout) read as dy^T */
    if (!(rc = matmul_make(st, 0, &x, &wt, &b, &y)) &&  /* y = x W^T + b */
        !(rc = matmul_make(st, 1, &y, &w, NULL, &x)))      /* dx = dy W */
        rc = matmul_make(st, 2, &dyT, &x, NULL, &w);       /* dW = dy^T x */
out:
    if (rc) dnn_free(be);
    return rc;
}

/* Runs the matmul of pass on the buffers p[0..n-1] (the order of matmul_make). */
static int matmul_run(dnn_state *st, int pass, const void *const *p, int n)
{
    static const int argk[2][4] = {{DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST},
                                   {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, 0}};
    dnnl_exec_arg_t args[4];
    int rc = DP_OK;
    for (int i = 0; i < n; i++) {
        TRY(dnnl_memory_set_data_handle(st->mem[pass][i], (void *)p[i]));
        args[i].arg = argk[n == 4 ? 0 : 1][i];
        args[i].memory = st->mem[pass][i];
    }
    TRY(dnnl_primitive_execute(st->prim[pass], g_strm, n, args));
    TRY(dnnl_stream_wait(g_strm));
out:
    return rc;
}

int dnn_linear_forward(void **be, const float *x, const float *w, const float *b, int n, int cin,
                       int cout, float *y)
{
    dnn_state *st;
    int rc = linear_state(be, n, cin, cout, &st);
    if (rc) return rc;
    const void *p[4] = {x, w, b, y};
    return matmul_run(st, 0, p, 4);
}

int dnn_linear_backward(void **be, const float *x, const float *w, const float *dy, int n,
                        int cin, int cout, float *dx, float *dw)
{
    dnn_state *st;
    int rc = linear_state(be, n, cin, cout, &st);
    if (rc) return rc;
    if (dx) {
        const void *p[3] = {dy, w, dx};
        if ((rc = matmul_run(st, 1, p, 3))) return rc;
    }
    const void *p[3] = {dy, x, dw};
    return matmul_run(st, 2, p, 3);
}
