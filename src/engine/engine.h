/* engine.h — the training engine's internal types: activations, nodes, the
 * network, and the contract every op file implements.  Not installed. */
#ifndef DP_ENGINE_H
#define DP_ENGINE_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "dynopool/engine.h"

/* ---- activations ---------------------------------------------------------
 * Logical shape (n, c, h, w).  blk = 1: NCHW.  blk = 8 or 16: oneDNN's
 * nChw{blk}c, i.e. [n][ceil(c/blk)][h][w][blk] with the padded channels held at
 * zero.  Every op keeps the padded lanes zero; elementwise ops may then run over
 * the whole buffer without caring about the layout. */
typedef struct dp_act {
    int n, c, h, w, blk;
    float *data;
    size_t cap; /* floats allocated: the high-water mark, never shrinks */
} dp_act;

static inline int dp_cpad(int c, int blk) { return (c + blk - 1) / blk * blk; }
static inline size_t dp_act_numel(const dp_act *a)
{
    return (size_t)a->n * (size_t)dp_cpad(a->c, a->blk) * (size_t)a->h * (size_t)a->w;
}
/* expf(-v) without glibc's slow path: where the result overflows (v < -89: +inf)
 * or underflows to 0 (v > 105), expf takes an errno-setting branch that costs
 * 50-100x a normal call, and a badly scaled SiLU or sigmoid input hits it on
 * most elements.  Those results are returned directly: the same bits. */
static inline float dp_exp_neg(float v)
{
    return v < -89.0f ? INFINITY : v > 105.0f ? 0.0f : expf(-v);
}
/* Sets the shape, leaving the memory (data, cap) as it is. */
static inline void dp_set_shape(dp_act *a, int n, int c, int h, int w, int blk)
{
    a->n = n, a->c = c, a->h = h, a->w = w, a->blk = blk;
}
/* Grows data to hold the current shape (64-byte aligned; new memory zeroed). */
int dp_act_reserve(dp_act *a);
void dp_act_free(dp_act *a);

/* ---- nodes ----------------------------------------------------------------- */
/* Every op of the engine: its type name and the file ops/<file>.c that defines
 * its table dp_op_<file>.  Adding an op is one file and one row here
 * (docs/engine.md, "Adding an op"); the order is the numbering of enum dp_optype. */
#define DP_OPS(X)                                                                      \
    X(INPUT, input) X(CONV, conv2d) X(BN, batchnorm) X(RELU, relu) X(MAXPOOL, maxpool) \
    X(GAP, gap) X(LINEAR, linear) X(ADD, add) X(DYNOPOOL, dynopool)                    \
    X(SHAPE_ADAPTOR, shape_adaptor) X(SILU, silu) X(SE, squeeze_excite)                 \
    X(DROPOUT, dropout) X(DROP_PATH, stochastic_depth) X(RESIZE, resize) X(CONCAT, concat)

enum dp_optype {
#define DP_OP_ENUM(e, f) DP_OP_##e,
    DP_OPS(DP_OP_ENUM)
#undef DP_OP_ENUM
    DP_OP_COUNT
};

/* The activation fused after a batch norm (dp_node.relu; also a convolution's
 * in frozen nets): the values are those the field always had. */
enum { DP_ACT_NONE = 0, DP_ACT_RELU = 1, DP_ACT_SILU = 2, DP_ACT_RELU6 = 6 };

typedef struct dp_node {
    int type;
    int in[2];          /* producer node indices; -1 when unused */
    char name[64];      /* module path: "features.0", "layer1.0.conv1" */
    /* configuration */
    int cout;           /* conv, linear: output channels / features */
    int k, stride, pad; /* conv, max-pool: square kernel, stride, padding */
    int groups, bias;   /* conv */
    float clip;         /* relu: 0 = ReLU, else min(max(x, 0), clip) (ReLU6: 6) */
    int relu;           /* bn: the activation fused after it (DP_ACT_*); add: 1 ReLU after it;
                           conv (frozen nets only): the activation of the BN folded into it */
    float drop;         /* dropout, stochastic depth: the probability of zeroing */
    int owner;          /* node that holds this node's parameters: itself, or another node
                           whose parameters it shares (a DynOPool on ResNet's shortcut
                           uses its block's alpha) */
    int stage;          /* a resizing stage of the model (reported by info) */
    /* parameters: offsets into dp_net.params / grads (-1: none) */
    long long w_off, b_off; /* weight (conv, linear, bn gamma, alphas), bias (conv, linear, bn beta) */
    long long s_off;        /* bn: running mean at s_off, running var at s_off + C (in stats) */
    long long nbt;          /* bn: num_batches_tracked */
    long long w2_off, b2_off; /* squeeze-excite: the second 1x1 conv's weight and bias */
    /* state */
    dp_act y, dy;       /* output and dL/dy */
    int dy_set;         /* dy holds a value this backward pass (later writers add) */
    int gslot;          /* gradient pool slot lent to dy during the backward, or -1 */
    int inplace;        /* y is in[0]'s buffer (an add over a BN output that nothing else reads) */
    int need_dx;        /* dL/dy is needed: this node or one upstream holds parameters */
    float *ws;          /* op workspace (bn mean/var, pool indices, ...) */
    size_t ws_cap;      /* bytes */
    void *be;           /* backend state (oneDNN primitives), owned by dnn.c */
    double run[2];      /* an op's own running state (shape adaptor: its continuous size) */
    /* the complexity loss (docs/operator.md, "The complexity loss") */
    int h0, w0;         /* output size at the initial alphas */
    double macs0;       /* MACs per image at the initial alphas (ops with cost_in_loss) */
    double gh, gw;      /* dL_GMACs / d(output height, width) on the straight-through chain */
} dp_node;

