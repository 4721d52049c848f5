/* net.h — building and running a dp_net (net.c), the model zoo (models.c), the
 * optimiser (optim.c).  Internal. */
#ifndef DP_NET_H
#define DP_NET_H

#include "engine/engine.h"

int dp_net_init(dp_net *net, int backend);
void dp_net_free(dp_net *net);
/* Appends a node; returns its index or a negative status. */
int dp_net_add(dp_net *net, int type, int in0, int in1, const char *name);
/* Registers a parameter (offset into params/grads, 64-byte aligned) or a buffer. */
long long dp_net_param(dp_net *net, const char *name, int ndim, const int *shape, int group);
long long dp_net_stat(dp_net *net, const char *name, long long numel, int node, int kind);
/* Allocates the flat buffers (zeroed) and marks the nodes that need gradients. */
int dp_net_alloc(dp_net *net);
/* For inference only: params and stats (zeroed), no gradients; net->frozen = 1. */
int dp_net_alloc_frozen(dp_net *net);
/* A frozen net: every node whose op folds into its producer (dp_op.fold) is
 * folded and dropped, its readers then reading the producer.  Returns how
 * many were folded (>= 0). */
int dp_net_fold(dp_net *net);
/* Bytes the net holds: parameters and buffers, activations, workspaces and
 * scratch (ops' workspaces, oneDNN weight reorders), gradients (grads and the
 * gradient pool). */
typedef struct dp_net_mem { size_t weights, acts, work, grads; } dp_net_mem;
void dp_net_memory(const dp_net *net, dp_net_mem *m);
const dp_pview *dp_net_find(const dp_net *net, const char *name);

/* Infers every node's shape for an (n, c, h, w) input; alloc: grow the outputs.
 * On an error *bad (if given) is the failing node. */
int dp_net_shapes(dp_net *net, int n, int c, int h, int w, int alloc, int *bad);
int dp_net_forward(dp_net *net, const float *x, int n, int c, int h, int w, int train, int *bad);
/* Backward from dL/dlogits (n, classes). */
int dp_net_backward(dp_net *net, const float *dlogits, int *bad);

/* Records every node's output size and MACs at the current (initial) alphas:
 * the reference point of the complexity loss. */
int dp_net_record_initial(dp_net *net, int c, int h, int w);
/* MACs per image at the current shapes (docs/operator.md, "The complexity loss");
 * *own_macs (may be NULL): the ops' own costs counted apart (DynOPool's sampling). */
double dp_net_macs(dp_net *net, double *own_macs);
/* L_GMACs at the current shapes; when galpha (a grads-like buffer) is given, adds
 * scale * dL_GMACs/dalpha to the alphas' entries. */
double dp_net_gmacs_loss(dp_net *net, float scale, float *galpha);

/* ---- the model zoo (models.c) ---- */
typedef struct dp_arch_cfg {
    int arch, pool, in_ch, size, classes;
    float width;
    unsigned long long seed; /* weight initialisation */
    int no_drop;             /* dp_model_config's: EfficientNet without dropout / stochastic depth */
} dp_arch_cfg;
/* 1 when w is a width network `arch` is built at: (0, 16] as a multiple of the
 * channels, or for HRNet 1 (W48) or its channel number C, an integer in [2, 64]. */
int dp_arch_width_ok(int arch, float w);
/* Builds, allocates and initialises (docs/models.md, "Initialisation") the network. */
int dp_build(dp_net *net, const dp_arch_cfg *cfg);
/* The same graph with storage for the alphas only: every weight is a named view
 * (numel, shape) at offset -1, so shapes, MACs and the parameter count come at no
 * memory cost.  Such a net must never run forward, train, save or load. */
int dp_build_shapes(dp_net *net, const dp_arch_cfg *cfg);
/* Only the nodes and the parameter and buffer names and shapes (net->pv, net->sv),
 * nothing allocated for them: what a checkpoint of cfg must hold. */
int dp_build_layout(dp_net *net, const dp_arch_cfg *cfg);
/* Indices of the resizing nodes (max-pool, strided conv, DynOPool, shape adaptor)
 * in forward order, as used for "feature-map size after every resizing stage". */
int dp_net_stages(const dp_net *net, int *idx, int max);

/* ---- SGD (optim.c) ---- */
typedef struct dp_sgd {
    float momentum, weight_decay; /* the learning rates come with each step */
    float alpha_momentum; /* the alphas' group */
    float alpha_min;     /* DynOPool alphas are clamped to >= this after each step */
    int nesterov;
    float *buf;      /* momentum buffers, like params */
    int started;
} dp_sgd;
int dp_sgd_init(dp_sgd *o, const dp_net *net);
void dp_sgd_free(dp_sgd *o);
/* One step over every parameter (group 0: lr, decay; group 1: lr_alpha, no decay). */
void dp_sgd_step(dp_sgd *o, dp_net *net, float lr, float lr_alpha);

#endif
