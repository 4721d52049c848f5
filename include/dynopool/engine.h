/* dynopool/engine.h — models: build VGG-16, ResNet-50 or MobileNetV2 (human,
 * DynOPool or Shape Adaptor pooling), train them a step at a time, predict, and
 * measure their cost and sizes.  Part of libdynopool; include <dynopool.h>. */
#ifndef DYNOPOOL_ENGINE_H
#define DYNOPOOL_ENGINE_H

#include "dynopool_op.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ==== Models: build, train, measure, save (the engine) ===========================
 *
 *     dp_model_config cfg = dp_model_defaults();
 *     cfg.arch = DP_VGG16; cfg.pool = DP_POOL_DYNOPOOL; cfg.size = 32; cfg.classes = 100;
 *     dp_model *m;
 *     if (dp_model_create(&cfg, &m)) ...;
 *     dp_recipe rec = dp_recipe_defaults(cfg.arch, cfg.pool, 0);
 *     dp_step_stats st;
 *     dp_model_train_step(m, x, labels, 128, &rec.step, (float)rec.lr, (float)rec.alpha_lr, &st);
 *     dp_model_save(m, "ckpt.safetensors", NULL, NULL, 0, err, sizeof err);
 *     dp_model_free(m);
 *
 * Images are float32 NCHW (n, in_ch, size, size); labels are ints in [0, classes).
 * Parameter names and shapes are those of the PyTorch modules in python/dynopool/models.py
 * (docs/models.md), so checkpoints move between the two. */
enum dp_arch { DP_VGG16 = 0, DP_RESNET50 = 1, DP_MOBILENETV2 = 2, DP_EFFICIENTNET_B0 = 3,
               DP_EFFICIENTNET_B1 = 4, DP_ARCH_COUNT = 5 };
enum dp_pool { DP_POOL_HUMAN = 0, DP_POOL_DYNOPOOL = 1, DP_POOL_SHAPE_ADAPTOR = 2 };

typedef struct dp_model dp_model;

typedef struct dp_model_config {
    int arch, pool;          /* enum dp_arch, enum dp_pool */
    int in_ch, size;         /* input channels and side (the network is built for size x size) */
    int classes;
    float width;             /* channel multiplier (1 = the paper's networks) */
    unsigned long long seed; /* weight initialisation */
    int reference;           /* 1: plain-C reference kernels on NCHW (slow; for testing) */
    int no_drop;             /* EfficientNet only: 1 builds it without dropout and stochastic
                                depth (rates 0 instead of torchvision's 0.2; the model goldens,
                                docs/models.md); 0, the default, keeps them.  Not recorded in
                                checkpoints; the CLI always builds with them */
} dp_model_config;

/* The settings of one training step (its learning rates are the lr and lr_alpha
 * arguments of dp_model_train_step, which a schedule changes step by step). */
#define DP_MAX_STAGES 32

typedef struct dp_train_config {
    float momentum, weight_decay;
    int nesterov;
    float alpha_momentum;    /* the alphas' own momentum; below 0 (the default, -1): the
                                weights' momentum, as the paper's recipe has it */
    float lambda;            /* weight of L_GMACs in L_total (docs/operator.md, "The
                                complexity loss") */
    float alpha_min;         /* DynOPool alphas are clamped to >= this after each step (0.25) */
    int max_side;            /* memory guard: no DynOPool output side may exceed this; an alpha
                                that would enlarge a map beyond it is raised to the smallest
                                value that keeps it (0 = no cap; docs/guide.md, "The training
                                recipe") */
} dp_train_config;

/* A training run's recipe, the paper's (docs/guide.md, "The training recipe"):
 * epochs of a cosine schedule over the base learning rates, and the step's
 * settings.  The learning rates are doubles: a schedule scales them in double
 * precision and hands every step its floats. */
typedef struct dp_recipe {
    int epochs;              /* 200 for the human design, 250 for DynOPool / Shape Adaptor */
    int batch;               /* 128 */
    double lr;               /* the weights' base learning rate: 0.1 (0.01 for fine-grained sets) */
    double alpha_lr;         /* the alphas' own group: dp_recipe_alpha_lr(lr), a tenth */
    dp_train_config step;    /* dp_train_defaults(arch) */
} dp_recipe;

