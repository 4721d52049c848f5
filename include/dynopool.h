/*
 * dynopool.h — public C API of libdynopool.
 *
 * DynOPool (Jang et al., "Pooling Revisited: Your Receptive Field is Suboptimal",
 * CVPR 2022) is a pooling layer whose output size is learned: the scale of each
 * axis is 1/alpha, and alpha is a trainable parameter.  This header is the
 * manual; the formulas are those of SPEC.md section 1 (docs/operator.md has them
 * written out).
 *
 * Example (forward and backward of one layer, error handling included):
 *
 *     #include <dynopool.h>
 *
 *     int ho = dp_dynopool_size(h, 1.7f);           // output height
 *     int wo = dp_dynopool_size(w, 2.6f);           // output width
 *     if (ho < 0 || wo < 0) { puts(dp_strerror(ho < 0 ? ho : wo)); ... }
 *     float *y = malloc(sizeof(float) * n * c * ho * wo);
 *     int rc = dp_dynopool_forward(x, n, c, h, w, 1.7f, 2.6f, y);
 *     ...
 *     float dalpha[2];                              // (d/d alpha_h, d/d alpha_w)
 *     rc = dp_dynopool_backward(x, dy, n, c, h, w, 1.7f, 2.6f, dx, dalpha);
 *
 * Conventions, for every function here:
 *  - Tensors are float32, NCHW, contiguous, owned by the caller.  The library
 *    never keeps a pointer after a call returns and never frees caller memory.
 *  - Every call returns 0 on success or a negative DP_ERR_* code; on an error
 *    nothing is written to any output.  dp_strerror() turns a code into text.
 *  - The library never prints and never exits.
 *  - Calls are thread-safe; work is spread over OpenMP threads (OMP_NUM_THREADS).
 */
#ifndef DYNOPOOL_H
#define DYNOPOOL_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#  define DP_API __declspec(dllexport)
#elif defined(__GNUC__)
#  define DP_API __attribute__((visibility("default")))
#else
#  define DP_API
#endif

#define DP_VERSION_MAJOR 0
#define DP_VERSION_MINOR 1
#define DP_VERSION_PATCH 0

/* Status codes. 0 is success; every error is negative. */
enum dp_status {
    DP_OK = 0,
    DP_ERR_NULL = -1,      /* a required pointer is NULL */
    DP_ERR_SIZE = -2,      /* a size (n, c, h, w) is <= 0 */
    DP_ERR_ALPHA = -3,     /* alpha is <= 0, NaN or infinite */
    DP_ERR_OVERFLOW = -4,  /* an output size or element count does not fit */
    DP_ERR_NOMEM = -5,     /* an internal allocation failed */
    DP_ERR_ARG = -6,       /* another argument is out of range (e.g. an unknown mode) */
    DP_ERR_IO = -7,        /* a file could not be opened, read, written or renamed */
    DP_ERR_FORMAT = -8,    /* a file's contents are not what was expected */
    DP_ERR_BACKEND = -9,   /* the compute backend (oneDNN) refused or failed */
    DP_ERR_NONFINITE = -10 /* the loss is NaN or infinite (training diverged); nothing updated */
};

/* Static text for a status code ("ok", "NULL pointer argument", ...). Never NULL. */
DP_API const char *dp_strerror(int status);

/* Library version as "MAJOR.MINOR.PATCH". */
DP_API const char *dp_version(void);

/* Writes n bytes of data to path atomically, as checkpoints are written: a
 * fresh temporary file beside path (created with O_CREAT|O_EXCL|O_NOFOLLOW, so
 * a link planted in the folder is never followed), fsync, rename over path,
 * fsync of the folder.  DP_OK, or DP_ERR_IO (DP_ERR_NULL, DP_ERR_NOMEM) with
 * errno set; on failure path is untouched or whole, never partly written. */
DP_API int dp_write_file_atomic(const char *path, const void *data, size_t n);

/* Threads.  Every parallel loop of the library (its own kernels and oneDNN's)
 * runs on one OpenMP pool, process-wide.
 * dp_threads_available(): the CPUs this process may run on — its affinity mask,
 *   capped by a cgroup v2 CPU quota (a container's --cpus) — at least 1.
 * dp_threads_idle(ms): of those, how many other processes leave idle, measured
 *   over ms milliseconds (it sleeps that long) from /proc/stat less this
 *   process's own CPU time; dp_threads_available() where that cannot be read.
 *   OpenMP's barriers make a step whose threads share cores with other work
 *   crawl, so the tool uses this many by default (docs/engine.md, "Threads").
 * dp_threads_idle_since(mark): the same over the time since the mark was last
 *   set (no sleeping: for a long job that checks now and then), and sets it to
 *   now; a zeroed mark gives dp_threads_available().
 * dp_set_threads(n): use n threads (1..4096) from now on; DP_ERR_ARG otherwise.
 * dp_threads(): the number in use.
 * Results are reproducible bit for bit for a given number of threads; another
 * number changes the order of some sums (oneDNN's weight gradients). */