/* ---- parameters: one flat buffer, named views ------------------------------ */
typedef struct dp_pview {
    char name[96];      /* PyTorch state_dict key */
    long long off, numel;
    int ndim, shape[4];
    int group;          /* 0 weights (decayed), 1 alphas (own lr, no decay) */
    int positive;       /* a DynOPool alpha: kept >= the optimiser's alpha_min */
} dp_pview;

typedef struct dp_sview {  /* a buffer (BN running statistics) */
    char name[96];
    long long off, numel;
    int node;           /* the BN node (for num_batches_tracked) */
    int kind;           /* 0 running_mean, 1 running_var */
} dp_sview;

enum dp_backend { DP_BACKEND_REF = 0, DP_BACKEND_DNNL = 1 };

typedef struct dp_net {
    dp_node *nodes;
    int n_nodes, cap_nodes;
    int out;            /* logits node (a linear) */
    int backend, blk;   /* blk used for activations after the input */
    float *params, *grads, *stats;  /* flat buffers */
    long long n_params, n_stats;
    dp_pview *pv; int n_pv, cap_pv;
    dp_sview *sv; int n_sv, cap_sv;
    float bn_eps, bn_momentum;
    float *tmp; size_t tmp_cap;     /* scratch for gradient accumulation */
    /* gradient buffers, lent to a node's dy from its first writer to its own
     * backward: a few maps' worth instead of one per node.  Owned slots grow;
     * borrowed slots are activations already dead in this backward pass (a
     * node's output once its own backward has run), returned at its end. */
    dp_act *gpool; int *gbusy, *gown; int n_gpool;
    int acc_slot;                   /* pool buffer of the dx being accumulated */
    float *wscr; size_t wscr_cap;   /* oneDNN weight reorders (dnn.c), shared by all convs */
    void *cscr[2]; size_t cscr_cap[2]; /* activations converted around one oneDNN call (dnn.c):
                                       another layout, or bf16 in mixed precision */
    int bf16;                       /* mixed precision (docs/engine.md, "Mixed precision"): the
                                       convolutions and the classifier compute on bf16 copies of
                                       their inputs and weights, accumulating in f32 */
    /* the training step's random draws (dropout, stochastic depth): a function of
     * (seed, step, node, element) alone, so a resumed run repeats them */
    unsigned long long seed;
    long long step;
    int frozen;                     /* inference only (dp_net_alloc_frozen): no grads, no
                                       backward, alphas and weights constant */
    struct dp_dist *dist;           /* data-parallel training (dist.c), or NULL */
    double *prof;                   /* NULL, or seconds per op type added up by dp_net_forward
                                       ([2 type]; the input's: shapes, buffers, the copy of the
                                       input) and dp_net_backward ([2 type + 1]); the caller's
                                       array of 2 DP_OP_COUNT (bench/bench_step.c) */
} dp_net;

/* Workspace of the node, grown to at least bytes (64-byte aligned); NULL if out of memory. */
void *dp_node_ws(dp_node *nd, size_t bytes);
/* Scratch of at least n floats owned by the net (valid until the next call). */
float *dp_net_tmp(dp_net *net, size_t n);
static inline float *dp_param(dp_net *net, long long off) { return net->params + off; }
static inline float *dp_grad(dp_net *net, long long off) { return net->grads + off; }

/* dL/d(input) of node nd into producer slot i of its inputs: returns the buffer
 * to write (the producer's dy, sized and zero-padded), and *accumulate = 1 when
 * the producer already received a gradient (write into a temporary, then add). */
