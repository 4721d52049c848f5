/* dnn.c — oneDNN 2.x behind dnn.h.  Activations are described to oneDNN with
 * explicit tags (nchw / nChw8c / nChw16c, the layout the engine chose); weights
 * are left to oneDNN ("any") and reordered from and to the flat OIHW parameter
 * buffers around each use, since the weights change every step anyway.  The
 * fully connected layer is three matmuls on plain row-major matrices, with no
 * reorder at all. */
#include "engine/dnn.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static int g_bf16;
static pthread_once_t g_bf16_once = PTHREAD_ONCE_INIT;

/* Asks oneDNN for a small bf16 convolution (nChw16c, as the engine runs on
 * AVX-512) and a bf16 matmul, both with f32 results as the engine uses them. */
static void bf16_once(void)
{
    if (!dnn_blk()) return;
    const dnnl_dims_t xd = {2, 16, 4, 4}, wd = {16, 16, 3, 3}, s = {1, 1}, p = {1, 1};
    const dnnl_dims_t ad = {4, 8}, bd = {8, 4}, cd = {4, 4};
    dnnl_memory_desc_t x, w, y, a, b, c;
    dnnl_convolution_desc_t conv;
    dnnl_matmul_desc_t mm;
    dnnl_primitive_desc_t pd = NULL, pm = NULL;
    int ok = dnnl_memory_desc_init_by_tag(&x, 4, xd, dnnl_bf16, dnnl_nChw16c) == dnnl_success &&
             dnnl_memory_desc_init_by_tag(&y, 4, xd, dnnl_f32, dnnl_nChw16c) == dnnl_success &&
             dnnl_memory_desc_init_by_tag(&w, 4, wd, dnnl_bf16, dnnl_format_tag_any) == dnnl_success &&
             dnnl_convolution_forward_desc_init(&conv, dnnl_forward_training, dnnl_convolution_direct, &x, &w,
                                                NULL, &y, s, p, p) == dnnl_success &&
             dnnl_primitive_desc_create(&pd, &conv, NULL, g_eng, NULL) == dnnl_success &&
             dnnl_memory_desc_init_by_tag(&a, 2, ad, dnnl_bf16, dnnl_ab) == dnnl_success &&
             dnnl_memory_desc_init_by_tag(&b, 2, bd, dnnl_bf16, dnnl_ba) == dnnl_success &&
             dnnl_memory_desc_init_by_tag(&c, 2, cd, dnnl_f32, dnnl_ab) == dnnl_success &&
             dnnl_matmul_desc_init(&mm, &a, &b, NULL, &c) == dnnl_success &&
             dnnl_primitive_desc_create(&pm, &mm, NULL, g_eng, NULL) == dnnl_success;
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (pm) dnnl_primitive_desc_destroy(pm);
    const unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
    const unsigned native = (unsigned)dnnl_cpu_isa_avx512_core_bf16; /* AMX includes these bits */
    g_bf16 = !ok ? DP_BF16_NONE : (isa & native) == native ? DP_BF16_NATIVE : DP_BF16_EMULATED;
}

int dnn_bf16_support(void)
{
    pthread_once(&g_bf16_once, bf16_once);
    return g_bf16;
}

/* ---- counters (dnn_stats) --------------------------------------------------
 * Relaxed atomics: nets in several threads may count at once; a reader wants
 * totals, not an order. */
static _Atomic long long g_built[DNN_KINDS], g_reused[DNN_KINDS], g_build_ns, g_runs, g_run_ns;

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

void dnn_stats_get(dnn_stats *s)
{
    for (int k = 0; k < DNN_KINDS; k++)
        s->built[k] = atomic_load_explicit(&g_built[k], memory_order_relaxed),
        s->reused[k] = atomic_load_explicit(&g_reused[k], memory_order_relaxed);
    s->build_s = 1e-9 * (double)atomic_load_explicit(&g_build_ns, memory_order_relaxed);
    s->runs = atomic_load_explicit(&g_runs, memory_order_relaxed);
    s->run_s = 1e-9 * (double)atomic_load_explicit(&g_run_ns, memory_order_relaxed);
}

