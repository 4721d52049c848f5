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
               DP_EFFICIENTNET_B1 = 4, DP_HRNET = 5, DP_ARCH_COUNT = 6 };
/* HRNetV2 ("hrnet-w48") is a semantic segmentation network (docs/models.md, "HRNetV2"):
 * its width is its channel number C (1, the default, means 48; else an integer in
 * [2, 64]: 18, 32 and 48 are the paper's W18, W32, W48), its classes are the pixel
 * classes, its labels one per pixel (n, size, size) in [0, classes) or DP_SEG_IGNORE,
 * and its logits (n, classes, size, size). */
/* 1 for a segmentation network (labels and logits per pixel), 0 for a classifier. */
DP_API int dp_arch_is_seg(int arch);
enum dp_pool { DP_POOL_HUMAN = 0, DP_POOL_DYNOPOOL = 1, DP_POOL_SHAPE_ADAPTOR = 2 };

/* The label of a pixel that no loss or metric counts (segmentation). */
#define DP_SEG_IGNORE 255

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
    int precision;           /* enum dp_precision: DP_PRECISION_FP32 (0, the default),
                                DP_PRECISION_BF16, or DP_PRECISION_AUTO (bf16 where the CPU has
                                it natively); dp_model_create resolves AUTO.  Not recorded in
                                checkpoints, which are float32 whatever the precision */
} dp_model_config;

/* Mixed precision (docs/guide.md, "Mixed precision"): in bf16 the convolutions and
 * the classifier multiply bf16 copies of their inputs, weights and output
 * gradients and accumulate in float32; weights, optimizer state, batch-norm
 * statistics, DynOPool and its alphas, the losses and every stored map stay
 * float32. */
enum dp_precision { DP_PRECISION_FP32 = 0, DP_PRECISION_BF16 = 1, DP_PRECISION_AUTO = 2 };
/* What the CPU (as oneDNN sees it: ONEDNN_MAX_CPU_ISA may lower it) does with bf16. */
enum dp_bf16_support {
    DP_BF16_NONE = 0,     /* no bf16 convolutions at all (oneDNN 2.6 below AVX-512) */
    DP_BF16_EMULATED = 1, /* AVX-512 without BF16: oneDNN emulates it, slower than float32 */
    DP_BF16_NATIVE = 2    /* AVX512-BF16 or AMX */
};
DP_API int dp_bf16_support(void);
/* DP_PRECISION_AUTO -> DP_PRECISION_BF16 where dp_bf16_support() is native, else
 * DP_PRECISION_FP32; FP32 and BF16 as they are; DP_ERR_ARG otherwise. */
DP_API int dp_precision_resolve(int precision);
/* "fp32" / "bf16" / "auto": the enum value, or DP_ERR_ARG; and back. */
DP_API int dp_precision_parse(const char *name);
DP_API const char *dp_precision_name(int precision);

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
/* One step: forward (batch statistics), L_total = L_task + lambda L_GMACs
 * (L_task: softmax cross-entropy; per pixel, mean over the pixels not ignored, for a
 * segmentation network, whose labels are (n, size, size) and st->correct counts pixels),
 * backward, SGD update with learning rates lr (weights) and lr_alpha (alphas).
 * A NaN or infinite loss returns DP_ERR_NONFINITE and leaves the model exactly as
 * it was (weights, alphas, momentum, BN running statistics). */
DP_API int dp_model_train_step(dp_model *m, const float *x, const int *labels, int n,
                               const dp_train_config *tc, float lr, float lr_alpha,
                               dp_step_stats *st);
/* Inference (running statistics): logits (n, classes); a segmentation network's
 * (dp_arch_is_seg) per pixel, (n, classes, size, size) NCHW. */
DP_API int dp_model_predict(dp_model *m, const float *x, int n, float *logits);
/* A segmentation network's class of highest score for every pixel (running
 * statistics): pred (n, size, size). */
DP_API int dp_model_predict_seg(dp_model *m, const float *x, int n, int *pred);
/* Segmentation metrics over a split, as the official HRNet code computes them:
 * conf (classes x classes, row = true class, column = predicted; zeroed by the caller)
 * accumulates n pixels, those labelled DP_SEG_IGNORE skipped (DP_ERR_ARG for a label or
 * prediction out of range, nothing added then).  dp_seg_scores: pixel accuracy = correct
 * / counted pixels, IoU_k = TP / max(1, TP + FP + FN) for each class (iou may be NULL)
 * and mIoU their mean over all classes (a class absent from truth and predictions
 * counts 0). */
DP_API int dp_seg_confusion_add(long long *conf, int classes, const int *labels, const int *pred, size_t n);
DP_API int dp_seg_scores(const long long *conf, int classes, double *pixel_acc, double *miou, double *iou);
/* Cost, parameters and stage sizes for an input of the model's size. */
DP_API int dp_model_info_get(dp_model *m, dp_model_info *info);
/* The same for the model cfg describes, at its initial alphas (what dp_model_create
 * then dp_model_info_get give), without allocating its weights or activations:
 * a few kilobytes whatever the width. */
DP_API int dp_model_info_of_config(const dp_model_config *cfg, dp_model_info *info);

/* Switches a model between float32 and bf16 (enum dp_precision; AUTO is resolved)
 * from its next step or prediction on; the weights, momentum and statistics are
 * untouched, so a run may change precision between any two steps.  DP_OK;
 * DP_ERR_ARG for an unknown value or bf16 on the reference backend; DP_ERR_BACKEND
 * for bf16 where dp_bf16_support() is DP_BF16_NONE. */
DP_API int dp_model_set_precision(dp_model *m, int precision);

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