float *dp_dx_target(dp_net *net, dp_node *nd, int slot, int *accumulate);
/* For an op whose dx is its dy unchanged: gives nd's gradient buffer to the
 * producer in slot (when that has no gradient yet) instead of a copy; 1 if done.
 * nd->dy must not be used afterwards. */
int dp_dy_hand_over(dp_net *net, dp_node *nd, int slot);
/* Finishes a dx written to the buffer from dp_dx_target. */
void dp_dx_done(dp_net *net, dp_node *nd, int slot, float *buf, int accumulate);

/* ---- the op contract: one file per op ------------------------------------- *
 * Everything the engine knows about an op is in its table; net.c and model.c
 * only call these entries.  NULL entries mean: no MACs, no own cost, the size
 * gradient stops here, no learned factor to report, nothing to cap, no state to
 * roll back.  docs/engine.md, "Adding an op", walks through writing one. */
typedef struct dp_op {
    const char *name;
    /* Sets nd->y's shape from the inputs' shapes (and nd->run); DP_OK or an error.
     * Called for every node in order at every step: the sizes follow the alphas. */
    int (*infer)(dp_net *net, dp_node *nd);
    /* Multiply-accumulates per image at the current shapes: the model's count
     * (docs/operator.md, "The complexity loss") ... */
    double (*macs)(const dp_net *net, const dp_node *nd);
    /* ... and the op's own cost that the paper reports apart from it (DynOPool's
     * sampling: Table 5.5). */
    double (*own_macs)(const dp_net *net, const dp_node *nd);
    /* 1: the op's MACs are a term of L_GMACs (the learned layers: conv, linear) */
    int cost_in_loss;
    int (*forward)(dp_net *net, dp_node *nd, int train);
    /* Reads nd->dy; writes the inputs' dy (through dp_dx_target) and the grads. */
    int (*backward)(dp_net *net, dp_node *nd);
    /* The complexity loss's straight-through size gradient: moves nd->gh, nd->gw
     * (dL_GMACs / d output height, width) to the input's gh, gw, and adds
     * scale * dL_GMACs / d(its alphas) to galpha (a grads-like buffer) when given. */
    void (*size_grad)(dp_net *net, dp_node *nd, float scale, float *galpha);
    /* The node's learned resizing as (alpha_h, alpha_w) = input / output size, for
     * info and checkpoints; 1 when it has one, else 0. */
    int (*alphas)(const dp_net *net, const dp_node *nd, float alpha[2]);
    /* Memory guard: raises the node's alphas so that no output side exceeds
     * max_side for the input size its producer now has; 1 if it raised one. */
    int (*cap)(dp_net *net, dp_node *nd, int max_side);
    /* Undoes what a training forward did to the node's state beyond the stats
     * buffer (BN: num_batches_tracked), for a step that is rolled back. */
    void (*rollback)(dp_net *net, dp_node *nd);
    /* Frozen nets (dp_net_fold): folds the node into its producer in[0], whose
     * output only this node reads, so that the producer's output becomes this
     * node's (BN with running statistics into the convolution before it);
     * 1 when done (the node is then dropped from the net), 0 when it cannot. */
    int (*fold)(dp_net *net, dp_node *nd);
} dp_op;

#define DP_OP_EXTERN(e, f) extern const dp_op dp_op_##f;
DP_OPS(DP_OP_EXTERN)
#undef DP_OP_EXTERN
const dp_op *dp_op_of(int type);

/* The output size of a window op (conv, max-pool: nd->k, nd->stride, nd->pad) on
 * x: (h + 2 pad - k) / stride + 1 per axis; DP_ERR_SIZE when the window does not
 * fit, DP_ERR_OVERFLOW beyond int. */
int dp_window_size(const dp_act *x, const dp_node *nd, int *ho, int *wo);

/* A uniform draw in (0, 1) that depends only on (seed, step, node, i): no hidden
 * generator state, so a step repeated (a resumed run, a rolled-back step) draws
 * the same numbers, on any thread count (splitmix64's finaliser). */