void dnn_stats_reset(void)
{
    for (int k = 0; k < DNN_KINDS; k++) atomic_store(&g_built[k], 0), atomic_store(&g_reused[k], 0);
    atomic_store(&g_build_ns, 0), atomic_store(&g_runs, 0), atomic_store(&g_run_ns, 0);
}

static void count_run(long long t0)
{
    atomic_fetch_add_explicit(&g_runs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_run_ns, now_ns() - t0, memory_order_relaxed);
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
    const long long t0 = now_ns();
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
    count_run(t0);
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
enum { ST_CONV = DNN_CONV + 1, ST_BN, ST_POOL, ST_LINEAR }; /* kind - 1: dnn_stats' index */
#define KEYLEN 20

typedef struct {
    int kind;
    int key[KEYLEN];
    dnnl_primitive_desc_t pd[3];      /* forward, backward data, backward weights */
    dnnl_primitive_t prim[3];
    dnnl_primitive_t reo[3];          /* user w -> fwd w, user w -> bwd-data w, diff w -> user */
    dnnl_memory_desc_t x, y, w_user, w_fwd, w_bwd, dw, b, ws;
    void *wsb;                        /* workspace (bn relu mask, pool indices) */
    /* conv only: the activations as the primitives take them (conv_io: another
     * layout where oneDNN has no JIT kernel for the engine's at this shape, bf16
     * sources in mixed precision), and the reorders from and to ours where they
     * differ (NULL where not); converted activations live in net->cscr */
    dnnl_memory_desc_t xs, ys, dys, dxs;
    dnnl_primitive_t rx, rxb, ry, ryb; /* x -> xs, dxs -> dx, dy -> dys, ys -> y */
    float *wkeep;                     /* conv in a frozen net: the forward's weights, reordered once */
    /* linear only: memory objects of the three matmuls (forward: x, W^T, b, y;
     * backward data: dy, W, dx; backward weights: dy^T, x, dW), created once
     * and pointed at the caller's buffers on each call */
    dnnl_memory_t mem[3][4];
    /* linear in mixed precision: f32 -> bf16 conversions of x, W, dy (cvt_make) */
    dnnl_primitive_t cv[3];
    dnnl_memory_desc_t cvf[3], cvb[3];
    void *cvbuf[3];
} dnn_state;

static void state_free(dnn_state *st)
{
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
    for (int i = 0; i < 3; i++) {
        if (st->cv[i]) dnnl_primitive_destroy(st->cv[i]);
        free(st->cvbuf[i]);
    }
    free(st->wkeep);
    free(st->wsb);
    free(st);
}

/* A node's states (*be): those of the last shapes it ran, most recent first, so
 * that a size that comes back (an alpha hovering at a rounding boundary, a BN
 * switching between training and evaluation, a last partial batch) finds its
 * primitives built (docs/engine.md, "Shapes that change").  A frozen net's
 * convolutions keep one (each state holds its own reordered weights). */
#define DNN_CACHE 4
typedef struct {
    int n;
    dnn_state *s[DNN_CACHE];
} dnn_node;

void dnn_free(void **be)
{
    dnn_node *nd = *be;
    if (!nd) return;
    for (int i = 0; i < nd->n; i++) state_free(nd->s[i]);
    free(nd);
    *be = NULL;
}

/* The state the node's last call used (the forward's, for its backward); NULL if none. */
static dnn_state *current(void **be)
{
    const dnn_node *nd = *be;
    return nd && nd->n ? nd->s[0] : NULL;
}

/* Drops the node's most recent state (one that failed to build). */
static void state_drop(void **be)
{
    dnn_node *nd = *be;
    if (!nd || !nd->n) return;
    state_free(nd->s[0]);
    memmove(nd->s, nd->s + 1, sizeof(nd->s[0]) * (size_t)--nd->n);
}

/* Returns the node's state built for key, moved to the front, or else a fresh
 * zeroed one put there (*fresh = 1), the least recently used one freed when the
 * node keeps keep states already.  NULL when out of memory. */
static _Thread_local long long t_build0;
static dnn_state *state_for(void **be, int kind, const int key[KEYLEN], int keep, int *fresh)
{
    dnn_node *nd = *be;
    if (!nd && !(nd = *be = calloc(1, sizeof(*nd)))) return NULL;
    for (int i = 0; i < nd->n; i++) {
        dnn_state *st = nd->s[i];
        if (st->kind != kind || memcmp(st->key, key, sizeof(st->key)) != 0) continue;
        memmove(nd->s + 1, nd->s, sizeof(nd->s[0]) * (size_t)i);
        nd->s[0] = st;
        *fresh = 0;
        atomic_fetch_add_explicit(&g_reused[kind - 1], 1, memory_order_relaxed);
        return st;
    }
    t_build0 = now_ns();
    if (keep > DNN_CACHE) keep = DNN_CACHE;
    while (nd->n >= keep) state_free(nd->s[--nd->n]);
    dnn_state *st = calloc(1, sizeof(*st));
    if (!st) return NULL;
    st->kind = kind;
    memcpy(st->key, key, sizeof(st->key));
    memmove(nd->s + 1, nd->s, sizeof(nd->s[0]) * (size_t)nd->n++);
    nd->s[0] = st;
    *fresh = 1;
    return st;
}

/* A state of kind was built (or failed to be) since state_for returned it fresh. */
static void built(int kind)
{
    atomic_fetch_add_explicit(&g_built[kind - 1], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_build_ns, now_ns() - t_build0, memory_order_relaxed);
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

/* The activations of a convolution as its primitives take them (conv_io): the
 * source and the gradient of the output in the compute type (f32, or bf16 in
 * mixed precision), the output and the gradient of the source always in f32;
 * x's pair on x's layout and y's on y's (the engine's, or where the engine's
 * has no JIT kernel another one, then the same for both). */
typedef struct {
    dnnl_memory_desc_t xs, ys, dys, dxs;
} conv_io;

static int conv_io_init(conv_io *io, const dp_act *x, const dp_act *y, dnnl_format_tag_t xtag,
                        dnnl_format_tag_t ytag, dnnl_data_type_t dt)
{
    const dnnl_dims_t xd = {x->n, x->c, x->h, x->w}, yd = {y->n, y->c, y->h, y->w};
    if (dnnl_memory_desc_init_by_tag(&io->xs, 4, xd, dt, xtag) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&io->dxs, 4, xd, dnnl_f32, xtag) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&io->ys, 4, yd, dnnl_f32, ytag) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&io->dys, 4, yd, dt, ytag) != dnnl_success)
        return DP_ERR_BACKEND;
    return DP_OK;
}

