/* dynopool/io.h — datasets (IDX, CIFAR, image folders), the paper's toy
 * variants and a background loader.  Part of libdynopool; include <dynopool.h>. */
#ifndef DYNOPOOL_IO_H
#define DYNOPOOL_IO_H

#include "dynopool_op.h"

#ifdef __cplusplus
extern "C" {
#endif

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
    int train;           /* 1: random augmentation; 0: the deterministic test view
                            (docs/guide.md, "Data") */
    int variant;         /* enum dp_variant */
    int pad;             /* zero padding of the random crop (in-memory sets: 4; folders: 0) */
    int flip;            /* random horizontal flip (training) */
    int resize;          /* 0, or a side R: the prepared image (after the variant) is
                            resampled to R x R, as when a network is trained at another
                            input resolution (the paper's human baseline, Figure 5.2) */
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
/* Image folders: the name of class k (its folder); NULL for the other kinds,
 * whose files carry no names, and for k out of range. */
DP_API const char *dp_dataset_class_name(const dp_dataset *ds, int k);
/* Per-channel mean and standard deviation of the pixels in [0, 1] (folders: over
 * up to 256 images spread over the split). */
DP_API int dp_dataset_stats(const dp_dataset *ds, float mean[3], float std[3], char *err,
                            size_t errlen);
/* Augmentation defaults for this set (docs/guide.md, "Data"): the training or the
 * test view, crop padding 4 for in-memory sets and 0 for folders, flips on; mean
 * and std are placeholders (0.5, 0.25) that the caller must fill in from
 * dp_dataset_stats. */
DP_API dp_transform dp_transform_defaults(const dp_dataset *ds, int train, int variant);
/* Side of the images t prepares from a base side S (the model's input): the
 * variant's side, or t->resize when set; a negative code for a bad variant. */
DP_API int dp_transform_size(const dp_transform *t, int base);
/* Side of the images a variant produces from a base side S. */
DP_API int dp_variant_size(int variant, int base);
DP_API int dp_variant_parse(const char *name);     /* "none", "stretch-v", "tile", "large" */
DP_API const char *dp_variant_name(int variant);
DP_API const char *dp_data_kind_name(int kind);    /* "idx", "cifar10", "cifar100", "folder" */
DP_API int dp_data_kind_parse(const char *name);
/* Prepares the images idx[0..n) of ds: x (n, channels, s, s) with
 * s = dp_transform_size(t, size), labels (n).  Sample j draws its random
 * crop and flip from (seed, pos0 + j). */
DP_API int dp_dataset_batch(const dp_dataset *ds, const dp_transform *t, const int *idx, int n,
                            unsigned long long seed, long long pos0, float *x, int *labels,
                            char *err, size_t errlen);

/* Prepares one JPEG or PNG file (any size) as the evaluation view of a dataset
 * of the given kind (enum dp_data_kind) whose base images are `channels` x
 * base x base, for a network trained on it: x (channels, s, s) with
 * s = dp_transform_size(t, base).  Colours become `channels`: RGB to grey by
 * ITU-R 601 luma, grey to RGB by repeating it.  Image folders
 * (DP_DATA_FOLDER): shorter side resized to 8/7 of base, central base x base
 * crop, exactly as dp_dataset_batch's test view; the in-memory kinds (IDX,
 * CIFAR): an image of base x base is used as it is, another size has its
 * shorter side resized to base and its central base x base kept.  Then t's
 * variant (the test view: t->train is ignored), t->resize and the
 * normalisation.  *native (may be NULL) receives the file's own channels (1
 * grey, 3 colour).  On failure err names the file and what is wrong with it. */
DP_API int dp_image_prepare(const char *path, int kind, int channels, int base, const dp_transform *t,
                            float *x, int *native, char *err, size_t errlen);

/* A background loader: `workers` threads prepare the next batches of an epoch
 * while the caller trains on the current one. */
/* ==== Segmentation sets in the PascalVOC layout (docs/guide.md, "Segmentation data") ====
 *
 *   root/ImageSets/Segmentation/<split>.txt   image ids, one per line
 *   root/JPEGImages/<id>.jpg                  images of any size (grey ones become RGB)
 *   root/SegmentationClass/<id>.png           masks: palette indices or grey values, class
 *                                             k in [0, classes) or 255 (ignored)
 *
 *     dp_segset *s;  dp_segset_open("VOC2012", "train", 21, &s, err, sizeof err);
 *     dp_seg_transform t = dp_seg_transform_defaults(1, 480);
 *     dp_segset_sample(s, i, &t, seed, pos, x, labels, err, sizeof err);
 *
 * Opening reads the list and checks that each listed image and mask exists; samples
 * are decoded on demand.  Errors name the file and the line, byte or pixel. */
typedef struct dp_segset dp_segset;
DP_API int dp_segset_open(const char *root, const char *split, int classes, dp_segset **out, char *err,
                          size_t errlen);
DP_API int dp_segset_count(const dp_segset *s);
DP_API const char *dp_segset_id(const dp_segset *s, int i); /* NULL out of range */
DP_API void dp_segset_free(dp_segset *s);

typedef struct dp_seg_transform {
    int train;                  /* 1: random scale, crop and flip; 0: the centre crop at scale 1 */
    int size;                   /* side of the view the network sees */
    float scale_min, scale_max; /* the random scale's range (0.5, 2: HRNet's PascalVOC recipe) */
    int flip;                   /* random horizontal flip (training) */
    float mean[3], std[3];      /* per-channel normalisation of pixels in [0, 1] (ImageNet's) */
} dp_seg_transform;
DP_API dp_seg_transform dp_seg_transform_defaults(int train, int size);
/* Sample i as the network sees it: x (3, size, size) normalised, labels (size, size).
 * The image is resampled bilinearly and the mask by nearest neighbour with the same
 * scale, crop and flip; where the crop leaves the scaled image (bottom and right)
 * the image is the mean (0 after normalising) and the mask 255.  The random draws
 * come from (seed, pos) alone. */
DP_API int dp_segset_sample(const dp_segset *s, int i, const dp_seg_transform *t, unsigned long long seed,
                            long long pos, float *x, int *labels, char *err, size_t errlen);
/* Writes a segmentation set of real images in the layout above under out (created):
 * n_train and n_val scenes of size x size pixels, each 1-3 Fashion-MNIST items (from the
 * IDX set in src, training items for train and test items for val) scaled, tinted and
 * pasted at random places; the mask labels each item's pixels with its class + 1
 * (background 0, 11 classes), its faint rim 255, and class_names.txt names them. */
/* PascalVOC's colour map, the palette of its masks: class k's colour from its bits (0
 * black, 1 (128, 0, 0), ...; 255, the ignored label, (224, 224, 192)). */
DP_API void dp_seg_palette(unsigned char pal[256][3]);
/* Writes an 8-bit PNG of (h, w, ch) interleaved pixels, ch 1 (grey) or 3 (RGB); err names
 * the file on failure. */
DP_API int dp_image_write_png(const char *path, const unsigned char *pix, int h, int w, int ch, char *err,
                              size_t errlen);
DP_API int dp_segset_make_fashion(const char *src, const char *out, int n_train, int n_val, int size,
                                  unsigned long long seed, char *err, size_t errlen);

typedef struct dp_loader dp_loader;
DP_API int dp_loader_create(const dp_dataset *ds, const dp_transform *t, int batch, int workers,
                            dp_loader **out);
/* Starts an epoch over order[0..n) (copied), from batch number first_batch. */
DP_API int dp_loader_start(dp_loader *ld, const int *order, int n, int first_batch,
                           unsigned long long seed);
/* Data-parallel training (docs/distributed.md): from now on each batch the
 * loader gives is this rank's contiguous part of the full batch, samples
 * [n rank / ranks, n (rank + 1) / ranks) of its n, each made exactly as without
 * sharding (its randomness depends on its position in the epoch alone).  Call it
 * before the first dp_loader_start; DP_ERR_ARG otherwise or for a bad rank. */
DP_API int dp_loader_shard(dp_loader *ld, int rank, int ranks);
/* The next batch: *x and *labels stay valid until the next call.  Returns DP_OK,
 * 1 at the end of the epoch, or a negative code with err set.  *wait (may be
 * NULL) receives the seconds this call blocked waiting for the batch. */
DP_API int dp_loader_next(dp_loader *ld, const float **x, const int **labels, int *n,
                          double *wait, char *err, size_t errlen);
DP_API void dp_loader_free(dp_loader *ld);

#ifdef __cplusplus
}
#endif
#endif /* DYNOPOOL_IO_H */