typedef struct dp_step_stats {
    double loss, loss_task, loss_gmacs;  /* L_total, L_task (mean CE), L_GMACs */
    int correct;                         /* top-1 hits in the batch (before the update) */
    int n;                               /* images in the batch (with several ranks: all
                                            ranks' shards, as loss and correct count) */
    int capped;                          /* DynOPools whose alpha max_side raised in this step */
    /* The alphas' gradient of this step split into its two terms (docs/reproduction.md,
     * "Why the maps shrink"): per alpha tensor in forward order (a DynOPool's
     * (alpha_h, alpha_w); a one-element tensor fills both slots), its value before the
     * step, dL_task/dalpha, and lambda dL_GMACs/dalpha (their sum is the step's gradient). */
    int n_galpha;
    float alpha[DP_MAX_STAGES][2];
    double galpha_task[DP_MAX_STAGES][2], galpha_cost[DP_MAX_STAGES][2];
} dp_step_stats;
typedef struct dp_model_info {
    double gmacs;            /* per image, at the current alphas (docs/operator.md,
                                "How MACs are counted") */
    double dynopool_gmacs;   /* DynOPool's own sampling cost per image (Table 5.5) */
    double dynopool_share;   /* dynopool_gmacs / (gmacs + dynopool_gmacs) */
    long long params;        /* trainable parameters (alphas included) */
    int n_stages;            /* resizing stages, in forward order */
    int sizes[DP_MAX_STAGES][2];
    int n_alphas;            /* DynOPool: (alpha_h, alpha_w); shape adaptor: (1/s, 1/s),
                                its scale s written as an alpha */
    float alphas[DP_MAX_STAGES][2];
} dp_model_info;

DP_API dp_model_config dp_model_defaults(void);   /* VGG-16 human, 3x32x32, 100 classes */
/* SGD with Nesterov momentum 0.9, weight decay 5e-4 (4e-5 for MobileNetV2), lambda 0,
 * alpha_min 0.25, no max_side (docs/guide.md, "The training recipe"). */
DP_API dp_train_config dp_train_defaults(int arch);
/* The paper's recipe for arch (enum dp_arch) and pool (enum dp_pool).  fine_grained:
 * 1 for the fine-grained image-folder sets the paper trains at 224 pixels (base
 * lr 0.01), 0 for the small in-memory sets (0.1). */
DP_API dp_recipe dp_recipe_defaults(int arch, int pool, int fine_grained);
/* The alphas' base learning rate that goes with the weights' lr: lr / 10. */
DP_API double dp_recipe_alpha_lr(double lr);
/* The cosine schedule, stepped per epoch: both base rates are multiplied by
 * (1 + cos(pi * epoch / epochs)) / 2 during epoch (0-based) of epochs. */
DP_API double dp_recipe_lr_factor(int epoch, int epochs);
/* "vgg16" / "resnet50" / "mobilenetv2" / "efficientnet-b0" / "efficientnet-b1", "human" / "dynopool" / "shape-adaptor":
 * the enum value, or DP_ERR_ARG. */
DP_API int dp_arch_parse(const char *name);
DP_API int dp_pool_parse(const char *name);
DP_API const char *dp_arch_name(int arch);
DP_API const char *dp_pool_name(int pool);

DP_API int dp_model_create(const dp_model_config *cfg, dp_model **out);
DP_API void dp_model_free(dp_model *m);
DP_API const dp_model_config *dp_model_config_of(const dp_model *m);
/* One step: forward (batch statistics), L_total = L_task + lambda L_GMACs,
 * backward, SGD update with learning rates lr (weights) and lr_alpha (alphas).
 * A NaN or infinite loss returns DP_ERR_NONFINITE and leaves the model exactly as
 * it was (weights, alphas, momentum, BN running statistics). */
DP_API int dp_model_train_step(dp_model *m, const float *x, const int *labels, int n,
                               const dp_train_config *tc, float lr, float lr_alpha,
                               dp_step_stats *st);
/* Inference (running statistics): logits (n, classes). */
DP_API int dp_model_predict(dp_model *m, const float *x, int n, float *logits);
/* Cost, parameters and stage sizes for an input of the model's size. */
DP_API int dp_model_info_get(dp_model *m, dp_model_info *info);
/* The same for the model cfg describes, at its initial alphas (what dp_model_create
 * then dp_model_info_get give), without allocating its weights or activations:
 * a few kilobytes whatever the width. */
DP_API int dp_model_info_of_config(const dp_model_config *cfg, dp_model_info *info);