/* The three primitive descriptors of a convolution (forward, backward data,
 * backward weights) on io with weights w (compute type) and their gradient dw
 * (f32); returns how many of them oneDNN could only serve with a reference
 * implementation, or -1. */
static int conv_pds(dnnl_primitive_desc_t pd[3], const conv_io *io, const dnnl_memory_desc_t *w,
                    const dnnl_memory_desc_t *dw, const dnnl_memory_desc_t *b, const dnnl_dims_t s,
                    const dnnl_dims_t pl, const dnnl_dims_t pr, int fwd_only, const_dnnl_primitive_attr_t attr)
{
    dnnl_convolution_desc_t cd;
    int rc = DP_OK;
    TRY(dnnl_convolution_forward_desc_init(&cd, fwd_only ? dnnl_forward_inference : dnnl_forward_training,
                                           dnnl_convolution_direct, &io->xs, w, b, &io->ys, s, pl, pr));
    TRY(dnnl_primitive_desc_create(&pd[0], &cd, attr, g_eng, NULL));
    if (fwd_only) return is_ref(pd[0]);
    TRY(dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &io->dxs, w, &io->dys, s,
                                                 pl, pr));
    TRY(dnnl_primitive_desc_create(&pd[1], &cd, NULL, g_eng, pd[0]));
    TRY(dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &io->xs, dw, b,
                                                    &io->dys, s, pl, pr));
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