DP_API int dp_threads_available(void);
DP_API int dp_threads_idle(int ms);
typedef struct dp_cpu_mark { double v[3]; int valid; } dp_cpu_mark;
DP_API int dp_threads_idle_since(dp_cpu_mark *mark);
DP_API int dp_set_threads(int n);
DP_API int dp_threads(void);

/* ---------------------------------------------------------------------------
 * The DynOPool operator (SPEC.md section 1).
 * ------------------------------------------------------------------------- */

/* Size of one output axis: floor(max(in / alpha, 1.5) + 0.5), computed in double
 * from the float alpha.  Every map keeps at least 2 cells; alpha < 1 up-samples.
 * Returns the size (>= 2), or DP_ERR_SIZE (in <= 0), DP_ERR_ALPHA (alpha <= 0 or
 * not finite), DP_ERR_OVERFLOW (the size exceeds DP_MAX_AXIS). */
DP_API int dp_dynopool_size(int in, float alpha);

/* Largest output axis dp_dynopool_size() accepts (2^24 cells). */
#define DP_MAX_AXIS (1 << 24)

/* How the four query points of an output cell are combined. */
enum dp_agg {
    DP_AGG_MAX = 0,   /* max, ties to the first query point (the paper's default) */
    DP_AGG_AVG = 1    /* mean of the four */
};

/* Forward, max aggregation.
 *   x: (n, c, h, w)        input
 *   y: (n, c, ho, wo)      output, ho = dp_dynopool_size(h, alpha_h), wo likewise
 * Returns 0, or a negative code (nothing written then). */
DP_API int dp_dynopool_forward(const float *x, int n, int c, int h, int w,
                               float alpha_h, float alpha_w, float *y);

/* Backward, max aggregation.
 *   x:      (n, c, h, w)     the forward's input
 *   dy:     (n, c, ho, wo)   gradient of the loss with respect to y
 *   dx:     (n, c, h, w)     OVERWRITTEN with dL/dx
 *   dalpha: [2]              OVERWRITTEN with (dL/dalpha_h, dL/dalpha_w)
 * The gradient flows through the selected query point only; alpha's gradient
 * goes through the straight-through output size (zero on an axis clamped at
 * the 1.5 floor).  x and dx must not overlap.  Returns 0 or a negative code. */
DP_API int dp_dynopool_backward(const float *x, const float *dy, int n, int c, int h, int w,
                                float alpha_h, float alpha_w, float *dx, float *dalpha);

/* The same pair with a choice of aggregation (enum dp_agg); with DP_AGG_MAX they
 * are identical to the two calls above. */
DP_API int dp_dynopool_forward_agg(const float *x, int n, int c, int h, int w,
                                   float alpha_h, float alpha_w, int agg, float *y);
DP_API int dp_dynopool_backward_agg(const float *x, const float *dy, int n, int c, int h, int w,
                                    float alpha_h, float alpha_w, int agg,
                                    float *dx, float *dalpha);

/* DynOPool's own cost for one forward pass, in multiply-accumulates: four
 * bilinear samples of four weighted corners per output element, 16 * n*c*ho*wo
 * (the 4-way max is comparisons, not counted).  This is what the paper's
 * Table 5.5 compares with the model's MACs; the model's GMACs never include it.
 * Returns the count (>= 0) or a negative code. */
DP_API long long dp_dynopool_macs(int n, int c, int h, int w, float alpha_h, float alpha_w);

/* ==== Models: build, train, measure, save (the engine) ===========================
 *
 *     dp_model_config cfg = dp_model_defaults();
 *     cfg.arch = DP_VGG16; cfg.pool = DP_POOL_DYNOPOOL; cfg.size = 32; cfg.classes = 100;
 *     dp_model *m;
 *     if (dp_model_create(&cfg, &m)) ...;
 *     dp_train_config tc = dp_train_defaults(cfg.arch);
 *     dp_step_stats st;
 *     dp_model_train_step(m, x, labels, 128, &tc, tc.lr, tc.lr * tc.alpha_lr_ratio, &st);
 *     dp_model_save(m, "ckpt.safetensors", NULL, NULL, 0, err, sizeof err);
 *     dp_model_free(m);
 *
 * Images are float32 NCHW (n, in_ch, size, size); labels are ints in [0, classes).
 * Parameter names and shapes are those of the PyTorch modules in ref/models.py
 * (docs/models.md), so checkpoints move between the two. */
enum dp_arch { DP_VGG16 = 0, DP_RESNET50 = 1, DP_MOBILENETV2 = 2 };
enum dp_pool { DP_POOL_HUMAN = 0, DP_POOL_DYNOPOOL = 1, DP_POOL_SHAPE_ADAPTOR = 2 };