/* A loaded checkpoint's metadata value (dp_model_load in dynopool/store.h keeps them), or NULL. */
DP_API const char *dp_model_meta(const dp_model *m, const char *key);

/* Sets the initial alphas of the model's DynOPools (both axes), stage by stage in
 * forward order: n = 1 gives every stage alpha[0], n = the number of stages one
 * each (a ResNet shortcut follows its block).  Call it before training.  Returns
 * DP_OK; the number of DynOPool stages when alpha is NULL and n is 0; DP_ERR_ARG
 * for another n or a model without DynOPool; DP_ERR_ALPHA for a value that is
 * not finite and > 0. */
DP_API int dp_model_init_alphas(dp_model *m, const float *alpha, int n);

/* How many of the tensors a checkpoint of m would hold (weights, alphas, BN
 * running statistics, momentum buffers) contain a NaN or an infinity: 0 when all
 * are finite.  first (may be NULL) receives the name of the first such tensor.
 * A run that diverged without a non-finite loss (e.g. a huge weight decay or
 * learning rate) is caught here before it is saved.  Returns the count (>= 0) or
 * a negative code. */
DP_API int dp_model_nonfinite(const dp_model *m, char *first, size_t cap);

/* Raises DynOPool alphas, stage by stage in forward order, so that no output side
 * exceeds max_side (> 1) for the model's input size.  Returns how many alphas it
 * raised (>= 0) or a negative code.  dp_model_train_step calls it when
 * tc->max_side > 0. */
DP_API int dp_model_cap_sizes(dp_model *m, int max_side);

/* ==== Data-parallel training across processes (docs/distributed.md) ==========
 *
 * The library does no communication itself: the caller (the CLI, with MPI) gives
 * it a communicator as function pointers.  Each process ("rank") passes its own
 * contiguous shard of every global batch to dp_model_train_step; the engine then
 *   - takes the loss and its gradient as means over the global batch (the
 *     shards' sizes are summed with allreduce),
 *   - sums every parameter gradient, alphas included, over the ranks (in
 *     buckets started as the backward pass finishes them when istart/wait are
 *     given, else with allreduce after it), then adds the complexity loss's
 *     alpha gradient once, and takes the same SGD step on every rank,
 *   - with sync_bn, normalises every batch norm with the statistics of the
 *     global batch (sum, then sum of squared deviations, in double) and sums the
 *     two per-channel reductions of its backward pass likewise;
 *   - returns in dp_step_stats the global batch's loss and correct count.
 * Every rank must call the same sequence of training steps (the callbacks are
 * collective operations). */
enum { DP_COMM_F32 = 0, DP_COMM_F64 = 1 };
typedef struct dp_comm {
    int rank, size;          /* this process and how many there are */
    void *ctx;               /* passed to the callbacks */
    /* buf[0..n) := its sum over the ranks, in place (type DP_COMM_F32 or F64);
     * every rank receives the same bits.  0, or nonzero on failure. */
    int (*allreduce)(void *ctx, void *buf, long long n, int type);
    /* Optional (both or neither): start a float sum like allreduce and return at
     * once with a handle >= 0; wait for it (the buffer is final after wait).
     * Used to overlap the gradient sums with the backward pass. */
    int (*istart)(void *ctx, float *buf, long long n);
    int (*wait)(void *ctx, int handle);
    /* Optional: lets the sums in flight advance (a transport whose progress runs
     * only inside its own calls, as Open MPI's); called after each node of the
     * backward pass while a bucket is in flight. */
    void (*progress)(void *ctx);
} dp_comm;

/* Trains m with the ranks of c from the next step on (NULL: alone again); c is
 * copied.  sync_bn: 1 global batch-norm statistics, 0 each rank's own (the
 * running statistics then differ between ranks; a checkpoint holds rank 0's).
 * bucket_floats: the gradient sum's bucket size in floats (0: a default of
 * 4M floats, 16 MB). */
DP_API int dp_model_set_comm(dp_model *m, const dp_comm *c, int sync_bn, long long bucket_floats);

/* An FNV-1a hash of the bytes of every parameter (alphas included) and momentum
 * buffer: ranks in lock-step have equal hashes. */
DP_API unsigned long long dp_model_hash(const dp_model *m);

#ifdef __cplusplus
}
#endif
#endif /* DYNOPOOL_ENGINE_H */