/* A reorder from -> to where the two differ (layout or data type), else none. */
static int reorder_if(dnnl_primitive_t *r, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to)
{
    return dnnl_memory_desc_equal(from, to) ? DP_OK : reorder_make(r, from, to);
}

/* A convolution on the engine's blocked layout where oneDNN has a JIT kernel
 * for it.  Some shapes have none on that layout (oneDNN 2.6 on AVX-512: 8
 * input channels padded to a 16-lane block, which narrow networks such as
 * VGG-16 at width 0.125 have; depthwise weight gradients on 2x2 maps): there
 * the convolution runs on another layout that has them, with reorders to and
 * from ours around it (docs/engine.md, "Layouts").  In mixed precision (bf16)
 * the source, the output's gradient and the weights are bf16 inside the
 * primitives, the output, the source's gradient and the weight gradient f32
 * (docs/engine.md, "Mixed precision"); the reorders around the primitives
 * convert. */
static int conv_build(dnn_state *st, const dp_act *x, const dp_act *y, int k, int s, int p,
                      int g, int bias, int fwd_only, int act, int bf16)
{
    int rc = DP_OK;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    const dnnl_data_type_t dt = bf16 ? dnnl_bf16 : dnnl_f32;
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
    dnnl_memory_desc_t w_any, dw_any, b_md;
    if (g == 1) {
        const dnnl_dims_t wd = {y->c, x->c, k, k};
        TRY(dnnl_memory_desc_init_by_tag(&st->w_user, 4, wd, dnnl_f32, dnnl_oihw));
        TRY(dnnl_memory_desc_init_by_tag(&w_any, 4, wd, dt, dnnl_format_tag_any));
        TRY(dnnl_memory_desc_init_by_tag(&dw_any, 4, wd, dnnl_f32, dnnl_format_tag_any));
    } else {
        const dnnl_dims_t wd = {g, y->c / g, x->c / g, k, k};
        TRY(dnnl_memory_desc_init_by_tag(&st->w_user, 5, wd, dnnl_f32, dnnl_goihw));
        TRY(dnnl_memory_desc_init_by_tag(&w_any, 5, wd, dt, dnnl_format_tag_any));
        TRY(dnnl_memory_desc_init_by_tag(&dw_any, 5, wd, dnnl_f32, dnnl_format_tag_any));
    }
    const dnnl_dims_t bd = {y->c};
    TRY(dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_x));
    st->b = b_md;
    const dnnl_memory_desc_t *bp = bias ? &b_md : NULL;
    conv_io io;
    if ((rc = conv_io_init(&io, x, y, tag_of(x->blk), tag_of(y->blk), dt))) goto out;
    int refs = conv_pds(st->pd, &io, &w_any, &dw_any, bp, st2, pad, pr, fwd_only, attr);
    if (refs < 0) {
        rc = DP_ERR_BACKEND;
        goto out;
    }
    if (refs > 0) {
        /* the same convolution on other activation layouts (x and y alike):
         * the first on which all three passes have JIT kernels */
        static const dnnl_format_tag_t cand[] = {dnnl_nChw8c, dnnl_nhwc, dnnl_nchw, dnnl_nChw16c};
        dnnl_primitive_desc_t alt[3] = {NULL, NULL, NULL};
        conv_io ai;
        int r = -1;
        for (size_t c = 0; c < sizeof cand / sizeof cand[0]; c++) {
            if (cand[c] == tag_of(x->blk)) continue;
            if ((rc = conv_io_init(&ai, x, y, cand[c], cand[c], dt))) goto out;
            r = conv_pds(alt, &ai, &w_any, &dw_any, bp, st2, pad, pr, fwd_only, attr);
            if (r == 0) break;
            pds_free(alt);
        }
        if (r == 0) {
            pds_free(st->pd);
            memcpy(st->pd, alt, sizeof alt);
            io = ai;
        } else {
            pds_free(alt);
        }
    }
    st->xs = io.xs, st->ys = io.ys, st->dys = io.dys, st->dxs = io.dxs;
    if ((rc = reorder_if(&st->rx, &st->x, &st->xs)) || (rc = reorder_if(&st->ryb, &st->ys, &st->y)))
        goto out;
    st->w_fwd = *pd_md(st->pd[0], dnnl_query_weights_md);
    TRY(dnnl_primitive_create(&st->prim[0], st->pd[0]));
    if ((rc = reorder_if(&st->reo[0], &st->w_user, &st->w_fwd))) goto out;
    if (fwd_only) goto out; /* a frozen net: no backward */
    if ((rc = reorder_if(&st->ry, &st->y, &st->dys)) || (rc = reorder_if(&st->rxb, &st->dxs, &st->x)))
        goto out;
    /* backward data (built for the network's first conv too, whose x needs no
     * gradient: it costs little and keeps one code path) */
    st->w_bwd = *pd_md(st->pd[1], dnnl_query_weights_md);
    TRY(dnnl_primitive_create(&st->prim[1], st->pd[1]));
    if ((rc = reorder_if(&st->reo[1], &st->w_user, &st->w_bwd))) goto out;
    st->dw = *pd_md(st->pd[2], dnnl_query_diff_weights_md);
    TRY(dnnl_primitive_create(&st->prim[2], st->pd[2]));
    if ((rc = reorder_if(&st->reo[2], &st->dw, &st->w_user))) goto out;