typedef struct dp_model dp_model;

typedef struct dp_model_config {
    int arch, pool;          /* enum dp_arch, enum dp_pool */
    int in_ch, size;         /* input channels and side (the network is built for size x size) */
    int classes;
    float width;             /* channel multiplier (1 = the paper's networks) */
    unsigned long long seed; /* weight initialisation */
    int reference;           /* 1: plain-C reference kernels on NCHW (slow; for testing) */
} dp_model_config;

typedef struct dp_train_config {
    float lr;                /* base learning rate (the schedule scales it) */
    float alpha_lr_ratio;    /* alpha's learning rate = ratio * lr (SPEC 6: 0.1) */
    float momentum, weight_decay;
    int nesterov;
    float lambda;            /* weight of L_GMACs in L_total (SPEC 2) */
    float alpha_min;         /* DynOPool alphas are clamped to >= this after each step (0.25) */
    int max_side;            /* memory guard: no DynOPool output side may exceed this; an alpha
                                that would enlarge a map beyond it is raised to the smallest
                                value that keeps it (0 = no cap; SPEC 6) */
} dp_train_config;

typedef struct dp_step_stats {
    double loss, loss_task, loss_gmacs;  /* L_total, L_task (mean CE), L_GMACs */
    int correct;                         /* top-1 hits in the batch (before the update) */
    int capped;                          /* DynOPools whose alpha max_side raised in this step */
} dp_step_stats;

#define DP_MAX_STAGES 32
typedef struct dp_model_info {
    double gmacs;            /* per image, SPEC 2 counting, at the current alphas */
    double dynopool_gmacs;   /* DynOPool's own sampling cost per image (Table 5.5) */
    double dynopool_share;   /* dynopool_gmacs / (gmacs + dynopool_gmacs) */
    long long params;        /* trainable parameters (alphas included) */
    int n_stages;            /* resizing stages, in forward order */
    int sizes[DP_MAX_STAGES][2];
    int n_alphas;            /* DynOPool: (alpha_h, alpha_w); shape adaptor: (s, s) */
    float alphas[DP_MAX_STAGES][2];
} dp_model_info;

DP_API dp_model_config dp_model_defaults(void);   /* VGG-16 human, 3x32x32, 100 classes */
DP_API dp_train_config dp_train_defaults(int arch); /* SPEC 6 */
/* "vgg16" / "resnet50" / "mobilenetv2", "human" / "dynopool" / "shape-adaptor":
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
/* Checkpoints: safetensors (PyTorch state_dict names, float32, num_batches_tracked
 * int64) with a JSON metadata block; written atomically.  Extra metadata pairs
 * (may be 0) are stored beside the model's own.  Loading checks the architecture,
 * every tensor's shape, that every value is finite and every DynOPool alpha > 0,
 * and the range of metadata 'steps'; err names the file and what did not match. */
DP_API int dp_model_save(const dp_model *m, const char *path, const char *const *keys,
                         const char *const *vals, int n, char *err, size_t errlen);
DP_API int dp_model_load(dp_model *m, const char *path, char *err, size_t errlen);
/* The configuration a checkpoint was saved with (model, variant, in_ch, size,
 * classes, width; the rest from dp_model_defaults), without building the model:
 * each field must be in range (in_ch 1..4096, size 2..16384, classes 1..1000000,
 * width in (0, 16], steps 0..2^53) and the tensors the configuration implies
 * must be the file's, so that dp_model_create never allocates more for a
 * checkpoint than the file holds.  DP_ERR_FORMAT otherwise, err naming the file
 * and the field. */
DP_API int dp_checkpoint_config(const char *path, dp_model_config *cfg, char *err, size_t errlen);
/* A loaded checkpoint's metadata value (after dp_model_load), or NULL. */
DP_API const char *dp_model_meta(const dp_model *m, const char *key);

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

/* ==== Data: datasets, the paper's toy variants, a background loader =============
 *
 *     dp_dataset *tr;
 *     if (dp_dataset_open("/usr/share/datasets/fashion-mnist", DP_DATA_AUTO, 1, 0, 0,
 *                         &tr, err, sizeof err)) ...;   // err: file, byte offset, what
 *     dp_transform t = dp_transform_defaults(tr, 1, DP_VARIANT_NONE);
 *     dp_loader *ld;  dp_loader_create(tr, &t, 128, 1, &ld);
 *     dp_loader_start(ld, order, n, 0, seed);
 *     while (dp_loader_next(ld, &x, &labels, &nb, &wait, err, sizeof err) == DP_OK) ...
 *
 * Pixels become floats in [0, 1], are augmented (training split), pass through the
 * variant, and are normalised per channel.  Every random choice for a sample comes
 * from (seed, its position in the epoch), so batches do not depend on threads. */