static inline unsigned long long dp_mix64(unsigned long long z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static inline double dp_rand_u01(unsigned long long seed, long long step, int node, size_t i)
{
    unsigned long long z = dp_mix64(seed ^ dp_mix64((unsigned long long)step));
    z = dp_mix64(z ^ dp_mix64(((unsigned long long)(unsigned)node << 40) ^ (unsigned long long)i));
    return ((z >> 11) + 0.5) * 0x1p-53;
}

/* Shared by the elementwise ops: y takes x's shape (input 0). */
int dp_infer_same(dp_net *net, dp_node *nd);
/* Shared by the random-mask ops (dropout, stochastic depth; nd->drop, off in
 * evaluation): the forward applies MASK (out = in times the step's mask, in may
 * equal out) when training, else copies x; the backward applies the same mask to
 * dy in place and hands it to x. */
typedef void (*dp_mask_fn)(const dp_net *net, const dp_node *nd, const float *in, float *out);
int dp_masked_forward(dp_net *net, dp_node *nd, int train, dp_mask_fn mask);
/* y = act(y) in place over the whole buffer (padded lanes stay 0): act 1 ReLU,
 * DP_ACT_SILU, 6 ReLU6, 0 nothing; NaN passes.  The activation a batch norm
 * applies, and a convolution that took over a folded batch norm's. */
void dp_act_inplace(dp_act *y, int act);
int dp_masked_backward(dp_net *net, dp_node *nd, dp_mask_fn mask);

/* Size-gradient rules shared by several ops: the output size equals the input's
 * (elementwise ops; through input 0), or is the input's divided by a stride. */
void dp_size_grad_same(dp_net *net, dp_node *nd, float scale, float *galpha);
void dp_size_grad_strided(dp_net *net, dp_node *nd, float scale, float *galpha);

static inline dp_node *dp_in(dp_net *net, const dp_node *nd, int i) { return &net->nodes[nd->in[i]]; }

/* The reference kernels of conv2d.c and batchnorm.c, plain loops on NCHW (also
 * used by bench/bench_backend.c).  Conv: b, dx, db may be NULL.  BN: batch
 * statistics into mean/var when train, else normalises with them; relu fused. */
void dp_conv2d_ref_forward(const float *x, const float *w, const float *b, float *y, int n,
                           int cin, int h, int wd, int cout, int ho, int wo, int k, int s, int p,
                           int g);
void dp_conv2d_ref_backward(const float *x, const float *w, const float *dy, float *dx, float *dw,
                            float *db, int n, int cin, int h, int wd, int cout, int ho, int wo,
                            int k, int s, int p, int g);
void dp_bn_ref_forward(const float *x, float *y, int n, int c, size_t hw, const float *g,
                       const float *b, float *mean, float *var, float eps, int train, int relu);
void dp_bn_ref_backward(const float *x, const float *y, const float *dy, float *dx, int n, int c,
                        size_t hw, const float *g, const float *mean, const float *var, float eps,
                        int relu, float *dg, float *db);

/* ---- data-parallel training (dist.c; docs/distributed.md) ------------------- */
typedef struct dp_dist {
    dp_comm c;
    int sync_bn;        /* batch norm over the global batch */
    long long bucket;   /* floats per gradient bucket */
    /* buckets: [lo, hi) offsets into grads, from the end of the buffer down; ready
     * once the backward pass has run every node >= ready (their writers) */
    int n_buckets, next, *handle, *ready;
    long long *lo, *hi;
} dp_dist;
/* In place: the sum over the ranks (a no-op without a communicator); DP_ERR_IO
 * when the communicator fails. */
int dp_dist_sum(const dp_net *net, void *buf, long long n, int type);
/* The backward pass's hook after node i (and i = 0 at its end): starts the
 * gradient buckets whose writers have all run.  dp_dist_finish waits for every
 * bucket (and sums those not started). */
int dp_dist_node_done(dp_net *net, int i);
int dp_dist_finish(dp_net *net);
void dp_dist_free(dp_net *net);

/* Softmax cross-entropy, mean over the batch (softmax_ce.c).
 *   logits: (n, k)  labels: (n)  dlogits: (n, k) or NULL
 * Returns DP_OK, or DP_ERR_ARG for a label outside [0, k). */
int dp_softmax_ce(const float *logits, const int *labels, int n, int k, double *loss,
                  float *dlogits);
/* The same with the sum divided by denom (> 0) instead of n: a shard's part of
 * the mean over a global batch of denom samples. */
int dp_softmax_ce_part(const float *logits, const int *labels, int n, int k, double denom,
                       double *loss, float *dlogits);

/* Per-pixel softmax cross-entropy, mean over the pixels whose label is not
 * DP_SEG_IGNORE (seg_ce.c).  logits: (n, k, h, w) in its layout; labels: (n, h, w);
 * dlogits (may be NULL): logits' layout and size; *valid (may be NULL): the pixels
 * counted.  DP_ERR_ARG for a label outside [0, k) that is not DP_SEG_IGNORE. */
int dp_seg_ce(const dp_act *logits, const int *labels, double *loss, long long *valid,
              float *dlogits);
/* The class of highest score of every pixel (first on ties): pred (n, h, w). */
int dp_seg_argmax(const dp_act *logits, int *pred);

#endif