out:
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return rc;
}

static int conv_state(void **be, const dp_act *x, const dp_act *y, int k, int s, int p, int g,
                      int bias, int fwd_only, int act, int bf16, dnn_state **out)
{
    if (!dnn_blk()) return DP_ERR_BACKEND;
    const int key[KEYLEN] = {x->n, x->c, x->h, x->w, x->blk, y->c, y->h, y->w, y->blk,
                             k, s, p, g, bias, fwd_only, act, bf16};
    int fresh;
    dnn_state *st = state_for(be, ST_CONV, key, fwd_only ? 1 : DNN_CACHE, &fresh);
    if (!st) return DP_ERR_NOMEM;
    if (fresh) {
        int rc = conv_build(st, x, y, k, s, p, g, bias, fwd_only, act, bf16);
        built(ST_CONV);
        if (rc) { state_drop(be); return rc; }
    }
    *out = st;
    return DP_OK;
}

/* A scratch of the net grown to hold md: weights in oneDNN's formats (net->wscr)
 * or activations converted for one primitive (net->cscr[0..1]); NULL if out of
 * memory.  What it holds lives for the duration of one call of this file. */
static void *grow(void **buf, size_t *cap, const dnnl_memory_desc_t *md)
{
    const size_t bytes = (dnnl_memory_desc_get_size(md) + 63) & ~(size_t)63;
    if (bytes > *cap || !*buf) {
        void *q = aligned_alloc(64, bytes ? bytes : 64);
        if (!q) return NULL;
        memset(q, 0, bytes ? bytes : 64);
        free(*buf);
        *buf = q;
        *cap = bytes;
    }
    return *buf;
}
static float *scratch(dp_net *net, const dnnl_memory_desc_t *md)
{
    return grow((void **)&net->wscr, &net->wscr_cap, md);
}

/* The activation src (described by from) as the primitive takes it (to): src
 * itself when r is NULL, else its reorder into the net's conversion scratch
 * slot (0: the source side, 1: the output side); NULL on failure. */