enum dp_data_kind {
    DP_DATA_AUTO = -1,   /* detect from the files present */
    DP_DATA_IDX = 0,     /* MNIST-style IDX: {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] */
    DP_DATA_CIFAR10 = 1, /* data_batch_{1..5}.bin, test_batch.bin */
    DP_DATA_CIFAR100 = 2,/* train.bin, test.bin (fine labels) */
    DP_DATA_FOLDER = 3   /* {train,test}/<class>/<image>.{jpg,jpeg,png} */
};
enum dp_variant {
    DP_VARIANT_NONE = 0,
    DP_VARIANT_STRETCH_V = 1, /* stretch vertically x2 (bilinear), S x S crop (centre at test) */
    DP_VARIANT_TILE = 2,      /* down-sample to S/2, tile 4 x 4 -> 2S x 2S */
    DP_VARIANT_LARGE = 3      /* down-sample to S/2, up-sample to 2S x 2S */
};

typedef struct dp_dataset dp_dataset;

typedef struct dp_dataset_info {
    int kind;            /* enum dp_data_kind */
    int n;               /* images in the split */
    int channels;        /* 1 or 3 */
    int size;            /* base side S after loading (folders: the crop side) */
    int classes;
} dp_dataset_info;

typedef struct dp_transform {
    int train;           /* 1: random augmentation (SPEC 6); 0: the deterministic test view */
    int variant;         /* enum dp_variant */
    int pad;             /* zero padding of the random crop (in-memory sets; SPEC 6: 4) */
    int flip;            /* random horizontal flip (training) */
    float mean[3], std[3];
} dp_transform;

/* Opens one split (train = 1 or 0) of the dataset in dir.  classes: for IDX files
 * the number of classes (0 = 10); labels at or above it are an error.  size: for
 * image folders the crop side (0 = 224; images are resized to 8/7 of it first),
 * ignored otherwise.  In-memory sets are read whole; folders are indexed and
 * decoded on demand.  On failure err names the file, the byte offset and what
 * was expected. */
DP_API int dp_dataset_open(const char *dir, int kind, int train, int classes, int size,
                           dp_dataset **out, char *err, size_t errlen);
DP_API void dp_dataset_free(dp_dataset *ds);
DP_API int dp_dataset_info_get(const dp_dataset *ds, dp_dataset_info *info);
DP_API int dp_dataset_label(const dp_dataset *ds, int i);     /* or DP_ERR_ARG */
/* Per-channel mean and standard deviation of the pixels in [0, 1] (folders: over
 * up to 256 images spread over the split). */
DP_API int dp_dataset_stats(const dp_dataset *ds, float mean[3], float std[3], char *err,
                            size_t errlen);
/* Augmentation defaults of SPEC 6 for this set (mean/std from dp_dataset_stats
 * must be filled in by the caller). */
DP_API dp_transform dp_transform_defaults(const dp_dataset *ds, int train, int variant);
/* Side of the images a variant produces from a base side S (the model's input). */
DP_API int dp_variant_size(int variant, int base);
DP_API int dp_variant_parse(const char *name);     /* "none", "stretch-v", "tile", "large" */
DP_API const char *dp_variant_name(int variant);
DP_API const char *dp_data_kind_name(int kind);    /* "idx", "cifar10", "cifar100", "folder" */
DP_API int dp_data_kind_parse(const char *name);
/* Prepares the images idx[0..n) of ds: x (n, channels, s, s) with
 * s = dp_variant_size(t->variant, size), labels (n).  Sample j draws its random
 * crop and flip from (seed, pos0 + j). */
DP_API int dp_dataset_batch(const dp_dataset *ds, const dp_transform *t, const int *idx, int n,
                            unsigned long long seed, long long pos0, float *x, int *labels,
                            char *err, size_t errlen);

/* A background loader: `workers` threads prepare the next batches of an epoch
 * while the caller trains on the current one. */
typedef struct dp_loader dp_loader;
DP_API int dp_loader_create(const dp_dataset *ds, const dp_transform *t, int batch, int workers,
                            dp_loader **out);
/* Starts an epoch over order[0..n) (copied), from batch number first_batch. */
DP_API int dp_loader_start(dp_loader *ld, const int *order, int n, int first_batch,
                           unsigned long long seed);
/* The next batch: *x and *labels stay valid until the next call.  Returns DP_OK,
 * 1 at the end of the epoch, or a negative code with err set.  *wait (may be
 * NULL) receives the seconds this call blocked waiting for the batch. */
DP_API int dp_loader_next(dp_loader *ld, const float **x, const int **labels, int *n,
                          double *wait, char *err, size_t errlen);
DP_API void dp_loader_free(dp_loader *ld);

#ifdef __cplusplus
}
#endif
#endif /* DYNOPOOL_H */