static const void *convert_in(dp_net *net, dnnl_primitive_t r, const dnnl_memory_desc_t *from,
                              const void *src, const dnnl_memory_desc_t *to, int slot)
{
    if (!r) return src;
    void *t = grow(&net->cscr[slot], &net->cscr_cap[slot], to);
    if (!t || reorder_run(r, from, src, to, t)) return NULL;
    return t;
}
/* Where the primitive writes an output described by md that r then reorders
 * into the caller's buffer dst: dst itself when r is NULL, else scratch slot. */
static void *convert_out(dp_net *net, dnnl_primitive_t r, const dnnl_memory_desc_t *md, void *dst, int slot)
{
    return r ? grow(&net->cscr[slot], &net->cscr_cap[slot], md) : dst;
}

/* w (OIHW) in the layout pass (0 forward, 1 backward data) wants: w itself, or
 * its reorder into the shared scratch; NULL when out of memory or failing.  A
 * frozen net's weights never change (dnn.h), so there the forward's reorder
 * is made once and kept with the node. */
static const void *weights_for(dp_net *net, dnn_state *st, int pass, const float *w)
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
    /* Depthwise convolutions stay f32 in mixed precision: they are memory-bound (one
     * input channel per output), so bf16 saves little arithmetic, and oneDNN 2.6's bf16
     * weight gradient of the 5x5 ones was 4x slower than its f32 one on AVX512-BF16
     * (docs/engine.md, "Mixed precision"). */
    const int bf16 = net->bf16 && !(g > 1 && g == x->c && g == y->c);
    int rc = conv_state(be, x, y, k, s, p, g, b != NULL, net->frozen, act, bf16, &st);
    if (rc) return rc;
    const void *wf = weights_for(net, st, 0, w);
    const void *xs = convert_in(net, st->rx, &st->x, x->data, &st->xs, 0);
    void *ys = convert_out(net, st->ryb, &st->ys, y->data, 1);
    if (!wf || !xs || !ys) return DP_ERR_NOMEM;
    const dnn_arg a[4] = {{DNNL_ARG_SRC, &st->xs, xs}, {DNNL_ARG_WEIGHTS, &st->w_fwd, wf},
                          {DNNL_ARG_DST, &st->ys, ys}, {DNNL_ARG_BIAS, &st->b, b}};
    if ((rc = run(st->prim[0], a, b ? 4 : 3))) return rc;
    return st->ryb ? reorder_run(st->ryb, &st->ys, ys, &st->y, y->data) : DP_OK;
}

/* The weight gradient first (it reads the converted x in scratch slot 0), then
 * dx, which may take slot 0 over on its way back to the engine's layout. */
int dnn_conv_backward(dp_net *net, void **be, const dp_act *x, const float *w, const dp_act *dy,
                      float *dx, float *dw, float *db)
{
    dnn_state *st = current(be);
    if (!st || st->kind != ST_CONV || !st->prim[2]) return DP_ERR_BACKEND; /* forward first; not frozen */
    int rc;
    const void *xs = convert_in(net, st->rx, &st->x, x->data, &st->xs, 0);
    const void *dys = convert_in(net, st->ry, &st->y, dy->data, &st->dys, 1);
    float *dwt = dw;
    if (st->reo[2] && !(dwt = scratch(net, &st->dw))) return DP_ERR_NOMEM;
    if (!xs || !dys) return DP_ERR_NOMEM;
    const dnn_arg a[4] = {{DNNL_ARG_SRC, &st->xs, xs}, {DNNL_ARG_DIFF_DST, &st->dys, dys},
                          {DNNL_ARG_DIFF_WEIGHTS, &st->dw, dwt}, {DNNL_ARG_DIFF_BIAS, &st->b, db}};
    if ((rc = run(st->prim[2], a, db ? 4 : 3))) return rc;
    if (st->reo[2] && (rc = reorder_run(st->reo[2], &st->dw, dwt, &st->w_user, dw))) return rc;
    if (!dx) return DP_OK;
    const void *wb = weights_for(net, st, 1, w);
    void *dxs = convert_out(net, st->rxb, &st->dxs, dx, 0);
    if (!wb || !dxs) return DP_ERR_NOMEM;
    const dnn_arg b[3] = {{DNNL_ARG_DIFF_DST, &st->dys, dys}, {DNNL_ARG_WEIGHTS, &st->w_bwd, wb},
                          {DNNL_ARG_DIFF_SRC, &st->dxs, dxs}};
    if ((rc = run(st->prim[1], b, 3))) return rc;
    return st->rxb ? reorder_run(st->rxb, &st->dxs, dxs, &st->x, dx) : DP_OK;
}

/* ---- batch norm ---------------------------------------------------------------- */

static int bn_state(void **be, const dp_act *x, float eps, int train, int relu, dnn_state **out)
{
    if (!dnn_blk()) return DP_ERR_BACKEND;
    union { float f; int i; } e = {eps};
    const int key[KEYLEN] = {x->n, x->c, x->h, x->w, x->blk, train, relu, e.i};
    int fresh, rc = DP_OK;
    dnn_state *st = state_for(be, ST_BN, key, DNN_CACHE, &fresh);
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
    built(ST_BN);
    if (rc) state_drop(be);
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
    dnn_state *st = current(be);
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
    dnn_state *st = state_for(be, ST_POOL, key, DNN_CACHE, &fresh);
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
        built(ST_POOL);
    }
    const dnn_arg a[3] = {{DNNL_ARG_SRC, &st->x, x->data}, {DNNL_ARG_DST, &st->y, y->data},
                          {DNNL_ARG_WORKSPACE, &st->ws, st->wsb}};
    return run(st->prim[0], a, train ? 3 : 2);
out:
    built(ST_POOL);
    state_drop(be);
    return rc;
}

int dnn_pool_backward(void **be, const dp_act *dy, float *dx, const dp_act *x)
{
    dnn_state *st = current(be);
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

/* Mixed precision: the flat f32 -> bf16 conversion i (0 x, 1 W, 2 dy) of count
 * elements, a oneDNN reorder (round to nearest even) into the node's buffer. */
static int cvt_make(dnn_state *st, int i, dnnl_dim_t count)
{
    const dnnl_dims_t d = {count};
    int rc = DP_OK;
    TRY(dnnl_memory_desc_init_by_tag(&st->cvf[i], 1, d, dnnl_f32, dnnl_a));
    TRY(dnnl_memory_desc_init_by_tag(&st->cvb[i], 1, d, dnnl_bf16, dnnl_a));
    if ((rc = reorder_make(&st->cv[i], &st->cvf[i], &st->cvb[i]))) return rc;
    if (!(st->cvbuf[i] = alloc_md(&st->cvb[i]))) return DP_ERR_NOMEM;
out:
    return rc;
}
static const void *cvt(dnn_state *st, int i, const float *src)
{
    if (!st->cv[i]) return src;
    return reorder_run(st->cv[i], &st->cvf[i], src, &st->cvb[i], st->cvbuf[i]) ? NULL : st->cvbuf[i];
}

static int linear_state(void **be, int n, int cin, int cout, int bf16, dnn_state **out)
{
    if (!dnn_blk()) return DP_ERR_BACKEND;
    const int key[KEYLEN] = {n, cin, cout, bf16};
    int fresh, rc = DP_OK;
    dnn_state *st = state_for(be, ST_LINEAR, key, DNN_CACHE, &fresh);
    if (!st) return DP_ERR_NOMEM;
    *out = st;
    if (!fresh) return DP_OK;
    const dnnl_data_type_t dt = bf16 ? dnnl_bf16 : dnnl_f32; /* the operands; results are f32 */
    const dnnl_dims_t xd = {n, cin}, wtd = {cin, cout}, bd = {1, cout}, yd = {n, cout},
                      wd = {cout, cin}, dyt = {cout, n};
    dnnl_memory_desc_t x, wt, b, y, dy, w, dwm, dx, dyT;
    TRY(dnnl_memory_desc_init_by_tag(&x, 2, xd, dt, dnnl_ab));
    TRY(dnnl_memory_desc_init_by_tag(&wt, 2, wtd, dt, dnnl_ba)); /* W (cout, cin) read as W^T */
    TRY(dnnl_memory_desc_init_by_tag(&b, 2, bd, dnnl_f32, dnnl_ab));
    TRY(dnnl_memory_desc_init_by_tag(&y, 2, yd, dnnl_f32, dnnl_ab));
    TRY(dnnl_memory_desc_init_by_tag(&dy, 2, yd, dt, dnnl_ab));
    TRY(dnnl_memory_desc_init_by_tag(&w, 2, wd, dt, dnnl_ab));
    TRY(dnnl_memory_desc_init_by_tag(&dwm, 2, wd, dnnl_f32, dnnl_ab));
    TRY(dnnl_memory_desc_init_by_tag(&dx, 2, xd, dnnl_f32, dnnl_ab));
    TRY(dnnl_memory_desc_init_by_tag(&dyT, 2, dyt, dt, dnnl_ba)); /* dy (n, cout) read as dy^T */
    if (bf16 && ((rc = cvt_make(st, 0, (dnnl_dim_t)n * cin)) || (rc = cvt_make(st, 1, (dnnl_dim_t)cout * cin)) ||
                 (rc = cvt_make(st, 2, (dnnl_dim_t)n * cout))))
        goto out;
    if (!(rc = matmul_make(st, 0, &x, &wt, &b, &y)) &&  /* y = x W^T + b */
        !(rc = matmul_make(st, 1, &dy, &w, NULL, &dx)))    /* dx = dy W */
        rc = matmul_make(st, 2, &dyT, &x, NULL, &dwm);     /* dW = dy^T x */
out:
    built(ST_LINEAR);
    if (rc) state_drop(be);
    return rc;
}

/* Runs the matmul of pass on the buffers p[0..n-1] (the order of matmul_make). */
static int matmul_run(dnn_state *st, int pass, const void *const *p, int n)
{
    static const int argk[2][4] = {{DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST},
                                   {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, 0}};
    dnnl_exec_arg_t args[4];
    const long long t0 = now_ns();
    int rc = DP_OK;
    for (int i = 0; i < n; i++) {
        if (!p[i]) return DP_ERR_BACKEND; /* a conversion failed */
        TRY(dnnl_memory_set_data_handle(st->mem[pass][i], (void *)p[i]));
        args[i].arg = argk[n == 4 ? 0 : 1][i];
        args[i].memory = st->mem[pass][i];
    }
    TRY(dnnl_primitive_execute(st->prim[pass], g_strm, n, args));
    TRY(dnnl_stream_wait(g_strm));
out:
    count_run(t0);
    return rc;
}

int dnn_linear_forward(void **be, const float *x, const float *w, const float *b, int n, int cin,
                       int cout, int bf16, float *y)
{
    dnn_state *st;
    int rc = linear_state(be, n, cin, cout, bf16, &st);
    if (rc) return rc;
    const void *p[4] = {cvt(st, 0, x), cvt(st, 1, w), b, y};
    return matmul_run(st, 0, p, 4);
}

int dnn_linear_backward(void **be, const float *x, const float *w, const float *dy, int n,
                        int cin, int cout, int bf16, float *dx, float *dw)
{
    dnn_state *st;
    int rc = linear_state(be, n, cin, cout, bf16, &st);
    if (rc) return rc;
    const void *dyc = cvt(st, 2, dy);
    if (dx) {
        const void *p[3] = {dyc, cvt(st, 1, w), dx};
        if ((rc = matmul_run(st, 1, p, 3))) return rc;
    }
    const void *p[3] = {dyc, cvt(st, 0, x), dw};
    return matmul_run(st, 2, p, 3);
}
